// k6 load for `npm run bench:checkout` (bench/checkout.ts runs it; see docs/PERFORMANCE.md).
// One order per iteration: POST /v1/orders, then POST /v1/orders/:id/pay (card,
// the default test card) until it answers 200 paid. Closed model: each VU starts
// the next order as soon as the last one ended. A warm-up scenario, then the
// measured one; the measured figures (and the run's totals) go to SUMMARY_FILE.
//
// Run by hand against a checkout with a sale of SKU:
//   k6 run -e TARGET_URL=http://127.0.0.1:PORT -e SKU=bench scenarios/bench-checkout.ts
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';

const TARGET = __ENV.TARGET_URL;
const SKU = __ENV.SKU ?? 'bench';
/** The SKU the warm-up buys (default SKU): a sell-out warms up on another SKU than the one it sells out. */
const WARMUP_SKU = __ENV.WARMUP_SKU ?? SKU;
const VUS = Number(__ENV.VUS ?? 64);
const WARMUP_S = Number(__ENV.WARMUP_S ?? 3);
const DURATION_S = Number(__ENV.DURATION_S ?? 10);
const SUMMARY_FILE = __ENV.SUMMARY_FILE ?? 'bench-checkout-summary.json';
/** Distinguishes the users of several runs against one sale (the sale limits one unit per user). */
const RUN = __ENV.RUN ?? '0';

if (!TARGET) throw new Error('TARGET_URL is required');

/** Orders that ended paid (pay answered 200 with state paid). */
const paid = new Counter('orders_paid');
/** Orders refused at creation (409 sold_out and the like): expected once a sale sells out. */
const refused = new Counter('orders_refused');
/** Anything else: a create or pay that failed, or a pay that did not end paid. */
const failed = new Counter('orders_failed');
/** Create + pay, ms, for paid orders. */
const orderMs = new Trend('order_duration', true);

const common = { executor: 'constant-vus', vus: VUS, gracefulStop: '5s' } as const;
const M = 'scenario:measure';
export const options = {
  scenarios:
    WARMUP_S > 0
      ? {
          warmup: { ...common, duration: `${WARMUP_S}s` },
          measure: { ...common, duration: `${DURATION_S}s`, startTime: `${WARMUP_S}s` },
        }
      : { measure: { ...common, duration: `${DURATION_S}s` } },
  // Fewer tags per sample: less work for k6, which has one core.
  systemTags: ['scenario', 'status'],
  summaryTrendStats: ['min', 'med', 'avg', 'p(90)', 'p(99)', 'max'],
  // Thresholds that always pass: they make k6 keep the measured scenario's own submetrics.
  thresholds: {
    [`orders_paid{${M}}`]: ['count>=0'],
    [`orders_refused{${M}}`]: ['count>=0'],
    [`orders_failed{${M}}`]: ['count>=0'],
    [`order_duration{${M}}`]: ['max>=0'],
    [`http_reqs{${M}}`]: ['count>=0'],
    [`http_req_duration{${M}}`]: ['max>=0'],
    [`iterations{${M}}`]: ['count>=0'],
  },
};

const PARAMS = {
  headers: { 'content-type': 'application/json' },
  timeout: '10s',
  responseType: 'text',
} as const;
const PAY_BODY = '{}';

export default function () {
  // One unit per user in the sale: a user id never used before in this run.
  const warm = exec.scenario.name === 'warmup';
  const user = `r${RUN}${warm ? 'w' : 'm'}${exec.scenario.iterationInTest}`;
  const sku = warm ? WARMUP_SKU : SKU;
  const c = http.post(`${TARGET}/v1/orders`, `{"user":"${user}","sku":"${sku}"}`, PARAMS);
  if (c.status !== 201) {
    if (c.status === 409) refused.add(1);
    else failed.add(1);
    return;
  }
  const id = c.json('id') as string;
  const p = http.post(`${TARGET}/v1/orders/${id}/pay`, PAY_BODY, PARAMS);
  if (p.status === 200 && p.json('state') === 'paid') {
    paid.add(1);
    orderMs.add(c.timings.duration + p.timings.duration);
  } else failed.add(1);
}

interface SummaryData {
  metrics: Record<string, { type: string; values: Record<string, number> }>;
  state: { testRunDurationMs: number };
}

export function handleSummary(data: SummaryData) {
  const pick = (name: string) => data.metrics[name]?.values ?? null;
  const out = {
    vus: VUS,
    warmupS: WARMUP_S,
    durationS: DURATION_S,
    testRunDurationMs: data.state.testRunDurationMs,
    paid: pick(`orders_paid{${M}}`),
    refused: pick(`orders_refused{${M}}`),
    failed: pick(`orders_failed{${M}}`),
    orderDuration: pick(`order_duration{${M}}`),
    reqs: pick(`http_reqs{${M}}`),
    reqDuration: pick(`http_req_duration{${M}}`),
    iterations: pick(`iterations{${M}}`),
    // The whole run, warm-up included (for per-order figures over the run).
    allPaid: pick('orders_paid'),
    allRefused: pick('orders_refused'),
    allFailed: pick('orders_failed'),
    allReqs: pick('http_reqs'),
  };
  return { [SUMMARY_FILE]: JSON.stringify(out, null, 2) };
}
