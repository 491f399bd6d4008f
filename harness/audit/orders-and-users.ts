// The orders by themselves: how many were read, how many are paid, and I4 (at
// most the SKU's per-user limit of paid units per user and SKU).
//
// Memory: a user's paid units outlive their orders. One paid unit is one map
// entry pointing at the order's own capture in the capture index (which holds
// the order id already), or at the order id when it has none.
import { Breaks, decided } from './breaks.ts';
import type { CaptureIndex } from './capture-index.ts';
import type { AuditContext, AuditedOrder } from './inputs.ts';
import type { AuditTotals, InvariantResult } from './report.ts';

/** An order as I4 keeps it: the index of its own capture, or its id when it has none. */
type OrderRef = number | string;
/** Paid units per user of one SKU: a user's single paid unit, or the count and every order once there are more. */
type PaidUnits = Map<string, OrderRef | { qty: number; orders: OrderRef[] }>;

function addPaid(units: PaidUnits, o: AuditedOrder, ref: OrderRef) {
  const had = units.get(o.user);
  if (had === undefined && o.qty === 1) units.set(o.user, ref);
  else if (had === undefined) units.set(o.user, { qty: o.qty, orders: [ref] });
  else if (typeof had !== 'object') units.set(o.user, { qty: 1 + o.qty, orders: [had, ref] });
  else {
    had.qty += o.qty;
    had.orders.push(ref);
  }
}

export class OrdersAndUsers {
  private orders = 0;
  private paidOrders = 0;
  private readonly paidUnits: Map<string, PaidUnits>;

  constructor(
    private readonly ctx: AuditContext,
    private readonly cap: CaptureIndex,
  ) {
    this.paidUnits = new Map(ctx.skus.map((sku) => [sku, new Map()]));
  }

  /** `own`: the index of the order's own net capture, -1 when it has none (or the ledgers are unread). */
  order(o: AuditedOrder, own: number) {
    this.orders += 1;
    if (o.state !== 'paid') return;
    this.paidOrders += 1;
    const units = this.paidUnits.get(o.sku);
    if (units) addPaid(units, o, own >= 0 ? own : o.id);
  }

  finish(limits: Map<string, number>) {
    const i4 = new Breaks(this.ctx.max);
    let pairs = 0;
    for (const [sku, units] of this.paidUnits) {
      const limit = limits.get(sku) ?? 0;
      for (const [, u] of units)
        if (typeof u === 'object' && limit > 0 && u.qty > limit) {
          pairs += 1;
          for (const ref of u.orders) {
            const id = typeof ref === 'number' ? this.cap.orderId[ref]! : ref;
            i4.add(id);
          }
        }
    }
    const result: InvariantResult = decided(
      'I4',
      i4,
      `paid units per (user, SKU) against the SKU limit: ${pairs} (user, SKU) pairs over it; count is their paid orders`,
    );
    const totals: Pick<AuditTotals, 'orders' | 'paidOrders'> = {
      orders: this.orders,
      paidOrders: this.paidOrders,
    };
    return { result, totals };
  }
}
