// The bank's domain: payments, declines, velocity risk control, asynchronous
// settlement, refunds and the statement (the ledger reconciliation reads).
// No HTTP here; ./service.ts maps these results onto routes.
import type { ChaosEngine } from '../chaos/engine.ts';
import { sampleLatency } from '../chaos/latency.ts';
import type { Draws } from '../chaos/rng.ts';
import { HttpError, ValidationError } from '../errors.ts';
import { cardBehaviour, cardBrand, DECLINE_MESSAGES, type BankDeclineReason } from './cards.ts';
import {
  DEFAULT_AMOUNT_LIMIT,
  DEFAULT_SETTLE,
  DEFAULT_VELOCITY,
  type BankExtra,
  type PaymentInput,
  type RefundInput,
} from './schema.ts';
import { statement, type LedgerView, type StatementQuery } from '../ledger.ts';
import { TimeScale } from '../time-scale.ts';

export type PaymentStatus = 'succeeded' | 'processing' | 'declined' | 'failed';

export interface Payment {
  id: string;
  object: 'payment';
  orderId: string;
  userId?: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  captured: boolean;
  amountRefunded: number;
  reason?: string;
  message?: string;
  card: { brand: string; last4: string };
  createdAt: string;
  settledAt?: string;
}

export interface Refund {
  id: string;
  object: 'refund';
  paymentId: string;
  orderId: string;
  amount: number;
  currency: string;
  status: 'succeeded';
  reason?: string;
  createdAt: string;
}

export interface StatementEntry {
  type: 'capture' | 'refund';
  id: string;
  paymentId: string;
  orderId: string;
  amount: number;
  currency: string;
  at: string;
}

/** The bank's ledger holds payments (captures, at settlement) and refunds; entries are built per page. */
const BANK_LEDGER: LedgerView<Payment | Refund, StatementEntry> = {
  type: (e) => (e.object === 'payment' ? 'capture' : 'refund'),
  amount: (e) => e.amount,
  at: (e) => (e.object === 'payment' ? e.settledAt! : e.createdAt),
  entry: (e) =>
    e.object === 'payment'
      ? {
          type: 'capture',
          id: e.id,
          paymentId: e.id,
          orderId: e.orderId,
          amount: e.amount,
          currency: e.currency,
          at: e.settledAt!,
        }
      : {
          type: 'refund',
          id: e.id,
          paymentId: e.paymentId,
          orderId: e.orderId,
          amount: e.amount,
          currency: e.currency,
          at: e.createdAt,
        },
};

/** HTTP status for a payment answer: 200 settled, 202 processing, 402 declined. */
export function paymentStatusCode(p: Payment): number {
  if (p.status === 'processing') return 202;
  if (p.status === 'declined' || p.status === 'failed') return 402;
  return 200;
}

export class Bank {
  private payments = new Map<string, Payment>();
  private byOrder = new Map<string, string[]>();
  private refunds = new Map<string, Refund>();
  /** Captured payments and refunds in the order they happened; statement entries are made from them when asked. */
  private ledger: (Payment | Refund)[] = [];
  private attempts = new Map<string, number[]>();
  private timers = new Set<NodeJS.Timeout>();
  private seq = 0;

  private readonly clock: () => number;
  /** The run's time-scale: multiplies the velocity window and the settlement delay (world durations). */
  private readonly timeScale: TimeScale;

  constructor(
    readonly engine: ChaosEngine<BankExtra>,
    opts: { clock?: () => number; timeScale?: TimeScale } = {},
  ) {
    this.clock = opts.clock ?? Date.now;
    this.timeScale = opts.timeScale ?? new TimeScale();
  }

  private extra(): BankExtra {
    return this.engine.effective('payments.create').extra ?? {};
  }

  private nextId(prefix: string): string {
    this.seq += 1;
    return `${prefix}_${String(this.seq).padStart(8, '0')}`;
  }

  private lastMs = NaN;
  private lastIso = '';

  /** Now as ISO 8601; the string is reused within one millisecond (toISOString is not cheap). */
  private iso(): string {
    const ms = this.clock();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastIso = new Date(ms).toISOString();
    }
    return this.lastIso;
  }

  /** Count this attempt and say whether risk control declines it. */
  private velocityExceeded(input: PaymentInput, extra: BankExtra): boolean {
    const v = extra.velocity;
    if (v === false) return false;
    const cfg = v ?? DEFAULT_VELOCITY;
    const now = this.clock();
    // The window is a world duration (how fast a shopper re-clicks): scaled with the run.
    const windowMs = this.timeScale.ms(cfg.windowMs);
    // Keep only the last max+1 attempt times per key: enough to decide, bounded in memory.
    const check = (key: string, max: number | undefined) => {
      if (max === undefined) return false;
      const list = (this.attempts.get(key) ?? []).filter((t) => now - t < windowMs);
      list.push(now);
      if (list.length > max + 1) list.splice(0, list.length - (max + 1));
      this.attempts.set(key, list);
      return list.length > max;
    };
    const byUser = input.userId ? check(`user:${input.userId}`, cfg.maxPerUser) : false;
    const byCard = check(
      `card:${input.card.number}`,
      'maxPerCard' in cfg ? cfg.maxPerCard : undefined,
    );
    return byUser || byCard;
  }

  private record(p: Payment): Payment {
    this.payments.set(p.id, p);
    const list = this.byOrder.get(p.orderId);
    if (list) list.push(p.id);
    else this.byOrder.set(p.orderId, [p.id]);
    return p;
  }

  private newPayment(
    input: PaymentInput,
    status: PaymentStatus,
    reason?: string,
    at = this.iso(),
  ): Payment {
    // Every payment has every field (undefined ones are left out of JSON): one object
    // shape for all, which keeps the code that reads them fast.
    return {
      id: this.nextId('pay'),
      object: 'payment',
      orderId: input.orderId,
      userId: input.userId,
      amount: input.amount,
      currency: input.currency,
      status,
      captured: false,
      amountRefunded: 0,
      reason,
      message: reason ? (DECLINE_MESSAGES[reason as BankDeclineReason] ?? reason) : undefined,
      card: { brand: cardBrand(input.card.number), last4: input.card.number.slice(-4) },
      createdAt: at,
      settledAt: undefined,
    };
  }

  private capture(p: Payment, at = this.iso()) {
    p.status = 'succeeded';
    p.captured = true;
    p.settledAt = at;
    this.ledger.push(p);
  }

  /** A declined payment, recorded (as banks do) and returned. */
  decline(input: PaymentInput, reason: BankDeclineReason): Payment {
    return this.record(this.newPayment(input, 'declined', reason));
  }

  /**
   * `domain`: the request's draws (engine.draws('bank.processing', key): keyed
   * by its order id and attempt); default the arrival-order stream. Three
   * values are drawn for every payment, first, whatever the outcome, so an
   * arrival-order sequence depends only on the seed and the request order.
   */
  createPayment(input: PaymentInput, domain: Draws = this.engine.rng('bank.processing')): Payment {
    const extra = this.extra();
    const proc = extra.processing;
    const u = domain.next();
    // Settlement happens after the answer (202), in the world's time: scaled with the run.
    const settleMs = this.timeScale.ms(sampleLatency(proc?.settleMs ?? DEFAULT_SETTLE, domain));
    const fails = domain.next() < (proc?.failRate ?? 0);
    const velocity = this.velocityExceeded(input, extra);
    const behaviour = cardBehaviour(input.card.number);
    if (behaviour.outcome === 'decline') return this.decline(input, behaviour.reason);
    if (velocity) return this.decline(input, 'card_velocity_exceeded');
    if (input.amount > (extra.amountLimit ?? DEFAULT_AMOUNT_LIMIT))
      return this.decline(input, 'amount_too_large');

    const processing = behaviour.outcome === 'processing' || (proc !== undefined && u < proc.rate);
    // A payment captured at once is created and settled at the same instant.
    const at = this.iso();
    const p = this.record(
      this.newPayment(input, processing ? 'processing' : 'succeeded', undefined, at),
    );
    if (!processing) {
      this.capture(p, at);
      return p;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (p.status !== 'processing') return;
      if (fails && behaviour.outcome !== 'processing') {
        p.status = 'failed';
        p.reason = 'processing_error';
        p.message = DECLINE_MESSAGES.processing_error;
        p.settledAt = this.iso();
      } else this.capture(p);
    }, settleMs);
    this.timers.add(t);
    return p;
  }

  /** The order id of payment `id`, if there is one. */
  orderOf(id: string): string | undefined {
    return this.payments.get(id)?.orderId;
  }

  getPayment(id: string): Payment {
    const p = this.payments.get(id);
    if (!p) throw new HttpError(404, 'payment_not_found', `no payment ${id}`);
    return p;
  }

  listByOrder(orderId: string): Payment[] {
    return (this.byOrder.get(orderId) ?? []).map((id) => this.payments.get(id)!);
  }

  refund(input: RefundInput): Refund {
    const p = this.getPayment(input.paymentId);
    if (!p.captured)
      throw new HttpError(
        409,
        'payment_not_captured',
        `payment ${p.id} is ${p.status}; only captured payments can be refunded`,
      );
    const refundable = p.amount - p.amountRefunded;
    const amount = input.amount ?? refundable;
    if (refundable === 0)
      throw new HttpError(409, 'already_refunded', `payment ${p.id} is already fully refunded`);
    if (amount > refundable)
      throw new ValidationError([
        { field: 'amount', reason: `exceeds the refundable amount (${refundable})` },
      ]);
    p.amountRefunded += amount;
    const r: Refund = {
      id: this.nextId('re'),
      object: 'refund',
      paymentId: p.id,
      orderId: p.orderId,
      amount,
      currency: p.currency,
      status: 'succeeded',
      ...(input.reason ? { reason: input.reason } : {}),
      createdAt: this.iso(),
    };
    this.refunds.set(r.id, r);
    this.ledger.push(r);
    return r;
  }

  /** Every capture and refund, with totals; a page of them with `limit` (see mock-gateways/ledger.ts). */
  statement(q: StatementQuery = {}) {
    return statement('bank', this.ledger, BANK_LEDGER, this.iso(), q);
  }

  reset(): void {
    this.close();
    this.payments = new Map();
    this.byOrder = new Map();
    this.refunds = new Map();
    this.ledger = [];
    this.attempts = new Map();
    this.seq = 0;
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
