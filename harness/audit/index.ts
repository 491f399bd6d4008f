// The invariant audit (I1-I11 of the brief): read the checkout's Redis (stock
// counters, orders, counters per SKU) and the mocks' ledgers (bank and wallet
// statements, the coupon statement; payment and trade queries for orders that
// may still be moving), and say for each invariant whether it holds, how many
// breaks there are and which orders show them. An invariant the data cannot
// decide is `ok: null` with a note, never a silent pass.
//
// Run `audit()` after quiescence (no traffic, the sweeper and the reconciler
// have run, the gateways have settled); `snapshotI1()` is cheap enough to run
// continuously while orders are in flight. The audit assumes the mocks'
// ledgers (since `since`) hold only this sale's payments: ledger entries for
// order ids of other SKUs are ignored and counted in a note.
//
// The modules, in the order `audit()` uses them:
//   report.ts            the report, its totals and the options; formatAudit
//   inputs.ts            reading: Redis counters, statements, the order batches
//   capture-index.ts     the column index of the sale's captures
//   http.ts              JSON GETs with retries, statement pages, bounded fan-out
//   breaks.ts            counting breaks and examples; an invariant's result
//   stock.ts             I1, I2 (oversold units, by order), I3 (every leaked unit, by order); snapshotI1
//   quiescence.ts        orders stuck in paying; gateway probes
//   captures.ts          I5, I6, I7, I11 (double charges, overage, shortage, amount mismatches)
//   late-payments.ts     I9 (late captures, revived orders)
//   orders-and-users.ts  order counts; I4 (per-user limit)
//   coupons.ts           I8
//   stream.ts            payment-stream entries read and never acknowledged (a leak)
//   idempotency.ts       I10 (not observable here; `flashcrowd run` decides it)
//   ticks.ts             I1 and I2 at every collector tick (merged by `flashcrowd run`)
import { undecided } from './breaks.ts';
import { CaptureCheck } from './captures.ts';
import { CouponCheck } from './coupons.ts';
import { idempotencyResult } from './idempotency.ts';
import {
  auditContext,
  forEachOrder,
  readCoupons,
  readLedgers,
  readSaleCounters,
  type AuditContext,
} from './inputs.ts';
import { OrdersAndUsers } from './orders-and-users.ts';
import { GatewayProbe } from './quiescence.ts';
import {
  INVARIANT_IDS,
  type AuditOptions,
  type AuditReport,
  type AuditTotals,
  type InvariantId,
  type InvariantResult,
} from './report.ts';
import { StockCheck } from './stock.ts';
import { streamPending } from './stream.ts';

export * from './report.ts';

/** Every invariant undecided, for a run whose audit could not run (and why). */
export function notAudited(reason: string): InvariantResult[] {
  return INVARIANT_IDS.map((id) => undecided(id, `not audited: ${reason}`));
}
export { snapshotI1, type I1Snapshot } from './stock.ts';

/**
 * Audit invariants I1-I11 over the store's sale and the mocks' ledgers.
 *
 * Memory stays bounded for a sale of any size that fits its captures: the
 * statements are read a page at a time into a column index of captures, the
 * orders one SCAN batch at a time, and each order is checked and dropped;
 * what outlives an order is a mark that it was read (to skip SCAN's repeats:
 * a flag in the capture index, or its id when it has no capture), its user
 * while it is paid (I4, by capture index), and the capture flags I6 needs.
 * A SKU whose reserved units no open order explains, or that is oversold, is
 * read a second time (./stock.ts) to name the orders holding those units.
 */
export async function audit(opts: AuditOptions): Promise<AuditReport> {
  // 1. Read the inputs: Redis counters, then the statements.
  const ctx = await auditContext(opts);
  const sale = await readSaleCounters(ctx);
  const ledgers = await readLedgers(ctx);
  const coupons = await readCoupons(ctx);

  // 2. Check each order once as its batch arrives.
  const stock = new StockCheck(ctx);
  const probe = new GatewayProbe(ctx);
  const captures = new CaptureCheck(ctx, ledgers);
  const users = new OrdersAndUsers(ctx, ledgers.cap);
  const couponCheck = new CouponCheck(ctx, coupons);
  await forEachOrder(ctx, ledgers.cap, (o) => {
    stock.order(o);
    probe.order(o);
    couponCheck.order(o);
    users.order(o, captures.order(o));
  });

  // 3. What the whole sale says: is anything still moving, then each family's verdict.
  const moving = await probe.finish();
  const s = await stock.finish(sale.snaps, moving.quiescent);
  const u = users.finish(sale.limits);
  const c = captures.finish(sale.counters);
  const k = couponCheck.finish();
  const stream = await streamPending(ctx);

  // 4. The report.
  const results = [...s.results, u.result, ...c.results, k.result, idempotencyResult()];
  const totals = {
    ...s.totals,
    ...k.totals,
    ...c.totals,
    ...moving.totals,
    ...u.totals,
    ...stream,
  };
  return report(ctx, results, totals, moving.quiescent);
}

function report(
  ctx: AuditContext,
  results: InvariantResult[],
  totals: AuditTotals,
  quiescent: boolean,
): AuditReport {
  const byId = {} as Record<InvariantId, InvariantResult>;
  for (const r of results) byId[r.id] = r;
  const invariants = INVARIANT_IDS.map((id) => byId[id]);
  const violated = invariants.filter((r) => r.ok === false).map((r) => r.id);
  const unchecked = invariants.filter((r) => r.ok === null).map((r) => r.id);
  return {
    at: new Date(ctx.now).toISOString(),
    skus: ctx.skus,
    invariants,
    byId,
    totals: inReportOrder(totals),
    violated,
    unchecked,
    ok: violated.length === 0,
    quiescent,
    notes: ctx.notes,
  };
}

/** The totals in the order the reports and formatAudit have always printed them. */
function inReportOrder(t: AuditTotals): AuditTotals {
  return {
    stockLeaks: t.stockLeaks,
    stockLeakUnits: t.stockLeakUnits,
    stockLeakOrdersOpen: t.stockLeakOrdersOpen,
    stockLeakOrdersEnded: t.stockLeakOrdersEnded,
    stockLeakUnitsUnknown: t.stockLeakUnitsUnknown,
    oversoldUnits: t.oversoldUnits,
    couponLeaks: t.couponLeaks,
    doubleCharges: t.doubleCharges,
    capturesWithoutPaidOrder: t.capturesWithoutPaidOrder,
    paidWithoutCapture: t.paidWithoutCapture,
    latePayments: t.latePayments,
    latePaymentsCounted: t.latePaymentsCounted,
    latePaymentsRefunded: t.latePaymentsRefunded,
    latePaymentsRereserved: t.latePaymentsRereserved,
    latePaymentsRevived: t.latePaymentsRevived,
    stuckProcessing: t.stuckProcessing,
    pendingAtGateway: t.pendingAtGateway,
    streamPending: t.streamPending,
    refundedCaptures: t.refundedCaptures,
    overage: t.overage,
    overageAmount: t.overageAmount,
    shortage: t.shortage,
    shortageAmount: t.shortageAmount,
    amountMismatches: t.amountMismatches,
    amountMismatchAmount: t.amountMismatchAmount,
    orders: t.orders,
    paidOrders: t.paidOrders,
    captures: t.captures,
  };
}
