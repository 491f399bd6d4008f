// The payment-result stream across instances: a consumer that read wallet
// notifications and died before acknowledging them leaves them pending in the
// group; a surviving checkout claims them (XAUTOCLAIM, 5 s idle) and the
// orders end paid, nothing left pending (leaks.stream_pending 0). With
// claiming disabled in a copy of the checkout (a planted fault), the entries
// stay pending and the audit's leak check fails. Real Redis, real mocks,
// checkouts over HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCheckout, type RunningCheckout } from '../checkout/service.ts';
import { connectRedis, PAYMENT_GROUP, Store, type RedisClient } from '../checkout/store.ts';
import { audit } from '../harness/audit.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { streamBudget } from '../harness/run/quiesce.ts';
import { call } from './support/http.ts';
import { copyCheckout, type Copy } from './support/mutant.ts';
import {
  createOrder,
  payOrder,
  seedSale,
  startAllMocks,
  STEADY,
  waitFor,
  type Mocks,
} from './support/checkout.ts';

const NO_CLAIM = {
  name: 'the consumer never claims a dead consumer’s entries',
  file: 'checkout/checkout.ts',
  find: '      CLAIM_MIN_IDLE_MS,',
  replace: '      CLAIM_MIN_IDLE_MS * 1_000_000,',
};

// The reconciler and the sweeper never reach these orders during the test: only the stream pays them.
const SET = [...STEADY, 'timeScale=0.01', 'paymentTtlMs=86400000', 'staleAfterMs=86400000'];

let redis: RedisHandle;
let mocks: Mocks;
let client: RedisClient;
let copy: Copy;
const running: RunningCheckout[] = [];

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(17);
  client = connectRedis(redis.url);
  copy = copyCheckout(NO_CLAIM);
}, 60_000);
afterAll(async () => {
  for (const c of running) await c.close();
  client?.disconnect();
  await mocks?.close();
  await redis?.close();
  copy?.remove();
});

async function paidByNotify(url: string): Promise<number> {
  const text = (await call(url, 'GET', '/metrics')).text;
  const m = /^flashcrowd_checkout_order_events_total\{event="paid_by_notify"[^}]*\} (\S+)$/m.exec(
    text,
  );
  return m ? Number(m[1]) : 0;
}

/**
 * Two orders paid through the wallet whose notifications reach a checkout
 * that runs no consumer; a consumer `dead` reads them and never acknowledges.
 * Then `survivor` starts, with its consumer.
 */
async function deadConsumer(
  prefix: string,
  survivor: typeof startCheckout,
): Promise<{ store: Store; ids: string[]; co: RunningCheckout }> {
  await mocks.reset();
  const receiver = await startCheckout({
    redisUrl: redis.url,
    ...mocks.urls,
    mode: 'hardened',
    set: [`keyPrefix=${prefix}`, ...SET],
    background: false,
  });
  running.push(receiver);
  const store = new Store(client, prefix);
  await seedSale(receiver.url, [{ id: 'lip', stock: 5 }]);
  // The buyer pays in the app 2 s later; the shopper's request gives up at 500 ms (room for a busy machine).
  const r = await call(mocks.urls.wallet, 'PUT', '/__chaos', {
    extra: { payDelayMs: { dist: 'fixed', ms: 2_000 }, notify: { timeScale: 0.00001 } },
  });
  expect(r.status, r.text).toBe(200);
  const ids: string[] = [];
  for (const user of ['alice', 'bob']) {
    const o = await createOrder(receiver.url, { user, sku: 'lip', channel: 'alipay' });
    const p = await payOrder(receiver.url, o.body.id, {}, { 'x-request-deadline-ms': '500' });
    expect(p.status, p.text).toBe(202);
    ids.push(o.body.id);
  }
  await waitFor('both notifications in the stream', async () => {
    return (await client.xlen(store.paymentStreamKey)) === 2;
  });
  await client
    .xgroup('CREATE', store.paymentStreamKey, PAYMENT_GROUP, '0', 'MKSTREAM')
    .catch(() => undefined);
  const read = (await client.xreadgroup(
    'GROUP',
    PAYMENT_GROUP,
    'dead',
    'COUNT',
    10,
    'STREAMS',
    store.paymentStreamKey,
    '>',
  )) as [string, unknown[]][];
  expect(read[0]![1]).toHaveLength(2);
  expect(await store.streamPending()).toBe(2);
  const co = await survivor({
    redisUrl: redis.url,
    ...mocks.urls,
    mode: 'hardened',
    set: [`keyPrefix=${prefix}`, ...SET],
  });
  running.push(co);
  return { store, ids, co };
}

const auditOf = (store: Store) => audit({ store, ...mocks.urls });

describe('a consumer that read payment results and died', () => {
  it('leaves them to a survivor: claimed after 5 s idle, the orders end paid, nothing pending', async () => {
    const { store, ids, co } = await deadConsumer('claim-ok', startCheckout);
    for (const id of ids)
      await waitFor(
        `order ${id} paid`,
        async () => (await store.get(id))?.state === 'paid',
        30_000,
      );
    expect(await paidByNotify(co.url)).toBe(2);
    await waitFor('no pending entry', async () => (await store.streamPending()) === 0);
    const report = await auditOf(store);
    expect(report.violated).toEqual([]);
    expect(report.totals.streamPending).toBe(0);
    expect(streamBudget(report)).toMatchObject({ ok: true, value: 0 });
  });

  it('with claiming disabled (planted fault) stays pending: leaks.stream_pending fails the run', async () => {
    const { store, ids } = await deadConsumer('claim-off', (o) => copy.startCheckout(o));
    // Past the 5 s a survivor waits before claiming, and a margin.
    await new Promise((r) => setTimeout(r, 7_000));
    for (const id of ids) expect((await store.get(id))?.state).toBe('paying');
    const report = await auditOf(store);
    expect(report.totals.streamPending).toBe(2);
    expect(streamBudget(report)).toMatchObject({ ok: false, value: 2 });
  });
});
