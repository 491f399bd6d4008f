// Captures against orders, from the bank and wallet ledgers: I5 (at most one
// net capture per order, of the order's amount), I6 (every net capture is the
// payment of a paid order), I7 (every paid order has exactly one net capture,
// its own) and I11 (reconciliation: the overage is I6's captures, the shortage
// I7's paid orders without one, and paid orders whose one capture is of another
// amount). The same walk over an order's captures hands
// each capture to I9 (./late-payments.ts).
//
// A capture is "net" while it is not refunded in full. When a statement could
// not be read, I5, I6, I7, I9 and I11 are undecided.
import { Breaks, decided, undecided } from './breaks.ts';
import type { AuditContext, AuditedOrder, Ledgers } from './inputs.ts';
import { LatePayments } from './late-payments.ts';
import type { AuditTotals, InvariantResult } from './report.ts';

type CaptureTotals = Pick<
  AuditTotals,
  | 'doubleCharges'
  | 'capturesWithoutPaidOrder'
  | 'paidWithoutCapture'
  | 'refundedCaptures'
  | 'overage'
  | 'overageAmount'
  | 'shortage'
  | 'shortageAmount'
  | 'amountMismatches'
  | 'amountMismatchAmount'
  | 'captures'
>;

/** What an order's walk over its net captures found. */
interface OwnCaptures {
  /** Net captures of the order. */
  live: number;
  /** Those of its own payment reference. */
  owned: number;
  /** The last of those walked (the oldest), -1 when none. */
  own: number;
}

/** Net captures without a paid order (and their amount), and captures refunded in full. */
interface Unmatched {
  unmatched: number;
  amount: number;
  refunded: number;
}
const noUnmatched = (): Unmatched => ({ unmatched: 0, amount: 0, refunded: 0 });

export class CaptureCheck {
  private readonly i5: Breaks;
  private readonly i6: Breaks;
  private readonly i7: Breaks;
  private readonly i11: Breaks;
  private readonly late: LatePayments;
  private paidWithoutCapture = 0;
  private shortageAmount = 0;
  private amountMismatches = 0;
  /** Captured more, and less, than the order amount, summed over the amount mismatches. */
  private overcharged = 0;
  private undercharged = 0;

  constructor(
    ctx: AuditContext,
    private readonly ledgers: Ledgers,
  ) {
    this.i5 = new Breaks(ctx.max);
    this.i6 = new Breaks(ctx.max);
    this.i7 = new Breaks(ctx.max);
    this.i11 = new Breaks(ctx.max);
    this.late = new LatePayments(ctx, ledgers.cap);
  }

  /** Check an order's captures; returns its own net capture (for I4), -1 when none. */
  order(o: AuditedOrder): number {
    if (this.ledgers.error !== undefined) return -1;
    const { cap } = this.ledgers;
    this.late.order(o);
    const found: OwnCaptures = { live: 0, owned: 0, own: -1 };
    for (const i of cap.of(o.id)) {
      this.late.capture(o, i);
      if (!cap.net(i)) continue;
      found.live += 1;
      // I5: a net capture of another amount than the order's.
      if (cap.left(i) !== o.amount) this.i5.add(o.id);
      if (cap.ref[i] === o.paymentRef) {
        found.owned += 1;
        found.own = i;
        if (o.state === 'paid') cap.match(i);
      }
    }
    if (o.state === 'paid') this.paidOrder(o, found);
    return found.own;
  }

  /** I7 and I11 (shortage): a paid order has exactly one net capture, its own. */
  private paidOrder(o: AuditedOrder, { live, owned, own }: OwnCaptures) {
    if (owned === 0) {
      this.paidWithoutCapture += 1;
      this.shortageAmount += o.amount;
      this.i11.add(`short:${o.id}`, o.id);
    }
    if (owned !== 1 || live !== 1) this.i7.add(o.id);
    else if (this.ledgers.cap.left(own) !== o.amount) {
      const diff = this.ledgers.cap.left(own) - o.amount;
      this.amountMismatches += 1;
      if (diff > 0) this.overcharged += diff;
      else this.undercharged -= diff;
      this.i11.add(`amount:${o.id}`, o.id);
    }
  }

  /** I5, I6, I7, I11 and I9 once every order has been read. */
  finish(counters: Record<string, number>) {
    if (this.ledgers.error !== undefined) return this.unreadable(this.ledgers.error, counters);
    const doubleCharges = this.doubleCharges();
    const unmatched = this.unmatchedCaptures();
    const results: InvariantResult[] = [
      decided(
        'I5',
        this.i5,
        `orders with more than one net capture (not fully refunded) across bank and wallet, or a net capture of another amount; ${unmatched.refunded} captures were refunded in full`,
      ),
      decided(
        'I6',
        this.i6,
        'net captures (bank and wallet) whose order is missing, not paid, or paid with another capture; count is captures',
      ),
      decided(
        'I7',
        this.i7,
        'paid orders without exactly one net capture, their own payment reference',
      ),
      decided(
        'I11',
        this.i11,
        `overage: ${unmatched.unmatched} captures (${unmatched.amount}) without a paid order; shortage: ${this.paidWithoutCapture} paid orders (${this.shortageAmount}) without a capture; amount mismatches: ${this.amountMismatches} paid orders whose capture differs from the order amount (${this.overcharged + this.undercharged}: ${this.overcharged} captured over, ${this.undercharged} under); count is those captures and orders`,
      ),
      this.late.result(counters),
    ];
    const totals = {
      ...this.captureTotals(doubleCharges, unmatched),
      ...this.late.totals(counters),
    };
    return { results, totals };
  }

  /** A statement could not be read: the ledger invariants are undecided. */
  private unreadable(error: string, counters: Record<string, number>) {
    const note = `statements unreadable: ${error}`;
    const results = (['I5', 'I6', 'I7', 'I9', 'I11'] as const).map((id) => undecided(id, note));
    const totals = { ...this.captureTotals(0, noUnmatched()), ...this.late.totals(counters) };
    return { results, totals };
  }

  /** I5: orders with more than one net capture (whether or not the order exists). */
  private doubleCharges() {
    const { cap } = this.ledgers;
    let doubleCharges = 0;
    for (const [orderId] of cap.head) {
      let live = 0;
      for (const i of cap.of(orderId)) if (cap.net(i)) live += 1;
      if (live > 1) {
        doubleCharges += 1;
        this.i5.add(orderId);
      }
    }
    return doubleCharges;
  }

  /** I6 and I11 (overage): net captures no paid order named as its payment. */
  private unmatchedCaptures(): Unmatched {
    const { cap } = this.ledgers;
    const out = noUnmatched();
    for (let i = 0; i < cap.size; i++) {
      if (!cap.net(i)) {
        out.refunded += 1;
        continue;
      }
      if (cap.matched(i)) continue;
      out.unmatched += 1;
      out.amount += cap.left(i);
      this.i6.add(cap.key(i), cap.orderId[i]);
      this.i11.add(`over:${cap.key(i)}`, cap.orderId[i]);
    }
    return out;
  }

  private captureTotals(doubleCharges: number, u: Unmatched): CaptureTotals {
    return {
      doubleCharges,
      capturesWithoutPaidOrder: u.unmatched,
      paidWithoutCapture: this.paidWithoutCapture,
      refundedCaptures: u.refunded,
      overage: u.unmatched,
      overageAmount: u.amount,
      shortage: this.paidWithoutCapture,
      shortageAmount: this.shortageAmount,
      amountMismatches: this.amountMismatches,
      amountMismatchAmount: this.overcharged + this.undercharged,
      captures: this.ledgers.cap.size,
    };
  }
}
