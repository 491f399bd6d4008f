// Load shedding by queue time (docs/CHECKOUT.md, `loadShedding`), over real
// HTTP, real Redis and the real mocks: a request whose X-Request-Start says it
// waited past shedMaxQueueMs before the checkout saw it is answered 503
// `overloaded` with Retry-After (new work at once, an order's own requests
// only past four times the limit), counted as shed; after a quarter second in
// which requests waited, new work is admitted only in part; the naive build
// never sheds. The stamps are written by the test, so no load is needed.
// Also the checkout's levels the cascade timeline reads: event-loop delay
// and bulkhead queues.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueTimeMs, requestStartMs } from '../checkout/service.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import {
  createOrder,
  seedSale,
  sleep,
  startAllMocks,
  startStack,
  type Mocks,
  type Stack,
} from './support/checkout.ts';
import { call } from './support/http.ts';

let redis: RedisHandle;
let mocks: Mocks;
let hardened: Stack;
let naive: Stack;

/** Incidental event-loop lag of a busy test machine must not shed: only queue time here. */
const QUEUE_ONLY = ['minTimeoutMs=1000', 'shedMaxLoopDelayMs=60000', 'shedMaxQueueMs=250'];

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(43);
  hardened = await startStack({
    redisUrl: redis.url,
    mocks,
    mode: 'hardened',
    prefix: 'tco-shed-h',
    set: QUEUE_ONLY,
  });
  naive = await startStack({
    redisUrl: redis.url,
    mocks,
    mode: 'naive',
    prefix: 'tco-shed-n',
    set: QUEUE_ONLY,
  });
  for (const s of [hardened, naive]) await seedSale(s.url, [{ id: 'sku1', stock: 100 }]);
});
afterAll(async () => {
  await hardened?.close();
  await naive?.close();
  await mocks?.close();
  await redis?.close();
});

const stamped = (agoMs: number) => ({ 'x-request-start': `t=${Date.now() - agoMs}` });
const metric = async (url: string, name: string) => {
  const text = (await call(url, 'GET', '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
};

describe('X-Request-Start', () => {
  it('reads milliseconds, seconds (nginx $msec) and microseconds, with or without t=', () => {
    expect(requestStartMs('t=1796354579654')).toBe(1796354579654);
    expect(requestStartMs('1796354579654')).toBe(1796354579654);
    expect(requestStartMs('t=1796354579.654')).toBeCloseTo(1796354579654, 0);
    expect(requestStartMs('t=1796354579654321')).toBeCloseTo(1796354579654.321, 3);
    expect(requestStartMs(undefined)).toBeUndefined();
    expect(requestStartMs('t=soon')).toBeUndefined();
    expect(requestStartMs('t=-5')).toBeUndefined();
  });

  it('gives the wait, and nothing for a stamp over a minute off either way (clock skew, not queueing)', () => {
    expect(queueTimeMs(1_000, 1_250)).toBe(250);
    expect(queueTimeMs(1_300, 1_250)).toBe(0); // a client clock slightly ahead
    expect(queueTimeMs(undefined, 1_250)).toBeUndefined();
    expect(queueTimeMs(0, 61_000)).toBeUndefined();
    expect(queueTimeMs(200_000, 100_000)).toBeUndefined();
  });
});

describe('the hardened checkout sheds by queue time', () => {
  it('new work that waited past the limit is refused 503 overloaded with Retry-After and counted; fresh or unstamped work is served', async () => {
    const shedBefore = await metric(hardened.url, 'flashcrowd_checkout_shed_total');
    const late = await call(hardened.url, 'GET', '/v1/skus', undefined, stamped(1_000));
    expect(late.status, late.text).toBe(503);
    expect(late.body.reason).toBe('overloaded');
    expect(late.headers.get('retry-after')).toBe('1');
    const order = await call(
      hardened.url,
      'POST',
      '/v1/orders',
      { user: 'u-late', sku: 'sku1' },
      {
        ...stamped(1_000),
      },
    );
    expect(order.status, order.text).toBe(503);
    expect(await metric(hardened.url, 'flashcrowd_checkout_shed_total')).toBe(shedBefore + 2);
    // The quarter second that saw those waits cuts the share of new work; let it recover.
    await sleep(2_000);
    expect((await call(hardened.url, 'GET', '/v1/skus', undefined, stamped(0))).status).toBe(200);
    expect((await call(hardened.url, 'GET', '/v1/skus')).status).toBe(200);
    // Every stamped request's wait is in the histogram.
    expect(
      await metric(hardened.url, 'flashcrowd_checkout_request_queue_seconds_count'),
    ).toBeGreaterThanOrEqual(3);
  });

  it("an order's own requests are shed only past four times the limit", async () => {
    await sleep(2_000);
    const created = await createOrder(hardened.url, { user: 'u-ongoing', sku: 'sku1' });
    expect(created.status, created.text).toBe(201);
    const o = created.body as { id: string };
    const waited = await call(hardened.url, 'GET', `/v1/orders/${o.id}`, undefined, stamped(600));
    expect(waited.status, waited.text).toBe(200);
    const tooLong = await call(
      hardened.url,
      'GET',
      `/v1/orders/${o.id}`,
      undefined,
      stamped(2_000),
    );
    expect(tooLong.status, tooLong.text).toBe(503);
    expect(tooLong.body.reason).toBe('overloaded');
  });

  it('after a quarter second in which requests waited, only part of the new work is admitted', async () => {
    await sleep(2_000);
    for (let i = 0; i < 5; i++)
      await call(hardened.url, 'GET', '/v1/skus', undefined, stamped(1_000));
    await sleep(300); // at least one tick of the shedder's quarter-second clock
    const statuses: number[] = [];
    while (statuses.length < 40 && !(statuses.includes(200) && statuses.includes(503)))
      statuses.push((await call(hardened.url, 'GET', '/v1/skus', undefined, stamped(0))).status);
    expect(statuses, 'fresh requests after the wait: some shed, some served').toContain(503);
    expect(statuses).toContain(200);
  });
});

describe('the naive checkout', () => {
  it('never sheds: a request that waited seconds is served', async () => {
    const r = await call(naive.url, 'GET', '/v1/skus', undefined, stamped(5_000));
    expect(r.status, r.text).toBe(200);
    expect(await metric(naive.url, 'flashcrowd_checkout_shed_total')).toBe(0);
  });
});

describe("the checkout's levels for the cascade timeline", () => {
  it("reports the event loop's delay, and each dependency's bulkhead queue in the hardened build only", async () => {
    const h = (await call(hardened.url, 'GET', '/metrics')).text;
    const n = (await call(naive.url, 'GET', '/metrics')).text;
    for (const text of [h, n])
      expect(text).toMatch(/^flashcrowd_checkout_event_loop_delay_seconds\{[^}]*\} \d/m);
    for (const dep of ['bank', 'wallet', 'coupon'])
      expect(h).toMatch(
        new RegExp(
          `^flashcrowd_checkout_bulkhead_queued\\{[^}]*dependency="${dep}"[^}]*\\} 0$`,
          'm',
        ),
      );
    expect(n).not.toMatch(/^flashcrowd_checkout_bulkhead_queued\{/m);
  });
});
