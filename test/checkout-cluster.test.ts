// The checkout's Lua scripts, unchanged, on a real three-master Redis Cluster:
// SKUs whose keys land on different masters, concurrent reserves against
// limited stock (no oversell, I1), the order state machine, the deadline and
// paying queues, and one order end to end through the HTTP checkout with the
// mocks. Needs redis-server and redis-cli (a missing one fails, with a message).
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCheckout, type RunningCheckout } from '../checkout/service.ts';
import { connectRedis, Store, type StockSnapshot } from '../checkout/store.ts';
import { startMocks } from '../harness/mocks.ts';
import { startRedisCluster, type RedisClusterHandle } from '../harness/redis-cluster.ts';
import type { RunningService } from '../mock-gateways/service.ts';
import { call } from './support/http.ts';

let cluster: RedisClusterHandle;
let redis: Cluster;
let store: Store;
/** One SKU per master: skus[i]'s keys live on masters[i]. */
let skus: string[];
const STOCK = 20;
const PRICE = 4_990;

/** The port of the master that serves `slot`, from CLUSTER SLOTS. */
async function masterOfSlot(slot: number): Promise<number> {
  const ranges = await redis.cluster('SLOTS');
  const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
  if (!r?.[2]) throw new Error(`slot ${slot} is not served`);
  return r[2][1];
}

async function keySlot(key: string): Promise<number> {
  return Number(await redis.cluster('KEYSLOT', key));
}

function i1(s: StockSnapshot) {
  expect(s.available).toBeGreaterThanOrEqual(0);
  expect(s.sold).toBeLessThanOrEqual(s.initial);
  expect(s.available + s.reserved + s.sold).toBe(s.initial);
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  redis = connectRedis(cluster.urls[0]!, true) as Cluster;
  store = new Store(redis, 'fct');
  // Pick SKU ids until each master holds one.
  const byMaster = new Map<number, string>();
  for (let i = 0; byMaster.size < cluster.ports.length && i < 1_000; i++) {
    const id = `sku${i}`;
    const port = await masterOfSlot(await keySlot(store.keys(id).stock));
    if (!byMaster.has(port)) byMaster.set(port, id);
  }
  expect(byMaster.size).toBe(3);
  skus = cluster.ports.map((p) => byMaster.get(p)!);
  await store.seedSale(skus.map((id) => ({ id, name: id, price: PRICE, stock: STOCK, limit: 1 })));
}, 30_000);

afterAll(async () => {
  redis?.disconnect();
  await cluster?.close();
});

describe('checkout store on a Redis Cluster', () => {
  it('keeps every key of a SKU in one slot, and the SKUs on different masters', async () => {
    for (const id of skus) {
      const k = store.keys(id);
      const slots = new Set(
        await Promise.all(
          [
            k.stock,
            k.bought,
            k.deadlines,
            k.paying,
            k.counters,
            k.order('x'),
            k.user('u'),
            k.idem('i'),
          ].map(keySlot),
        ),
      );
      expect(slots.size).toBe(1);
    }
    // The node that really holds each SKU's stock hash: exactly one master, a different one per SKU.
    const holders: string[] = [];
    for (const id of skus) {
      const have: string[] = [];
      for (const node of redis.nodes('master')) {
        // SCAN answers on every node (EXISTS on a node that does not serve the slot is MOVED).
        const [, keys] = await node.scan('0', 'MATCH', store.keys(id).stock, 'COUNT', 10_000);
        if (keys.length) have.push(`${node.options.port}`);
      }
      expect(have).toHaveLength(1);
      holders.push(have[0]!);
    }
    expect(new Set(holders).size).toBe(3);
    expect(holders.map(Number)).toEqual(cluster.ports);
    expect((await store.catalogue()).map((s) => [s.id, s.available, s.initial])).toEqual(
      [...skus].sort().map((id) => [id, STOCK, STOCK]),
    );
  });

  it('runs concurrent reserves against limited stock: exactly `stock` succeed, none oversold', async () => {
    const SHOPPERS = 60;
    const now = Date.now();
    const results = await Promise.all(
      skus.flatMap((sku) =>
        Array.from({ length: SHOPPERS }, (_, u) =>
          store
            .reserve({
              sku,
              user: `u${u}`,
              qty: 1,
              now,
              deadline: now + 60_000,
              payload: { sku, u },
              channel: 'card',
              idemTtlMs: 60_000,
            })
            .then((r) => ({ sku, ...r })),
        ),
      ),
    );
    for (const sku of skus) {
      const mine = results.filter((r) => r.sku === sku);
      expect(mine.filter((r) => r.status === 'ok')).toHaveLength(STOCK);
      expect(mine.filter((r) => r.status === 'sold_out')).toHaveLength(SHOPPERS - STOCK);
      for (const r of mine.filter((x) => x.status === 'ok')) expect(r.amount).toBe(PRICE);
      const s = await store.snapshot(sku);
      expect(s).toEqual({ sku, initial: STOCK, available: 0, reserved: STOCK, sold: 0 });
      i1(s);
    }
    // A sold-out SKU refuses; an unknown one says so.
    const extra = await store.reserve({
      sku: skus[0]!,
      user: 'late',
      qty: 1,
      now,
      deadline: now + 60_000,
      payload: {},
      channel: 'card',
      idemTtlMs: 60_000,
    });
    expect(extra.status).toBe('sold_out');
    const unknown = await store.reserve({
      sku: 'nope',
      user: 'u',
      qty: 1,
      now,
      deadline: now + 1,
      payload: {},
      channel: 'card',
      idemTtlMs: 1,
    });
    expect(unknown.status).toBe('unknown_sku');
  });

  it('pays, confirms, releases and transitions orders on every master', async () => {
    const now = Date.now();
    for (const sku of skus) {
      const orders = (await store.allOrders(sku)).sort((a, b) => a.id.localeCompare(b.id));
      expect(orders).toHaveLength(STOCK);
      const [paid, failed, cancelled, retried] = orders;

      // pending_payment -> paying -> paid; a replayed capture is a duplicate, another is counted.
      const start = await store.startPayment(paid!.id, 'card', now, false);
      expect(start.status).toBe('ok');
      if (start.status === 'not_found') throw new Error('unreachable');
      expect(start.order.state).toBe('paying');
      expect(start.order.attempts).toBe(1);
      expect((await store.startPayment(paid!.id, 'card', now, false)).status).toBe('in_progress');
      expect(await store.confirm(paid!.id, 'pay_1', PRICE, now, true, 'card')).toMatchObject({
        status: 'paid',
        state: 'paid',
      });
      expect((await store.confirm(paid!.id, 'pay_1', PRICE, now, true, 'card')).status).toBe(
        'duplicate',
      );
      expect((await store.confirm(paid!.id, 'pay_2', PRICE, now, true, 'card')).status).toBe(
        'double_capture',
      );
      expect((await store.confirm(paid!.id, 'pay_1', PRICE + 1, now, true, 'card')).status).toBe(
        'amount_mismatch',
      );
      expect(await store.counters(sku)).toEqual({ double_capture: 1, amount_mismatch: 1 });
      expect((await store.get(paid!.id))!.state).toBe('paid');

      // paying -> payment_failed gives the stock back.
      expect((await store.startPayment(failed!.id, '', now, false)).status).toBe('ok');
      expect(
        await store.release(failed!.id, 'payment_failed', 'card_declined', now, ['paying']),
      ).toMatchObject({ status: 'released', state: 'payment_failed' });
      expect((await store.release(failed!.id, 'expired', 'x', now)).status).toBe('wrong_state');

      // pending_payment -> cancelled; a late capture for it is flagged, re-reserved while stock remains.
      expect((await store.release(cancelled!.id, 'cancelled', 'by_shopper', now)).status).toBe(
        'released',
      );
      expect(
        await store.confirm(cancelled!.id, 'pay_late', PRICE, now, true, 'card'),
      ).toMatchObject({
        status: 'late_rereserved',
        state: 'paid',
      });

      // paying -> pending_payment (naive failure) with transition; a wrong from-state is refused.
      expect((await store.startPayment(retried!.id, '', now, false)).status).toBe('ok');
      expect(
        await store.transition(retried!.id, 'pending_payment', 'bank_503', now, ['paying']),
      ).toMatchObject({ status: 'ok', state: 'pending_payment' });
      expect((await store.transition(retried!.id, 'refunded', 'x', now, ['paid'])).status).toBe(
        'wrong_state',
      );
      expect((await store.get(retried!.id))!.reason).toBe('bank_503');

      const s = await store.snapshot(sku);
      // 20 reserved; 2 sold (paid + late re-reserve), 1 back to available... then re-reserved by the late capture.
      expect(s).toEqual({ sku, initial: STOCK, available: 1, reserved: STOCK - 3, sold: 2 });
      i1(s);
      expect(await store.counters(sku)).toEqual({
        double_capture: 1,
        amount_mismatch: 1,
        late_rereserved: 1,
      });
    }
  });

  it('finds due orders and orders stuck in paying per SKU', async () => {
    const now = Date.now();
    const sku = skus[1]!;
    // A fresh stock of one for this check, with a past deadline.
    await redis.hincrby(store.keys(sku).stock, 'available', 1);
    await redis.hincrby(store.keys(sku).stock, 'initial', 1);
    const r = await store.reserve({
      sku,
      user: 'due-user',
      qty: 1,
      now: now - 20_000,
      deadline: now - 10_000,
      payload: {},
      channel: 'card',
      idemTtlMs: 1_000,
    });
    expect(r.status).toBe('ok');
    expect(await store.dueOrders(sku, now)).toEqual([r.orderId]);
    expect(await store.dueOrders(skus[0]!, now)).toEqual([]);

    expect((await store.startPayment(r.orderId, '', now - 9_000, false)).status).toBe('ok');
    const stale = await store.stalePaying(sku, now - 5_000);
    expect(stale).toEqual([r.orderId]);
    expect(await store.stalePaying(sku, now - 9_500)).toEqual([]);

    expect((await store.release(r.orderId, 'expired', 'payment_deadline_passed', now)).status).toBe(
      'released',
    );
    expect(await store.dueOrders(sku, now)).toEqual([]);
    expect(await store.stalePaying(sku, now)).toEqual([]);
    i1(await store.snapshot(sku));
  });
});

describe('checkout service on a Redis Cluster', () => {
  let mocks: RunningService[] = [];
  let co: RunningCheckout | undefined;

  afterAll(async () => {
    await co?.close();
    await Promise.all(mocks.map((m) => m.close()));
  });

  it('creates an order, pays it by card and ends paid', async () => {
    mocks = await startMocks({ target: 'all', seed: 7 });
    const urls = Object.fromEntries(mocks.map((m) => [m.name, m.url])) as Record<
      'bank' | 'wallet' | 'coupon',
      string
    >;
    co = await startCheckout({
      redisUrl: cluster.urls[1]!,
      cluster: true,
      ...urls,
      mode: 'hardened',
      set: ['keyPrefix=fce2e'],
    });
    const sale = await call(co.url, 'POST', '/admin/sale', {
      skus: skus.map((id) => ({ id, price: 1_999, stock: 5, limit: 1 })),
    });
    expect(sale.status).toBe(201);

    for (const sku of skus) {
      const created = await call(co.url, 'POST', '/v1/orders', { user: 'alice', sku });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        sku,
        user: 'alice',
        state: 'pending_payment',
        amount: 1_999,
      });
      const id = created.body.id as string;

      const paid = await call(co.url, 'POST', `/v1/orders/${id}/pay`, {});
      expect(paid.status).toBe(200);
      expect(paid.body).toMatchObject({ id, state: 'paid', channel: 'card' });
      expect(paid.body.paymentRef).toMatch(/^pay_/);

      const got = await call(co.url, 'GET', `/v1/orders/${id}`);
      expect(got.body.state).toBe('paid');
      const again = await call(co.url, 'POST', '/v1/orders', { user: 'alice', sku });
      expect(again.status).toBe(409);
      expect(again.body.reason).toBe('purchase_limit_exceeded');
    }
    const stock = await call(co.url, 'GET', '/admin/stock');
    expect(stock.status).toBe(200);
    for (const s of stock.body.data as StockSnapshot[]) {
      expect(s).toMatchObject({ initial: 5, available: 4, reserved: 0, sold: 1 });
      i1(s);
    }
    // The earlier sale under the other prefix is untouched.
    expect((await store.snapshot(skus[0]!)).initial).toBe(STOCK);
  });
});

describe('startRedisCluster', () => {
  it('fails with what to install when redis-server or redis-cli is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(startRedisCluster()).rejects.toThrow(
        /(redis-server|redis-cli) not found in .tools\/bin or on PATH.*apt-get install redis-server/,
      );
    } finally {
      process.env.PATH = path;
    }
  });
});
