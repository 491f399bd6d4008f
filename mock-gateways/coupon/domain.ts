// The coupon service's domain: campaigns with a budget, coupons issued to
// shoppers, locked for an order, consumed or released (by the order, or by
// lock expiry), and the statement a leak audit reads. No HTTP here;
// ./service.ts maps these results onto routes.
//
// Everything here is synchronous: Node runs one handler at a time, so a check
// and the update that follows it (budget, per-user limit, lock owner) can
// never interleave with another request. Keep it that way: no awaits.
import type { ChaosEngine } from '../chaos/engine.ts';
import { HttpError, ValidationError } from '../errors.ts';
import { TimeScale } from '../time-scale.ts';
import {
  DECLINE_MESSAGES,
  type CampaignInput,
  type CouponDeclineReason,
  type CouponExtra,
  type CouponState,
  type Discount,
  type IssueInput,
  type LockInput,
  type OrderInput,
} from './schema.ts';

export interface Campaign {
  id: string;
  name: string;
  budget: number;
  issued: number;
  discount: Discount;
  startsAt?: string;
  endsAt?: string;
  perUserLimit: number;
  minOrderAmount?: number;
  createdAt: string;
}

export type HistoryType = 'issued' | 'locked' | 'consumed' | 'released' | 'expired';

export interface HistoryEntry {
  type: HistoryType;
  at: string;
  orderId?: string;
}

interface Coupon {
  code: string;
  campaignId: string;
  userId: string;
  state: CouponState;
  /** The order holding the lock (LOCKED) or the order that used it (USED). */
  orderId?: string;
  orderAmount?: number;
  lockedAt?: string;
  lockExpiresAt?: string;
  usedAt?: string;
  issuedAt: string;
  /** The order whose lock expired last (so its late consume is told `lock_expired`). */
  expiredFor?: string;
  history: HistoryEntry[];
}

/** A coupon as the API shows it: a copy, so a stored idempotent answer never changes. */
export interface CouponView {
  object: 'coupon';
  code: string;
  campaignId: string;
  userId: string;
  state: CouponState;
  discount: Discount;
  orderId?: string;
  orderAmount?: number;
  discountAmount?: number;
  lockedAt?: string;
  lockExpiresAt?: string;
  usedAt?: string;
  issuedAt: string;
  history: HistoryEntry[];
}

export interface CampaignView extends Campaign {
  object: 'campaign';
  status: 'scheduled' | 'active' | 'ended';
  remaining: number;
  coupons: Record<CouponState, number>;
}

/** A refusal the shopper sees: HTTP 402 `{error:'declined', reason, message, ...context}`. */
export function declineError(
  reason: CouponDeclineReason,
  context: Record<string, unknown> = {},
): HttpError {
  return new HttpError(402, reason, DECLINE_MESSAGES[reason], { error: 'declined', ...context });
}

/** A transition the coupon's state does not allow on consume/release: HTTP 409 with `reason`. */
function conflict(reason: string, message: string, c: Coupon): HttpError {
  return new HttpError(409, reason, message, {
    code: c.code,
    state: c.state,
    ...(c.orderId ? { orderId: c.orderId } : {}),
  });
}

function notFound(what: 'campaign' | 'coupon', field: string, value: string): HttpError {
  return new HttpError(404, `${what}_not_found`, `no ${what} ${value}`, {
    errors: [{ field, reason: `no ${what} with this ${field === 'code' ? 'code' : 'id'}` }],
  });
}

const emptyCounts = (): Record<CouponState, number> => ({ ISSUED: 0, LOCKED: 0, USED: 0 });

export class Coupons {
  private campaigns = new Map<string, Campaign>();
  private coupons = new Map<string, Coupon>();
  private byCampaign = new Map<string, string[]>();
  private byUser = new Map<string, string[]>();
  /** Coupons an order holds (LOCKED) or used (USED). */
  private byOrder = new Map<string, Set<string>>();
  /** Coupons held per (campaign, user): the frequency limit. */
  private perUser = new Map<string, number>();
  private timers = new Map<string, NodeJS.Timeout>();
  private declines = new Map<string, number>();
  private injected = new Map<string, number>();
  private campaignSeq = 0;
  private couponSeq = 0;

  private readonly clock: () => number;
  /** The run's time-scale: multiplies the profile's lock lifetime (a world duration). */
  private readonly timeScale: TimeScale;

  constructor(
    readonly engine: ChaosEngine<CouponExtra>,
    opts: { clock?: () => number; timeScale?: TimeScale } = {},
  ) {
    this.clock = opts.clock ?? Date.now;
    this.timeScale = opts.timeScale ?? new TimeScale();
  }

  private iso(): string {
    return new Date(this.clock()).toISOString();
  }

  private decline(reason: CouponDeclineReason, context: Record<string, unknown>): HttpError {
    this.declines.set(reason, (this.declines.get(reason) ?? 0) + 1);
    return declineError(reason, context);
  }

  /** Count a chaos-injected decline (the statement lists them apart from real ones). */
  countInjected(reason: string): void {
    this.injected.set(reason, (this.injected.get(reason) ?? 0) + 1);
  }

  private windowDecline(c: Campaign): 'campaign_not_started' | 'campaign_ended' | undefined {
    const now = this.clock();
    if (c.startsAt && now < Date.parse(c.startsAt)) return 'campaign_not_started';
    if (c.endsAt && now >= Date.parse(c.endsAt)) return 'campaign_ended';
    return undefined;
  }

  // ---- campaigns ----

  createCampaign(input: CampaignInput): CampaignView {
    let id = input.id;
    if (id === undefined) {
      do {
        this.campaignSeq += 1;
        id = `cmp_${String(this.campaignSeq).padStart(6, '0')}`;
      } while (this.campaigns.has(id));
    } else if (this.campaigns.has(id)) {
      throw new HttpError(409, 'campaign_exists', `campaign ${id} already exists`, {
        errors: [{ field: 'id', reason: 'a campaign with this id already exists' }],
      });
    }
    const c: Campaign = {
      id,
      name: input.name,
      budget: input.budget,
      issued: 0,
      discount: { ...input.discount },
      ...(input.startsAt ? { startsAt: new Date(input.startsAt).toISOString() } : {}),
      ...(input.endsAt ? { endsAt: new Date(input.endsAt).toISOString() } : {}),
      perUserLimit: input.perUserLimit,
      ...(input.minOrderAmount !== undefined ? { minOrderAmount: input.minOrderAmount } : {}),
      createdAt: this.iso(),
    };
    this.campaigns.set(id, c);
    this.byCampaign.set(id, []);
    return this.campaignView(c);
  }

  private campaign(id: string, field = 'id'): Campaign {
    const c = this.campaigns.get(id);
    if (!c) throw notFound('campaign', field, id);
    return c;
  }

  /** Coupons an order holds now (LOCKED). */
  lockedCount(): number {
    let n = 0;
    for (const c of this.coupons.values()) if (c.state === 'LOCKED') n += 1;
    return n;
  }

  getCampaign(id: string): CampaignView {
    return this.campaignView(this.campaign(id));
  }

  private campaignView(c: Campaign): CampaignView {
    const coupons = emptyCounts();
    for (const code of this.byCampaign.get(c.id) ?? []) coupons[this.coupons.get(code)!.state] += 1;
    const w = this.windowDecline(c);
    return {
      object: 'campaign',
      ...c,
      discount: { ...c.discount },
      status:
        w === 'campaign_not_started' ? 'scheduled' : w === 'campaign_ended' ? 'ended' : 'active',
      remaining: c.budget - c.issued,
      coupons,
    };
  }

  // ---- coupons ----

  issue(input: IssueInput): CouponView {
    const c = this.campaign(input.campaignId, 'campaignId');
    const ctx = { campaignId: c.id, userId: input.userId };
    const w = this.windowDecline(c);
    if (w) throw this.decline(w, ctx);
    const userKey = `${c.id}\u0000${input.userId}`;
    const held = this.perUser.get(userKey) ?? 0;
    if (held >= c.perUserLimit)
      throw this.decline('frequency_limited', { ...ctx, perUserLimit: c.perUserLimit });
    if (c.issued >= c.budget) throw this.decline('budget_exhausted', { ...ctx, budget: c.budget });
    // Check and update with no await in between: budget can never be over-issued.
    c.issued += 1;
    this.perUser.set(userKey, held + 1);
    this.couponSeq += 1;
    const coupon: Coupon = {
      code: `cpn_${String(this.couponSeq).padStart(8, '0')}`,
      campaignId: c.id,
      userId: input.userId,
      state: 'ISSUED',
      issuedAt: this.iso(),
      history: [],
    };
    coupon.history.push({ type: 'issued', at: coupon.issuedAt });
    this.coupons.set(coupon.code, coupon);
    this.byCampaign.get(c.id)!.push(coupon.code);
    const list = this.byUser.get(input.userId) ?? [];
    list.push(coupon.code);
    this.byUser.set(input.userId, list);
    return this.view(coupon);
  }

  private coupon(code: string): Coupon {
    const c = this.coupons.get(code);
    if (!c) throw notFound('coupon', 'code', code);
    return c;
  }

  /** Whom coupon `code` was issued to, if it exists. */
  holderOf(code: string): { campaignId: string; userId: string } | undefined {
    const c = this.coupons.get(code);
    return c && { campaignId: c.campaignId, userId: c.userId };
  }

  getCoupon(code: string): CouponView {
    return this.view(this.coupon(code));
  }

  list(q: { userId?: string; orderId?: string; campaignId?: string; state?: CouponState }) {
    let codes: Iterable<string>;
    if (q.orderId !== undefined) codes = this.byOrder.get(q.orderId) ?? [];
    else if (q.userId !== undefined) codes = this.byUser.get(q.userId) ?? [];
    else codes = this.byCampaign.get(q.campaignId ?? '') ?? [];
    const out: CouponView[] = [];
    for (const code of codes) {
      const c = this.coupons.get(code)!;
      if (q.userId !== undefined && c.userId !== q.userId) continue;
      if (q.orderId !== undefined && c.orderId !== q.orderId) continue;
      if (q.campaignId !== undefined && c.campaignId !== q.campaignId) continue;
      if (q.state !== undefined && c.state !== q.state) continue;
      out.push(this.view(c));
    }
    return out;
  }

  lock(code: string, input: LockInput): CouponView {
    const c = this.coupon(code);
    const campaign = this.campaign(c.campaignId);
    const ctx = { code, orderId: input.orderId };
    if (input.userId !== undefined && input.userId !== c.userId)
      throw this.decline('not_owner', ctx);
    if (c.state === 'USED') throw this.decline('already_used', ctx);
    if (c.state === 'LOCKED') {
      if (c.orderId === input.orderId) return this.view(c); // the same order again: no change
      throw this.decline('locked_by_other_order', ctx);
    }
    if (this.windowDecline(campaign) === 'campaign_ended')
      throw this.decline('campaign_ended', { ...ctx, campaignId: campaign.id });
    if (campaign.minOrderAmount !== undefined) {
      if (input.orderAmount === undefined)
        throw new ValidationError([
          {
            field: 'orderAmount',
            reason: `required: campaign ${campaign.id} has a minimum order amount (${campaign.minOrderAmount})`,
          },
        ]);
      if (input.orderAmount < campaign.minOrderAmount)
        throw this.decline('order_below_minimum', {
          ...ctx,
          minOrderAmount: campaign.minOrderAmount,
        });
    }
    // The profile's lifetime is a world duration, scaled with the run; a request's own lockTtlMs
    // is the caller's, already on its clock (a checkout at a time-scale scales its own), so kept.
    const profileTtlMs = this.engine.effective('coupons.lock').extra?.lockTtlMs;
    const ttlMs =
      input.lockTtlMs ?? (profileTtlMs === undefined ? undefined : this.timeScale.ms(profileTtlMs));
    const now = this.iso();
    c.state = 'LOCKED';
    c.orderId = input.orderId;
    if (input.orderAmount !== undefined) c.orderAmount = input.orderAmount;
    else delete c.orderAmount;
    c.lockedAt = now;
    delete c.expiredFor;
    c.history.push({ type: 'locked', at: now, orderId: input.orderId });
    this.holdFor(input.orderId).add(code);
    if (ttlMs !== undefined) {
      c.lockExpiresAt = new Date(this.clock() + ttlMs).toISOString();
      const orderId = input.orderId;
      const t = setTimeout(() => {
        if (this.timers.get(code) === t) this.timers.delete(code);
        if (c.state !== 'LOCKED' || c.orderId !== orderId) return;
        this.unlock(c, 'expired');
        c.expiredFor = orderId;
      }, ttlMs);
      this.timers.set(code, t);
    }
    return this.view(c);
  }

  consume(code: string, input: OrderInput): CouponView {
    const c = this.coupon(code);
    if (c.state === 'USED') {
      if (c.orderId === input.orderId) return this.view(c); // consumed twice by its order: no change
      throw conflict('already_used', `coupon ${code} was used by another order`, c);
    }
    if (c.state === 'LOCKED' && c.orderId !== input.orderId)
      throw conflict(
        'locked_by_other_order',
        `coupon ${code} is locked by another order; only the locking order may consume it`,
        c,
      );
    if (c.state === 'ISSUED') {
      if (c.expiredFor === input.orderId)
        throw conflict(
          'lock_expired',
          `the lock of order ${input.orderId} on coupon ${code} expired; lock it again`,
          c,
        );
      throw conflict('not_locked', `coupon ${code} is not locked; lock it for the order first`, c);
    }
    this.clearTimer(code);
    const now = this.iso();
    c.state = 'USED';
    c.usedAt = now;
    delete c.lockExpiresAt;
    c.history.push({ type: 'consumed', at: now, orderId: input.orderId });
    return this.view(c);
  }

  release(code: string, input: OrderInput): CouponView {
    const c = this.coupon(code);
    if (c.state === 'ISSUED') return this.view(c); // nothing held: releasing is a no-op
    if (c.state === 'USED')
      throw conflict('already_used', `coupon ${code} is used; a used coupon cannot be released`, c);
    if (c.orderId !== input.orderId)
      throw conflict(
        'locked_by_other_order',
        `coupon ${code} is locked by another order; only the locking order may release it`,
        c,
      );
    this.unlock(c, 'released');
    return this.view(c);
  }

  private holdFor(orderId: string): Set<string> {
    let s = this.byOrder.get(orderId);
    if (!s) this.byOrder.set(orderId, (s = new Set()));
    return s;
  }

  /** LOCKED -> ISSUED, by release or expiry. */
  private unlock(c: Coupon, type: 'released' | 'expired') {
    this.clearTimer(c.code);
    const orderId = c.orderId!;
    const held = this.byOrder.get(orderId);
    held?.delete(c.code);
    if (held?.size === 0) this.byOrder.delete(orderId);
    c.state = 'ISSUED';
    delete c.orderId;
    delete c.orderAmount;
    delete c.lockedAt;
    delete c.lockExpiresAt;
    c.history.push({ type, at: this.iso(), orderId });
  }

  private clearTimer(code: string) {
    const t = this.timers.get(code);
    if (t) clearTimeout(t);
    this.timers.delete(code);
  }

  private view(c: Coupon): CouponView {
    const discount = this.campaigns.get(c.campaignId)!.discount;
    let discountAmount: number | undefined;
    if (c.orderAmount !== undefined)
      discountAmount =
        discount.type === 'amount'
          ? Math.min(discount.value, c.orderAmount)
          : Math.floor((c.orderAmount * discount.value) / 100);
    return {
      object: 'coupon',
      code: c.code,
      campaignId: c.campaignId,
      userId: c.userId,
      state: c.state,
      discount: { ...discount },
      ...(c.orderId !== undefined ? { orderId: c.orderId } : {}),
      ...(c.orderAmount !== undefined ? { orderAmount: c.orderAmount, discountAmount } : {}),
      ...(c.lockedAt ? { lockedAt: c.lockedAt } : {}),
      ...(c.lockExpiresAt ? { lockExpiresAt: c.lockExpiresAt } : {}),
      ...(c.usedAt ? { usedAt: c.usedAt } : {}),
      issuedAt: c.issuedAt,
      history: c.history.map((h) => ({ ...h })),
    };
  }

  /**
   * Every coupon with its state and history, and totals: what a leak audit reads.
   * `campaignId` narrows everything but `declines`; `state` narrows only the `coupons` list.
   * With `limit`, `coupons` is a page: at most `limit` coupons from position `cursor` in
   * issue order, and `next` (there only when more may follow) is where the next page
   * starts; the totals always cover every coupon.
   */
  statement(q: { campaignId?: string; state?: CouponState; limit?: number; cursor?: number } = {}) {
    if (q.campaignId !== undefined) this.campaign(q.campaignId, 'campaignId');
    const coupons: CouponView[] = [];
    const totals = {
      coupons: 0,
      ...emptyCounts(),
      locks: 0,
      consumes: 0,
      releases: 0,
      expiredLocks: 0,
    };
    const counted: Partial<
      Record<HistoryType, 'locks' | 'consumes' | 'releases' | 'expiredLocks'>
    > = { locked: 'locks', consumed: 'consumes', released: 'releases', expired: 'expiredLocks' };
    const from = q.cursor ?? 0;
    const limit = q.limit ?? Infinity;
    let next: number | undefined;
    let position = -1;
    for (const c of this.coupons.values()) {
      position += 1;
      if (q.campaignId !== undefined && c.campaignId !== q.campaignId) continue;
      totals.coupons += 1;
      totals[c.state] += 1;
      for (const h of c.history) {
        const k = counted[h.type];
        if (k) totals[k] += 1;
      }
      if (position < from || next !== undefined) continue;
      if (q.state === undefined || c.state === q.state) {
        if (coupons.length < limit) coupons.push(this.view(c));
        else next = position;
      }
    }
    const campaigns = [...this.campaigns.values()]
      .filter((c) => q.campaignId === undefined || c.id === q.campaignId)
      .map((c) => ({
        id: c.id,
        budget: c.budget,
        issued: c.issued,
        remaining: c.budget - c.issued,
      }));
    return {
      service: 'coupon' as const,
      generatedAt: this.iso(),
      campaigns,
      coupons,
      totals,
      declines: Object.fromEntries(this.declines),
      injectedDeclines: Object.fromEntries(this.injected),
      ...(next !== undefined ? { next } : {}),
    };
  }

  reset(): void {
    this.close();
    this.campaigns = new Map();
    this.coupons = new Map();
    this.byCampaign = new Map();
    this.byUser = new Map();
    this.byOrder = new Map();
    this.perUser = new Map();
    this.declines = new Map();
    this.injected = new Map();
    this.campaignSeq = 0;
    this.couponSeq = 0;
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
