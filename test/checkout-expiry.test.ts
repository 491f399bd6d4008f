// Expiry and late payments over real HTTP, real Redis and the real mocks, on
// a time-scaled checkout (a 300 ms payment TTL): an unpaid order gives its
// stock and coupon back (I3, I8); a payment that lands after its order
// expired never revives stock silently (I9): the hardened build re-reserves
// it while stock remains, else refunds it, and counts it; the naive build
// lets it stand, which the audit catches.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Mode } from '../checkout/config.ts';
import { formatAudit } from '../harness/audit.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { call } from './support/http.ts';
import {
  createOrder,
  expectAuditOk,
  getOrder,
  issueCoupon,
  ledgerOf,
  payOrder,
  quiesce,
  seedSale,
  startAllMocks,
  startStack,
  STEADY,
  waitFor,
  waitForState,
  type Mocks,
  type Stack,
} from './support/checkout.ts';

const PREFIX = 'tco-expiry';
/** 300 ms to pay; sweeper every 10 ms, reconciler every 20 ms. */
const SET = ['timeScale=0.01', 'paymentTtlMs=30000'];
const TTL_MS = 300;
/** When the slow bank acts: well after the deadline, even if the event loop stalls a while. */
const BANK_LATE_MS = 1_500;
let redis: RedisHandle;
let mocks: Mocks;
const stacks: Partial<Record<Mode, Stack>> = {};

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(23);
  for (const mode of ['naive', 'hardened'] as const)
    stacks[mode] = await startStack({
      redisUrl: redis.url,
      mocks,
      mode,
      prefix: `${PREFIX}-${mode}`,
      // An order stuck in paying is queried after 1 s: the sweeper meets it first, at its deadline.
      set: [...STEADY, ...SET, 'staleAfterMs=100000'],
    });
});
afterAll(async () => {
  for (const s of Object.values(stacks)) await s?.close();
  await mocks?.close();
  await redis?.close();
});
beforeEach(async () => {
  await mocks.reset();
});

const couponOf = async (code: string) =>
  (await call(mocks.urls.coupon, 'GET', `/v1/coupons/${code}`)).body;

describe.each(['naive', 'hardened'] as const)('expiry (%s)', (mode) => {
  it('gives the stock and the coupon back when an order is not paid in time', async () => {
    const s = stacks[mode]!;
    await seedSale(s.url, [{ id: 'lip', price: 9_900, stock: 3 }], {
      campaignId: 'live',
      budget: 10,
      discount: 500,
    });
    const code = await issueCoupon(mocks.urls.coupon, 'live', 'alice');
    const o = await createOrder(s.url, { user: 'alice', sku: 'lip', coupon: code });
    expect(o.status).toBe(201);
    expect(o.body.amount).toBe(9_400);
    expect(Date.parse(o.body.payBy) - Date.parse(o.body.createdAt)).toBe(TTL_MS);
    expect(await couponOf(code)).toMatchObject({ state: 'LOCKED', orderId: o.body.id });
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 2, reserved: 1 });

    const ended = await waitForState(s.url, o.body.id, ['expired']);
    expect(ended.reason).toBe('payment_deadline_passed');
    await waitFor(
      'the coupon back to ISSUED',
      async () => (await couponOf(code)).state === 'ISSUED',
    );
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 3, reserved: 0, sold: 0 });
    // The shopper can order again, with the same coupon.
    const again = await createOrder(s.url, { user: 'alice', sku: 'lip', coupon: code });
    expect(again.status).toBe(201);
    expect((await payOrder(s.url, again.body.id)).status).toBe(200);
    expect(await couponOf(code)).toMatchObject({ state: 'USED', orderId: again.body.id });
    expectAuditOk(await s.audit());
  });

  it('releases a declined order: at once (hardened) or at expiry (naive)', async () => {
    const s = stacks[mode]!;
    await seedSale(s.url, [{ id: 'lip', stock: 3 }], {
      campaignId: 'live',
      budget: 10,
      discount: 500,
    });
    const code = await issueCoupon(mocks.urls.coupon, 'live', 'bob');
    const o = await createOrder(s.url, { user: 'bob', sku: 'lip', coupon: code });
    const p = await payOrder(s.url, o.body.id, { card: '4000000000009995' });
    expect(p.status).toBe(402);
    expect(p.body.reason).toBe('insufficient_funds');
    if (mode === 'hardened') {
      expect(p.body.state).toBe('payment_failed');
      expect(await couponOf(code)).toMatchObject({ state: 'ISSUED' });
      expect(await s.store.snapshot('lip')).toMatchObject({ available: 3, reserved: 0 });
    } else {
      // The naive build keeps stock and coupon until the order expires.
      expect(p.body.state).toBe('pending_payment');
      expect(await couponOf(code)).toMatchObject({ state: 'LOCKED' });
      await waitForState(s.url, o.body.id, ['expired']);
      await waitFor('the coupon back', async () => (await couponOf(code)).state === 'ISSUED');
      expect(await s.store.snapshot('lip')).toMatchObject({ available: 3, reserved: 0 });
    }
    expectAuditOk(await s.audit());
  });
});

/** The bank answers payments.create only after `ms` (the payment takes effect then). */
async function slowBank(ms: number) {
  const r = await call(mocks.urls.bank, 'PUT', '/__chaos', {
    operations: { 'payments.create': { latency: { dist: 'fixed', ms } } },
  });
  expect(r.status, r.text).toBe(200);
}

describe('a payment that lands after its order expired (hardened)', () => {
  // The shopper's pay request gives up after 150 ms; the bank takes the money
  // at 1.5 s; the order's deadline (300 ms) falls between: the sweeper asks the
  // bank, which knows of no payment yet, and expires the order.
  const PAY_DEADLINE = { 'x-request-deadline-ms': '150' };

  it('is re-reserved while stock remains, with its coupon, and counted', async () => {
    const s = stacks.hardened!;
    await seedSale(s.url, [{ id: 'lip', stock: 2 }], {
      campaignId: 'live',
      budget: 10,
      discount: 500,
    });
    const code = await issueCoupon(mocks.urls.coupon, 'live', 'alice');
    await slowBank(BANK_LATE_MS);
    const o = await createOrder(s.url, { user: 'alice', sku: 'lip', coupon: code });
    const p = await payOrder(s.url, o.body.id, {}, PAY_DEADLINE);
    expect(p.status, p.text).toBe(202);
    expect(p.body).toMatchObject({ state: 'paying', reason: 'payment_pending_confirmation' });
    await waitForState(s.url, o.body.id, ['expired']);
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 2, reserved: 0 });
    await waitFor('the coupon back', async () => (await couponOf(code)).state === 'ISSUED');

    const paid = await waitForState(s.url, o.body.id, ['paid']);
    expect(paid.reason).toBe('late_payment_rereserved');
    const { captures, refunds } = await ledgerOf(mocks, o.body.id);
    expect(captures).toHaveLength(1);
    expect(refunds).toHaveLength(0);
    expect(paid.paymentRef).toBe(captures[0]!.paymentId);
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 1, reserved: 0, sold: 1 });
    expect((await s.store.counters('lip')).late_rereserved).toBe(1);
    // The order paid the discounted price: its coupon is used, once, by it.
    expect(captures[0]!.amount).toBe(9_400);
    await waitFor('the coupon used', async () => (await couponOf(code)).state === 'USED', 5_000);
    expect(await couponOf(code)).toMatchObject({ state: 'USED', orderId: o.body.id });

    const r = await quiesce(s);
    expectAuditOk(r);
    expect(r.totals).toMatchObject({
      latePayments: 1,
      latePaymentsRereserved: 1,
      latePaymentsRefunded: 0,
    });
    expect(r.totals.latePaymentsCounted).toBeGreaterThanOrEqual(1);
  });

  it('is refunded when the stock went to another shopper, and counted', async () => {
    const s = stacks.hardened!;
    await seedSale(s.url, [{ id: 'lip', stock: 1 }]);
    await slowBank(BANK_LATE_MS);
    const o = await createOrder(s.url, { user: 'alice', sku: 'lip' });
    expect((await payOrder(s.url, o.body.id, {}, PAY_DEADLINE)).status).toBe(202);
    await waitForState(s.url, o.body.id, ['expired']);
    // The released unit goes to bob (paying with the wallet) before alice's money lands.
    const bob = await createOrder(s.url, { user: 'bob', sku: 'lip', channel: 'alipay' });
    expect(bob.status).toBe(201);
    expect((await payOrder(s.url, bob.body.id)).body.state).toBe('paid');

    await waitFor('the late capture to be refunded', async () => {
      const l = await ledgerOf(mocks, o.body.id);
      return l.captures.length === 1 && l.refunds.length === 1 ? l : undefined;
    });
    const { captures, refunds } = await ledgerOf(mocks, o.body.id);
    expect(refunds[0]).toMatchObject({ paymentId: captures[0]!.paymentId, amount: 9_900 });
    expect(await getOrder(s.url, o.body.id)).toMatchObject({ state: 'expired' });
    expect((await s.store.counters('lip')).late_refund).toBeGreaterThanOrEqual(1);
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 0, reserved: 0, sold: 1 });
    const r = await quiesce(s);
    expectAuditOk(r);
    expect(r.totals).toMatchObject({ latePayments: 1, latePaymentsRefunded: 1 });
  });
});

describe('a bank payment still processing at the order deadline', () => {
  const processing = (extra: Record<string, unknown> = {}) =>
    call(mocks.urls.bank, 'PUT', '/__chaos', {
      extra: { processing: { rate: 1, settleMs: { dist: 'fixed', ms: BANK_LATE_MS }, ...extra } },
    });

  it('hardened: holds the reservation while the bank processes, then sells it', async () => {
    const s = stacks.hardened!;
    await seedSale(s.url, [{ id: 'lip', stock: 2 }]);
    expect((await processing()).status).toBe(200);
    const o = await createOrder(s.url, { user: 'alice', sku: 'lip' });
    const p = await payOrder(s.url, o.body.id);
    expect(p.status).toBe(202);
    expect(p.body.reason).toBe('payment_processing');
    // Past the deadline the bank still says processing: the stock stays with the order.
    await waitFor('the deadline to pass', async () => Date.now() > Date.parse(o.body.payBy) + 50);
    expect((await getOrder(s.url, o.body.id)).state).toBe('paying');
    const paid = await waitForState(s.url, o.body.id, ['paid']);
    expect(paid.paymentRef).toMatch(/^pay_/);
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 1, reserved: 0, sold: 1 });
    expectAuditOk(await quiesce(s));
  });

  it('hardened: releases the reservation when the processing payment fails', async () => {
    const s = stacks.hardened!;
    await seedSale(s.url, [{ id: 'lip', stock: 2 }]);
    expect((await processing({ failRate: 1 })).status).toBe(200);
    const o = await createOrder(s.url, { user: 'alice', sku: 'lip' });
    expect((await payOrder(s.url, o.body.id)).status).toBe(202);
    const ended = await waitForState(s.url, o.body.id, ['expired', 'payment_failed']);
    expect(ended.paymentRef).toBeUndefined();
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 2, reserved: 0, sold: 0 });
    expect((await ledgerOf(mocks, o.body.id)).captures).toHaveLength(0);
    expectAuditOk(await quiesce(s));
  });

  it('naive: expires the order, and the late capture stands uncounted (I6, I9, I11)', async () => {
    const s = stacks.naive!;
    await seedSale(s.url, [{ id: 'lip', stock: 2 }]);
    expect((await processing()).status).toBe(200);
    const o = await createOrder(s.url, { user: 'alice', sku: 'lip' });
    expect((await payOrder(s.url, o.body.id)).status).toBe(202);
    await waitForState(s.url, o.body.id, ['expired']);
    await waitFor(
      'the bank to capture',
      async () => (await ledgerOf(mocks, o.body.id)).captures.length === 1,
    );
    const r = await quiesce(s);
    expect(r.violated, formatAudit(r)).toEqual(['I6', 'I9', 'I11']);
    for (const id of ['I6', 'I9', 'I11'] as const) expect(r.byId[id].examples).toEqual([o.body.id]);
    expect(r.totals).toMatchObject({
      latePayments: 1,
      latePaymentsCounted: 0,
      latePaymentsRefunded: 0,
      capturesWithoutPaidOrder: 1,
      overage: 1,
      overageAmount: 9_900,
      stockLeaks: 0,
    });
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 2, reserved: 0, sold: 0 });
  });
});
