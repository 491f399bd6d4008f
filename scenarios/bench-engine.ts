// k6 load for `npm run bench:engine` (bench/engine.ts runs it only where
// FLASHCROWD_K6 names a k6 binary; flashcrowd never installs k6): one GET of
// TARGET_URL per arrival at RATE arrivals/s, constant-arrival-rate, a warm-up
// scenario and then the measured one, as the engine's `get` journey does. The
// measured scenario's figures go to SUMMARY_FILE as JSON.
//
// By hand: k6 run -e TARGET_URL=http://127.0.0.1:PORT/ -e RATE=5000 scenarios/bench-engine.ts
import http from 'k6/http';

const TARGET = __ENV.TARGET_URL;
const RATE = Number(__ENV.RATE ?? 5000);
const WARMUP_S = Number(__ENV.WARMUP_S ?? 2);
const DURATION_S = Number(__ENV.DURATION_S ?? 8);
const SUMMARY_FILE = __ENV.SUMMARY_FILE ?? 'bench-engine-summary.json';

if (!TARGET) throw new Error('TARGET_URL is required');

const common = {
  executor: 'constant-arrival-rate',
  rate: RATE,
  timeUnit: '1s',
  preAllocatedVUs: 100,
  maxVUs: Math.max(1000, Math.ceil(RATE / 10)),
};
const M = 'scenario:measure';
export const options = {
  scenarios: {
    warmup: { ...common, duration: `${WARMUP_S}s` },
    measure: { ...common, duration: `${DURATION_S}s`, startTime: `${WARMUP_S}s` },
  },
  discardResponseBodies: true,
  systemTags: ['scenario', 'status'],
  summaryTrendStats: ['min', 'med', 'avg', 'p(90)', 'p(99)', 'max'],
  // Thresholds that always pass: they make k6 keep the measured scenario's submetrics.
  thresholds: {
    [`http_reqs{${M}}`]: ['count>=0'],
    [`http_req_failed{${M}}`]: ['rate>=0'],
    [`http_req_duration{${M}}`]: ['max>=0'],
    [`dropped_iterations{${M}}`]: ['count>=0'],
  },
};

const PARAMS = { timeout: '10s', tags: { name: 'GET' } };

export default function () {
  http.get(TARGET, PARAMS);
}

interface SummaryData {
  metrics: Record<string, { type: string; values: Record<string, number> }>;
  state: { testRunDurationMs: number };
}

export function handleSummary(data: SummaryData) {
  const pick = (name: string) => data.metrics[name]?.values ?? null;
  const out = {
    rate: RATE,
    warmupS: WARMUP_S,
    durationS: DURATION_S,
    testRunDurationMs: data.state.testRunDurationMs,
    reqs: pick(`http_reqs{${M}}`),
    failed: pick(`http_req_failed{${M}}`),
    duration: pick(`http_req_duration{${M}}`),
    dropped: pick(`dropped_iterations{${M}}`),
  };
  return { [SUMMARY_FILE]: JSON.stringify(out, null, 2) };
}
