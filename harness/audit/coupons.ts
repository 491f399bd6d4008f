// Coupons: I8 (a coupon is consumed at most once; a paid order used its
// coupon, an order that ended gave it back; a LOCKED coupon is held by an open
// order, a USED one by a paid order). The order's side is checked as each
// order is read; the coupon's side once every order's state is known.
import { OPEN_STATES, type OrderState } from '../../checkout/store.ts';
import { Breaks, decided, undecided } from './breaks.ts';
import { ENDED, type AuditContext, type AuditedOrder, type Coupons } from './inputs.ts';
import type { AuditTotals, InvariantResult } from './report.ts';

export class CouponCheck {
  /** The state of each order holding a coupon (absent: no such order). */
  private readonly holders = new Map<string, OrderState | undefined>();
  private readonly i8: Breaks;
  /** Orders naming a coupon the coupon service does not know. */
  private missingCoupons = 0;

  constructor(
    ctx: AuditContext,
    private readonly read: Coupons,
  ) {
    this.i8 = new Breaks(ctx.max);
    for (const c of read.coupons?.values() ?? [])
      if (c.orderId) this.holders.set(c.orderId, undefined);
  }

  /** I8, the order's side: a paid order used its coupon; an ended one gave it back. */
  order(o: AuditedOrder) {
    if (this.holders.has(o.id)) this.holders.set(o.id, o.state);
    const { coupons } = this.read;
    if (!coupons || !o.coupon) return;
    const c = coupons.get(o.coupon);
    if (!c) {
      this.missingCoupons += 1;
      return;
    }
    if (o.state === 'paid' && !(c.state === 'USED' && c.orderId === o.id))
      this.i8.add(c.code, o.id);
    if (ENDED.includes(o.state) && c.orderId === o.id && c.state !== 'ISSUED')
      this.i8.add(c.code, o.id);
  }

  /** I8, the coupon's side. */
  finish(): { result: InvariantResult; totals: Pick<AuditTotals, 'couponLeaks'> } {
    const { coupons, error } = this.read;
    let couponLeaks = 0;
    if (!coupons)
      return {
        result: undecided('I8', `coupon statement unreadable: ${error}`),
        totals: { couponLeaks },
      };
    for (const c of coupons.values()) {
      if (c.consumed > 1) this.i8.add(c.code, c.orderId);
      const holder = c.orderId ? this.holders.get(c.orderId) : undefined;
      if (c.state === 'LOCKED' && !(holder !== undefined && OPEN_STATES.includes(holder))) {
        couponLeaks += 1;
        this.i8.add(c.code, c.orderId ?? c.code);
      }
      if (c.state === 'USED' && holder !== 'paid') this.i8.add(c.code, c.orderId ?? c.code);
    }
    const result = decided(
      'I8',
      this.i8,
      `coupons consumed twice, LOCKED by an order that is not open (${couponLeaks} leaks), USED by an order that is not paid, or not USED by the paid order that applied them; count is coupons${this.missingCoupons ? `; ${this.missingCoupons} orders name a coupon the coupon service does not know` : ''}`,
    );
    return { result, totals: { couponLeaks } };
  }
}
