// The checkout's orders over real HTTP, real Redis and the real mocks: a crowd
// of 2,000 concurrent orders against 100 units (exactly 100 reserved then
// sold, I1 and I2 at every snapshot taken while orders are in flight), the
// per-user limit under concurrent duplicate clicks (I4), idempotent order
// creation (I10) and idempotent payment (one capture per order, I5), and the
// naive build's double charge on re-clicked pay (seed 003), which the audit
// must catch.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { snapshotI1 } from '../harness/audit.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { call } from './support/http.ts';
import {
  createOrder,
  expectAuditOk,
  issueCoupon,
  ledgerOf,
  payOrder,
  pollSnapshots,
  seedSale,
  startAllMocks,
  sleep,
  startStack,
  STEADY,
  type Mocks,
  type Stack,
} from './support/checkout.ts';

const PREFIX = 'tco-orders';
let redis: RedisHandle;
let mocks: Mocks;
let hardened: Stack;
let naive: Stack;

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(11);
  hardened = await startStack({
    redisUrl: redis.url,
    mocks,
    mode: 'hardened',
    prefix: `${PREFIX}-h`,
    // Orders must outlive a slow run on a shared machine: 120 s to pay.
    set: [...STEADY, 'timeScale=0.01', 'paymentTtlMs=12000000'],
  });
  naive = await startStack({
    redisUrl: redis.url,
    mocks,
    mode: 'naive',
    prefix: `${PREFIX}-n`,
    set: ['timeScale=0.01', 'paymentTtlMs=12000000'],
  });
});
afterAll(async () => {
  await hardened?.close();
  await naive?.close();
  await mocks?.close();
  await redis?.close();
});
beforeEach(async () => {
  await mocks.reset();
});

describe('a crowd against limited stock', () => {
  it('takes 2,000 concurrent orders for 100 units: exactly 100 reserved then sold, I1 at every snapshot', async () => {
    const SHOPPERS = 2_000;
    const STOCK = 100;
    const s = hardened;
    await seedSale(s.url, [{ id: 'lip', price: 9_900, stock: STOCK, limit: 1 }]);

    // Snapshots, taken back to back on the audit's own connection while orders are in flight.
    const poller = pollSnapshots(s.store, ['lip']);
    const snaps = poller.snaps;

    // Each shopper sends an Idempotency-Key and tries again if the connection is
    // reset (2,000 connections at once can overflow the listen backlog): a retry
    // replays the shopper's order, never makes a second one.
    const order = async (i: number) => {
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await createOrder(
            s.url,
            { user: `shopper-${i}`, sku: 'lip' },
            { 'idempotency-key': `crowd-${i}` },
          );
          // The first try is still running (its answer was lost): ask again.
          if (r.body.reason !== 'idempotency_key_in_use' || attempt >= 5) return r;
        } catch (e) {
          if (attempt >= 5) throw e;
        }
        await sleep(50 * attempt);
      }
    };
    const created = await Promise.all(Array.from({ length: SHOPPERS }, (_, i) => order(i)));
    const ok = created.filter(
      (r) => r.status === 201 || (r.status === 200 && r.headers.get('idempotent-replayed')),
    );
    const reserved = await snapshotI1(s.store, ['lip']);
    const snapsWhileOrdering = snaps.length;
    expect(ok).toHaveLength(STOCK);
    expect(new Set(ok.map((r) => r.body.id)).size).toBe(STOCK);
    for (const r of created.filter((x) => !ok.includes(x))) {
      expect(r.status, r.text).toBe(409);
      expect(r.body.reason).toBe('sold_out');
    }
    expect(reserved.skus[0]).toMatchObject({
      initial: STOCK,
      available: 0,
      reserved: STOCK,
      sold: 0,
    });

    // Pay all of them at once; snapshots go on.
    const paid = await Promise.all(ok.map((r) => payOrder(s.url, r.body.id)));
    await poller.stop();
    for (const p of paid) expect(p.status, p.text).toBe(200);
    for (const p of paid) expect(p.body.state).toBe('paid');

    expect(snapsWhileOrdering).toBeGreaterThan(0);
    expect(snaps.length).toBeGreaterThan(snapsWhileOrdering);
    const broken = snaps.filter((x) => !x.ok);
    expect(broken.map((x) => [...x.i1, ...x.i2])).toEqual([]);
    const final = await snapshotI1(s.store, ['lip']);
    expect(final.skus[0]).toMatchObject({ initial: STOCK, available: 0, reserved: 0, sold: STOCK });

    const bank = (await call(mocks.urls.bank, 'GET', '/v1/statement')).body;
    expect(bank.totals).toMatchObject({ captures: STOCK, refunds: 0, net: STOCK * 9_900 });
    const report = await s.audit();
    expectAuditOk(report);
    expect(report.totals).toMatchObject({ paidOrders: STOCK, captures: STOCK, orders: STOCK });
  });
});

describe('the per-user limit', () => {
  it('gives one order to 20 concurrent clicks of one shopper on a limit-1 SKU', async () => {
    const s = hardened;
    await seedSale(s.url, [{ id: 'mask', stock: 50, limit: 1 }]);
    const clicks = await Promise.all(
      Array.from({ length: 20 }, () => createOrder(s.url, { user: 'alice', sku: 'mask' })),
    );
    const ok = clicks.filter((r) => r.status === 201);
    expect(ok).toHaveLength(1);
    for (const r of clicks.filter((x) => x.status !== 201)) {
      expect(r.status).toBe(409);
      expect(r.body.reason).toBe('purchase_limit_exceeded');
    }
    expect((await s.store.snapshot('mask')).reserved).toBe(1);

    // Another shopper is not limited by alice's order.
    expect((await createOrder(s.url, { user: 'bob', sku: 'mask' })).status).toBe(201);

    // A cancelled order gives the allowance back; a paid one keeps it.
    const id = ok[0]!.body.id as string;
    expect((await call(s.url, 'POST', `/v1/orders/${id}/cancel`)).status).toBe(200);
    const again = await createOrder(s.url, { user: 'alice', sku: 'mask' });
    expect(again.status).toBe(201);
    expect((await payOrder(s.url, again.body.id)).status).toBe(200);
    const third = await createOrder(s.url, { user: 'alice', sku: 'mask' });
    expect(third.status).toBe(409);
    expect(third.body.reason).toBe('purchase_limit_exceeded');
    expect(await s.store.snapshot('mask')).toMatchObject({ available: 48, reserved: 1, sold: 1 });
  });

  it('counts quantity against the limit', async () => {
    const s = naive;
    await seedSale(s.url, [{ id: 'pack', stock: 50, limit: 3 }]);
    expect((await createOrder(s.url, { user: 'carol', sku: 'pack', quantity: 2 })).status).toBe(
      201,
    );
    const over = await createOrder(s.url, { user: 'carol', sku: 'pack', quantity: 2 });
    expect(over.status).toBe(409);
    expect(over.body.reason).toBe('purchase_limit_exceeded');
    expect((await createOrder(s.url, { user: 'carol', sku: 'pack', quantity: 1 })).status).toBe(
      201,
    );
    expect(await s.store.snapshot('pack')).toMatchObject({ available: 47, reserved: 3 });
  });
});

describe('idempotent order creation (I10)', () => {
  it('replays the same order for the same key, 422 for another body, and reserves once', async () => {
    const s = hardened;
    await seedSale(s.url, [
      { id: 'lip', stock: 10, limit: 1 },
      { id: 'mask', stock: 10, limit: 1 },
    ]);
    const body = { user: 'alice', sku: 'lip' };
    const key = { 'idempotency-key': 'order-alice-1' };
    const first = await createOrder(s.url, body, key);
    expect(first.status).toBe(201);
    const again = await createOrder(s.url, body, key);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.state).toBe('pending_payment');

    // Ten more at once, same key and body: the same order, nothing more reserved.
    const burst = await Promise.all(
      Array.from({ length: 10 }, () => createOrder(s.url, body, key)),
    );
    for (const r of burst) {
      expect(r.status, r.text).toBe(200);
      expect(r.body.id).toBe(first.body.id);
    }

    // Another body under the key: 422, nothing reserved, whatever differs.
    for (const other of [
      { ...body, quantity: 1, channel: 'alipay' },
      { user: 'alice', sku: 'lip', quantity: 2 },
      { user: 'bob', sku: 'lip' },
      { user: 'alice', sku: 'mask' },
    ]) {
      const r = await createOrder(s.url, other, key);
      expect(r.status, `${JSON.stringify(other)}: ${r.text}`).toBe(422);
      expect(r.body.reason).toBe('idempotency_key_reused');
    }
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 9, reserved: 1 });
    expect(await s.store.snapshot('mask')).toMatchObject({ available: 10, reserved: 0 });

    // After payment the key still replays the same (now paid) order.
    expect((await payOrder(s.url, first.body.id)).status).toBe(200);
    const later = await createOrder(s.url, body, key);
    expect(later.status).toBe(200);
    expect(later.body).toMatchObject({ id: first.body.id, state: 'paid' });
  });

  it('a refused key keeps its refusal: sold out under a key stays sold out under it after stock comes back; a new key orders', async () => {
    const s = hardened;
    await seedSale(s.url, [{ id: 'lip', stock: 1, limit: 1 }]);
    const holder = await createOrder(
      s.url,
      { user: 'bob', sku: 'lip' },
      { 'idempotency-key': 'b1' },
    );
    expect(holder.status).toBe(201);
    const body = { user: 'alice', sku: 'lip' };
    const key = { 'idempotency-key': 'order-alice-refused' };
    const refused = await createOrder(s.url, body, key);
    expect([refused.status, refused.body.reason]).toEqual([409, 'sold_out']);
    // Bob's order ends and gives its unit back: the sale has stock again.
    expect((await call(s.url, 'POST', `/v1/orders/${holder.body.id}/cancel`)).status).toBe(200);
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 1, reserved: 0 });
    const again = await createOrder(s.url, body, key);
    expect([again.status, again.body.reason]).toEqual([409, 'sold_out']);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await createOrder(s.url, { ...body, quantity: 2 }, key)).status).toBe(422);
    const fresh = await createOrder(s.url, body, { 'idempotency-key': 'order-alice-2' });
    expect(fresh.status, fresh.text).toBe(201);
  });

  it('replays an order made with a coupon without locking the coupon again', async () => {
    const s = hardened;
    await seedSale(s.url, [{ id: 'lip', price: 9_900, stock: 10, limit: 1 }], {
      campaignId: 'idem-camp',
      budget: 10,
      discount: 500,
    });
    const code = await issueCoupon(mocks.urls.coupon, 'idem-camp', 'alice');
    const body = { user: 'alice', sku: 'lip', coupon: code };
    const key = { 'idempotency-key': 'order-alice-coupon' };
    // Five at once: one makes the order; the others replay it, or are told it is still running.
    const burst = await Promise.all(Array.from({ length: 5 }, () => createOrder(s.url, body, key)));
    const made = burst.filter((r) => r.status === 201);
    expect(made).toHaveLength(1);
    const first = made[0]!;
    for (const r of burst.filter((x) => x.status !== 201)) {
      expect([200, 409], r.text).toContain(r.status);
      if (r.status === 200) expect(r.body.id).toBe(first.body.id);
      else expect(r.body.reason).toBe('idempotency_key_in_use');
    }
    const retried = await createOrder(s.url, body, key);
    expect(retried.status).toBe(200);
    expect(retried.body.id).toBe(first.body.id);
    expect(first.body.amount).toBe(9_400);
    const coupon = (await call(mocks.urls.coupon, 'GET', `/v1/coupons/${code}`)).body;
    expect(coupon).toMatchObject({ state: 'LOCKED', orderId: first.body.id });
    expect(coupon.history.map((h: { type: string }) => h.type)).toEqual(['issued', 'locked']);
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 9, reserved: 1 });

    // Another body under the key leaves the coupon with the first order.
    const other = await createOrder(s.url, { ...body, quantity: 1, channel: 'wechat' }, key);
    expect(other.status).toBe(422);
    expect((await call(mocks.urls.coupon, 'GET', `/v1/coupons/${code}`)).body).toMatchObject({
      state: 'LOCKED',
      orderId: first.body.id,
    });
    expect((await payOrder(s.url, first.body.id)).status).toBe(200);
    expectAuditOk(await s.audit());
  });
});

describe('idempotent payment', () => {
  it('hardened: 20 concurrent pay clicks and re-clicks after payment make one capture', async () => {
    const s = hardened;
    await seedSale(s.url, [{ id: 'lip', stock: 5, limit: 1 }]);
    const o = await createOrder(s.url, { user: 'dave', sku: 'lip' });
    const clicks = await Promise.all(Array.from({ length: 20 }, () => payOrder(s.url, o.body.id)));
    for (const r of clicks) {
      expect([200, 202], r.text).toContain(r.status);
      expect(['paid', 'paying']).toContain(r.body.state);
    }
    expect(clicks.filter((r) => r.status === 200).length).toBeGreaterThan(0);
    const after = await payOrder(s.url, o.body.id);
    expect(after.status).toBe(200);
    expect(after.body.state).toBe('paid');
    const { captures, refunds } = await ledgerOf(mocks, o.body.id);
    expect(captures).toHaveLength(1);
    expect(refunds).toHaveLength(0);
    expect(after.body.paymentRef).toBe(captures[0]!.paymentId);
    expect(await s.store.snapshot('lip')).toMatchObject({ sold: 1, reserved: 0, available: 4 });
    expectAuditOk(await s.audit());
  });

  it('naive: re-clicked pay charges twice, and the audit names the order (I5, I6, I7, I11)', async () => {
    const s = naive;
    await seedSale(s.url, [{ id: 'lip', stock: 5, limit: 1 }]);
    const o = await createOrder(s.url, { user: 'erin', sku: 'lip' });
    const clicks = await Promise.all(Array.from({ length: 5 }, () => payOrder(s.url, o.body.id)));
    for (const r of clicks) expect(r.status, r.text).toBe(200);
    const { captures } = await ledgerOf(mocks, o.body.id);
    expect(captures.length).toBeGreaterThan(1);
    expect((await s.store.counters('lip')).double_capture).toBe(captures.length - 1);

    const r = await s.audit();
    expect(r.violated).toEqual(['I5', 'I6', 'I7', 'I11']);
    expect(r.totals.doubleCharges).toBe(1);
    expect(r.totals.capturesWithoutPaidOrder).toBe(captures.length - 1);
    for (const id of ['I5', 'I6', 'I7', 'I11'] as const)
      expect(r.byId[id].examples).toEqual([o.body.id]);
    expect(r.byId.I6.count).toBe(captures.length - 1);
    // The stock is right even so: one unit sold.
    expect(r.byId.I1.ok).toBe(true);
    expect(await s.store.snapshot('lip')).toMatchObject({ sold: 1, reserved: 0 });
  });
});
