// The hardened reconciler's watch on ended orders whose payment may still land
// (I9): it backs off while the gateways know of no payment, so an order
// watched for a whole payment window is asked about a dozen times, not once
// every staleAfterMs; it still checks on the horizon and then lets go, and a
// payment that lands meanwhile is found at the next check. Time is simulated:
// the test jumps the reconciler to each due time (no wall-clock waits), against
// a real Redis and the real mocks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCheckout, type RunningCheckout } from '../checkout/service.ts';
import { connectRedis, Store, type RedisClient } from '../checkout/store.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { call } from './support/http.ts';
import { startAllMocks, type Mocks } from './support/checkout.ts';

const PRICE = 9_900;
let redis: RedisHandle;
let mocks: Mocks;
let co: RunningCheckout;
let client: RedisClient;
let store: Store;

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(5);
  // No background loops: the test drives reconcileStale itself, at simulated times.
  co = await startCheckout({
    redisUrl: redis.url,
    ...mocks.urls,
    mode: 'hardened',
    set: ['keyPrefix=recon'],
    background: false,
  });
  client = connectRedis(redis.url);
  store = new Store(client, 'recon');
}, 30_000);

afterAll(async () => {
  await co?.close();
  client?.disconnect();
  await mocks?.close();
  await redis?.close();
});

/** An order released at `endedAt` and watched as the checkout watches one (horizon: the payment window). */
async function watchedOrder(user: string, endedAt: number) {
  const r = await store.reserve({
    sku: 'lip',
    user,
    qty: 1,
    now: endedAt - 1_000,
    deadline: endedAt,
    payload: { user },
    channel: 'card',
    idemTtlMs: 60_000,
  });
  expect(r.status).toBe('ok');
  expect(
    (await store.release(r.orderId, 'expired', 'payment_deadline_passed', endedAt)).status,
  ).toBe('released');
  const p = co.config.params;
  const horizon = Math.max(p.paymentTtlMs, p.requestBudgetMs);
  await store.watchLate(r.orderId, endedAt + horizon, endedAt + p.staleAfterMs);
  return { id: r.orderId, until: endedAt + horizon };
}

const dueAt = async (id: string) => {
  const s = await client.zscore(store.keys('lip').watch, id);
  return s === null ? undefined : Number(s);
};

describe('the reconciler watching ended orders', () => {
  it('backs off while nothing landed: about log2(horizon / staleAfterMs) + 2 checks, the last on the horizon, then lets go', async () => {
    await store.seedSale([{ id: 'lip', name: 'lip', price: PRICE, stock: 5, limit: 1 }]);
    const t0 = Date.now();
    const { id, until } = await watchedOrder('alice', t0);
    const { staleAfterMs } = co.config.params;
    const checks: number[] = [];
    for (let t = await dueAt(id); t !== undefined; t = await dueAt(id)) {
      expect(checks.length, 'the watch never ends').toBeLessThan(100);
      await co.checkout.reconcileStale(t);
      checks.push(t - t0);
    }
    // Once every staleAfterMs would be (horizon / staleAfterMs) checks: 180 with the defaults.
    const once = (until - t0) / staleAfterMs;
    expect(once).toBeGreaterThanOrEqual(100);
    expect(checks.length).toBeLessThanOrEqual(Math.ceil(Math.log2(once)) + 2);
    expect(checks[0]).toBe(staleAfterMs);
    expect(checks.at(-1)).toBe(until - t0);
    // Each wait is as long as the order had been ended (doubling), but the last.
    for (let i = 1; i < checks.length - 1; i++) expect(checks[i]).toBe(2 * checks[i - 1]!);
    expect(await store.get(id)).toMatchObject({ state: 'expired' });
  });

  it('finds a payment that lands while it backs off at the next check, and re-reserves it', async () => {
    await store.seedSale([{ id: 'lip', name: 'lip', price: PRICE, stock: 5, limit: 1 }]);
    const t0 = Date.now();
    const { id } = await watchedOrder('bob', t0);
    // Three checks with nothing there, then the bank takes the money.
    for (let i = 0; i < 3; i++) await co.checkout.reconcileStale((await dueAt(id))!);
    const paid = await call(mocks.urls.bank, 'POST', '/v1/payments', {
      orderId: id,
      amount: PRICE,
      currency: 'CNY',
      card: { number: '4242424242424242' },
    });
    expect(paid.status, paid.text).toBe(200);
    await co.checkout.reconcileStale((await dueAt(id))!);
    expect(await store.get(id)).toMatchObject({ state: 'paid', paymentRef: paid.body.id });
    expect((await store.counters('lip')).late_rereserved).toBe(1);
    // Still watched (another capture would be refunded) until the horizon, then let go.
    let checks = 0;
    for (let t = await dueAt(id); t !== undefined; t = await dueAt(id)) {
      expect(++checks, 'the watch never ends').toBeLessThan(100);
      await co.checkout.reconcileStale(t);
    }
    expect(await store.get(id)).toMatchObject({ state: 'paid', paymentRef: paid.body.id });
    expect((await store.snapshot('lip')).sold).toBe(1);
  });
});
