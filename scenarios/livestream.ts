// The livestream scenario: open-model traffic shaped like a livestream sale
// (ramping-arrival-rate over the preset's stages), one shopper per iteration,
// each browsing, taking a coupon, ordering, paying, re-clicking, retrying,
// switching channel, abandoning or coming back later, as drawn from the seed.
// Reference: docs/SCENARIOS.md.
//
// From the harness (`flashcrowd run`):
//   k6 run -e TARGET_URL=<checkout> (or -e TARGET_URLS=<instance>,<instance>,...) -e COUPON_URL=<coupon mock> -e PRESET_FILE=<resolved.json>
//          -e SHOPPERS_FILE=<shoppers.json> -e SUMMARY_FILE=<k6-summary.json> -e SEED=<n> scenarios/livestream.ts
// By hand against a running stack (the sale seeded through POST /admin/sale):
//   k6 run -e TARGET_URL=... -e COUPON_URL=... -e PRESET=livestream-spike -e TIME_SCALE=0.0167 \
//          -e LOAD_SCALE=0.1 -e SEED=1 scenarios/livestream.ts
import { SharedArray } from 'k6/data';
import exec from 'k6/execution';
import http from 'k6/http';
import { drive, k6Sink } from './k6-driver.ts';
import {
  LIVESTREAM_EXPECTED_STATUSES,
  LIVESTREAM_METRICS,
  livestreamJourney,
  type LivestreamConfig,
} from './lib/livestream-journey.ts';
import {
  gracefulStopS,
  resolve,
  withDefaults,
  type Channel,
  type ResolvedPreset,
} from './lib/preset.ts';
import { k6Stages, stageLabels } from './lib/shape.ts';
import { ORDER_OUTCOMES, PAY_OUTCOMES, type Shopper } from './lib/shopper.ts';

// ------------------------------------------------------------------ set-up (init context)

// TARGET_URLS: several checkout instances, comma-separated (each shopper sticks to one); else TARGET_URL.
const TARGETS = (__ENV.TARGET_URLS ?? __ENV.TARGET_URL ?? '')
  .split(',')
  .map((u) => u.trim().replace(/\/+$/, ''))
  .filter((u) => u !== '');
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

if (TARGETS.length === 0)
  throw new Error(
    'TARGET_URL (the checkout, e.g. http://127.0.0.1:8080) or TARGET_URLS (its instances, comma-separated) is required',
  );

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

// ------------------------------------------------------------------ the shopper

// Business refusals (402 declined or coupon refused, 409 sold out, limit, wrong state) are answers, not failures.
http.setResponseCallback(
  http.expectedStatuses({ min: 200, max: 399 }, ...LIVESTREAM_EXPECTED_STATUSES),
);

const metrics = k6Sink(LIVESTREAM_METRICS);
const CONFIG: LivestreamConfig = {
  preset: P,
  target: TARGETS,
  ...(COUPON_URL ? { couponUrl: COUPON_URL } : {}),
  ...(SHOPPERS ? { shoppers: SHOPPERS } : {}),
};

export default function () {
  const startMs = exec.scenario.startTime;
  drive(
    livestreamJourney(CONFIG, {
      index: exec.scenario.iterationInTest,
      elapsedS: () => (Date.now() - startMs) / 1000,
      metrics,
    }),
  );
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
