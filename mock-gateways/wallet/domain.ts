// The wallet's domain: trades (Alipay/WeChat-like states), the buyer paying in
// the app, close, refunds, velocity risk control, the ledger and statement
// reconciliation reads, and the asynchronous notification of paid trades.
// No HTTP here; ./service.ts maps these results onto routes.
import type { ChaosEngine, DrawKey } from '../chaos/engine.ts';
import { sampleLatency } from '../chaos/latency.ts';
import type { LatencySpec } from '../chaos/profile.ts';
import { HttpError, ValidationError } from '../errors.ts';
import type { MockMetrics } from '../metrics.ts';
import { drawNotifyPlan, Notifier, type NoticeHandle, type NotifyConfig } from './notify.ts';
import {
  DECLINES,
  REFUSALS,
  subCode,
  type WalletDeclineReason,
  type WalletRefusal,
} from './reasons.ts';
import {
  DEFAULT_VELOCITY,
  type NotifyStyle,
  type PayInput,
  type RefundInput,
  type TradeInput,
  type TradeStatus,
  type WalletExtra,
} from './schema.ts';
import { plainView, statement, type StatementQuery } from '../ledger.ts';
import { TimeScale } from '../time-scale.ts';

export interface Trade {
  tradeNo: string;
  object: 'trade';
  outTradeNo: string;
  style: NotifyStyle;
  amount: number;
  currency: string;
  subject?: string;
  userId?: string;
  buyerId?: string;
  status: TradeStatus;
  amountRefunded: number;
  notifyUrl: string;
  /** Where the buyer "pays in the app" (POST). */
  payUrl: string;
  /** Why the last payment failed (PAYERROR), with the upstream code in `subCode`. */
  reason?: WalletDeclineReason;
  message?: string;
  subCode?: string;
  createdAt: string;
  updatedAt: string;
  paidAt?: string;
  closedAt?: string;
}

export interface Refund {
  refundNo: string;
  object: 'refund';
  tradeNo: string;
  outTradeNo: string;
  amount: number;
  currency: string;
  status: 'SUCCESS';
  reason?: string;
  createdAt: string;
}

export interface StatementEntry {
  type: 'capture' | 'refund';
  id: string;
  tradeNo: string;
  outTradeNo: string;
  amount: number;
  currency: string;
  at: string;
}

const WALLET_LEDGER = plainView<StatementEntry>();

export interface PayResult {
  /** The trade as it was when the payment settled. */
  trade: Trade;
  /** The notification of a SUCCESS; the caller releases it (before or after answering). */
  notice?: NoticeHandle;
}

export interface WalletDomainOptions {
  secret: string;
  /**
   * The run's time-scale: multiplies the velocity window, the notification
   * delay and reorder window, and (unless `notifyTimeScale` or the profile's
   * extra.notify.timeScale says otherwise) the retry schedule.
   */
  timeScale?: TimeScale;
  /** The retry schedule's time-scale when the profile gives none (default: `timeScale`). */
  notifyTimeScale?: number;
  /** Default deadline of one notification attempt. */
  notifyTimeoutMs: number;
  /** The service's base URL, for payUrl. */
  baseUrl: () => string;
  clock?: () => number;
}

const NO_DELAY: LatencySpec = { dist: 'fixed', ms: 0 };
/** The fields a re-create with the same outTradeNo must repeat. */
const SAME_TRADE_FIELDS = [
  'amount',
  'currency',
  'subject',
  'notifyUrl',
  'style',
  'userId',
] as const;

/** HTTP status for a pay answer: 200 SUCCESS, 402 PAYERROR. */
export function payStatusCode(t: Trade): number {
  return t.status === 'PAYERROR' ? 402 : 200;
}

export class Wallet {
  private trades = new Map<string, Trade>();
  private byOutTradeNo = new Map<string, string>();
  private refunds = new Map<string, Refund>();
  private ledger: StatementEntry[] = [];
  private attempts = new Map<string, number[]>();
  private pending = new Set<{ timer: NodeJS.Timeout; reject: (e: Error) => void }>();
  private tradeSeq = 0;
  private refundSeq = 0;
  private readonly clock: () => number;
  private readonly timeScale: TimeScale;
  readonly notifier: Notifier;

  constructor(
    readonly engine: ChaosEngine<WalletExtra>,
    metrics: MockMetrics,
    private readonly opts: WalletDomainOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
    this.timeScale = opts.timeScale ?? new TimeScale();
    this.notifier = new Notifier({
      metrics,
      secret: opts.secret,
      clock: this.clock,
      config: () => this.notifyConfig(),
    });
  }

  private extra(): WalletExtra {
    return this.engine.effective('trades.pay').extra ?? {};
  }

  notifyConfig(): NotifyConfig {
    const n = this.extra().notify ?? {};
    return {
      timeScale: n.timeScale ?? this.opts.notifyTimeScale ?? this.timeScale.value,
      worldScale: this.timeScale.value,
      lossRate: n.lossRate ?? 0,
      lostRate: n.lostRate ?? 0,
      duplicateRate: n.duplicateRate ?? 0,
      ...(n.reorder ? { reorder: n.reorder } : {}),
      notifyBeforeResponseRate: n.notifyBeforeResponseRate ?? 0,
      timeoutMs: n.timeoutMs ?? this.opts.notifyTimeoutMs,
    };
  }

  private iso(): string {
    return new Date(this.clock()).toISOString();
  }

  private refuse(reason: WalletRefusal, t: Trade, message: string): HttpError {
    return new HttpError(REFUSALS[reason].status, reason, message, {
      tradeNo: t.tradeNo,
      outTradeNo: t.outTradeNo,
      status: t.status,
      subCode: subCode(reason, t.style),
    });
  }

  /** Create a trade; the same outTradeNo with the same fields returns the existing one (created: false). */
  createTrade(input: TradeInput): { trade: Trade; created: boolean } {
    const existingNo = this.byOutTradeNo.get(input.outTradeNo);
    if (existingNo !== undefined) {
      const t = this.trades.get(existingNo)!;
      const fields = SAME_TRADE_FIELDS.filter((f) => t[f] !== input[f]);
      if (fields.length > 0)
        throw new HttpError(
          409,
          'out_trade_no_conflict',
          `outTradeNo "${input.outTradeNo}" is trade ${t.tradeNo} with other ${fields.join(', ')}`,
          { tradeNo: t.tradeNo, fields, subCode: subCode('out_trade_no_conflict', t.style) },
        );
      return { trade: t, created: false };
    }
    this.tradeSeq += 1;
    const tradeNo = `tr_${String(this.tradeSeq).padStart(8, '0')}`;
    const now = this.iso();
    const t: Trade = {
      tradeNo,
      object: 'trade',
      outTradeNo: input.outTradeNo,
      style: input.style,
      amount: input.amount,
      currency: input.currency,
      ...(input.subject !== undefined ? { subject: input.subject } : {}),
      ...(input.userId !== undefined ? { userId: input.userId } : {}),
      status: 'WAIT_BUYER_PAY',
      amountRefunded: 0,
      notifyUrl: input.notifyUrl,
      payUrl: `${this.opts.baseUrl()}/v1/trades/${tradeNo}/pay`,
      createdAt: now,
      updatedAt: now,
    };
    this.trades.set(tradeNo, t);
    this.byOutTradeNo.set(t.outTradeNo, tradeNo);
    return { trade: t, created: true };
  }

  getTrade(tradeNo: string): Trade {
    const t = this.trades.get(tradeNo);
    if (!t)
      throw new HttpError(404, 'trade_not_found', `no trade ${tradeNo}`, {
        tradeNo,
        subCode: 'ACQ.TRADE_NOT_EXIST',
      });
    return t;
  }

  /** The out-trade number of trade `tradeNo`, if there is one. */
  outTradeNoOf(tradeNo: string): string | undefined {
    return this.trades.get(tradeNo)?.outTradeNo;
  }

  findByOutTradeNo(outTradeNo: string): Trade[] {
    const no = this.byOutTradeNo.get(outTradeNo);
    return no === undefined ? [] : [this.trades.get(no)!];
  }

  /** Refuse a payment the trade's state does not allow (only WAIT_BUYER_PAY and PAYERROR may pay). */
  private assertPayable(t: Trade) {
    switch (t.status) {
      case 'CLOSED':
        throw this.refuse('trade_closed', t, `trade ${t.tradeNo} is closed; it cannot be paid`);
      case 'SUCCESS':
      case 'REFUND':
        throw this.refuse('trade_already_paid', t, `trade ${t.tradeNo} is already paid`);
      case 'USERPAYING':
        throw this.refuse('trade_paying', t, `trade ${t.tradeNo} is being paid; query it later`);
      default:
    }
  }

  /** Count this pay attempt and say whether risk control rejects it. */
  private velocityExceeded(buyer: string | undefined): boolean {
    const v = this.extra().velocity;
    if (v === false || buyer === undefined) return false;
    const cfg = v ?? DEFAULT_VELOCITY;
    const now = this.clock();
    // The window is a world duration (how fast a buyer re-clicks): scaled with the run.
    const windowMs = this.timeScale.ms(cfg.windowMs);
    const list = (this.attempts.get(buyer) ?? []).filter((t) => now - t < windowMs);
    list.push(now);
    if (list.length > cfg.maxPerBuyer + 1) list.splice(0, list.length - (cfg.maxPerBuyer + 1));
    this.attempts.set(buyer, list);
    return list.length > cfg.maxPerBuyer;
  }

  private markPayError(t: Trade, reason: WalletDeclineReason) {
    t.status = 'PAYERROR';
    t.reason = reason;
    t.message = DECLINES[reason].message;
    t.subCode = subCode(reason, t.style);
    t.updatedAt = this.iso();
  }

  /**
   * The buyer pays in the app: USERPAYING, then (after extra.payDelayMs) SUCCESS
   * with a capture and a notification, or PAYERROR with a reason.
   *
   * `key`: the pay call's chaos key (its out-trade number and attempt). With
   * it, the pay delay is keyed by the call, and the notification plan by the
   * trade alone (attempt 0: the same plan whichever pay attempt succeeds).
   * Without it, both come from arrival-order streams, drawn first, a fixed
   * number of values for every pay call, so that sequence depends only on the
   * seed and the call order, not on the outcome.
   */
  async pay(tradeNo: string, input: PayInput, key?: DrawKey): Promise<PayResult> {
    const extra = this.extra();
    // Not scaled by the time-scale: the pay call answers when the payment settles, so this
    // is the call's latency, which the caller's timeout meets in real milliseconds.
    const delayMs = sampleLatency(
      extra.payDelayMs ?? NO_DELAY,
      this.engine.draws('wallet.pay', key),
    );
    const out = key && this.outTradeNoOf(tradeNo);
    const notifyKey: DrawKey | undefined =
      key &&
      (out === undefined ? key : { operation: 'trades.pay', identity: `out:${out}`, attempt: 0 });
    const plan = drawNotifyPlan(this.engine.draws('wallet.notify', notifyKey), extra.notify?.delay);
    const t = this.getTrade(tradeNo);
    this.assertPayable(t);
    const buyer = input.buyerId ?? t.userId;
    const reason: WalletDeclineReason | undefined = this.velocityExceeded(buyer)
      ? 'risk_control_rejected'
      : input.outcome === 'payerror'
        ? (input.reason ?? 'balance_insufficient')
        : undefined;
    t.status = 'USERPAYING';
    delete t.reason;
    delete t.message;
    delete t.subCode;
    if (input.buyerId !== undefined) t.buyerId = input.buyerId;
    t.updatedAt = this.iso();
    if (delayMs > 0)
      await new Promise<void>((resolve, reject) => {
        const p = {
          timer: setTimeout(() => {
            this.pending.delete(p);
            resolve();
          }, delayMs),
          reject,
        };
        this.pending.add(p);
      });
    if (reason !== undefined) {
      this.markPayError(t, reason);
      return { trade: { ...t } };
    }
    const now = this.iso();
    t.status = 'SUCCESS';
    t.paidAt = now;
    t.updatedAt = now;
    this.ledger.push({
      type: 'capture',
      id: t.tradeNo,
      tradeNo: t.tradeNo,
      outTradeNo: t.outTradeNo,
      amount: t.amount,
      currency: t.currency,
      at: now,
    });
    const notice = this.notifier.create(
      {
        tradeNo: t.tradeNo,
        outTradeNo: t.outTradeNo,
        style: t.style,
        notifyUrl: t.notifyUrl,
        amount: t.amount,
        currency: t.currency,
        ...(t.subject !== undefined ? { subject: t.subject } : {}),
        ...(t.buyerId !== undefined ? { buyerId: t.buyerId } : {}),
        createdAt: t.createdAt,
        paidAt: now,
      },
      plan,
    );
    return { trade: { ...t }, notice };
  }

  /** An injected decline of a pay call: the trade ends PAYERROR with `reason` (state rules still apply). */
  declinePay(tradeNo: string, reason: WalletDeclineReason): Trade {
    const t = this.getTrade(tradeNo);
    this.assertPayable(t);
    this.markPayError(t, reason);
    return t;
  }

  /** Close an unpaid trade (WAIT_BUYER_PAY or PAYERROR); closing a closed trade answers it again. */
  closeTrade(tradeNo: string): Trade {
    const t = this.getTrade(tradeNo);
    switch (t.status) {
      case 'CLOSED':
        return t;
      case 'SUCCESS':
      case 'REFUND':
        throw this.refuse(
          'trade_already_paid',
          t,
          `trade ${t.tradeNo} is paid; refund it instead of closing it`,
        );
      case 'USERPAYING':
        throw this.refuse(
          'trade_paying',
          t,
          `trade ${t.tradeNo} is being paid; query it and close it once the payment settles`,
        );
      default:
        t.status = 'CLOSED';
        t.closedAt = this.iso();
        t.updatedAt = t.closedAt;
        return t;
    }
  }

  refund(input: RefundInput): Refund {
    const t = this.getTrade(input.tradeNo);
    if (t.status === 'CLOSED')
      throw this.refuse('trade_closed', t, `trade ${t.tradeNo} is closed; nothing to refund`);
    if (t.status !== 'SUCCESS' && t.status !== 'REFUND')
      throw this.refuse(
        'trade_not_paid',
        t,
        `trade ${t.tradeNo} is ${t.status}; only paid trades can be refunded`,
      );
    const refundable = t.amount - t.amountRefunded;
    if (refundable === 0)
      throw this.refuse('already_refunded', t, `trade ${t.tradeNo} is already fully refunded`);
    const amount = input.amount ?? refundable;
    if (amount > refundable)
      throw new ValidationError([
        { field: 'amount', reason: `exceeds the refundable amount (${refundable})` },
      ]);
    this.refundSeq += 1;
    const r: Refund = {
      refundNo: `rf_${String(this.refundSeq).padStart(8, '0')}`,
      object: 'refund',
      tradeNo: t.tradeNo,
      outTradeNo: t.outTradeNo,
      amount,
      currency: t.currency,
      status: 'SUCCESS',
      ...(input.reason !== undefined ? { reason: input.reason } : {}),
      createdAt: this.iso(),
    };
    t.amountRefunded += amount;
    t.status = 'REFUND';
    t.updatedAt = r.createdAt;
    this.refunds.set(r.refundNo, r);
    this.ledger.push({
      type: 'refund',
      id: r.refundNo,
      tradeNo: t.tradeNo,
      outTradeNo: t.outTradeNo,
      amount,
      currency: t.currency,
      at: r.createdAt,
    });
    return r;
  }

  /** Every capture and refund, with totals; a page of them with `limit` (see mock-gateways/ledger.ts). */
  statement(q: StatementQuery = {}) {
    return statement('wallet', this.ledger, WALLET_LEDGER, this.iso(), q);
  }

  private stopTimers() {
    const pending = [...this.pending];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(
        new HttpError(
          503,
          'wallet_reset',
          'the wallet was reset or stopped while the payment was pending',
        ),
      );
    }
  }

  reset(): void {
    this.stopTimers();
    this.notifier.reset();
    this.trades = new Map();
    this.byOutTradeNo = new Map();
    this.refunds = new Map();
    this.ledger = [];
    this.attempts = new Map();
    this.tradeSeq = 0;
    this.refundSeq = 0;
  }

  close(): void {
    this.stopTimers();
    this.notifier.cancelAll();
  }
}
