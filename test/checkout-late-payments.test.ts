// A payment that lands after its order ended (I9) is re-reserved only when
// stock remains and the shopper's purchase limit allows it (I4): a shopper
// who bought the unit again with a new order meanwhile gets the late payment
// refunded, not a second unit. The confirm script on a real Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, Store, type RedisClient } from '../checkout/store.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';

let redisHandle: RedisHandle;
let redis: RedisClient;
let store: Store;
const PRICE = 9_900;

beforeAll(async () => {
  redisHandle = await startRedis();
  redis = connectRedis(redisHandle.url);
  store = new Store(redis, `late${process.pid}`);
}, 30_000);

afterAll(async () => {
  await store?.clear();
  redis?.disconnect();
  await redisHandle?.close();
});

async function reserve(sku: string, user: string, now: number) {
  const r = await store.reserve({
    sku,
    user,
    qty: 1,
    now,
    deadline: now + 60_000,
    payload: { user, sku },
    channel: 'card',
    idemTtlMs: 60_000,
  });
  expect(r.status).toBe('ok');
  return r.orderId;
}

describe('late payments against the per-user limit', () => {
  it('re-reserves a late payment when the shopper has not bought again', async () => {
    const now = Date.now();
    await store.seedSale([{ id: 'solo', name: 'solo', price: PRICE, stock: 5, limit: 1 }]);
    const a = await reserve('solo', 'u1', now);
    expect((await store.release(a, 'expired', 'payment_deadline_passed', now)).status).toBe(
      'released',
    );
    expect(await store.confirm(a, 'pay_late', PRICE, now, true, 'card')).toMatchObject({
      status: 'late_rereserved',
      state: 'paid',
    });
    expect(await store.snapshot('solo')).toMatchObject({ available: 4, reserved: 0, sold: 1 });
  });

  it('refunds a late payment when the shopper already bought the unit with another order', async () => {
    const now = Date.now();
    await store.seedSale([{ id: 'again', name: 'again', price: PRICE, stock: 5, limit: 1 }]);
    const first = await reserve('again', 'u2', now);
    expect((await store.release(first, 'payment_failed', 'payment_not_received', now)).status).toBe(
      'released',
    );
    // The shopper orders again and pays; then the first payment lands.
    const second = await reserve('again', 'u2', now);
    expect((await store.confirm(second, 'pay_2', PRICE, now, true, 'card')).status).toBe('paid');
    const late = await store.confirm(first, 'pay_1', PRICE, now, true, 'card');
    expect(late.status).toBe('late_refund');
    expect((await store.get(first))!.state).toBe('payment_failed');
    // One unit sold to u2, I1 holds, and the counters say what happened.
    expect(await store.snapshot('again')).toEqual({
      sku: 'again',
      initial: 5,
      available: 4,
      reserved: 0,
      sold: 1,
    });
    expect(await store.counters('again')).toMatchObject({ late_refund: 1 });
  });
});
