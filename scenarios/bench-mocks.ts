// k6 load for `npm run bench:mocks` (bench/mocks.ts runs it; see docs/PERFORMANCE.md).
// A warm-up scenario, then the measured one; the figures of the measured scenario
// only are written as JSON to SUMMARY_FILE.
//
//   MODE=closed  constant VUs (closed model: each VU sends the next request as soon
//                as it has the answer), to find one server's throughput.
//   MODE=open    constant arrival rate (open model), to observe latency at RATE req/s.
//   MODE=pair    closed model against two servers at once (TARGET_URL and TARGET_URL_B,
//                VUS/2 each) that share one core: their throughput ratio is their cost
//                ratio, measured in the same seconds on the same CPU.
//
// Run by hand: k6 run -e TARGET_URL=http://127.0.0.1:PORT -e MODE=closed scenarios/bench-mocks.ts
import http from 'k6/http';

const TARGET = __ENV.TARGET_URL;
const TARGET_B = __ENV.TARGET_URL_B;
const MODE = __ENV.MODE ?? 'closed';
const VUS = Number(__ENV.VUS ?? 128);
const RATE = Number(__ENV.RATE ?? 1000);
const WARMUP_S = Number(__ENV.WARMUP_S ?? 3);
const DURATION_S = Number(__ENV.DURATION_S ?? 10);
const SUMMARY_FILE = __ENV.SUMMARY_FILE ?? 'bench-summary.json';
const CARD = __ENV.CARD ?? '4242424242424242';

if (!TARGET) throw new Error('TARGET_URL is required');
if (MODE === 'pair' && !TARGET_B) throw new Error('MODE=pair needs TARGET_URL_B');

function phases<T extends object>(common: T, exec?: string, suffix = '') {
  return {
    [`warmup${suffix}`]: { ...common, duration: `${WARMUP_S}s`, ...(exec ? { exec } : {}) },
    [`measure${suffix}`]: {
      ...common,
      duration: `${DURATION_S}s`,
      startTime: `${WARMUP_S}s`,
      ...(exec ? { exec } : {}),
    },
  };
}

function scenarios() {
  if (MODE === 'open')
    // Little's law: RATE x mean latency VUs are busy; leave room for the tail.
    return phases({
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      preAllocatedVUs: Math.max(50, Math.ceil(RATE * 0.3)),
      maxVUs: Math.max(200, RATE * 2),
    });
  if (MODE === 'pair') {
    const half = { executor: 'constant-vus', vus: Math.max(1, VUS / 2), gracefulStop: '5s' };
    return { ...phases(half, 'hitA', '_a'), ...phases(half, 'hitB', '_b') };
  }
  return phases({ executor: 'constant-vus', vus: VUS, gracefulStop: '5s' });
}

// Thresholds that always pass: they make k6 keep the measured scenarios' own submetrics.
const MEASURED = MODE === 'pair' ? ['measure_a', 'measure_b'] : ['measure'];
const WARMUPS = MODE === 'pair' ? ['warmup_a', 'warmup_b'] : ['warmup'];
const thresholds: Record<string, string[]> = {};
for (const s of MEASURED) {
  const M = `scenario:${s}`;
  thresholds[`http_reqs{${M}}`] = ['count>=0'];
  thresholds[`http_reqs{${M},status:200}`] = ['count>=0'];
  thresholds[`http_reqs{${M},status:429}`] = ['count>=0'];
  thresholds[`http_reqs{${M},status:503}`] = ['count>=0'];
  thresholds[`http_req_failed{${M}}`] = ['rate>=0'];
  thresholds[`http_req_duration{${M}}`] = ['max>=0'];
  thresholds[`dropped_iterations{${M}}`] = ['count>=0'];
}
for (const s of WARMUPS) thresholds[`http_reqs{scenario:${s}}`] = ['count>=0'];

export const options = {
  scenarios: scenarios(),
  discardResponseBodies: true,
  // Fewer tags per sample: less work for k6, which has one core to itself.
  systemTags: ['scenario', 'status', 'error_code'],
  summaryTrendStats: ['min', 'med', 'avg', 'p(90)', 'p(99)', 'max'],
  thresholds,
};

const PARAMS = {
  headers: { 'content-type': 'application/json' },
  timeout: '10s',
  tags: { name: 'POST /v1/payments' },
};

// One body for every request (k6's CPU is the scarce resource): the same order id each
// time is fine for the bank, which keeps every payment and has idempotency keys off here.
const BODY = JSON.stringify({
  orderId: 'bench-order',
  amount: 1999,
  currency: 'CNY',
  card: { number: CARD },
});
const URL_A = `${TARGET}/v1/payments`;
const URL_B = `${TARGET_B}/v1/payments`;

export default function () {
  http.post(URL_A, BODY, PARAMS);
}

export function hitA() {
  http.post(URL_A, BODY, PARAMS);
}

export function hitB() {
  http.post(URL_B, BODY, PARAMS);
}

interface SummaryData {
  metrics: Record<string, { type: string; values: Record<string, number> }>;
  state: { testRunDurationMs: number };
}

export function handleSummary(data: SummaryData) {
  const pick = (name: string) => data.metrics[name]?.values ?? null;
  const measured = (s: string) => {
    const M = `scenario:${s}`;
    return {
      reqs: pick(`http_reqs{${M}}`),
      status200: pick(`http_reqs{${M},status:200}`),
      status429: pick(`http_reqs{${M},status:429}`),
      status503: pick(`http_reqs{${M},status:503}`),
      failed: pick(`http_req_failed{${M}}`),
      duration: pick(`http_req_duration{${M}}`),
      dropped: pick(`dropped_iterations{${M}}`),
    };
  };
  const out = {
    mode: MODE,
    vus: MODE === 'open' ? undefined : VUS,
    rate: MODE === 'open' ? RATE : undefined,
    warmupS: WARMUP_S,
    durationS: DURATION_S,
    testRunDurationMs: data.state.testRunDurationMs,
    ...measured(MEASURED[0]!),
    warmupReqs: pick(`http_reqs{scenario:${WARMUPS[0]}}`),
    ...(MODE === 'pair'
      ? { b: { ...measured('measure_b'), warmupReqs: pick('http_reqs{scenario:warmup_b}') } }
      : {}),
    allReqs: pick('http_reqs'),
  };
  return { [SUMMARY_FILE]: JSON.stringify(out, null, 2) };
}
