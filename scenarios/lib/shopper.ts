// Shoppers and their behaviour, shared by the k6 scenario and the harness
// (harness/shoppers.ts adds faker names and writes the file the scenario
// reads). Every decision is drawn per shopper from the run's seed, so the same
// seed gives the same shoppers; how a shopper reads an answer is here too, as
// pure functions. No imports except sibling files (k6 loads this by path).
import { Rng, mixSeed } from './rng.ts';
import { CHANNELS, weightedChannels, type Channel, type ResolvedPreset } from './preset.ts';

export interface Shopper {
  /** User id sent to the checkout and the coupon service: `u-<seed>-<n>`. */
  id: string;
  /** Display data (faker zh_CN, from the shoppers file; absent when the script draws shoppers itself). */
  name?: string;
  phone?: string;
  city?: string;
  /** Looks at the catalogue and leaves. */
  browseOnly: boolean;
  /** The SKU the shopper wants. */
  sku: string;
  /** The channel of the order and of the first pay click. */
  channel: Channel;
  /** Asks the coupon service for a coupon and orders with it (when the sale has a campaign). */
  useCoupon: boolean;
  /** Extra clicks sent together with each pay click (0: clicks once). */
  reclicks: number;
  /** After a failed payment, pauses and pays again (at most `maxRetries` times). */
  retryAfterFailure: boolean;
  /** On that retry, switches to `switchTo` (when there is another channel). */
  switchChannel: boolean;
  switchTo?: Channel;
  /** Offers the preset's other channels as `fallbackChannels` on pay. */
  allowFallback: boolean;
  /** Orders and never pays. */
  abandon: boolean;
  /** Orders, leaves, comes back after a `payLaterS` pause to pay. */
  payLater: boolean;
  /** Seed of the shopper's own PRNG: every pause is drawn from it. */
  pauseSeed: number;
}

/** The seed of shopper `n`'s decisions (the pause seed is drawn from it). */
export function shopperSeed(seed: number, n: number): number {
  return mixSeed(seed, n);
}

/**
 * Shopper `n` of a run: every decision drawn from `seed` and `n`, the same
 * number of draws whatever the outcome (adding a knob changes no other draw).
 */
export function drawShopper(seed: number, n: number, p: ResolvedPreset): Shopper {
  const b = p.behaviour;
  const r = new Rng(shopperSeed(seed, n));
  const channels = weightedChannels(b);
  if (channels.length === 0) throw new Error('behaviour.channels: no channel has a weight above 0');
  const browseOnly = r.chance(b.browseOnly);
  const sku = p.sale.skus[Math.floor(r.next() * p.sale.skus.length)]!.id;
  const channel = r.weighted(channels.map((c) => [c, b.channels[c] ?? 0] as const));
  const useCoupon = r.chance(b.useCoupon) && p.sale.coupon !== undefined;
  const reclicker = r.chance(b.reclickPay);
  const reclicks = r.int(1, b.maxReclicks);
  const retryAfterFailure = r.chance(b.retryAfterFailure);
  const switchChannel = r.chance(b.switchChannel);
  const others = channels.filter((c) => c !== channel);
  const switchU = r.next();
  const allowFallback = r.chance(b.allowFallback);
  // Abandon and pay later exclude each other: one draw decides.
  const u = r.next();
  const abandon = u < b.abandon;
  const payLater = !abandon && u < b.abandon + b.payLater;
  const pauseSeed = (r.next() * 4294967296) >>> 0;
  let switchTo: Channel | undefined;
  if (others.length > 0) {
    let w = switchU * others.reduce((s, c) => s + (b.channels[c] ?? 0), 0);
    for (const c of others) {
      switchTo = c;
      w -= b.channels[c] ?? 0;
      if (w < 0) break;
    }
  }
  return {
    id: `u-${seed}-${n}`,
    browseOnly,
    sku,
    channel,
    useCoupon,
    reclicks: reclicker ? reclicks : 0,
    retryAfterFailure,
    switchChannel: switchChannel && switchTo !== undefined,
    ...(switchTo !== undefined ? { switchTo } : {}),
    allowFallback,
    abandon,
    payLater,
    pauseSeed,
  };
}

/** The channels offered as fallbacks when paying with `channel`: the preset's other weighted channels. */
export function fallbackFor(p: ResolvedPreset, channel: Channel): Channel[] {
  return weightedChannels(p.behaviour).filter((c) => c !== channel);
}

export { CHANNELS };

// ------------------------------------------------------------------ answers

export type OrderOutcome = 'created' | 'sold_out' | 'limit' | 'coupon_refused' | 'failed';
export const ORDER_OUTCOMES: readonly OrderOutcome[] = [
  'created',
  'sold_out',
  'limit',
  'coupon_refused',
  'failed',
];

/** How a shopper reads the answer to POST /v1/orders. */
export function orderOutcome(status: number, reason: string | undefined): OrderOutcome {
  if (status === 201 || status === 200) return 'created';
  if (status === 409 && reason === 'sold_out') return 'sold_out';
  if (status === 409 && reason === 'purchase_limit_exceeded') return 'limit';
  if ((status === 402 || status === 409) && reason !== undefined && reason.startsWith('coupon_'))
    return 'coupon_refused';
  return 'failed';
}

/**
 * `fc_order_failed`: the order request failed rather than being answered.
 * True for 5xx, 429 and no answer (status 0), and for any other unexpected
 * answer (400, 404, 422...); false for an order and for business refusals
 * (sold out, purchase limit, coupon refused).
 */
export function orderFailed(status: number, reason: string | undefined): boolean {
  const o = orderOutcome(status, reason);
  return o === 'failed';
}

export type PayOutcome = 'paid' | 'paying' | 'declined' | 'failed';
export const PAY_OUTCOMES: readonly PayOutcome[] = ['paid', 'paying', 'declined', 'failed'];

/** How a shopper reads the answer to POST /v1/orders/:id/pay. */
export function payOutcome(status: number, state: string | undefined): PayOutcome {
  if (status === 200 && state === 'paid') return 'paid';
  if (status === 202) return 'paying';
  if (status === 402) return 'declined';
  return 'failed';
}

/**
 * `fc_pay_failed` of one click: true unless it was answered 200 paid, or 202
 * paying and what the shopper saw next (`settled`: the order's state after the
 * polls) was paid, still paying or unknown. A 202 that ends in a failed or
 * expired order (or back to pending_payment) is a payment that failed for the
 * shopper, however late they learnt it: a gateway's 503 the checkout treats as
 * ambiguous answers 202 first.
 */
export function payFailed(o: PayOutcome, settled?: string): boolean {
  if (o === 'paid') return false;
  if (o === 'paying') return settled !== undefined && !SETTLED_OK.includes(settled);
  return true;
}

/** Order states after a 202 that are not a failed payment. */
const SETTLED_OK = ['paid', 'paying', 'refunded'];

/** The best answer among a click and its re-clicks, as the shopper sees it: paid, else paying, else the first. */
export function bestOutcome(outcomes: readonly PayOutcome[]): number {
  const paid = outcomes.indexOf('paid');
  if (paid >= 0) return paid;
  const paying = outcomes.indexOf('paying');
  return paying >= 0 ? paying : 0;
}

/** Order states after which the order cannot be paid any more: a retry places a new order. */
export const CLOSED_STATES = ['payment_failed', 'expired', 'cancelled'];

/**
 * What a shopper does next, from the order's state as last seen:
 * `done` (paid, or refunded: nothing to do), `wait` (still paying: poll, then
 * leave), `pay` (pending payment: pay this order again), `reorder` (closed:
 * order again), `look` (unknown: look at the order first).
 */
export function nextStep(state: string | undefined): 'done' | 'wait' | 'pay' | 'reorder' | 'look' {
  if (state === undefined) return 'look';
  if (state === 'paid' || state === 'refunded') return 'done';
  if (state === 'paying') return 'wait';
  if (state === 'pending_payment') return 'pay';
  if (CLOSED_STATES.includes(state)) return 'reorder';
  return 'done';
}
