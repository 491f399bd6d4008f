// A coupon lock that times out at the checkout may still take effect at the
// coupon service, for an order the checkout then refuses (503 coupon_timeout)
// and never creates. The hardened checkout gives such a coupon back, once the
// slow lock has landed (the sweeper retries the release it owes), so no coupon
// stays locked by an order that does not exist (I8). (The naive build sets no
// timeouts: it waits for the lock.) And a paid order's consume that gets no
// answer is owed the same way: the coupon ends USED by the paid order, not
// LOCKED by it until its lock lapses (found by bank-brownout's audit after a
// stall timed out the coupon calls).
// Real Redis, real mocks, real checkout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mode } from '../checkout/config.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import {
  createOrder,
  payOrder,
  issueCoupon,
  seedSale,
  startAllMocks,
  startStack,
  waitFor,
  type Mocks,
  type Stack,
} from './support/checkout.ts';
import { call } from './support/http.ts';

let redis: RedisHandle;
let mocks: Mocks;
const stacks: Partial<Record<Mode, Stack>> = {};
/** The coupon service takes this long to lock; the checkout gives up after 100 ms, in one attempt. */
const LOCK_MS = 600;

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(41);
  for (const mode of ['hardened'] as const)
    stacks[mode] = await startStack({
      redisUrl: redis.url,
      mocks,
      mode,
      prefix: `tco-couprel-${mode}`,
      // One attempt of at most 100 ms; the sweeper (which retries owed releases) every 50 ms.
      set: [
        'loadShedding=false',
        'maxAttempts=1',
        'timeoutMs=100',
        'minTimeoutMs=100',
        'timeScale=0.05',
      ],
    });
  expect(
    (
      await call(mocks.urls.coupon, 'PUT', '/__chaos', {
        operations: { 'coupons.lock': { latency: { dist: 'fixed', ms: LOCK_MS } } },
      })
    ).status,
  ).toBe(200);
}, 60_000);

afterAll(async () => {
  await Promise.all(Object.values(stacks).map((s) => s?.close()));
  await mocks?.close();
  await redis?.close();
});

const couponOf = async (code: string) =>
  (await call(mocks.urls.coupon, 'GET', `/v1/coupons/${code}`)).body;

/** Wait until the coupon reaches `state`; returns it. */
const couponInState = (code: string, state: string, what: string) =>
  waitFor(
    what,
    async () => {
      const v = await couponOf(code);
      return v.state === state ? v : undefined;
    },
    5_000,
  );

async function timedOutLock(s: Stack, campaignId: string) {
  await seedSale(s.url, [{ id: 'lip', price: 9_900, stock: 5, limit: 1 }], {
    campaignId,
    budget: 5,
    discount: 500,
  });
  const code = await issueCoupon(mocks.urls.coupon, campaignId, 'ann');
  const r = await createOrder(s.url, { user: 'ann', sku: 'lip', coupon: code });
  expect(r.status, r.text).toBe(503);
  expect(r.body.reason).toBe('coupon_timeout');
  // The slow lock lands after the checkout gave up.
  await waitFor(
    'the slow lock to land',
    async () =>
      ((await couponOf(code)).history as { type: string }[]).some((h) => h.type === 'locked'),
    5_000,
  );
  return code;
}

describe('coupon calls that got no answer (a lock, a consume)', () => {
  it('hardened: the coupon is given back after the slow lock lands; the order never existed', async () => {
    const code = await timedOutLock(stacks.hardened!, 'rel-hard');
    const c = await couponInState(code, 'ISSUED', 'the coupon to be released');
    expect(c.history.map((h: { type: string }) => h.type)).toEqual([
      'issued',
      'locked',
      'released',
    ]);
    const stock = (await call(stacks.hardened!.url, 'GET', '/admin/stock')).body.data[0];
    expect(stock).toMatchObject({ available: 5, reserved: 0, sold: 0 });
  });

  it('hardened: a consume that got no answer is owed and retried, so the paid order ends with its coupon USED', async () => {
    const s = stacks.hardened!;
    const chaos = async (profile: object) =>
      expect((await call(mocks.urls.coupon, 'PUT', '/__chaos', profile)).status).toBe(200);
    await chaos({
      operations: { 'coupons.consume': { errors: [{ rate: 1, kind: 'http', status: 503 }] } },
    });
    await seedSale(s.url, [{ id: 'lip', price: 9_900, stock: 5, limit: 1 }], {
      campaignId: 'consume-hard',
      budget: 5,
      discount: 500,
    });
    const code = await issueCoupon(mocks.urls.coupon, 'consume-hard', 'bob');
    const o = await createOrder(s.url, { user: 'bob', sku: 'lip', coupon: code, channel: 'card' });
    expect(o.status, o.text).toBe(201);
    const paid = await payOrder(s.url, o.body.id, { channel: 'card' });
    expect(paid.status, paid.text).toBe(200);
    expect(paid.body.state).toBe('paid');
    // The consume failed: the coupon is still locked by the paid order, and stays so while it fails.
    await waitFor('a failed consume', async () => {
      const m = (await call(mocks.urls.coupon, 'GET', '/metrics')).text;
      const faults =
        /flashcrowd_mock_faults_injected_total\{[^}]*operation="coupons\.consume"[^}]*\} [1-9]/;
      return faults.test(m) && (await couponOf(code)).state === 'LOCKED';
    });
    await chaos({});
    const c = await couponInState(code, 'USED', 'the owed consume to go through');
    expect(c.history.map((h: { type: string }) => h.type)).toEqual([
      'issued',
      'locked',
      'consumed',
    ]);
    expect(c.history.at(-1).orderId).toBe(o.body.id);
  });
});
