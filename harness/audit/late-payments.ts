// I9, late payments: a capture that landed after its order ended, or that
// re-reserved a gone order. Each must be refunded or re-reserved, and counted
// by the checkout (its late_rereserved and late_refund counters). The capture
// walk of ./captures.ts hands each order and each of its captures here.
//
// An order a late capture revived is paid (or refunded since) with `endedAt`
// still set, as release.lua left it, and without the `lateFrom` of confirm.lua's
// re-reservation: its stock came back without being reserved again. It is a
// late payment and a break, whether or not a capture of it is in the ledgers.
import { Breaks, decided } from './breaks.ts';
import type { CaptureIndex } from './capture-index.ts';
import { ENDED, type AuditContext, type AuditedOrder } from './inputs.ts';
import type { AuditTotals, InvariantResult } from './report.ts';

type LateTotals = Pick<
  AuditTotals,
  | 'latePayments'
  | 'latePaymentsCounted'
  | 'latePaymentsRefunded'
  | 'latePaymentsRereserved'
  | 'latePaymentsRevived'
>;

export class LatePayments {
  private late = 0;
  private refunded = 0;
  private rereserved = 0;
  private revived = 0;
  private readonly i9: Breaks;

  constructor(
    ctx: AuditContext,
    private readonly cap: CaptureIndex,
  ) {
    this.i9 = new Breaks(ctx.max);
  }

  /** Order `o` (once): paid again after it ended, without a re-reservation? */
  order(o: AuditedOrder) {
    const paidOrRefunded = o.state === 'paid' || o.state === 'refunded';
    if (!paidOrRefunded || o.endedAt === undefined || o.lateFrom !== undefined) return;
    this.late += 1;
    this.revived += 1;
    this.i9.add(`revived\u0000${o.id}`, o.id);
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
      latePaymentsRevived: this.revived,
    };
  }

  /** I9 (call once): late captures neither refunded nor re-reserved, revived orders, plus late payments the checkout did not count. */
  result(counters: Record<string, number>): InvariantResult {
    const latePaymentsCounted = counted(counters);
    const uncounted = Math.max(0, this.late - latePaymentsCounted);
    this.i9.addUnnamed(uncounted);
    return decided(
      'I9',
      this.i9,
      `${this.late} late payments (${this.refunded} refunded, ${this.rereserved} re-reserved, ${this.revived} revived an ended order without re-reserving it), ${latePaymentsCounted} counted by the checkout${uncounted ? `; ${uncounted} not counted` : ''}; count is late captures neither refunded nor re-reserved, revived orders, and uncounted late payments`,
    );
  }
}

/** Late payments the checkout counted. */
function counted(counters: Record<string, number>) {
  return (counters.late_rereserved ?? 0) + (counters.late_refund ?? 0);
}
