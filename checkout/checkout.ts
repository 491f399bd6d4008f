// The flash-sale checkout: orders, payment through the bank or the wallet,
// coupons, expiry, the payment-result stream, reconciliation. Each resilience
// feature of the config changes one behaviour here; the naive preset turns
// them all off and reproduces the seeds' failures. No HTTP routing here.
import { HttpError } from '../mock-gateways/errors.ts';
import { verifySignature } from '../mock-gateways/wallet/notify.ts';
import { scaled, type CheckoutConfig } from './config.ts';
import type { Gateways, HttpAnswer } from './gateways.ts';
import type { CheckoutMetrics } from './metrics.ts';
import { DependencyError } from './resilience.ts';
import type { Channel, CreateOrderInput, PayInput, SaleInput } from './schema.ts';
import { StockCache } from './stock-cache.ts';
import {
  OPEN_STATES,
  PAYMENT_GROUP,
  payloadHash,
  type Order,
  type RedisClient,
  type Sku,
  type Store,
} from './store.ts';

/** What a handler answers: an HTTP status and a JSON body that always has `state` or `reason`. */
export interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

const DEFAULT_CARD = '4242424242424242';
/** How long an order's idempotency key is kept, and how long it may be held by a request still running. */
const IDEM_TTL_MS = 24 * 3_600_000;
const IDEM_RUNNING_MS = 60_000;
/** Refusals an order's idempotency key keeps and replays: 402 a declined coupon, 409 sold out or over the limit. */
const KEPT_REFUSALS = new Set([402, 409]);
/**
 * A pay call's lease runs to its request's deadline and this much beyond: the
 * time between a gateway's answer and the script that records it, and the
 * clocks of the checkout instances' hosts, which NTP keeps within milliseconds.
 */
export const PAY_LEASE_GRACE_MS = 1_000;
/** A payment-stream entry read by a consumer and not acknowledged this long is claimed by another (its reader died). */
export const CLAIM_MIN_IDLE_MS = 5_000;

const orderNotFound = (id: string) =>
  new HttpError(404, 'order_not_found', `no order ${id}`, {
    errors: [{ field: 'id', reason: 'no such order' }],
  });

const idempotencyKeyReused = () =>
  new HttpError(
    422,
    'idempotency_key_reused',
    'this Idempotency-Key was used for another order request',
  );
/** Declines that another channel will not fix (the shopper, not the channel, is refused). */
const SHOPPER_DECLINES = new Set([
  'fraudulent',
  'card_velocity_exceeded',
  'risk_control_rejected',
  'stolen_card',
  'lost_card',
]);

type PaymentOutcome =
  | { kind: 'captured'; ref: string; channel: Channel }
  | { kind: 'processing'; ref: string; channel: Channel }
  | { kind: 'declined'; reason: string; channel: Channel }
  | { kind: 'unavailable'; reason: string; channel: Channel } // definitely not charged (breaker open, refused, bulkhead)
  | { kind: 'unknown'; reason: string; channel: Channel }; // may have been charged

export function orderView(o: Order) {
  return {
    id: o.id,
    sku: o.sku,
    user: o.user,
    quantity: o.qty,
    amount: o.amount,
    coupon: o.coupon || undefined,
    discount: o.discount || undefined,
    channel: o.channel,
    state: o.state,
    reason: o.reason || undefined,
    attempts: o.attempts,
    createdAt: new Date(o.createdAt).toISOString(),
    updatedAt: new Date(o.updatedAt).toISOString(),
    payBy: new Date(o.deadline).toISOString(),
    paidAt: o.paidAt ? new Date(o.paidAt).toISOString() : undefined,
    paymentRef: o.paymentRef,
  };
}

export class Checkout {
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private notifyUrl = '';
  private readonly streamKey: string;
  private readonly group = PAYMENT_GROUP;
  private readonly consumer = `c-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private consumerLoop: Promise<void> | undefined;
  /** Orders with a pay call running in this process. */
  private readonly payCalls = new Set<string>();

  /** How many pay calls are running in this process (a shopper who gave up does not end one). */
  get payCallsInFlight(): number {
    return this.payCallsRunning;
  }
  private payCallsRunning = 0;
  /** The naive stock sync (stockCacheMs): what the product page and the stock check read. */
  readonly stockCache: StockCache;

  constructor(
    readonly cfg: CheckoutConfig,
    readonly store: Store,
    readonly gw: Gateways,
    readonly metrics: CheckoutMetrics,
  ) {
    this.streamKey = store.paymentStreamKey;
    const lag = cfg.params.stockCacheMs;
    this.stockCache = new StockCache(store, lag > 0 ? scaled(cfg, lag) : 0);
  }

  get hardened() {
    return this.cfg.features;
  }

  setNotifyBase(url: string) {
    this.notifyUrl = url;
  }

  /**
   * Back to a fresh start (POST /admin/reset): every key of this checkout in
   * Redis, the metrics, and what the gateway clients learnt (breakers,
   * latencies, retry budgets), so a run on a running checkout starts where a
   * run on a new one does.
   */
  async reset(): Promise<void> {
    await this.store.clear();
    this.stockCache.clear();
    for (const g of [this.gw.bank, this.gw.wallet, this.gw.coupon]) g.dep.reset();
    this.metrics.reset();
  }

  // ---------------------------------------------------------------- sale
  async seedSale(sale: SaleInput): Promise<Answer> {
    await this.store.seedSale(
      sale.skus.map((s) => ({
        id: s.id,
        name: s.name ?? s.id,
        price: s.price,
        stock: s.stock,
        limit: s.limit,
      })),
    );
    this.stockCache.clear();
    if (sale.coupon) {
      const r = await this.gw.coupon.post(
        'campaigns.create',
        '/v1/campaigns',
        {
          id: sale.coupon.campaignId,
          name: `flash sale ${sale.coupon.campaignId}`,
          budget: sale.coupon.budget,
          discount: { type: 'amount', value: sale.coupon.discount },
        },
        { safeToRetry: false },
      );
      if (r.status >= 400 && (r.body as { reason?: string }).reason !== 'campaign_exists')
        throw new HttpError(
          502,
          'coupon_setup_failed',
          `the coupon service refused the campaign: ${JSON.stringify(r.body)}`,
        );
    }
    return { status: 201, body: { skus: await this.store.catalogue(), coupon: sale.coupon } };
  }

  /** The product page: every SKU, its available count as the stock check sees it (stockCacheMs). */
  async catalogue(): Promise<Sku[]> {
    const skus = await this.store.catalogue();
    if (!this.stockCache.enabled) return skus;
    return Promise.all(
      skus.map(async (s) => ({ ...s, available: (await this.stockCache.available(s.id)) ?? 0 })),
    );
  }

  // ---------------------------------------------------------------- orders
  async createOrder(
    input: CreateOrderInput,
    idempotencyKey: string | undefined,
    deadline: number,
  ): Promise<Answer> {
    if (!idempotencyKey) return this.reserveOrder(input, undefined, deadline);
    // Claim the key first: another payload under it is 422 whatever its SKU, a
    // duplicate of a request still running is 409, one of a finished request
    // replays its order (without locking the coupon again) or its refusal.
    const hash = payloadHash(input);
    const claim = await this.store.claimIdempotencyKey(idempotencyKey, hash, IDEM_RUNNING_MS);
    if (!claim.claimed) {
      if (claim.hash !== hash) throw idempotencyKeyReused();
      if (claim.refusal) return { ...claim.refusal, headers: { 'idempotent-replayed': 'true' } };
      const prior = await this.store.idempotentOrder(input.sku, idempotencyKey);
      if (!prior)
        throw new HttpError(
          409,
          'idempotency_key_in_use',
          'a request with this Idempotency-Key is still running; retry shortly',
        );
      return this.replay(prior);
    }
    let kept = false;
    try {
      const orderId = await this.store.keyedOrderId(input.sku, idempotencyKey, IDEM_TTL_MS);
      const a = await this.reserveOrder(input, idempotencyKey, deadline, orderId);
      if (a.status === 201 || a.status === 200) {
        // made, or replayed
        await this.store.keepIdempotencyKey(idempotencyKey, IDEM_TTL_MS);
        kept = true;
      } else if (KEPT_REFUSALS.has(a.status)) {
        // A business refusal is the key's answer from now on (a retry uses a new key).
        await this.store.rememberRefusal(
          idempotencyKey,
          hash,
          { status: a.status, body: a.body },
          IDEM_TTL_MS,
        );
        kept = true;
      }
      return a;
    } finally {
      // Anything else (a 503, an error thrown) took no effect: the key is free again.
      if (!kept) await this.store.dropIdempotencyKey(idempotencyKey);
    }
  }

  private async replay(orderId: string): Promise<Answer> {
    const o = await this.store.get(orderId);
    return {
      status: 200,
      body: o ? orderView(o) : { id: orderId },
      headers: { 'idempotent-replayed': 'true' },
    };
  }

  /** Lock the coupon (if any) and reserve the stock: the order, or why not. */
  private async reserveOrder(
    input: CreateOrderInput,
    idempotencyKey: string | undefined,
    deadline: number,
    orderId = this.store.newOrderId(input.sku),
  ): Promise<Answer> {
    const refused = await this.naiveStockCheck(input);
    if (refused) return refused;
    const now = Date.now();
    // Hardened: the lock is announced first, so that if this process dies
    // between the lock and the order, a survivor's sweeper gives the coupon back.
    const intent = input.coupon !== undefined && this.cfg.features.reconciler;
    if (intent)
      await this.store.intendCouponLock(orderId, input.coupon!, deadline + PAY_LEASE_GRACE_MS);
    const answer = await this.lockAndReserve(input, idempotencyKey, deadline, orderId, now);
    // Settled either way: the order holds the coupon, or a failure gave it back.
    // (Thrown half-way, e.g. by Redis, the announcement stays for the sweeper.)
    if (intent) await this.store.dropCouponIntent(orderId);
    return answer;
  }

  private async lockAndReserve(
    input: CreateOrderInput,
    idempotencyKey: string | undefined,
    deadline: number,
    orderId: string,
    now: number,
  ): Promise<Answer> {
    let discount = 0;
    if (input.coupon) {
      const locked = await this.couponCall(
        'coupons.lock',
        `/v1/coupons/${encodeURIComponent(input.coupon)}/lock`,
        { orderId, userId: input.user },
        deadline,
        `lock-${orderId}`,
      );
      if (locked.kind !== 'ok') {
        // A lock that failed without an answer (timeout, reset, 5xx) may have taken
        // effect for an order that will never exist: give it back (hardened).
        if (locked.kind === 'error' && this.cfg.features.reconciler) {
          const p = this.cfg.params;
          const horizon = Math.max(scaled(this.cfg, p.paymentTtlMs), p.requestBudgetMs);
          await this.releaseCoupon(input.coupon, orderId, Date.now() + horizon);
        }
        return {
          status: locked.kind === 'declined' ? 402 : 503,
          body: {
            state: 'rejected',
            reason: `coupon_${locked.reason}`,
            message: 'the coupon could not be locked for this order',
          },
        };
      }
      discount = Number(
        (locked.body as { discountAmount?: number; discount?: { value?: number } })
          .discountAmount ??
          (locked.body as { discount?: { value?: number } }).discount?.value ??
          0,
      );
    }
    const r = await this.store.reserve({
      sku: input.sku,
      user: input.user,
      qty: input.quantity,
      now,
      deadline: now + scaled(this.cfg, this.cfg.params.paymentTtlMs),
      idempotencyKey,
      payload: input,
      coupon: input.coupon,
      discount,
      channel: input.channel,
      idemTtlMs: IDEM_TTL_MS,
      orderId,
      checked: this.cfg.features.splitStockCheck,
    });
    if (r.status !== 'ok' && input.coupon) await this.releaseCoupon(input.coupon, orderId);
    return this.reserveAnswer(r, input);
  }

  /**
   * The naive stock check, before the coupon lock and the reserve script
   * (splitStockCheck: a round trip of its own; stockCacheMs: the process's copy
   * of the count). A "sold out" read from a stale copy while Redis has the
   * units is counted (`false_sold_out`). Undefined: go on to the reserve.
   */
  private async naiveStockCheck(input: CreateOrderInput): Promise<Answer | undefined> {
    const split = this.cfg.features.splitStockCheck;
    const cache = this.stockCache;
    if (!split && !cache.enabled) return undefined;
    const read = split ? await this.store.stockCheck(input.sku, input.user) : undefined;
    if (read && !read.exists) return undefined; // the reserve script answers unknown_sku
    const available = cache.enabled ? await cache.available(input.sku) : read!.available;
    if (available !== undefined && available < input.quantity) {
      const actual = read?.available ?? (await this.store.snapshot(input.sku)).available;
      if (cache.enabled && actual >= input.quantity)
        this.metrics.orders.inc({ event: 'false_sold_out' });
      return this.reserveAnswer({ status: 'sold_out', orderId: '' }, input);
    }
    if (read && read.limit > 0 && read.bought + input.quantity > read.limit)
      return this.reserveAnswer({ status: 'limit_exceeded', orderId: '' }, input);
    return undefined;
  }

  /** What the shopper is told about a reserve. */
  private async reserveAnswer(
    r: { status: Awaited<ReturnType<Store['reserve']>>['status']; orderId: string; order?: Order },
    input: CreateOrderInput,
  ): Promise<Answer> {
    switch (r.status) {
      case 'ok': {
        this.metrics.orders.inc({ event: 'created' });
        return { status: 201, body: orderView(r.order!) };
      }
      case 'replay':
        return this.replay(r.orderId);
      case 'idem_mismatch':
        throw idempotencyKeyReused();
      case 'unknown_sku':
        throw new HttpError(404, 'unknown_sku', `no SKU ${input.sku} in this sale`, {
          errors: [{ field: 'sku', reason: 'not in this sale' }],
        });
      case 'sold_out':
        return {
          status: 409,
          body: { state: 'rejected', reason: 'sold_out', message: `${input.sku} is sold out` },
        };
      case 'limit_exceeded':
        return {
          status: 409,
          body: {
            state: 'rejected',
            reason: 'purchase_limit_exceeded',
            message: `the sale limits how many of ${input.sku} one shopper may buy`,
          },
        };
    }
  }

  async getOrder(id: string): Promise<Order> {
    const o = await this.store.get(id);
    if (!o) throw orderNotFound(id);
    return o;
  }

  async cancel(id: string): Promise<Answer> {
    const o = await this.getOrder(id);
    const r = await this.store.release(id, 'cancelled', 'cancelled_by_shopper', Date.now(), [
      'pending_payment',
    ]);
    if (r.status !== 'released')
      return {
        status: 409,
        body: {
          ...orderView(o),
          reason: `order_${o.state}`,
          message: `an order in ${o.state} cannot be cancelled`,
        },
      };
    if (o.coupon) await this.releaseCoupon(o.coupon, id);
    this.metrics.orders.inc({ event: 'cancelled' });
    return { status: 200, body: orderView((await this.store.get(id))!) };
  }

  // ---------------------------------------------------------------- pay
  async pay(id: string, input: PayInput, deadline: number): Promise<Answer> {
    const f = this.cfg.features;
    const channel = input.channel;
    // The lease: until when this call may still answer, for every instance's reconciler to see.
    const start = await this.store.startPayment(
      id,
      channel ?? '',
      Date.now(),
      f.reclickRepays,
      deadline + PAY_LEASE_GRACE_MS,
    );
    if (start.status === 'not_found') throw orderNotFound(id);
    const order = start.order;
    if (start.status === 'in_progress')
      return { status: 202, body: { ...orderView(order), reason: 'payment_in_progress' } };
    if (start.status === 'wrong_state') {
      if (order.state === 'paid') return { status: 200, body: orderView(order) };
      return {
        status: 409,
        body: {
          ...orderView(order),
          reason: `order_${order.state}`,
          message: `the order is ${order.state}; it cannot be paid`,
        },
      };
    }
    const channels: Channel[] = [(channel ?? order.channel) as Channel];
    if (f.failover)
      for (const c of input.fallbackChannels ?? []) if (!channels.includes(c)) channels.push(c);

    this.payCalls.add(id);
    this.payCallsRunning += 1;
    try {
      let outcome: PaymentOutcome | undefined;
      for (const c of channels) {
        outcome = await this.charge(order, c, input.card ?? DEFAULT_CARD, deadline);
        const retryOther =
          outcome.kind === 'unavailable' ||
          (outcome.kind === 'declined' && !SHOPPER_DECLINES.has(outcome.reason));
        if (!retryOther) break;
        if (c !== channels[channels.length - 1]) this.metrics.orders.inc({ event: 'failover' });
      }
      return await this.settle(order, outcome!);
    } finally {
      this.payCalls.delete(id);
      this.payCallsRunning -= 1;
    }
  }

  /** One charge attempt on one channel (retries inside, per config). */
  private async charge(
    order: Order,
    channel: Channel,
    card: string,
    deadline: number,
  ): Promise<PaymentOutcome> {
    const f = this.cfg.features;
    const key = f.idempotencyKeys ? `pay-${order.id}-${order.attempts}-${channel}` : undefined;
    try {
      if (channel === 'card') {
        const r = await this.gw.bank.post<{ id: string; status: string; reason?: string }>(
          'payments.create',
          '/v1/payments',
          {
            orderId: order.id,
            amount: order.amount,
            currency: 'CNY',
            card: { number: card },
            userId: order.user,
          },
          {
            idempotencyKey: key,
            safeToRetry: key !== undefined,
            deadline: f.deadlines ? deadline : undefined,
            breakerKey: channel,
          },
        );
        return this.bankOutcome(r, channel);
      }
      const t = await this.gw.wallet.post<{ tradeNo: string; status: string; reason?: string }>(
        'trades.create',
        '/v1/trades',
        {
          outTradeNo: order.id,
          amount: order.amount,
          notifyUrl: `${this.notifyUrl}/v1/notify/${channel}`,
          style: channel,
          userId: order.user,
        },
        {
          idempotencyKey: key && `${key}-create`,
          safeToRetry: true,
          deadline: f.deadlines ? deadline : undefined,
          breakerKey: channel,
        },
      );
      if (t.status >= 400)
        return { kind: 'declined', reason: t.body.reason ?? `wallet_${t.status}`, channel };
      const p = await this.gw.wallet.post<{ tradeNo: string; status: string; reason?: string }>(
        'trades.pay',
        `/v1/trades/${t.body.tradeNo}/pay`,
        { buyerId: order.user },
        {
          idempotencyKey: key && `${key}-pay`,
          safeToRetry: key !== undefined,
          deadline: f.deadlines ? deadline : undefined,
          breakerKey: channel,
        },
      );
      if (p.status === 200 && p.body.status === 'SUCCESS')
        return { kind: 'captured', ref: p.body.tradeNo, channel };
      if (p.status === 409 && p.body.reason === 'trade_already_paid')
        return { kind: 'captured', ref: t.body.tradeNo, channel };
      if (p.status === 409 && p.body.reason === 'trade_paying')
        return { kind: 'processing', ref: t.body.tradeNo, channel };
      return { kind: 'declined', reason: p.body.reason ?? `wallet_${p.status}`, channel };
    } catch (e) {
      if (!(e instanceof DependencyError)) throw e;
      return e.ambiguous
        ? { kind: 'unknown', reason: e.reason, channel }
        : { kind: 'unavailable', reason: e.reason, channel };
    }
  }

  private bankOutcome(
    r: HttpAnswer<{ id: string; status: string; reason?: string }>,
    channel: Channel,
  ): PaymentOutcome {
    if (r.status === 200 && r.body.status === 'succeeded')
      return { kind: 'captured', ref: r.body.id, channel };
    if (r.status === 202) return { kind: 'processing', ref: r.body.id, channel };
    return { kind: 'declined', reason: r.body.reason ?? `bank_${r.status}`, channel };
  }

  /** Record the outcome of a pay call and answer the shopper. */
  private async settle(order: Order, out: PaymentOutcome): Promise<Answer> {
    const f = this.cfg.features;
    const now = Date.now();
    if (out.kind === 'captured') return this.onCaptured(order, out.ref, out.channel, 'pay');
    if (out.kind === 'processing' || (out.kind === 'unknown' && f.reconciler)) {
      // The gateway may have the money: keep the stock, let the stream or the reconciler settle it.
      // The call has answered: its lease ends, the reconciler may ask the gateway from now on.
      await this.store.transition(
        order.id,
        'paying',
        out.kind === 'processing' ? 'payment_processing' : `payment_unknown_${out.reason}`,
        now,
        ['paying'],
        true,
      );
      const o = (await this.store.get(order.id))!;
      return {
        status: 202,
        body: {
          ...orderView(o),
          reason: out.kind === 'processing' ? 'payment_processing' : 'payment_pending_confirmation',
        },
      };
    }
    // A definite failure, or (naive) an unknown one treated as a failure.
    const reason = out.kind === 'unknown' ? `payment_error_${out.reason}` : out.reason;
    if (f.immediateRelease && out.kind !== 'unknown') {
      await this.store.release(order.id, 'payment_failed', reason, now, ['paying']);
      if (order.coupon) await this.releaseCouponOfEnded(order.coupon, order.id);
      this.metrics.orders.inc({ event: 'payment_failed' });
    } else {
      // Naive: the order goes back to pending payment and keeps its stock and coupon until it expires.
      await this.store.transition(order.id, 'pending_payment', reason, now, ['paying'], true);
    }
    const o = (await this.store.get(order.id))!;
    const status = out.kind === 'declined' ? 402 : out.kind === 'unavailable' ? 503 : 502;
    return {
      status,
      body: { ...orderView(o), reason },
      ...(status === 503 ? { headers: { 'retry-after': '1' } } : {}),
    };
  }

  /** A capture arrived (pay answer, stream, reconciler): confirm it; refund what must not stand. */
  private async onCaptured(
    order: Order,
    ref: string,
    channel: Channel,
    source: string,
  ): Promise<Answer> {
    const r = await this.store.confirm(order.id, ref, order.amount, Date.now(), true, channel);
    const o = r.order ?? order;
    switch (r.status) {
      case 'paid':
        this.metrics.orders.inc({ event: source === 'pay' ? 'paid' : `paid_by_${source}` });
        if (o.coupon) await this.consumeCoupon(o.coupon, o.id);
        return { status: 200, body: orderView(o) };
      case 'duplicate':
        return { status: 200, body: orderView(o) };
      case 'late_rereserved':
        this.metrics.orders.inc({ event: 'late_rereserved' });
        if (o.coupon) {
          // The order's end gave its coupon back, but the payment took the discount: take it again.
          await this.couponCall(
            'coupons.lock',
            `/v1/coupons/${encodeURIComponent(o.coupon)}/lock`,
            { orderId: o.id, userId: o.user },
            undefined,
            `relock-${o.id}`,
          );
          await this.consumeCoupon(o.coupon, o.id);
        }
        return { status: 200, body: orderView(o) };
      case 'double_capture':
      case 'late_refund':
        // The money came in but must not stand: a second capture, or one for an order that is gone.
        if (this.cfg.features.reconciler) {
          await this.refund(channel, ref, o.amount);
          this.metrics.orders.inc({
            event: r.status === 'late_refund' ? 'late_refunded' : 'double_capture_refunded',
          });
        } else this.metrics.orders.inc({ event: `${r.status}_unhandled` });
        return {
          status: r.status === 'late_refund' ? 409 : 200,
          body: {
            ...orderView(o),
            reason: r.status === 'late_refund' ? 'paid_after_expiry_refunded' : undefined,
          },
        };
      case 'double_capture_again':
      case 'late_refund_again':
        // Counted when first seen; its refund (idempotent by the capture) is asked again.
        if (this.cfg.features.reconciler) await this.refund(channel, ref, o.amount);
        return {
          status: r.status === 'late_refund_again' ? 409 : 200,
          body: {
            ...orderView(o),
            reason: r.status === 'late_refund_again' ? 'paid_after_expiry_refunded' : undefined,
          },
        };
      case 'amount_mismatch':
        this.metrics.orders.inc({ event: 'amount_mismatch' });
        return { status: 409, body: { ...orderView(o), reason: 'amount_mismatch' } };
      default:
        throw orderNotFound(order.id);
    }
  }

  private async refund(channel: Channel, ref: string, amount: number) {
    try {
      if (channel === 'card')
        await this.gw.bank.post(
          'refunds.create',
          '/v1/refunds',
          { paymentId: ref, amount },
          { idempotencyKey: `refund-${ref}`, safeToRetry: true },
        );
      else
        await this.gw.wallet.post(
          'refunds.create',
          '/v1/refunds',
          { tradeNo: ref, amount },
          { idempotencyKey: `refund-${ref}`, safeToRetry: true },
        );
    } catch (e) {
      // The reconciler finds it again on its next pass.
      console.error(`[checkout] refund of ${ref} failed:`, (e as Error).message);
    }
  }

  // ---------------------------------------------------------------- coupons
  private async couponCall(
    op: string,
    path: string,
    body: unknown,
    deadline: number | undefined,
    key: string,
  ) {
    const f = this.cfg.features;
    try {
      const r = await this.gw.coupon.post(op, path, body, {
        idempotencyKey: f.idempotencyKeys ? key : undefined,
        safeToRetry: true,
        deadline: f.deadlines ? deadline : undefined,
      });
      if (r.status >= 400)
        return {
          kind: 'declined' as const,
          reason: String((r.body as { reason?: string }).reason ?? r.status),
          body: r.body,
        };
      return { kind: 'ok' as const, reason: '', body: r.body };
    } catch (e) {
      if (!(e instanceof DependencyError)) throw e;
      return { kind: 'error' as const, reason: e.reason, body: {} };
    }
  }
  /**
   * Give an order's coupon back. With the reconciler (hardened) a release that
   * does not go through is owed, not forgotten: the sweeper retries it, so a
   * failed or expired order never keeps its coupon locked (I8). `untilMs`: the
   * lock itself may not have landed yet (it timed out); until then "this order
   * holds no lock" means "not yet", not "nothing to do".
   */
  private async releaseCoupon(code: string, orderId: string, untilMs = 0, retry = 0) {
    const r = await this.couponCall(
      'coupons.release',
      `/v1/coupons/${encodeURIComponent(code)}/release`,
      { orderId },
      undefined,
      // A retry is a new request: under the first key the service replays its first answer.
      // Every instance retries owed calls: its own name keeps their keys apart.
      retry ? `release-${orderId}-${this.consumer}-r${retry}` : `release-${orderId}`,
    );
    if (!this.cfg.features.reconciler) return; // naive: a failed release is lost
    // Released when the coupon's history says so for this order; an answer without
    // that (the coupon was not locked yet) is final only once the lock cannot land.
    const history = (r.body as { history?: { type?: string; orderId?: string }[] }).history;
    const released =
      r.kind === 'ok' &&
      (history ?? []).some((h) => h.type === 'released' && h.orderId === orderId);
    const retryLater = r.kind === 'error' || (!released && Date.now() < untilMs);
    if (retryLater) await this.store.oweCoupon('release', code, orderId, untilMs);
    else await this.store.couponSettled('release', code, orderId);
  }

  /**
   * Give back the coupon of an order that failed or expired; the naive
   * couponReleaseOnCancelOnly forgets to (the coupon stays locked, I8).
   */
  private async releaseCouponOfEnded(code: string, orderId: string) {
    if (this.cfg.features.couponReleaseOnCancelOnly) return;
    await this.releaseCoupon(code, orderId);
  }

  /** Numbers the sweeper's retries of owed coupon calls (each a new idempotency key). */
  private couponRetries = 0;

  /**
   * Coupon locks announced for orders whose request can no longer be running
   * and that were never created (the process died between the lock and the
   * order): the coupon is given back (I8). An order that exists keeps its
   * coupon and its own life decides it.
   */
  private async settleCouponIntents(): Promise<void> {
    const now = Date.now();
    for (const i of await this.store.couponIntents()) {
      if (i.staleAtMs > now) continue;
      if (!(await this.store.get(i.orderId))) {
        const p = this.cfg.params;
        const horizon = Math.max(scaled(this.cfg, p.paymentTtlMs), p.requestBudgetMs);
        await this.releaseCoupon(i.code, i.orderId, now + horizon);
      }
      await this.store.dropCouponIntent(i.orderId);
    }
  }

  /** Retry the coupon releases and consumes still owed (sweeper). */
  private async settleOwedCoupons(): Promise<void> {
    await this.settleCouponIntents();
    for (const o of await this.store.owedCoupons('release'))
      await this.releaseCoupon(o.code, o.orderId, o.untilMs, (this.couponRetries += 1));
    for (const o of await this.store.owedCoupons('consume'))
      await this.consumeCoupon(o.code, o.orderId, (this.couponRetries += 1));
  }

  /**
   * Mark a paid order's coupon used. With the reconciler (hardened) a consume
   * that gets no answer (timeout, reset, 5xx, open breaker) is owed and retried
   * by the sweeper: else the coupon stays locked by a paid order that never
   * used it (I8), and is free again when its lock lapses. A refusal (the lock
   * is gone) is an answer: nothing to retry.
   */
  private async consumeCoupon(code: string, orderId: string, retry = 0) {
    const r = await this.couponCall(
      'coupons.consume',
      `/v1/coupons/${encodeURIComponent(code)}/consume`,
      { orderId },
      undefined,
      retry ? `consume-${orderId}-${this.consumer}-r${retry}` : `consume-${orderId}`,
    );
    if (!this.cfg.features.reconciler) return; // naive: a failed consume is lost
    if (r.kind === 'error') await this.store.oweCoupon('consume', code, orderId);
    else await this.store.couponSettled('consume', code, orderId);
  }

  // ---------------------------------------------------------------- notifications
  /** A wallet notification: verify, then hand it to the payment-result stream. Returns the channel's ack. */
  async walletNotify(
    style: 'alipay' | 'wechat',
    raw: string,
    signature: string | undefined,
  ): Promise<Answer> {
    if (!verifySignature(raw, signature, this.cfg.params.walletSecret)) {
      this.metrics.orders.inc({ event: 'notify_bad_signature' });
      return {
        status: 401,
        body: {
          reason: 'bad_signature',
          message: 'the notification signature does not verify',
          errors: [{ field: 'x-flashcrowd-signature', reason: 'does not verify' }],
        },
      };
    }
    let b: Record<string, unknown>;
    try {
      b = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return {
        status: 400,
        body: { reason: 'invalid_json', errors: [{ field: '(body)', reason: 'not valid JSON' }] },
      };
    }
    const orderId = String(b.out_trade_no ?? '');
    const ref = String(style === 'alipay' ? b.trade_no : b.transaction_id);
    const amount =
      style === 'alipay'
        ? Math.round(Number(b.total_amount) * 100)
        : Number((b.amount as { total?: number })?.total);
    const ok =
      style === 'alipay' ? b.trade_status === 'TRADE_SUCCESS' : b.trade_state === 'SUCCESS';
    if (!orderId || !ref || !Number.isFinite(amount))
      return {
        status: 400,
        body: {
          reason: 'invalid_notification',
          errors: [{ field: 'out_trade_no', reason: 'missing' }],
        },
      };
    if (ok)
      await this.store.redis.xadd(
        this.streamKey,
        '*',
        'orderId',
        orderId,
        'ref',
        ref,
        'amount',
        String(amount),
        'channel',
        style,
      );
    this.metrics.orders.inc({ event: 'notify_received' });
    return style === 'alipay'
      ? { status: 200, body: { text: 'success' } }
      : { status: 200, body: { code: 'SUCCESS' } };
  }

  /**
   * Consume payment results from the stream (consumer group; pending messages
   * of dead consumers are claimed). Survives Redis going away (connection
   * lost, restarted, LOADING, CLIENT PAUSE past the command timeout): it backs
   * off and goes on; only stop() ends it.
   */
  private async consume(): Promise<void> {
    const r = this.store.redis;
    const reader = r.duplicate();
    // Its failures reach the loop below through its commands; the main client reports outages.
    reader.on('error', () => undefined);
    const ensureGroup = () =>
      r.xgroup('CREATE', this.streamKey, this.group, '0', 'MKSTREAM').catch((e: Error) => {
        if (!/BUSYGROUP/.test(e.message)) throw e;
      });
    let groupReady = false;
    let failures = 0;
    try {
      while (!this.stopped) {
        try {
          if (!groupReady) await ensureGroup();
          groupReady = true;
          await this.consumeBatch(reader);
          if (failures > 0)
            console.error(`[checkout] payment stream consumer resumed after ${failures} error(s)`);
          failures = 0;
        } catch (e) {
          if (this.stopped) break;
          const msg = (e as Error).message;
          // A reset of the sale, or a Redis that restarted empty, deletes the stream
          // with its group (a blocked read is then UNBLOCKED with an error): make them again.
          groupReady = false;
          if (/NOGROUP|UNBLOCKED/.test(msg)) continue;
          failures += 1;
          if (failures === 1)
            console.error(`[checkout] payment stream consumer: ${msg}; retrying with backoff`);
          await new Promise((res) => setTimeout(res, Math.min(2_000, 50 * 2 ** failures)));
        }
      }
    } finally {
      reader.disconnect();
    }
  }

  /** Where the next XAUTOCLAIM scan of the group's pending entries starts. */
  private claimCursor = '0-0';

  private async consumeBatch(reader: RedisClient): Promise<void> {
    const r = this.store.redis;
    // Claim messages another consumer read but never acknowledged (it crashed),
    // scanning the pending list a slice per batch from where the last scan ended.
    const claimed = (await r.xautoclaim(
      this.streamKey,
      this.group,
      this.consumer,
      CLAIM_MIN_IDLE_MS,
      this.claimCursor,
      'COUNT',
      50,
    )) as [string, [string, string[] | null][]];
    this.claimCursor = claimed?.[0] ?? '0-0';
    // An entry deleted from the stream while pending comes back without fields.
    const batches: [string, string[]][] = (claimed?.[1] ?? []).filter(
      (e): e is [string, string[]] => Array.isArray(e[1]),
    );
    const res = (await reader.xreadgroup(
      'GROUP',
      this.group,
      this.consumer,
      'COUNT',
      50,
      'BLOCK',
      200,
      'STREAMS',
      this.streamKey,
      '>',
    )) as [string, [string, string[]][]][] | null;
    for (const [, entries] of res ?? []) batches.push(...entries);
    for (const [msgId, fields] of batches) {
      const m: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) m[fields[i]!] = fields[i + 1]!;
      const o = m.orderId ? await this.store.get(m.orderId) : undefined;
      if (o && m.ref)
        await this.onCaptured(
          { ...o, amount: Number(m.amount) },
          m.ref,
          m.channel as Channel,
          'notify',
        );
      await r.xack(this.streamKey, this.group, msgId);
    }
  }

  // ---------------------------------------------------------------- sweeper & reconciler
  /** Expire orders past their payment deadline (the deadline queue, never keyspace notifications). */
  async sweep(now = Date.now()): Promise<number> {
    let n = 0;
    if (this.cfg.features.reconciler) await this.settleOwedCoupons();
    for (const sku of await this.store.skuIds()) {
      for (const id of await this.store.dueOrders(sku, now)) {
        const o = await this.store.get(id);
        if (!o || !OPEN_STATES.includes(o.state)) continue;
        // Naive holdPaying: wait for the callback, however long (ghost stock when it is lost).
        if (o.state === 'paying' && this.cfg.features.holdPaying) continue;
        let mayLand = false;
        if (o.state === 'paying' && this.cfg.features.reconciler) {
          // The gateway may have the money: ask before giving the stock back.
          if ((await this.reconcile(o)) !== 'not_charged') continue;
          // Nothing there yet, but a call the checkout gave up on may still take effect.
          mayLand = true;
        }
        const r = await this.store.release(id, 'expired', 'payment_deadline_passed', now);
        if (r.status === 'released') {
          n += 1;
          this.metrics.orders.inc({ event: 'expired' });
          if (o.coupon) await this.releaseCouponOfEnded(o.coupon, id);
          if (mayLand) await this.watchLate(id, now);
        }
      }
    }
    return n;
  }

  /** Ask the gateway what happened to an order's payment and settle it. */
  async reconcile(o: Order): Promise<'captured' | 'not_charged' | 'pending' | 'unreachable'> {
    try {
      // Both gateways: with failover the money may be on another channel than the order's.
      const [payments, trades] = await Promise.all([
        this.gw.bank.get<{
          data: { id: string; status: string; captured: boolean; amountRefunded: number }[];
        }>('payments.list', `/v1/payments?orderId=${encodeURIComponent(o.id)}`),
        this.gw.wallet.get<{ data: { tradeNo: string; status: string; style: Channel }[] }>(
          'trades.list',
          `/v1/trades?outTradeNo=${encodeURIComponent(o.id)}`,
        ),
      ]);
      let captured: { ref: string; channel: Channel }[] = [];
      let pending = false;
      for (const p of payments.body.data ?? []) {
        if (p.captured && p.amountRefunded === 0) captured.push({ ref: p.id, channel: 'card' });
        if (p.status === 'processing') pending = true;
      }
      for (const t of trades.body.data ?? []) {
        if (t.status === 'SUCCESS') captured.push({ ref: t.tradeNo, channel: t.style });
        if (t.status === 'USERPAYING') pending = true;
      }
      if (o.paymentRef) captured = captured.filter((c) => c.ref !== o.paymentRef);
      for (const c of captured) await this.onCaptured(o, c.ref, c.channel, 'reconciler');
      if (captured.length) {
        this.metrics.orders.inc({ event: 'reconciled' });
        return 'captured';
      }
      return pending ? 'pending' : 'not_charged';
    } catch (e) {
      if (e instanceof DependencyError) return 'unreachable';
      throw e;
    }
  }

  /** Settle orders stuck in paying: query the gateway; no charge and no answer pending means failed. */
  async reconcileStale(now = Date.now()): Promise<number> {
    let n = 0;
    for (const sku of await this.store.skuIds()) {
      for (const id of await this.store.stalePaying(
        sku,
        now - scaled(this.cfg, this.cfg.params.staleAfterMs),
      )) {
        // A pay call still running is not stale: its answer will settle it. This
        // process knows its own calls; another instance's are leased in Redis (a
        // killed instance's calls become stale once their lease ends).
        if (this.payCalls.has(id)) continue;
        const o = await this.store.get(id);
        if (!o || o.state !== 'paying') continue;
        if (o.payLeaseUntil !== undefined && o.payLeaseUntil > now) continue;
        const r = await this.reconcile(o);
        if (r === 'not_charged') {
          const rel = await this.store.release(id, 'payment_failed', 'payment_not_received', now, [
            'paying',
          ]);
          if (rel.status === 'released') {
            if (o.coupon) await this.releaseCouponOfEnded(o.coupon, id);
            await this.watchLate(id, now);
          }
        }
        n += 1;
      }
      // Ended orders whose payment may still land: a capture found now is a late
      // payment, re-reserved or refunded by onCaptured (I9). Watched while the
      // gateway has something pending or unanswered, else until their horizon.
      for (const id of await this.store.dueWatched(sku, now)) {
        const o = await this.store.get(id);
        if (!o) {
          await this.store.unwatch(id);
          continue;
        }
        const r = await this.reconcile(o);
        const stale = scaled(this.cfg, this.cfg.params.staleAfterMs);
        const until = o.watchUntil ?? 0;
        if (r === 'not_charged' && now >= until) await this.store.unwatch(id);
        else if (r === 'not_charged')
          // Nothing there yet: back off. Each check waits as long as the order has been
          // ended (at least staleAfterMs), the last one falls on the horizon: about
          // log2(horizon / staleAfterMs) + 2 checks instead of one every staleAfterMs.
          await this.store.rewatch(
            id,
            Math.min(until, now + Math.max(stale, now - (o.endedAt ?? now))),
          );
        // Something pending or unanswered at a gateway: ask again soon.
        else await this.store.rewatch(id, now + stale);
      }
    }
    return n;
  }

  /** Watch an order just released while a payment for it may still land at the gateway. */
  private async watchLate(id: string, now: number) {
    const p = this.cfg.params;
    // As long as an order may wait for its payment, and at least one request budget.
    const horizon = Math.max(scaled(this.cfg, p.paymentTtlMs), p.requestBudgetMs);
    await this.store.watchLate(id, now + horizon, now + scaled(this.cfg, p.staleAfterMs));
  }

  /** Start the sweeper, the reconciler (hardened) and the stream consumer. */
  start(): void {
    const every = (ms: number, fn: () => Promise<unknown>) => {
      let running = false;
      const t = setInterval(() => {
        if (running || this.stopped) return;
        running = true;
        fn()
          .catch((e) => console.error('[checkout] background task failed:', (e as Error).message))
          .finally(() => (running = false));
      }, ms);
      this.timers.push(t);
    };
    every(scaled(this.cfg, this.cfg.params.sweeperIntervalMs), () => this.sweep());
    if (this.cfg.features.reconciler)
      every(scaled(this.cfg, this.cfg.params.reconcilerIntervalMs), () => this.reconcileStale());
    this.stockCache.start();
    this.consumerLoop = this.consume();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.stockCache.stop();
    await this.consumerLoop;
  }
}
