// The checkout when its Redis goes away: a real redis-server stopped under a
// running checkout and started again on the same port (empty: no
// persistence), and one paused (CLIENT PAUSE). While Redis is down or paused a
// shopper gets a 503 with a reason code (redis_unavailable, redis_timeout) and
// Retry-After, never a hang or a bare 500; once it is back the checkout
// serves again, and the payment-stream consumer goes on (a wallet
// notification pays an order after the restart) without "consumer stopped".
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startCheckout, type RunningCheckout } from '../checkout/service.ts';
import { connectRedis, Store } from '../checkout/store.ts';
import { freePort, startLocalRedis } from '../harness/redis.ts';
import { call, type JsonResponse } from './support/http.ts';
import {
  createOrder,
  payOrder,
  seedSale,
  startAllMocks,
  STEADY,
  waitFor,
  waitForState,
  type Mocks,
} from './support/checkout.ts';
import { findTool } from '../harness/tools.ts';

const REASONS = ['redis_unavailable', 'redis_timeout'];

let port: number;
let redis: Awaited<ReturnType<typeof startLocalRedis>> | undefined;
let mocks: Mocks;
let co: RunningCheckout;
const errors = vi.spyOn(console, 'error');

beforeAll(async () => {
  if (!findTool('redis-server'))
    throw new Error(
      'this test stops and restarts a redis-server of its own: install redis-server (node scripts/setup.mjs)',
    );
  port = await freePort();
  redis = await startLocalRedis({ port });
  mocks = await startAllMocks(23);
  co = await startCheckout({
    redisUrl: redis.url,
    ...mocks.urls,
    mode: 'hardened',
    set: [...STEADY, 'keyPrefix=restart', 'timeScale=0.01', 'paymentTtlMs=86400000'],
  });
}, 60_000);
afterAll(async () => {
  await co?.close();
  await mocks?.close();
  await redis?.close();
  errors.mockRestore();
});

function expectRedis503(r: JsonResponse, what: string) {
  expect(r.status, `${what}: ${r.text}`).toBe(503);
  expect(REASONS, `${what}: ${r.text}`).toContain(r.body.reason);
  expect(r.headers.get('retry-after'), what).toBe('1');
}

/** A wallet payment confirmed by its notification through the payment stream. */
async function paidThroughStream(user: string) {
  const w = await call(mocks.urls.wallet, 'PUT', '/__chaos', {
    extra: { payDelayMs: { dist: 'fixed', ms: 300 }, notify: { timeScale: 0.00001 } },
  });
  expect(w.status, w.text).toBe(200);
  const o = await createOrder(co.url, { user, sku: 'lip', channel: 'alipay' });
  expect(o.status, o.text).toBe(201);
  const p = await payOrder(co.url, o.body.id, {}, { 'x-request-deadline-ms': '100' });
  expect(p.status, p.text).toBe(202);
  await waitForState(co.url, o.body.id, ['paid']);
}

const consumerStopped = () =>
  errors.mock.calls.some((c) => String(c[0]).includes('payment stream consumer stopped'));

describe('Redis stopped and started again on the same port', () => {
  it('answers 503 with a reason while down, serves again after, and the consumer goes on', async () => {
    await seedSale(co.url, [{ id: 'lip', stock: 10 }]);
    expect((await createOrder(co.url, { user: 'before', sku: 'lip' })).status).toBe(201);
    await redis!.close();
    redis = undefined;
    for (let i = 0; i < 3; i++) {
      expectRedis503(await createOrder(co.url, { user: `down${i}`, sku: 'lip' }), 'an order');
      expectRedis503(await call(co.url, 'GET', '/v1/skus'), 'the product page');
    }
    expect((await call(co.url, 'GET', '/healthz')).status).toBe(503);
    redis = await startLocalRedis({ port });
    // Empty after the restart (no persistence): the sale is seeded again once the checkout is back.
    await waitFor(
      'the checkout to serve again',
      async () => (await call(co.url, 'GET', '/healthz')).status === 200,
    );
    await seedSale(co.url, [{ id: 'lip', stock: 10 }]);
    expect((await createOrder(co.url, { user: 'after', sku: 'lip' })).status).toBe(201);
    await paidThroughStream('notified');
    expect(consumerStopped()).toBe(false);
  });
});

describe('Redis paused (CLIENT PAUSE)', () => {
  it('answers 503 redis_timeout after redisTimeoutMs, then serves and consumes again', async () => {
    const admin = connectRedis(redis!.url);
    try {
      await seedSale(co.url, [{ id: 'lip', stock: 10 }]);
      await admin.call('CLIENT', 'PAUSE', '4000', 'ALL');
      const r = await createOrder(co.url, { user: 'paused', sku: 'lip' });
      expect(r.status, r.text).toBe(503);
      expect(r.body.reason).toBe('redis_timeout');
      await admin.call('CLIENT', 'UNPAUSE');
      await waitFor(
        'an order to go through again',
        async () => (await createOrder(co.url, { user: 'unpaused', sku: 'lip' })).status === 201,
      );
      await paidThroughStream('notified-after-pause');
      expect(consumerStopped()).toBe(false);
      const store = new Store(admin, 'restart');
      expect(await store.streamPending()).toBe(0);
    } finally {
      admin.disconnect();
    }
  });
});
