// The naive behaviours of docs/CHECKOUT.md ("Naive behaviours"), each switched
// on alone in the naive build, over real Redis, real HTTP and the real mocks:
// each one breaks what it is meant to break, the audit names the orders, and
// the same steps with the switch off break nothing.
//   splitStockCheck            oversell (I2) when orders arrive together
//   holdPaying                 ghost stock: a paying order past its deadline keeps its units (I3)
//   couponReleaseOnCancelOnly  an expired order keeps its coupon locked (I8)
//   stockCacheMs               "sold out" while stock remains (false_sold_out), and with
//                              splitStockCheck a unit sold twice
// The concurrent orders are started in one synchronous loop on the checkout
// object itself, so every stock read is sent before any answer is read: what
// they see does not depend on which finishes first.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatAudit } from '../harness/audit.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { call } from './support/http.ts';
import {
  createOrder,
  issueCoupon,
  payOrder,
  seedSale,
  sleep,
  startAllMocks,
  startStack,
  STEADY,
  waitFor,
  type Mocks,
  type Stack,
} from './support/checkout.ts';

const PREFIX = 'tco-naive-b';
let redis: RedisHandle;
let mocks: Mocks;
const open: Stack[] = [];
let n = 0;

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(41);
});
afterAll(async () => {
  for (const s of open) await s.close();
  await mocks?.close();
  await redis?.close();
});
beforeEach(async () => {
  await mocks.reset();
});

/** A naive checkout with these settings on its own key prefix. */
async function naive(set: string[]): Promise<Stack> {
  const s = await startStack({
    redisUrl: redis.url,
    mocks,
    mode: 'naive',
    prefix: `${PREFIX}-${(n += 1)}`,
    set: [...STEADY, ...set],
  });
  open.push(s);
  return s;
}

/** Start `users.length` orders together (one synchronous loop), one unit each. */
async function orderTogether(s: Stack, sku: string, users: string[]) {
  const deadline = Date.now() + 10_000;
  const answers = await Promise.all(
    users.map((user) =>
      s.co.checkout.createOrder({ user, sku, quantity: 1, channel: 'card' }, undefined, deadline),
    ),
  );
  return answers.filter((a) => a.status === 201).map((a) => String(a.body.id));
}

const falseSoldOuts = async (s: Stack) => {
  const text = (await call(s.url, 'GET', '/metrics')).text;
  const m = /flashcrowd_checkout_order_events_total\{event="false_sold_out"[^}]*\} (\d+)/.exec(
    text,
  );
  return Number(m?.[1] ?? 0);
};

const couponOf = async (code: string) =>
  (await call(mocks.urls.coupon, 'GET', `/v1/coupons/${code}`)).body;

describe('splitStockCheck: the stock check and the decrement in two round trips', () => {
  const users = Array.from({ length: 30 }, (_, i) => `crowd-${i}`);

  it('oversells when 30 orders for 5 units arrive together, and the audit names the orders beyond the stock (I2)', async () => {
    const s = await naive(['splitStockCheck=true']);
    await seedSale(s.url, [{ id: 'lip', stock: 5 }]);
    const made = await orderTogether(s, 'lip', users);
    expect(made.length).toBeGreaterThan(5);
    const snap = await s.store.snapshot('lip');
    expect(snap.available).toBe(5 - made.length);
    expect(snap.reserved).toBe(made.length);
    const r = await s.audit();
    expect(r.violated, formatAudit(r)).toContain('I2');
    expect(r.totals.oversoldUnits).toBe(made.length - 5);
    // The orders beyond the stock are named, and they are orders the crowd made.
    const named = r.byId.I2.examples.flatMap((e) => e.match(/lip\.\w+/g) ?? []);
    expect(named.length, formatAudit(r)).toBeGreaterThan(0);
    for (const id of named) expect(made).toContain(id);
  });

  it('switched off, the same 30 orders take exactly the 5 units', async () => {
    const s = await naive([]);
    await seedSale(s.url, [{ id: 'lip', stock: 5 }]);
    const made = await orderTogether(s, 'lip', users);
    expect(made).toHaveLength(5);
    expect((await s.store.snapshot('lip')).available).toBe(0);
    const r = await s.audit();
    expect(r.violated, formatAudit(r)).not.toContain('I2');
    expect(r.totals.oversoldUnits).toBe(0);
  });
});

describe('holdPaying: a paying order waits for its callback forever', () => {
  // 4000000000003220: the bank answers processing and settles later; the naive
  // build has no reconciler, so nothing asks it again.
  const PROCESSING = '4000000000003220';

  async function payingOrderPastDeadline(s: Stack) {
    await seedSale(s.url, [{ id: 'lip', stock: 3 }]);
    const o = await createOrder(s.url, { user: 'alice', sku: 'lip' });
    expect(o.status, o.text).toBe(201);
    const p = await payOrder(s.url, o.body.id, { card: PROCESSING });
    expect(p.status, p.text).toBe(202);
    await sleep(400); // past the 300 ms deadline
    await s.co.checkout.sweep();
    return String(o.body.id);
  }

  it('keeps the units past the deadline: the audit counts a stock leak held by the open order (ghost stock, I3)', async () => {
    const s = await naive(['holdPaying=true', 'paymentTtlMs=300']);
    const id = await payingOrderPastDeadline(s);
    expect((await s.co.checkout.getOrder(id)).state).toBe('paying');
    expect((await s.store.snapshot('lip')).reserved).toBe(1);
    const r = await s.audit({ probeGateways: false });
    expect(r.violated, formatAudit(r)).toContain('I3');
    expect(r.totals.stockLeakOrdersOpen).toBe(1);
    expect(r.byId.I3.examples.join(' ')).toContain(id);
  });

  it('switched off, the sweeper expires the paying order and the units come back', async () => {
    const s = await naive(['paymentTtlMs=300']);
    const id = await payingOrderPastDeadline(s);
    expect((await s.co.checkout.getOrder(id)).state).toBe('expired');
    expect((await s.store.snapshot('lip')).reserved).toBe(0);
  });
});

describe('couponReleaseOnCancelOnly: only a cancel gives the coupon back', () => {
  /** A sale with a coupon campaign, and an order of `user` that locked a coupon. */
  async function orderWithCoupon(s: Stack, user: string) {
    await seedSale(s.url, [{ id: 'lip', stock: 3 }], {
      campaignId: 'live',
      budget: 10,
      discount: 500,
    });
    const code = await issueCoupon(mocks.urls.coupon, 'live', user);
    const o = await createOrder(s.url, { user, sku: 'lip', coupon: code });
    expect(o.status, o.text).toBe(201);
    return { o, code };
  }

  async function expiredOrderWithCoupon(s: Stack) {
    const { o, code } = await orderWithCoupon(s, 'alice');
    // Declined: the naive build puts the order back to pending_payment until it expires.
    const p = await payOrder(s.url, o.body.id, { card: '4000000000000002' });
    expect(p.status, p.text).toBe(402);
    await sleep(400);
    await s.co.checkout.sweep();
    expect((await s.co.checkout.getOrder(o.body.id)).state).toBe('expired');
    return { id: String(o.body.id), code };
  }

  it('an expired order keeps its coupon locked, and the audit names the order (I8)', async () => {
    const s = await naive(['couponReleaseOnCancelOnly=true', 'paymentTtlMs=300']);
    const { id, code } = await expiredOrderWithCoupon(s);
    expect(await couponOf(code)).toMatchObject({ state: 'LOCKED', orderId: id });
    const r = await s.audit({ campaignId: 'live' });
    expect(r.violated, formatAudit(r)).toContain('I8');
    expect(r.totals.couponLeaks).toBe(1);
    expect(r.byId.I8.examples.join(' ')).toContain(id);
  });

  it('a cancel still gives it back', async () => {
    const s = await naive(['couponReleaseOnCancelOnly=true']);
    const { o, code } = await orderWithCoupon(s, 'bob');
    expect((await call(s.url, 'POST', `/v1/orders/${o.body.id}/cancel`)).status).toBe(200);
    expect((await couponOf(code)).state).toBe('ISSUED');
  });

  it('switched off, the expiry gives the coupon back', async () => {
    const s = await naive(['paymentTtlMs=300']);
    const { code } = await expiredOrderWithCoupon(s);
    await waitFor(
      'the coupon back to ISSUED',
      async () => (await couponOf(code)).state === 'ISSUED',
    );
  });
});

describe('stockCacheMs: the product page and the stock check read a copy of the count', () => {
  // A day between refreshes: only the test's refresh() calls move the copy.
  const DAY = ['timeScale=1', 'stockCacheMs=86400000'];

  it('answers "sold out" while Redis has the unit back, counts it as false_sold_out, and sells it after the next sync', async () => {
    const s = await naive(DAY);
    await seedSale(s.url, [{ id: 'lip', stock: 1 }]);
    const a = await createOrder(s.url, { user: 'alice', sku: 'lip' });
    expect(a.status, a.text).toBe(201);
    await s.co.checkout.stockCache.refresh(); // the sync sees 0
    expect((await call(s.url, 'POST', `/v1/orders/${a.body.id}/cancel`)).status).toBe(200);
    expect((await s.store.snapshot('lip')).available).toBe(1);
    const page = await call(s.url, 'GET', '/v1/skus');
    expect(page.body.data[0].available).toBe(0); // the page shows the copy
    const b = await createOrder(s.url, { user: 'bob', sku: 'lip' });
    expect(b.status, b.text).toBe(409);
    expect(b.body.reason).toBe('sold_out');
    expect(await falseSoldOuts(s)).toBe(1);
    await s.co.checkout.stockCache.refresh();
    expect((await createOrder(s.url, { user: 'bob', sku: 'lip' })).status).toBe(201);
    expect(await falseSoldOuts(s)).toBe(1);
  });

  it('with splitStockCheck, a unit the copy still shows is sold twice (I2)', async () => {
    const s = await naive([...DAY, 'splitStockCheck=true']);
    await seedSale(s.url, [{ id: 'lip', stock: 1 }]);
    expect((await createOrder(s.url, { user: 'alice', sku: 'lip' })).status).toBe(201);
    const b = await createOrder(s.url, { user: 'bob', sku: 'lip' });
    expect(b.status, b.text).toBe(201);
    expect((await s.store.snapshot('lip')).available).toBe(-1);
    const r = await s.audit();
    expect(r.violated, formatAudit(r)).toContain('I2');
    expect(r.byId.I2.examples.join(' ')).toContain(b.body.id);
  });

  it('switched off, the same steps sell the unit given back at once and count nothing', async () => {
    const s = await naive([]);
    await seedSale(s.url, [{ id: 'lip', stock: 1 }]);
    const a = await createOrder(s.url, { user: 'alice', sku: 'lip' });
    expect((await call(s.url, 'POST', `/v1/orders/${a.body.id}/cancel`)).status).toBe(200);
    expect((await createOrder(s.url, { user: 'bob', sku: 'lip' })).status).toBe(201);
    expect(await falseSoldOuts(s)).toBe(0);
  });
});
