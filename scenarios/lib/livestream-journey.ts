// The livestream shopper's journey, for both engines (scenarios/lib/journey.ts):
// browse, maybe leave; take a coupon; order (a re-clicker double-submits it);
// abandon, or pay now or later; re-click; poll while paying; retry after a
// human pause, maybe on another channel, ordering again when the order
// closed. Every decision comes from the shopper (drawn from the seed,
// scenarios/lib/shopper.ts) and the shopper's own PRNG; the metrics are the
// ones budgets read (docs/BUDGETS.md).
// No imports except sibling files (k6 loads this file by relative path).
import {
  jsonBody,
  one,
  type Journey,
  type JourneyAnswer,
  type JourneyContext,
  type JourneyRequest,
  type JourneyStep,
  type MetricDef,
} from './journey.ts';
import type { Channel, ResolvedPreset } from './preset.ts';
import { compareReplays } from './replays.ts';
import { Rng } from './rng.ts';
import { stageIndexAt, stageLabels } from './shape.ts';
import { instanceFor, targetList } from './targets.ts';
import {
  bestOutcome,
  drawShopper,
  fallbackFor,
  nextStep,
  orderFailed,
  orderOutcome,
  payFailed,
  payOutcome,
  type PayOutcome,
  type Shopper,
} from './shopper.ts';

/** The journey's own metrics (the built-in http_* ones come from the driver). */
export const LIVESTREAM_METRICS: readonly MetricDef[] = [
  { name: 'fc_shoppers', type: 'counter' },
  { name: 'fc_orders', type: 'counter' },
  { name: 'fc_order_failed', type: 'rate' },
  { name: 'fc_pay', type: 'counter' },
  { name: 'fc_pay_failed', type: 'rate' },
  { name: 'fc_order_ms', type: 'trend', time: true },
  { name: 'fc_pay_ms', type: 'trend', time: true },
  { name: 'fc_abandoned', type: 'counter' },
  { name: 'fc_paid_later', type: 'counter' },
  { name: 'fc_coupons', type: 'counter' },
  /** Double-submitted orders: answers compared with the first (scenarios/lib/replays.ts), and those that broke I10. */
  { name: 'fc_idem_replays', type: 'counter' },
  { name: 'fc_idem_mismatch', type: 'counter' },
];

/** The `route` tag of fc_idem_replays and fc_idem_mismatch (and the order request's `name`). */
export const ORDER_ROUTE = 'POST /v1/orders';

/** Business refusals (402 declined or coupon refused, 409 sold out, limit, wrong state) are answers, not failures. */
export const LIVESTREAM_EXPECTED_STATUSES: readonly number[] = [402, 409];

export interface LivestreamConfig {
  preset: ResolvedPreset;
  /**
   * The checkout, e.g. http://127.0.0.1:8100, or its instances: each shopper
   * sticks to one, drawn from the seed and the shopper's index (./targets.ts).
   */
  target: string | readonly string[];
  /** The coupon service; without it nobody takes a coupon. */
  couponUrl?: string;
  /** The shoppers file's list; without it shoppers are drawn from the seed (the same decisions). */
  shoppers?: readonly Shopper[];
}

interface Body {
  id?: string;
  state?: string;
  reason?: string;
  code?: string;
}

/** Shopper `n`: from the list when there is one (reused under a new id past its end), else drawn. */
export function shopperFor(c: LivestreamConfig, n: number): Shopper {
  const list = c.shoppers;
  if (!list || list.length === 0) return drawShopper(c.preset.seed, n, c.preset);
  const s = list[n % list.length]!;
  const round = Math.floor(n / list.length);
  return round === 0 ? s : { ...s, id: `${s.id}-r${round}` };
}

function reasonOf(status: number, b: Body): string {
  if (b.reason) return b.reason;
  if (status === 0) return 'no_answer';
  return status < 300 ? 'none' : `http_${status}`;
}

/** The journey of arrival `ctx.index`. */
export function* livestreamJourney(c: LivestreamConfig, ctx: JourneyContext): Journey {
  const P = c.preset;
  const B = P.behaviour;
  const labels = stageLabels(P.traffic.stages);
  const targets = targetList(c.target);
  const target = targets[instanceFor(P.seed, ctx.index, targets.length)]!;
  const m = ctx.metrics;
  const stageNow = () => labels[stageIndexAt(P.traffic.stages, ctx.elapsedS())]!;
  const req = (
    method: JourneyRequest['method'],
    url: string,
    service: string,
    name: string,
    stage: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): JourneyRequest => ({
    method,
    url,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    headers: { 'content-type': 'application/json', ...headers },
    tags: { service, name, stage },
    timeoutS: B.requestTimeoutS,
  });
  const sh = shopperFor(c, ctx.index);
  const rng = new Rng(sh.pauseSeed);
  function* pause([lo, hi]: [number, number]): Journey {
    const s = rng.between(lo, hi);
    if (s > 0) yield { kind: 'sleep', seconds: s };
  }

  // browse
  yield one(req('GET', `${target}/v1/skus`, 'checkout', 'GET /v1/skus', stageNow()));
  if (sh.browseOnly) {
    m.add('fc_shoppers', 1, { stage: stageNow(), kind: 'browse' });
    return;
  }
  m.add('fc_shoppers', 1, { stage: stageNow(), kind: 'buyer' });

  // coupon
  let coupon: string | undefined;
  const campaign = P.sale.coupon;
  if (sh.useCoupon && campaign && c.couponUrl) {
    const stage = stageNow();
    const [r] = (yield one(
      req(
        'POST',
        `${c.couponUrl.replace(/\/+$/, '')}/v1/coupons`,
        'coupon',
        'POST /v1/coupons',
        stage,
        {
          campaignId: campaign.campaignId,
          userId: sh.id,
        },
      ),
    ))!;
    const b = jsonBody<Body>(r);
    const outcome = r!.status === 201 ? 'issued' : r!.status === 402 ? 'refused' : 'failed';
    m.add('fc_coupons', 1, {
      stage,
      outcome,
      reason: b.reason ?? (r!.status === 201 ? 'none' : `http_${r!.status}`),
    });
    if (r!.status === 201) coupon = b.code;
  }

  /**
   * POST /v1/orders, sent 1 + re-clicks times at once under one Idempotency-Key
   * (a double-submitted order): the new order's id, or undefined when none was
   * made. The shopper outcome metrics count the click once, from the answer
   * the shopper sees; the copies are compared (scenarios/lib/replays.ts) into
   * fc_idem_replays and fc_idem_mismatch.
   */
  function* placeOrder(
    channel: Channel,
    k: number,
  ): Generator<JourneyStep, string | undefined, JourneyAnswer[] | undefined> {
    const stage = stageNow();
    const body = { user: sh.id, sku: sh.sku, quantity: 1, channel, ...(coupon ? { coupon } : {}) };
    const r = req('POST', `${target}/v1/orders`, 'checkout', ORDER_ROUTE, stage, body, {
      'Idempotency-Key': `${sh.id}-order-${k}`,
    });
    const answers = (yield {
      kind: 'http',
      requests: Array.from({ length: 1 + sh.reclicks }, () => r),
    })!;
    const check = compareReplays(answers);
    if (answers.length > 1) {
      m.add('fc_idem_replays', check.replays, { route: ORDER_ROUTE, stage });
      m.add('fc_idem_mismatch', check.mismatches, { route: ORDER_ROUTE, stage });
    }
    const a = answers[check.shown]!;
    const b = jsonBody<Body>(a);
    const outcome = orderOutcome(a.status, b.reason);
    m.add('fc_orders', 1, { stage, outcome, reason: reasonOf(a.status, b) });
    m.add('fc_order_failed', orderFailed(a.status, b.reason), { stage });
    if (a.status !== 0) m.add('fc_order_ms', a.durationMs, { stage });
    return outcome === 'created' && b.id ? b.id : undefined;
  }

  /** One pay click with the shopper's re-clicks sent at the same time: what the shopper sees, the best answer. */
  function* payClick(
    id: string,
    channel: Channel,
    click: 'first' | 'retry',
  ): Generator<
    JourneyStep,
    { outcome: PayOutcome; state?: string; first: PayOutcome; stage: string },
    JourneyAnswer[] | undefined
  > {
    const stage = stageNow();
    const fallback = sh.allowFallback ? fallbackFor(P, channel) : [];
    const body = { channel, ...(fallback.length ? { fallbackChannels: fallback } : {}) };
    const r = req(
      'POST',
      `${target}/v1/orders/${id}/pay`,
      'checkout',
      'POST /v1/orders/:id/pay',
      stage,
      body,
    );
    const answers = (yield {
      kind: 'http',
      requests: Array.from({ length: 1 + sh.reclicks }, () => r),
    })!;
    const seen = answers.map((a, i) => {
      const b = jsonBody<Body>(a);
      const outcome = payOutcome(a.status, b.state);
      m.add('fc_pay', 1, {
        stage,
        channel,
        click: i === 0 ? click : 'reclick',
        outcome,
        reason: reasonOf(a.status, b),
      });
      return { outcome, state: b.state };
    });
    if (click === 'first' && answers[0]!.status !== 0)
      m.add('fc_pay_ms', answers[0]!.durationMs, { stage });
    return { ...seen[bestOutcome(seen.map((s) => s.outcome))]!, first: seen[0]!.outcome, stage };
  }

  /** GET /v1/orders/:id: the order's state, or undefined when it could not be read. */
  function* look(
    id: string,
  ): Generator<JourneyStep, string | undefined, JourneyAnswer[] | undefined> {
    const [r] = (yield one(
      req('GET', `${target}/v1/orders/${id}`, 'checkout', 'GET /v1/orders/:id', stageNow()),
    ))!;
    return r!.status === 200 ? jsonBody<Body>(r).state : undefined;
  }

  /** While the order is paying, look again after short pauses, `polls` times at most. */
  function* poll(
    id: string,
    state: string | undefined,
  ): Generator<JourneyStep, string | undefined, JourneyAnswer[] | undefined> {
    for (let i = 0; i < B.polls && (state === 'paying' || state === undefined); i += 1) {
      yield* pause(B.pollPauseS);
      state = (yield* look(id)) ?? state;
    }
    return state;
  }

  // order
  let id = yield* placeOrder(sh.channel, 1);
  if (!id) return;
  if (sh.abandon) {
    m.add('fc_abandoned', 1, { stage: stageNow() });
    return;
  }
  if (sh.payLater) {
    yield* pause(B.payLaterS);
    m.add('fc_paid_later', 1, { stage: stageNow() });
  }

  // pay, and retry like a person
  let channel = sh.channel;
  let orders = 1;
  for (let attempt = 0; ; attempt += 1) {
    const seen = yield* payClick(id, channel, attempt === 0 ? 'first' : 'retry');
    let state = seen.outcome === 'paying' ? yield* poll(id, 'paying') : seen.state;
    // The click failed or not by its first answer, a 202 by what the polls saw.
    const settled = seen.outcome === 'paid' ? 'paid' : state;
    m.add('fc_pay_failed', payFailed(seen.first, settled), { stage: seen.stage, channel });
    if (seen.outcome === 'paid') return;
    if (state === 'paid' || state === 'paying') return; // paid, or still paying: the checkout settles it
    if (!sh.retryAfterFailure || attempt >= B.maxRetries) return;
    yield* pause(B.retryPauseS);
    if (sh.switchChannel && sh.switchTo && channel === sh.channel) channel = sh.switchTo;
    let step = nextStep(state);
    if (step === 'look') {
      state = yield* look(id);
      step = nextStep(state);
      if (step === 'look') return; // the order cannot be read: give up
    }
    if (step === 'wait') state = yield* poll(id, state);
    if (step === 'done' || step === 'wait') return;
    if (step === 'reorder') {
      orders += 1;
      const next = yield* placeOrder(channel, orders);
      if (!next) return;
      id = next;
    }
  }
}
