// The invariant audit (harness/audit.ts) against states made on purpose: real
// Redis holding the checkout's keys (written with the checkout's own Store and
// Lua scripts, then bent by hand) and the real mocks' ledgers (payments,
// trades, refunds and coupons made through their APIs). Each break of I1-I11
// must be found, counted and named by order id; a clean state must pass; and
// data the audit cannot read must give `ok: null` with a note, never a pass.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectRedis, Store, type RedisClient } from '../checkout/store.ts';
import { audit, formatAudit, snapshotI1, type AuditReport } from '../harness/audit.ts';
import { freePort, startRedis, type RedisHandle } from '../harness/redis.ts';
import { call } from './support/http.ts';
import { sleep, startAllMocks, type Mocks } from './support/checkout.ts';

const PREFIX = 'tco-audit';
const PRICE = 5_000;
let redis: RedisHandle;
let client: RedisClient;
let store: Store;
let mocks: Mocks;

beforeAll(async () => {
  redis = await startRedis();
  client = connectRedis(redis.url);
  store = new Store(client, PREFIX);
  mocks = await startAllMocks(3);
});
afterAll(async () => {
  client?.disconnect();
  await mocks?.close();
  await redis?.close();
});
beforeEach(async () => {
  await mocks.reset();
  await store.seedSale([
    { id: 'lip', name: 'lip', price: PRICE, stock: 10, limit: 1 },
    { id: 'mask', name: 'mask', price: PRICE, stock: 10, limit: 2 },
  ]);
});

const run = (over: Partial<Parameters<typeof audit>[0]> = {}) =>
  audit({ store, ...mocks.urls, ...over });

async function reserve(user: string, sku = 'lip', deadlineInMs = 60_000): Promise<string> {
  const now = Date.now();
  const r = await store.reserve({
    sku,
    user,
    qty: 1,
    now,
    deadline: now + deadlineInMs,
    payload: { user, sku, now },
    channel: 'card',
    idemTtlMs: 60_000,
  });
  expect(r.status).toBe('ok');
  return r.orderId;
}

/** A real capture at the bank for `orderId`. */
async function bankCapture(orderId: string, amount = PRICE): Promise<string> {
  const r = await call(mocks.urls.bank, 'POST', '/v1/payments', {
    orderId,
    amount,
    currency: 'CNY',
    card: { number: '4242424242424242' },
  });
  expect(r.status, r.text).toBe(200);
  return r.body.id;
}

async function bankRefund(paymentId: string) {
  const r = await call(mocks.urls.bank, 'POST', '/v1/refunds', { paymentId });
  expect(r.status, r.text).toBe(200);
}

/** A real capture at the wallet for `orderId`. */
async function walletCapture(orderId: string, amount = PRICE): Promise<string> {
  const t = await call(mocks.urls.wallet, 'POST', '/v1/trades', {
    outTradeNo: orderId,
    amount,
    notifyUrl: 'http://127.0.0.1:9/none',
    style: 'wechat',
  });
  expect(t.status, t.text).toBe(201);
  const p = await call(mocks.urls.wallet, 'POST', `/v1/trades/${t.body.tradeNo}/pay`, {});
  expect(p.status, p.text).toBe(200);
  return t.body.tradeNo;
}

/** Order paid the way the checkout pays it: a capture, then confirm.lua. */
async function paid(user: string, sku = 'lip', via: 'bank' | 'wallet' = 'bank') {
  const id = await reserve(user, sku);
  const ref = via === 'bank' ? await bankCapture(id) : await walletCapture(id);
  expect((await store.startPayment(id, '', Date.now(), false)).status).toBe('ok');
  expect((await store.confirm(id, ref, PRICE, Date.now(), false, 'card')).status).toBe('paid');
  return { id, ref };
}

function expectOnly(r: AuditReport, violated: string[]) {
  expect(r.violated, formatAudit(r)).toEqual(violated);
}

describe('the audit', () => {
  it('passes a clean sale (I10 unchecked, with a note)', async () => {
    await paid('alice');
    await paid('bob', 'lip', 'wallet');
    const open = await reserve('carol');
    const failed = await reserve('dave');
    await store.release(failed, 'payment_failed', 'card_declined', Date.now());
    const r = await run();
    expectOnly(r, []);
    expect(r.ok).toBe(true);
    expect(r.quiescent).toBe(true);
    expect(r.unchecked).toEqual(['I10']);
    expect(r.byId.I10).toMatchObject({ ok: null, count: 0 });
    expect(r.byId.I10.note).toMatch(/not observable/);
    expect(r.totals).toMatchObject({ orders: 4, paidOrders: 2, captures: 2, stockLeaks: 0 });
    expect(r.invariants.map((i) => i.id)).toEqual([
      'I1',
      'I2',
      'I3',
      'I4',
      'I5',
      'I6',
      'I7',
      'I8',
      'I9',
      'I10',
      'I11',
    ]);
    expect(open).toBeTruthy();
    expect((await snapshotI1(store)).ok).toBe(true);
  });

  it('finds counters that do not add up (I1) and a negative count (I2), in snapshots too', async () => {
    await reserve('alice');
    await client.hincrby(store.keys('lip').stock, 'available', 1);
    const snap = await snapshotI1(store);
    expect(snap.ok).toBe(false);
    expect(snap.i1).toEqual(['lip: sold 0 + reserved 1 + available 10 = 11, initial 10']);
    expect(snap.i2).toEqual([]);
    let r = await run();
    expectOnly(r, ['I1']);
    expect(r.byId.I1.examples).toEqual([
      'lip: sold 0 + reserved 1 + available 10 = 11, initial 10',
    ]);

    await client.hset(store.keys('mask').stock, 'available', -1, 'sold', 11);
    const snap2 = await snapshotI1(store, ['mask']);
    expect(snap2.i2).toHaveLength(1);
    r = await run();
    expect(r.byId.I2.ok).toBe(false);
    expect(r.byId.I2.examples).toEqual([
      'mask: sold 11 + reserved 0 + available -1 = 10, initial 10',
    ]);
  });

  it('finds reserved units no open order holds (I1, I3)', async () => {
    await client.hincrby(store.keys('lip').stock, 'reserved', 2);
    await client.hincrby(store.keys('lip').stock, 'available', -2);
    const r = await run();
    expectOnly(r, ['I1', 'I3']);
    expect(r.totals.stockLeakUnits).toBe(2);
    expect(r.byId.I3.examples).toEqual(['lip: 2 reserved units held by no order']);
    expect(r.totals).toMatchObject({ stockLeaks: 1, stockLeakUnitsUnknown: 2 });
  });

  it('finds reservations held past their deadline (I3), with a grace period', async () => {
    const late = await reserve('alice', 'lip', -1_000);
    await reserve('bob', 'lip', 60_000);
    const r = await run();
    expectOnly(r, ['I3']);
    expect(r.byId.I3.examples).toEqual([late]);
    expect(r.totals).toMatchObject({ stockLeaks: 1, stockLeakUnits: 1 });
    expectOnly(await run({ graceMs: 10_000 }), []);
  });

  it('attributes every leaked unit to the ended order holding it (I3), or to no order', async () => {
    const k = store.keys('lip');
    // Ended without release.lua (no endedAt): what a skipped release leaves.
    const noEnd = await reserve('alice');
    expect(
      (await store.transition(noEnd, 'payment_failed', 'declined', Date.now(), ['pending_payment']))
        .status,
    ).toBe('ok');
    // Ended with endedAt, but still in the deadlines queue (release.lua never ran on it).
    const queued = await reserve('bob');
    await client.hset(k.order(queued), 'state', 'expired', 'endedAt', Date.now());
    // Released, then the stock and the shopper's count put back: only `bought` tells.
    const counted = await reserve('carol');
    await store.release(counted, 'cancelled', 'cancelled_by_shopper', Date.now());
    await client.hincrby(k.stock, 'reserved', 1);
    await client.hincrby(k.stock, 'available', -1);
    await client.hincrby(k.bought, 'carol', 1);
    // Released cleanly: holds nothing.
    const clean = await reserve('dave');
    await store.release(clean, 'expired', 'payment_deadline_passed', Date.now());
    // An open order past its deadline, and 3 units no order explains.
    const late = await reserve('erin', 'lip', -1_000);
    await client.hincrby(k.stock, 'reserved', 3);
    await client.hincrby(k.stock, 'available', -3);

    const r = await run();
    expectOnly(r, ['I1', 'I3']);
    expect(r.byId.I3.examples.sort()).toEqual(
      [noEnd, queued, counted, late, 'lip: 3 reserved units held by no order'].sort(),
    );
    expect(r.byId.I3.count).toBe(5);
    expect(r.totals).toMatchObject({
      stockLeaks: 5,
      stockLeakUnits: 7,
      stockLeakOrdersOpen: 1,
      stockLeakOrdersEnded: 3,
      stockLeakUnitsUnknown: 3,
    });
    expect(r.byId.I3.note).toMatch(
      /^7 reserved units leaked: 1 open .*, 3 ended .*, 3 units no order explains/,
    );
  });

  it('names the orders holding oversold units (I2) and counts each oversold unit once', async () => {
    const a = await paid('alice');
    await sleep(3);
    const b = await paid('bob');
    await sleep(3);
    const c = await reserve('carol');
    // The stock was 2: carol's reservation is beyond it (sold 2 + reserved 1 + available -1 = 2).
    await client.hset(store.keys('lip').stock, 'initial', 2, 'available', -1);
    let r = await run();
    expectOnly(r, ['I2']);
    expect(r.byId.I2.examples).toEqual([c]);
    expect(r.totals.oversoldUnits).toBe(1);
    expect(r.byId.I2.note).toMatch(/^1 units sold or reserved beyond the initial stock/);
    // Carol pays too: 3 sold of 2, available -1: one unit over, not two.
    const ref = await bankCapture(c);
    await store.startPayment(c, '', Date.now(), false);
    expect((await store.confirm(c, ref, PRICE, Date.now(), false, 'card')).status).toBe('paid');
    r = await run();
    expectOnly(r, ['I2']);
    expect(r.totals.oversoldUnits).toBe(1);
    expect(r.byId.I2.examples).toEqual([c]);
    expect([a.id, b.id]).not.toContain(r.byId.I2.examples[0]);
  });

  it('finds an ended order a late capture turned paid without re-reserving it (I9)', async () => {
    const id = await reserve('alice');
    await store.release(id, 'expired', 'payment_deadline_passed', Date.now() - 1);
    const ref = await bankCapture(id);
    // What a confirm that ignores the order's end would write: paid, endedAt kept, no lateFrom.
    const k = store.keys('lip');
    await client.hset(k.order(id), 'state', 'paid', 'paymentRef', ref, 'paidAt', Date.now());
    await client.hincrby(k.stock, 'available', -1);
    await client.hincrby(k.stock, 'sold', 1);
    const r = await run();
    expectOnly(r, ['I9']);
    expect(r.byId.I9.examples).toEqual([id]);
    expect(r.byId.I9.count).toBe(2); // revived, and not counted by the checkout
    expect(r.totals).toMatchObject({ latePayments: 1, latePaymentsRevived: 1 });
    expect(r.byId.I9.note).toMatch(/1 revived an ended order/);
  });

  it('counts every break however few examples it keeps (maxExamples)', async () => {
    const ids: string[] = [];
    for (const u of ['u1', 'u2', 'u3', 'u4', 'u5']) {
      const p = await paid(u);
      await bankCapture(p.id);
      ids.push(p.id);
    }
    const r = await run({ maxExamples: 2 });
    expect(r.byId.I5.count).toBe(5);
    expect(r.byId.I5.examples).toHaveLength(2);
    expect(ids).toEqual(expect.arrayContaining(r.byId.I5.examples));
    expect(r.totals.doubleCharges).toBe(5);
    for (const i of r.invariants) {
      expect(i.examples.length, i.id).toBeLessThanOrEqual(Math.min(2, i.count));
      expect(new Set(i.examples).size, i.id).toBe(i.examples.length);
    }
    expect(r.byId.I6.count).toBe(5);
    expect(r.byId.I11.count).toBe(5);
  });

  it('finds a shopper with more than the limit paid (I4)', async () => {
    const a = await paid('alice', 'mask');
    const b = await paid('alice', 'mask');
    expectOnly(await run(), []);
    await client.hset(store.keys('mask').stock, 'limit', 1);
    const r = await run();
    expectOnly(r, ['I4']);
    expect(r.byId.I4.count).toBe(2); // the pair's paid orders, one example each
    expect(r.byId.I4.note).toMatch(/1 \(user, SKU\) pairs over it/);
    expect(r.byId.I4.examples.sort()).toEqual([a.id, b.id].sort());
  });

  it('finds a double charge (I5, I6, I7, I11) and forgives a refunded one', async () => {
    const a = await paid('alice');
    const extra = await bankCapture(a.id);
    let r = await run();
    expectOnly(r, ['I5', 'I6', 'I7', 'I11']);
    expect(r.totals).toMatchObject({ doubleCharges: 1, capturesWithoutPaidOrder: 1, overage: 1 });
    expect(r.totals.overageAmount).toBe(PRICE);
    for (const id of ['I5', 'I6', 'I7', 'I11'] as const)
      expect(r.byId[id].examples).toEqual([a.id]);

    await bankRefund(extra);
    r = await run();
    expectOnly(r, []);
    expect(r.totals.refundedCaptures).toBe(1);
  });

  it('finds a double charge across bank and wallet', async () => {
    const a = await paid('alice', 'lip', 'wallet');
    await bankCapture(a.id);
    const r = await run();
    expectOnly(r, ['I5', 'I6', 'I7', 'I11']);
    expect(r.byId.I5.examples).toEqual([a.id]);
  });

  it('finds a capture of another amount (I5)', async () => {
    const id = await reserve('alice');
    const ref = await bankCapture(id, PRICE - 1);
    await store.startPayment(id, '', Date.now(), false);
    expect((await store.confirm(id, ref, PRICE, Date.now(), false, 'card')).status).toBe('paid');
    const r = await run();
    expect(r.violated, formatAudit(r)).toEqual(['I5', 'I11']);
    expect(r.byId.I5.examples).toEqual([id]);
    // I11: the count is the mismatch, and the note and the totals say so, with the money.
    expect(r.byId.I11).toMatchObject({ count: 1, examples: [id] });
    expect(r.byId.I11.note).toMatch(
      /overage: 0 captures .*shortage: 0 paid orders .*amount mismatches: 1 paid orders .*\(1: 0 captured over, 1 under\)/,
    );
    expect(r.totals).toMatchObject({ amountMismatches: 1, amountMismatchAmount: 1, overage: 0 });
  });

  it('finds a paid order with no capture (I7, I11 shortage)', async () => {
    const id = await reserve('alice');
    await store.startPayment(id, '', Date.now(), false);
    await store.confirm(id, 'pay_99999999', PRICE, Date.now(), false, 'card');
    const r = await run();
    expectOnly(r, ['I7', 'I11']);
    expect(r.totals).toMatchObject({ paidWithoutCapture: 1, shortage: 1, shortageAmount: PRICE });
    expect(r.byId.I7.examples).toEqual([id]);
  });

  it('finds money kept for a failed order (I6, I11) and for a missing one', async () => {
    const failed = await reserve('alice');
    await bankCapture(failed);
    await store.release(failed, 'payment_failed', 'bank_timeout', Date.now() + 60_000);
    const ghost = `lip.${'0'.repeat(18)}`;
    await walletCapture(ghost);
    const r = await run();
    expectOnly(r, ['I6', 'I11']);
    expect(r.totals.capturesWithoutPaidOrder).toBe(2);
    expect(r.byId.I6.examples.sort()).toEqual([failed, ghost].sort());
  });

  it('finds a late payment neither refunded nor counted (I6, I9, I11), and accepts one refunded and counted', async () => {
    const id = await reserve('alice');
    await store.release(id, 'expired', 'payment_deadline_passed', Date.now() - 1);
    const ref = await bankCapture(id);
    let r = await run();
    expectOnly(r, ['I6', 'I9', 'I11']);
    expect(r.totals).toMatchObject({ latePayments: 1, latePaymentsCounted: 0 });
    expect(r.byId.I9.examples).toEqual([id]);
    expect(r.byId.I9.count).toBe(2); // not refunded, and not counted

    await bankRefund(ref);
    r = await run();
    expectOnly(r, ['I9']);
    expect(r.byId.I9.count).toBe(1); // refunded, still not counted
    await client.hincrby(store.keys('lip').counters, 'late_refund', 1);
    r = await run();
    expectOnly(r, []);
    expect(r.totals).toMatchObject({
      latePayments: 1,
      latePaymentsRefunded: 1,
      latePaymentsCounted: 1,
    });
  });

  it('accepts a late payment re-reserved by confirm.lua', async () => {
    const id = await reserve('alice');
    await store.release(id, 'expired', 'payment_deadline_passed', Date.now() - 1);
    const ref = await bankCapture(id);
    expect((await store.confirm(id, ref, PRICE, Date.now(), true, 'card')).status).toBe(
      'late_rereserved',
    );
    const r = await run();
    expectOnly(r, []);
    expect(r.totals).toMatchObject({ latePayments: 1, latePaymentsRereserved: 1 });
  });

  describe('coupons (I8)', () => {
    async function campaign() {
      const r = await call(mocks.urls.coupon, 'POST', '/v1/campaigns', {
        id: 'c1',
        name: 'c1',
        budget: 10,
        discount: { type: 'amount', value: 100 },
      });
      expect(r.status, r.text).toBe(201);
    }
    async function coupon(user: string) {
      const r = await call(mocks.urls.coupon, 'POST', '/v1/coupons', {
        campaignId: 'c1',
        userId: user,
      });
      return r.body.code as string;
    }
    const lock = (code: string, orderId: string) =>
      call(mocks.urls.coupon, 'POST', `/v1/coupons/${code}/lock`, { orderId });
    const consume = (code: string, orderId: string) =>
      call(mocks.urls.coupon, 'POST', `/v1/coupons/${code}/consume`, { orderId });
    /** An order naming a coupon (the field reserve.lua writes). */
    const withCoupon = (id: string, code: string) =>
      client.hset(store.keys('lip').order(id), 'coupon', code);

    it('finds a coupon still locked by an ended order, used by a failed one, or not used by a paid one', async () => {
      await campaign();
      // Locked by an expired order: a leak.
      const expired = await reserve('alice');
      const c1 = await coupon('alice');
      await lock(c1, expired);
      await withCoupon(expired, c1);
      await store.release(expired, 'expired', 'payment_deadline_passed', Date.now());
      // Used by a failed order.
      const failed = await reserve('bob');
      const c2 = await coupon('bob');
      await lock(c2, failed);
      await consume(c2, failed);
      await withCoupon(failed, c2);
      await store.release(failed, 'payment_failed', 'declined', Date.now());
      // Paid, but its coupon was never consumed (still LOCKED: a leak too).
      const p = await paid('carol');
      const c3 = await coupon('carol');
      await lock(c3, p.id);
      await withCoupon(p.id, c3);
      // Fine: locked by an open order; used by a paid one.
      const open = await reserve('dave');
      const c4 = await coupon('dave');
      await lock(c4, open);
      await withCoupon(open, c4);
      const q = await paid('erin');
      const c5 = await coupon('erin');
      await lock(c5, q.id);
      await consume(c5, q.id);
      await withCoupon(q.id, c5);

      const r = await run();
      expectOnly(r, ['I8']);
      expect(r.byId.I8.count).toBe(3);
      expect(r.byId.I8.examples.sort()).toEqual([expired, failed, p.id].sort());
      expect(r.totals.couponLeaks).toBe(2);
    });
  });

  it('reads each order in a batch exactly as it reads it alone (every state and optional field)', async () => {
    await paid('alice');
    const late = await reserve('bob');
    await store.release(late, 'expired', 'payment_deadline_passed', Date.now() - 1);
    const ref = await bankCapture(late);
    await store.confirm(late, ref, PRICE, Date.now(), true, 'card');
    await reserve('carol', 'mask');
    const failed = await reserve('dave', 'mask');
    await store.startPayment(failed, 'wallet', Date.now(), false);
    await store.release(failed, 'payment_failed', 'card_declined', Date.now());
    for (const sku of ['lip', 'mask']) {
      const batch = await store.allOrders(sku);
      expect(batch.length).toBe(2);
      for (const o of batch) expect(o).toStrictEqual(await store.get(o.id));
    }
  });

  it('gives the same report whatever the page size: statements and coupons read a page at a time, orders a SCAN batch at a time', async () => {
    // Every kind of capture the index keeps: single, double, refunded, on another gateway, of a
    // missing order; and coupons and paid units per user, over two SKUs.
    const a = await paid('alice');
    await bankCapture(a.id);
    const b = await paid('bob', 'mask', 'wallet');
    await bankRefund(await bankCapture(b.id));
    await paid('carol', 'mask');
    await paid('carol', 'mask');
    const d1 = await paid('dave');
    await client.hincrby(store.keys('lip').bought, 'dave', -1);
    const d2 = await paid('dave');
    await walletCapture(`lip.${'0'.repeat(18)}`);
    const expired = await reserve('erin', 'mask');
    await store.release(expired, 'expired', 'payment_deadline_passed', Date.now() - 1);
    await bankCapture(expired);
    await call(mocks.urls.coupon, 'POST', '/v1/campaigns', {
      id: 'cp',
      name: 'cp',
      budget: 5,
      discount: { type: 'amount', value: 100 },
    });
    for (const u of ['u1', 'u2', 'u3']) {
      const code = (
        await call(mocks.urls.coupon, 'POST', '/v1/coupons', { campaignId: 'cp', userId: u })
      ).body.code as string;
      const o = await reserve(u, 'mask');
      await call(mocks.urls.coupon, 'POST', `/v1/coupons/${code}/lock`, { orderId: o });
      await client.hset(store.keys('mask').order(o), 'coupon', code);
      if (u !== 'u3') await store.release(o, 'expired', 'payment_deadline_passed', Date.now());
    }

    const whole = await run();
    expect(whole.violated, formatAudit(whole)).toEqual(['I4', 'I5', 'I6', 'I7', 'I8', 'I9', 'I11']);
    expect(whole.totals).toMatchObject({
      orders: 10,
      paidOrders: 6,
      captures: 10,
      refundedCaptures: 1,
      doubleCharges: 1,
      couponLeaks: 2,
    });
    expect(whole.byId.I4.examples.sort()).toEqual([d1.id, d2.id].sort());
    // The same report, but for the order of examples (SCAN's order depends on its COUNT).
    const canonical = (r: AuditReport) =>
      JSON.parse(
        JSON.stringify({ ...r, at: '' }, (k, v: unknown) =>
          k === 'examples' ? [...(v as string[])].sort() : v,
        ),
      ) as unknown;
    for (const pageSize of [1, 2, 3]) {
      const paged = await run({ pageSize });
      expect(canonical(paged), `pageSize ${pageSize}`).toEqual(canonical(whole));
    }
  });

  it('says not quiescent while a gateway still processes a payment', async () => {
    await call(mocks.urls.bank, 'PUT', '/__chaos', {
      extra: { processing: { rate: 1, settleMs: { dist: 'fixed', ms: 60_000 } } },
    });
    const id = await reserve('alice');
    await store.startPayment(id, '', Date.now(), false);
    const r1 = await call(mocks.urls.bank, 'POST', '/v1/payments', {
      orderId: id,
      amount: PRICE,
      currency: 'CNY',
      card: { number: '4242424242424242' },
    });
    expect(r1.status).toBe(202);
    const r = await run();
    expect(r.quiescent).toBe(false);
    expect(r.totals).toMatchObject({ pendingAtGateway: 1, stuckProcessing: 1 });
    expect(r.notes.join('\n')).toMatch(/not quiescent/);
  });

  it('never passes what it cannot read: unreadable statements give ok null with a note', async () => {
    await paid('alice');
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const r = await run({ bank: nowhere, coupon: nowhere, attempts: 1, probeGateways: false });
    expect(r.violated, formatAudit(r)).toEqual([]);
    expect(r.unchecked).toEqual(['I5', 'I6', 'I7', 'I8', 'I9', 'I10', 'I11']);
    for (const id of r.unchecked) {
      expect(r.byId[id].ok).toBeNull();
      expect(r.byId[id].note).toBeTruthy();
    }
    expect(r.notes.join('\n')).toMatch(/statement could not be read/);
    expect(r.notes.join('\n')).toMatch(/quiescence not verified/);
  });

  it('ignores ledger entries of other sales, and says so', async () => {
    await paid('alice');
    await bankCapture('other-sku.abc');
    const r = await run();
    expectOnly(r, []);
    expect(r.notes.join('\n')).toMatch(/1 ledger entries for orders outside the audited SKUs/);
  });
});
