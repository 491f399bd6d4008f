// A realistic run summary and time series for the report renderers' tests: a
// passing run and a failing one (a broken invariant, failed budgets, a budget
// with no samples, an undecided invariant, fault bands, two SKUs, gaps).
import { cascadeOf } from '../../harness/cascade.ts';
import { seriesKey, type RunSummary, type TimeSeries } from '../../harness/summary.ts';

// ---------------------------------------------------------------- fixtures

const INVARIANTS: [string, string][] = [
  ['I1', 'sold + reserved + available = initial stock'],
  ['I2', 'no oversell: available never below 0'],
  ['I3', 'after quiescence every reservation is sold or released (no stock-lock leak)'],
  ['I4', 'at most the per-user limit of paid units per (user, SKU)'],
  ['I5', 'at most one capture per order; captured amount equals the order amount'],
  ['I6', 'every capture maps to one paid order or a refund'],
  ['I7', 'every paid order has exactly one capture'],
  ['I8', 'a coupon is used at most once; a failed or expired order returns it'],
  ['I9', 'a payment landing after its order ended never revives stock'],
  ['I10', 'the same idempotency key replays the same answer'],
  ['I11', 'the statements and the orders reconcile: zero overage, zero shortage'],
];

const N = 30; // seconds of samples
export const STAGES = [
  { label: 'baseline', fromS: 0, toS: 8 },
  { label: 'host-opens-link', fromS: 8, toS: 18 },
  { label: 'decay', fromS: 18, toS: 30 },
];

/** The failing run's fault windows (in its summary and its series). */
const FAIL_BANDS: RunSummary['chaos']['bands'] = [
  { service: 'bank', label: 'brownout p99 x4 & 20% 503', fromS: 6, toS: 16 },
  { service: 'wallet', label: 'outage <all operations>', fromS: 12, toS: null },
];

export function baseSummary(): RunSummary {
  return {
    schemaVersion: 1,
    runId: '20250618-120000-livestream-spike-42',
    tool: { name: 'flashcrowd', version: '0.1.0' },
    preset: {
      name: 'livestream-spike',
      file: 'scenarios/presets/livestream-spike.json',
      description: 'A host opens the link: 40x baseline within a second, then decay. No faults.',
      variant: 'hardened',
    },
    params: { seed: 42, timeScale: 0.025, loadScale: 0.01, target: 'embedded' },
    startedAt: '2025-06-18T12:00:00.000Z',
    endedAt: '2025-06-18T12:00:34.500Z',
    durations: { trafficS: 30, quiescenceS: 4.5, totalS: 34.5 },
    verdict: 'pass',
    exitCode: 0,
    checkout: {
      mode: 'hardened',
      features: { retries: true, breaker: true, failover: true, shedding: false, bulkhead: 'pay' },
      params: { payTimeoutMs: 800, retryBudget: 0.1, orderTtlS: 900 },
    },
    metrics: {
      'pay.failure_rate': 0.0042,
      'order.failure_rate': 0.001,
      'checkout.p99_ms': 412.6,
      'leaks.stock': 0,
      dropped_iterations: 0,
      'paid.total': 12345,
    },
    budgets: [
      {
        expr: 'pay.failure_rate<0.02',
        metric: 'pay.failure_rate',
        op: '<',
        threshold: 0.02,
        value: 0.0042,
        ok: true,
        source: 'preset',
      },
      {
        expr: 'checkout.p99_ms<800',
        metric: 'checkout.p99_ms',
        op: '<',
        threshold: 800,
        value: 412.6,
        ok: true,
        source: 'preset',
      },
      {
        expr: 'leaks.stock==0',
        metric: 'leaks.stock',
        op: '==',
        threshold: 0,
        value: 0,
        ok: true,
        source: 'preset',
      },
    ],
    invariants: INVARIANTS.map(([id, name]) => ({ id, name, ok: true, count: 0, examples: [] })),
    stock: [{ sku: 'sku-1', initial: 5000, available: 1200, reserved: 0, sold: 3800 }],
    failures: [
      { step: 'pay', reason: 'card_declined', count: 31 },
      { step: 'order', reason: 'sold_out', count: 7 },
    ],
    events: { orders: [{ event: 'created', count: 3900 }], declines: [] },
    chaos: { bands: [], injected: [] },
    quiescence: { settled: true, waitedS: 4.5 },
    warnings: [],
    files: {},
  };
}

/** A failing run: failed budgets (one with no data), broken and undecided invariants, faults. */
export function failingSummary(): RunSummary {
  const s = baseSummary();
  s.runId = '20250618-130000-retry-storm-7';
  s.preset = {
    name: 'retry-storm',
    file: 'scenarios/presets/retry-storm.json',
    description: 'Bank brownout & wallet outage; naive retries multiply the load.',
    variant: 'naive',
  };
  s.params.seed = 7;
  s.verdict = 'fail';
  s.exitCode = 1;
  s.checkout.mode = 'naive';
  s.metrics = {
    'pay.failure_rate': 0.137,
    'checkout.p99_ms': 2140,
    'leaks.stock': 12,
    dropped_iterations: null,
    'paid.total': 8123,
    'pay.attempted': 2400,
    'dep.calls{dependency=bank}': 3100,
    'dep.calls{dependency=wallet}': 600,
  };
  s.budgets = [
    {
      expr: 'pay.failure_rate<0.02',
      metric: 'pay.failure_rate',
      op: '<',
      threshold: 0.02,
      value: 0.137,
      ok: false,
      source: 'preset',
    },
    {
      expr: 'leaks.stock==0',
      metric: 'leaks.stock',
      op: '==',
      threshold: 0,
      value: 12,
      ok: false,
      source: 'variant',
      note: 'stock held by payments stuck in processing',
    },
    {
      expr: 'dropped_iterations==0',
      metric: 'dropped_iterations',
      op: '==',
      threshold: 0,
      value: null,
      ok: false,
      source: 'cli',
    },
    {
      expr: 'order.p99_ms<=1500',
      metric: 'order.p99_ms',
      op: '<=',
      threshold: 1500,
      value: 640,
      ok: true,
      source: 'preset',
    },
  ];
  s.invariants = INVARIANTS.map(([id, name]) => {
    if (id === 'I3')
      return {
        id,
        name,
        ok: false,
        count: 12,
        examples: Array.from({ length: 8 }, (_, i) => `ord-sku-1-${1000 + i}`),
        note: 'reservations of orders still processing after quiescence',
      };
    if (id === 'I5')
      return {
        id,
        name,
        ok: false,
        count: 2,
        examples: ['ord-<sku-2>&"9"', "ord-sku-2-'10'"],
      };
    if (id === 'I10')
      return {
        id,
        name,
        ok: null,
        count: 0,
        examples: [],
        note: 'no request reused an idempotency key',
      };
    return { id, name, ok: true, count: 0, examples: [] };
  });
  s.stock = [
    { sku: 'sku-1', initial: 3000, available: 0, reserved: 12, sold: 2988 },
    { sku: 'sku-2', initial: 500, available: 40, reserved: 0, sold: 460 },
  ];
  s.failures = [
    { step: 'pay', reason: 'upstream_timeout', count: 1840 },
    { step: 'pay', reason: 'upstream_unavailable', count: 920 },
    { step: 'order', reason: 'sold_out', count: 3010 },
  ];
  s.events = {
    orders: [
      { event: 'created', count: 3448 },
      { event: 'expired', count: 212 },
      { event: 'failover', count: 57 },
      { event: 'late_refunded', count: 9 },
    ],
    declines: [
      {
        service: 'bank',
        operation: 'payments.create',
        reason: 'card_velocity_exceeded',
        count: 41,
      },
    ],
    notifications: [
      { event: 'sent', count: 880 },
      { event: 'lost', count: 31 },
    ],
  };
  s.chaos = {
    bands: FAIL_BANDS.map((b) => ({ ...b })),
    injected: [
      { service: 'bank', operation: 'payments.create', kind: 'latency', count: 5120 },
      { service: 'bank', operation: 'payments.create', kind: 'http_503', count: 1022 },
      { service: 'wallet', operation: 'trades.create', kind: 'outage', count: 2210 },
    ],
  };
  s.quiescence = { settled: false, waitedS: 30, note: '12 orders still processing' };
  s.cascade = cascadeOf(series(true), s.metrics);
  s.warnings = [
    'scrape of http://127.0.0.1:40123/metrics failed twice: ECONNRESET',
    'k6 exited with code 99 (thresholds crossed) \u0007 ]]> <!-- -->',
  ];
  return s;
}

export function series(fail: boolean): TimeSeries {
  const t = Array.from({ length: N }, (_, i) => i);
  const shape = t.map((i) => (i < 8 ? 20 : i < 18 ? 800 - (i - 8) * 50 : 300 - (i - 18) * 10));
  const out: Record<string, (number | null)[]> = {};
  const put = (name: string, labels: Record<string, string>, f: (i: number) => number | null) =>
    (out[seriesKey(name, labels)] = t.map(f));
  put('arrivals_per_s', {}, (i) => shape[i]!);
  put('dropped_per_s', {}, (i) => (fail && i >= 9 && i < 14 ? 35 : 0));
  put('requests_per_s', { route: 'POST /orders' }, (i) => shape[i]! * 0.7);
  put('requests_per_s', { route: 'POST /orders/:id/pay' }, (i) => shape[i]! * 0.6);
  put('paid_per_s', {}, (i) => shape[i]! * (fail && i >= 6 ? 0.2 : 0.55));
  // p99 with gaps: no sample in seconds 10-12, 20 and 22 (21 stands alone)
  put('latency_ms', { q: '0.5' }, (i) => 40 + (i % 5));
  put('latency_ms', { q: '0.99' }, (i) =>
    (i >= 10 && i <= 12) || i === 20 || i === 22 ? null : fail ? 900 + i * 40 : 300 + i * 3,
  );
  put('failures_per_s', { reason: 'sold_out' }, (i) => (i > 20 ? 60 : 0));
  put('failures_per_s', { reason: 'upstream_timeout' }, (i) => (fail && i >= 6 ? 80 : 0));
  for (const sku of ['sku-1', 'sku-2']) {
    const init = sku === 'sku-1' ? 3000 : 500;
    const sold = (i: number) => Math.min(init, Math.round((init / N) * i * 1.1));
    put('stock_sold', { sku }, sold);
    put('stock_reserved', { sku }, (i) => (i === 0 ? 0 : 12));
    put('stock_available', { sku }, (i) => Math.max(0, init - sold(i) - (i === 0 ? 0 : 12)));
  }
  put('dep_calls_per_s', { dependency: 'bank', outcome: 'ok' }, (i) => shape[i]! * 0.5);
  put('dep_calls_per_s', { dependency: 'bank', outcome: 'upstream_unavailable' }, (i) =>
    fail && i >= 6 && i < 16 ? 40 : 0,
  );
  put('dep_calls_per_s', { dependency: 'wallet', outcome: 'upstream_timeout' }, (i) =>
    fail && i >= 12 ? 55 : 0,
  );
  if (!fail) {
    // the failing run has no dependency latency at all: its chart must say "no data"
    put('dep_latency_ms', { dependency: 'bank', q: '0.99' }, (i) => 120 + i);
    put('dep_latency_ms', { dependency: 'bank', q: '0.5' }, () => 30);
    put('dep_latency_ms', { dependency: 'wallet', q: '0.99' }, () => null); // present, all null
  }
  return {
    schemaVersion: 1,
    startedAtMs: Date.parse('2025-06-18T12:00:00.000Z'),
    intervalS: 1,
    t,
    series: out,
    bands: fail ? FAIL_BANDS.map((b) => ({ ...b })) : [],
    stages: STAGES,
  };
}
