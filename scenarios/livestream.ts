// The livestream scenario: open-model traffic shaped like a livestream sale
// (ramping-arrival-rate over the preset's stages), one shopper per iteration,
// each browsing, taking a coupon, ordering, paying, re-clicking, retrying,
// switching channel, abandoning or coming back later, as drawn from the seed.
// Reference: docs/SCENARIOS.md.
//
// From the harness (`flashcrowd run`):
//   k6 run -e TARGET_URL=<checkout> -e COUPON_URL=<coupon mock> -e PRESET_FILE=<resolved.json>
//          -e SHOPPERS_FILE=<shoppers.json> -e SUMMARY_FILE=<k6-summary.json> -e SEED=<n> scenarios/livestream.ts
// By hand against a running stack (the sale seeded through POST /admin/sale):
//   k6 run -e TARGET_URL=... -e COUPON_URL=... -e PRESET=livestream-spike -e TIME_SCALE=0.0167 \
//          -e LOAD_SCALE=0.1 -e SEED=1 scenarios/livestream.ts
import { sleep } from 'k6';
import { SharedArray } from 'k6/data';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';
import {
  gracefulStopS,
  resolve,
  withDefaults,
  type Channel,
  type ResolvedPreset,
} from './lib/preset.ts';
import { Rng } from './lib/rng.ts';
import { k6Stages, stageIndexAt, stageLabels } from './lib/shape.ts';
import {
  ORDER_OUTCOMES,
  PAY_OUTCOMES,
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
} from './lib/shopper.ts';

// ------------------------------------------------------------------ set-up (init context)

const TARGET = (__ENV.TARGET_URL ?? '').replace(/\/+$/, '');
const COUPON_URL = (__ENV.COUPON_URL ?? '').replace(/\/+$/, '');
const SUMMARY_FILE = __ENV.SUMMARY_FILE;

function envNumber(name: string, fallback: number): number {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}=${raw}: must be a number above 0`);
  return v;
}

/** A seed: an integer, 0 included (`flashcrowd run --seed 0`). */
function envSeed(fallback: number): number {
  const raw = __ENV.SEED;
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) throw new Error(`SEED=${raw}: must be an integer, 0 or more`);
  return v;
}

if (!TARGET) throw new Error('TARGET_URL is required (the checkout, e.g. http://127.0.0.1:8080)');

function loadPreset(): ResolvedPreset {
  if (__ENV.PRESET_FILE) {
    const p = JSON.parse(open(__ENV.PRESET_FILE)) as ResolvedPreset;
    p.seed = envSeed(p.seed);
    return p;
  }
  const name = __ENV.PRESET ?? 'livestream-spike';
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`PRESET=${name}: a preset name (a-z, 0-9, -)`);
  return resolve(withDefaults(JSON.parse(open(`./presets/${name}.json`))), {
    seed: envSeed(1),
    timeScale: envNumber('TIME_SCALE', 1),
    loadScale: envNumber('LOAD_SCALE', 1),
  });
}

const P = loadPreset();
const SEED = P.seed;
const STAGES = P.traffic.stages;
const LABELS = stageLabels(STAGES);
const B = P.behaviour;

interface ShoppersFile {
  seed: number;
  count: number;
  shoppers: Shopper[];
}

const SHOPPERS: Shopper[] | undefined = __ENV.SHOPPERS_FILE
  ? new SharedArray('shoppers', () => {
      const f = JSON.parse(open(__ENV.SHOPPERS_FILE as string)) as ShoppersFile;
      if (!f || !Array.isArray(f.shoppers) || f.shoppers.length === 0)
        throw new Error(`SHOPPERS_FILE ${__ENV.SHOPPERS_FILE}: no shoppers in it`);
      return f.shoppers;
    })
  : undefined;

// ------------------------------------------------------------------ options

const thresholds: Record<string, string[]> = {
  'http_req_duration{service:checkout}': ['max>=0'],
  'http_req_failed{service:checkout}': ['rate>=0'],
};
// Thresholds that always pass: they make k6 keep these submetrics in the summary.
for (const s of LABELS) {
  thresholds[`fc_order_failed{stage:${s}}`] = ['rate>=0'];
  thresholds[`fc_pay_failed{stage:${s}}`] = ['rate>=0'];
  thresholds[`fc_order_ms{stage:${s}}`] = ['max>=0'];
  thresholds[`fc_pay_ms{stage:${s}}`] = ['max>=0'];
}
for (const k of ['browse', 'buyer']) thresholds[`fc_shoppers{kind:${k}}`] = ['count>=0'];
for (const o of ORDER_OUTCOMES) thresholds[`fc_orders{outcome:${o}}`] = ['count>=0'];
for (const o of PAY_OUTCOMES) thresholds[`fc_pay{outcome:${o}}`] = ['count>=0'];
for (const c of ['first', 'retry', 'reclick']) thresholds[`fc_pay{click:${c}}`] = ['count>=0'];
for (const c of ['card', 'alipay', 'wechat'])
  if ((B.channels[c as Channel] ?? 0) > 0) thresholds[`fc_pay_failed{channel:${c}}`] = ['rate>=0'];

export const options = {
  scenarios: {
    shoppers: {
      executor: 'ramping-arrival-rate',
      startRate: P.traffic.startRate,
      timeUnit: '1s',
      stages: k6Stages(STAGES),
      preAllocatedVUs: P.traffic.preAllocatedVUs,
      maxVUs: P.traffic.maxVUs,
      gracefulStop: `${gracefulStopS(P)}s`,
    },
  },
  // No `url` tag: URLs with order ids would make one time series per order.
  systemTags: ['status', 'method', 'name', 'group', 'check', 'error', 'error_code', 'scenario'],
  summaryTrendStats: ['min', 'med', 'avg', 'p(90)', 'p(95)', 'p(99)', 'max'],
  thresholds,
};

// Business refusals (402 declined or coupon refused, 409 sold out, limit, wrong state) are answers, not failures.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 402, 409));

// ------------------------------------------------------------------ metrics

const fcShoppers = new Counter('fc_shoppers');
const fcOrders = new Counter('fc_orders');
const fcOrderFailed = new Rate('fc_order_failed');
const fcPay = new Counter('fc_pay');
const fcPayFailed = new Rate('fc_pay_failed');
const fcOrderMs = new Trend('fc_order_ms', true);
const fcPayMs = new Trend('fc_pay_ms', true);
const fcAbandoned = new Counter('fc_abandoned');
const fcPaidLater = new Counter('fc_paid_later');
const fcCoupons = new Counter('fc_coupons');

// ------------------------------------------------------------------ helpers

/** The stage in force now (time since the scenario started); the last one while running shoppers finish. */
function stageNow(): string {
  return LABELS[stageIndexAt(STAGES, (Date.now() - exec.scenario.startTime) / 1000)]!;
}

function params(
  service: string,
  name: string,
  stage: string,
  headers: Record<string, string> = {},
) {
  return {
    headers: { 'content-type': 'application/json', ...headers },
    tags: { service, name, stage },
    timeout: `${B.requestTimeoutS}s`,
    responseType: 'text' as const,
  };
}

interface Body {
  id?: string;
  state?: string;
  reason?: string;
  code?: string;
}

function bodyOf(r: { body: string | null | ArrayBuffer }): Body {
  if (typeof r.body !== 'string' || r.body === '') return {};
  try {
    const v = JSON.parse(r.body) as unknown;
    return v && typeof v === 'object' ? (v as Body) : {};
  } catch {
    return {};
  }
}

function shopperFor(n: number): Shopper {
  if (!SHOPPERS) return drawShopper(SEED, n, P);
  const s = SHOPPERS[n % SHOPPERS.length]!;
  // More arrivals than shoppers: reuse their decisions under a new id (the sale limits units per user).
  const round = Math.floor(n / SHOPPERS.length);
  return round === 0 ? s : { ...s, id: `${s.id}-r${round}` };
}

function pause(rng: Rng, [lo, hi]: [number, number]) {
  const s = rng.between(lo, hi);
  if (s > 0) sleep(s);
}

// ------------------------------------------------------------------ steps

function browse() {
  http.get(`${TARGET}/v1/skus`, params('checkout', 'GET /v1/skus', stageNow()));
}

function takeCoupon(sh: Shopper): string | undefined {
  const campaign = P.sale.coupon;
  if (!campaign || !COUPON_URL) return undefined;
  const stage = stageNow();
  const r = http.post(
    `${COUPON_URL}/v1/coupons`,
    JSON.stringify({ campaignId: campaign.campaignId, userId: sh.id }),
    params('coupon', 'POST /v1/coupons', stage),
  );
  const b = bodyOf(r);
  const outcome = r.status === 201 ? 'issued' : r.status === 402 ? 'refused' : 'failed';
  fcCoupons.add(1, {
    stage,
    outcome,
    reason: b.reason ?? (r.status === 201 ? 'none' : `http_${r.status}`),
  });
  return r.status === 201 ? b.code : undefined;
}

/** POST /v1/orders; the new order's id, or undefined when none was made. */
function placeOrder(sh: Shopper, channel: Channel, coupon: string | undefined, k: number) {
  const stage = stageNow();
  const body = { user: sh.id, sku: sh.sku, quantity: 1, channel, ...(coupon ? { coupon } : {}) };
  const r = http.post(
    `${TARGET}/v1/orders`,
    JSON.stringify(body),
    params('checkout', 'POST /v1/orders', stage, { 'Idempotency-Key': `${sh.id}-order-${k}` }),
  );
  const b = bodyOf(r);
  const outcome = orderOutcome(r.status, b.reason);
  fcOrders.add(1, { stage, outcome, reason: reasonOf(r.status, b) });
  fcOrderFailed.add(orderFailed(r.status, b.reason), { stage });
  if (r.status !== 0) fcOrderMs.add(r.timings.duration, { stage });
  return outcome === 'created' && b.id ? b.id : undefined;
}

function reasonOf(status: number, b: Body): string {
  if (b.reason) return b.reason;
  if (status === 0) return 'no_answer';
  return status < 300 ? 'none' : `http_${status}`;
}

/**
 * One pay click (with the shopper's re-clicks sent at the same time): what the
 * shopper sees, the best of the answers.
 */
function payClick(
  sh: Shopper,
  id: string,
  channel: Channel,
  click: 'first' | 'retry',
): { outcome: PayOutcome; state?: string } {
  const stage = stageNow();
  const url = `${TARGET}/v1/orders/${id}/pay`;
  const fallback = sh.allowFallback ? fallbackFor(P, channel) : [];
  const body = JSON.stringify({
    channel,
    ...(fallback.length ? { fallbackChannels: fallback } : {}),
  });
  const p = params('checkout', 'POST /v1/orders/:id/pay', stage);
  const answers =
    sh.reclicks === 0
      ? [http.post(url, body, p)]
      : http.batch(
          Array.from({ length: 1 + sh.reclicks }, () => ({ method: 'POST', url, body, params: p })),
        );
  const seen = answers.map((r, i) => {
    const b = bodyOf(r);
    const outcome = payOutcome(r.status, b.state);
    fcPay.add(1, {
      stage,
      channel,
      click: i === 0 ? click : 'reclick',
      outcome,
      reason: reasonOf(r.status, b),
    });
    return { outcome, state: b.state };
  });
  const first = answers[0]!;
  fcPayFailed.add(payFailed(seen[0]!.outcome), { stage, channel });
  if (click === 'first' && first.status !== 0) fcPayMs.add(first.timings.duration, { stage });
  return seen[bestOutcome(seen.map((s) => s.outcome))]!;
}

/** GET /v1/orders/:id: the order's state, or undefined when it could not be read. */
function look(id: string): string | undefined {
  const r = http.get(
    `${TARGET}/v1/orders/${id}`,
    params('checkout', 'GET /v1/orders/:id', stageNow()),
  );
  return r.status === 200 ? bodyOf(r).state : undefined;
}

/** While the order is paying, look at it again after short pauses, `polls` times at most. */
function poll(id: string, rng: Rng, state: string | undefined): string | undefined {
  for (let i = 0; i < B.polls && (state === 'paying' || state === undefined); i += 1) {
    pause(rng, B.pollPauseS);
    state = look(id) ?? state;
  }
  return state;
}

function pay(sh: Shopper, rng: Rng, firstOrder: string, coupon: string | undefined) {
  let id = firstOrder;
  let channel = sh.channel;
  let orders = 1;
  for (let attempt = 0; ; attempt += 1) {
    const seen = payClick(sh, id, channel, attempt === 0 ? 'first' : 'retry');
    if (seen.outcome === 'paid') return;
    let state = seen.outcome === 'paying' ? poll(id, rng, 'paying') : seen.state;
    if (state === 'paid' || state === 'paying') return; // paid, or still paying: the checkout settles it
    if (!sh.retryAfterFailure || attempt >= B.maxRetries) return;
    // Human backoff, then maybe another channel.
    pause(rng, B.retryPauseS);
    if (sh.switchChannel && sh.switchTo && channel === sh.channel) channel = sh.switchTo;
    let step = nextStep(state);
    if (step === 'look') {
      state = look(id);
      step = nextStep(state);
      if (step === 'look') return; // the order cannot be read: give up
    }
    if (step === 'wait') state = poll(id, rng, state);
    if (step === 'done' || step === 'wait') return;
    if (step === 'reorder') {
      orders += 1;
      const next = placeOrder(sh, channel, coupon, orders);
      if (!next) return;
      id = next;
    }
  }
}

// ------------------------------------------------------------------ the shopper

export default function () {
  const sh = shopperFor(exec.scenario.iterationInTest);
  const rng = new Rng(sh.pauseSeed);
  browse();
  if (sh.browseOnly) {
    fcShoppers.add(1, { stage: stageNow(), kind: 'browse' });
    return;
  }
  fcShoppers.add(1, { stage: stageNow(), kind: 'buyer' });
  const coupon = sh.useCoupon ? takeCoupon(sh) : undefined;
  const id = placeOrder(sh, sh.channel, coupon, 1);
  if (!id) return;
  if (sh.abandon) {
    fcAbandoned.add(1, { stage: stageNow() });
    return;
  }
  if (sh.payLater) {
    pause(rng, B.payLaterS);
    fcPaidLater.add(1, { stage: stageNow() });
  }
  pay(sh, rng, id, coupon);
}

// ------------------------------------------------------------------ summary

interface MetricData {
  type: string;
  values: Record<string, number>;
}
interface SummaryData {
  metrics: Record<string, MetricData | undefined>;
  state: { testRunDurationMs: number };
}

export function handleSummary(data: SummaryData) {
  const v = (name: string, field: string) => data.metrics[name]?.values[field] ?? 0;
  const count = (name: string) => v(name, 'count');
  const pct = (name: string) => `${(v(name, 'rate') * 100).toFixed(2)}%`;
  const ms = (name: string) => `p99 ${v(name, 'p(99)').toFixed(0)} ms`;
  const lines = [
    `flashcrowd livestream: preset ${P.name}${P.variant ? ` (${P.variant})` : ''}, seed ${SEED}, ` +
      `time-scale ${P.timeScale}, load-scale ${P.loadScale}, ${P.durationS} s of traffic ` +
      `(${(data.state.testRunDurationMs / 1000).toFixed(1)} s run)`,
    `  shoppers   ${count('fc_shoppers')} (browse ${count('fc_shoppers{kind:browse}')}, ` +
      `buyers ${count('fc_shoppers{kind:buyer}')}), dropped ${count('dropped_iterations')}`,
    `  orders     ${ORDER_OUTCOMES.map((o) => `${o} ${count(`fc_orders{outcome:${o}}`)}`).join(', ')}; ` +
      `failed ${pct('fc_order_failed')}, ${ms('fc_order_ms')}`,
    `  pay clicks ${PAY_OUTCOMES.map((o) => `${o} ${count(`fc_pay{outcome:${o}}`)}`).join(', ')}; ` +
      `re-clicks ${count('fc_pay{click:reclick}')}, retries ${count('fc_pay{click:retry}')}; ` +
      `failed ${pct('fc_pay_failed')}, ${ms('fc_pay_ms')}`,
    `  abandoned  ${count('fc_abandoned')}, paid later ${count('fc_paid_later')}`,
    ...LABELS.map(
      (s) =>
        `  stage ${s}: orders failed ${pct(`fc_order_failed{stage:${s}}`)}, ` +
        `pay failed ${pct(`fc_pay_failed{stage:${s}}`)}, order ${ms(`fc_order_ms{stage:${s}}`)}, ` +
        `pay ${ms(`fc_pay_ms{stage:${s}}`)}`,
    ),
    `  checkout   ${ms('http_req_duration{service:checkout}')}, ` +
      `errors ${pct('http_req_failed{service:checkout}')}`,
    '',
  ];
  const out: Record<string, string> = { stdout: lines.join('\n') };
  if (SUMMARY_FILE) out[SUMMARY_FILE] = JSON.stringify(data);
  return out;
}
