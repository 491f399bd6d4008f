// What the audit answers: the invariants (ids and names), one result per
// invariant, the totals the budgets read (docs/BUDGETS.md), the report that
// holds them, and the options an audit takes. `formatAudit` prints a report.
import type { Store } from '../../checkout/store.ts';

export const INVARIANT_IDS = [
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
] as const;
export type InvariantId = (typeof INVARIANT_IDS)[number];

export const INVARIANT_NAMES: Record<InvariantId, string> = {
  I1: 'sold + reserved + available = initial stock',
  I2: 'no oversell: available never below 0',
  I3: 'after quiescence every reservation is sold or released (no stock-lock leak)',
  I4: 'at most the per-user limit of paid units per (user, SKU)',
  I5: 'at most one capture per order; captured amount equals the order amount',
  I6: 'every capture maps to one paid order or a refund',
  I7: 'every paid order has exactly one capture',
  I8: 'a coupon is used at most once; a failed or expired order returns it',
  I9: 'a payment landing after its order ended never revives stock: refunded or re-reserved, and counted',
  I10: 'the same idempotency key replays the same answer; another payload under it is 422',
  I11: 'the statements and the orders reconcile: zero overage, zero shortage',
};

export interface InvariantResult {
  id: InvariantId;
  name: string;
  /** true: holds; false: broken (see count and examples); null: the data cannot decide (see note). */
  ok: boolean | null;
  /**
   * Number of breaks (orders, captures, coupons or SKUs, as the note says):
   * all of them, however few examples are kept.
   */
  count: number;
  /**
   * Up to `maxExamples` breaks, one example each (an order id; a description of
   * a SKU where no order explains the break). So `count - examples shown` is how
   * many more there are.
   */
  examples: string[];
  note?: string;
}

export interface AuditTotals {
  /**
   * Holders of leaked stock: open orders past their deadline, ended orders
   * (failed, expired, cancelled) whose reservation was never released, and one
   * per SKU whose leaked units no order explains. Zero whenever nothing leaked.
   */
  stockLeaks: number;
  /** Every leaked unit: the units of those orders plus the units no order explains. */
  stockLeakUnits: number;
  /** Open orders past their deadline (of stockLeaks). */
  stockLeakOrdersOpen: number;
  /** Ended orders still holding their reservation (of stockLeaks). */
  stockLeakOrdersEnded: number;
  /** Reserved units no open or ended order explains (of stockLeakUnits). */
  stockLeakUnitsUnknown: number;
  /** Units sold or reserved beyond the initial stock: per SKU max(0, sold - initial, -available), summed (I2). */
  oversoldUnits: number;
  /** LOCKED coupons whose order is not open (missing, paid, failed, expired, cancelled). */
  couponLeaks: number;
  /** Orders with more than one net capture (not fully refunded) across bank and wallet. */
  doubleCharges: number;
  /** Net captures that map to no paid order (the order is missing or not paid, or paid with another capture). */
  capturesWithoutPaidOrder: number;
  /** Paid orders without a net capture of their payment reference. */
  paidWithoutCapture: number;
  /**
   * Captures that landed after their order ended (observed in the ledgers), or
   * re-reserved a gone order, or revived one (paid with no re-reservation).
   */
  latePayments: number;
  /** Late payments the checkout counted (its late_rereserved + late_refund counters). */
  latePaymentsCounted: number;
  latePaymentsRefunded: number;
  latePaymentsRereserved: number;
  /** Ended orders a late capture turned paid without re-reserving their stock (of latePayments; I9). */
  latePaymentsRevived: number;
  /** Orders still in paying (after quiescence: stuck between the gateway and the checkout). */
  stuckProcessing: number;
  /** Orders whose gateway payment is still processing (the run is not quiescent while > 0). */
  pendingAtGateway: number;
  /** Payment-stream entries read and never acknowledged (a dead consumer's, not claimed). */
  streamPending: number;
  /** Captures that were refunded in full (extra, late or double captures repaired). */
  refundedCaptures: number;
  /** Net captures without a paid order (I11), and their amount (minor units). */
  overage: number;
  overageAmount: number;
  /** Paid orders without a net capture (I11), and their amount (minor units). */
  shortage: number;
  shortageAmount: number;
  /** Paid orders whose one net capture is of another amount than the order's (I11). */
  amountMismatches: number;
  /** The money those differ by, summed: |captured - order amount| (minor units). */
  amountMismatchAmount: number;
  orders: number;
  paidOrders: number;
  captures: number;
}

export interface AuditReport {
  at: string;
  skus: string[];
  invariants: InvariantResult[];
  byId: Record<InvariantId, InvariantResult>;
  totals: AuditTotals;
  /** Ids of broken invariants. */
  violated: InvariantId[];
  /** Ids the data could not decide (ok: null). */
  unchecked: InvariantId[];
  /** No invariant is broken (the unchecked ones are listed in `unchecked`). */
  ok: boolean;
  /** False when a gateway still has a payment processing for an order of this sale. */
  quiescent: boolean;
  notes: string[];
}

export interface AuditOptions {
  store: Store;
  /** Base URLs of the mocks. */
  bank: string;
  wallet: string;
  coupon: string;
  /** SKUs to audit (default: every SKU of the store's sale). */
  skus?: string[];
  /** Time of the audit, ms since epoch (default now). */
  now?: number;
  /** Order ids per invariant (default 10). */
  maxExamples?: number;
  /** An open order is a leak only once its deadline is this far in the past (default 0). */
  graceMs?: number;
  /** Only ledger entries at or after this ISO time (statements' `since`). */
  since?: string;
  /** Coupon campaign of the sale (narrows the coupon statement). */
  campaignId?: string;
  /** Ask the bank and wallet about orders in paying and ended orders that tried to pay (default true). */
  probeGateways?: boolean;
  /** At most this many such queries (default 500); more are noted, not made. */
  probeLimit?: number;
  /** Attempts per HTTP read (default 5): the mocks may still be under chaos. */
  attempts?: number;
  /** Statement entries (and coupons) per page read, and the SCAN COUNT of the order reads (default 5000). */
  pageSize?: number;
}

/** A one-line summary per invariant, for logs and test failure messages. */
export function formatAudit(r: AuditReport): string {
  const lines = r.invariants.map(
    (i) =>
      `${i.id} ${i.ok === null ? 'n/a ' : i.ok ? 'ok  ' : 'FAIL'} ${i.count}${i.examples.length ? ` [${i.examples.join(', ')}]` : ''}${i.note && i.ok !== true ? ` (${i.note})` : ''}`,
  );
  return [...lines, `totals ${JSON.stringify(r.totals)}`, ...r.notes.map((n) => `note: ${n}`)].join(
    '\n',
  );
}

/** Put `result` in the report in place of the audit's result for its invariant (violated, unchecked and ok follow). */
export function replaceInvariant(report: AuditReport, result: InvariantResult): void {
  report.invariants = report.invariants.map((i) => (i.id === result.id ? result : i));
  report.byId[result.id] = result;
  report.violated = report.invariants.filter((i) => i.ok === false).map((i) => i.id);
  report.unchecked = report.invariants.filter((i) => i.ok === null).map((i) => i.id);
  report.ok = report.violated.length === 0;
}
