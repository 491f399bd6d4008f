// I9, late payments: a capture that landed after its order ended, or that
// re-reserved a gone order. Each must be refunded or re-reserved, and counted
// by the checkout (its late_rereserved and late_refund counters). The capture
// walk of ./captures.ts hands each capture of each order here.
import { Breaks, decided } from './breaks.ts';
import type { CaptureIndex } from './capture-index.ts';
import { ENDED, type AuditContext, type AuditedOrder } from './inputs.ts';
import type { AuditTotals, InvariantResult } from './report.ts';

type LateTotals = Pick<
  AuditTotals,
  'latePayments' | 'latePaymentsCounted' | 'latePaymentsRefunded' | 'latePaymentsRereserved'
>;

export class LatePayments {
  private late = 0;
  private refunded = 0;
  private rereserved = 0;
  private readonly i9: Breaks;

  constructor(
    ctx: AuditContext,
    private readonly cap: CaptureIndex,
  ) {
    this.i9 = new Breaks(ctx.max);
  }

  /** Capture `i` of order `o`: late when it landed after the order ended, or re-reserved it. */
  capture(o: AuditedOrder, i: number) {
    const { cap } = this;
    const endedBefore =
      ENDED.includes(o.state) && o.endedAt !== undefined && cap.at(i) >= o.endedAt;
    const rereserved =
      o.state === 'paid' && o.lateFrom !== undefined && o.paymentRef === cap.ref[i];
    if (!endedBefore && !rereserved) return;
    this.late += 1;
    if (rereserved) this.rereserved += 1;
    else if (!cap.net(i)) this.refunded += 1;
    else this.i9.add(cap.key(i), o.id);
  }

  totals(counters: Record<string, number>): LateTotals {
    return {
      latePayments: this.late,
      latePaymentsCounted: counted(counters),
      latePaymentsRefunded: this.refunded,
      latePaymentsRereserved: this.rereserved,
    };
  }

  /** I9 (call once): late captures neither refunded nor re-reserved, plus those the checkout did not count. */
  result(counters: Record<string, number>): InvariantResult {
    const latePaymentsCounted = counted(counters);
    const uncounted = Math.max(0, this.late - latePaymentsCounted);
    if (uncounted > 0) this.i9.count += uncounted;
    return decided(
      'I9',
      this.i9,
      `${this.late} late payments in the ledgers (${this.refunded} refunded, ${this.rereserved} re-reserved), ${latePaymentsCounted} counted by the checkout${uncounted ? `; ${uncounted} not counted` : ''}; count is late captures neither refunded nor re-reserved plus uncounted ones`,
    );
  }
}

/** Late payments the checkout counted. */
function counted(counters: Record<string, number>) {
  return (counters.late_rereserved ?? 0) + (counters.late_refund ?? 0);
}
