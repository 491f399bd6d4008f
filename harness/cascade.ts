// The cascade timeline of a run: from timeseries.json, when each signal
// (a gateway's latency, errors, retries and breakers; the checkout's latency,
// failures and shedding; the stock held) left its baseline, in time order,
// with its lag from the first fault band; and, from summary.json's metrics, how
// many gateway calls each shopper pay click became. docs/REPORTS.md
// ("Cascade") states the rule and every constant.
import { integrate, NON_SHOPPER_ROUTES } from './collect.ts';
import { parseSeriesKey } from './report/charts.ts';
import { fmtMetric } from './report/format.ts';
import { seriesKey, type Cascade, type TimeSeries } from './summary.ts';

/**
 * One rule for every signal: threshold = max(baseline x factor, baseline +
 * floor); the onset is the first of `consecutive` samples in a row above it.
 * The order of `signals` breaks ties between onsets at the same second.
 */
export const CASCADE_RULE = {
  baselineStage: 'baseline',
  baselineShare: 0.2,
  baselineMinSamples: 3,
  signals: {
    'dep.p99_ms': { factor: 2, floor: 50, consecutive: 2 },
    'dep.error_rate': { factor: 1, floor: 0.05, consecutive: 2 },
    'dep.retries_per_s': { factor: 3, floor: 1, consecutive: 2 },
    'dep.breaker_open': { factor: 1, floor: 0.5, consecutive: 1 },
    'dep.bulkhead_queued': { factor: 2, floor: 5, consecutive: 2 },
    'redis.p99_ms': { factor: 2, floor: 25, consecutive: 2 },
    'checkout.queue_ms': { factor: 2, floor: 50, consecutive: 2 },
    'checkout.p99_ms': { factor: 2, floor: 50, consecutive: 2 },
    'checkout.loop_delay_ms': { factor: 2, floor: 50, consecutive: 2 },
    'checkout.failure_rate': { factor: 1, floor: 0.05, consecutive: 2 },
    'checkout.shed_per_s': { factor: 2, floor: 0, consecutive: 1 },
    'stock.held': { factor: 1.5, floor: 10, consecutive: 2 },
    'coupons.locked': { factor: 1.5, floor: 10, consecutive: 2 },
    'notify.backlog': { factor: 2, floor: 10, consecutive: 2 },
  },
} as const;

export type SignalName = keyof typeof CASCADE_RULE.signals;
const SIGNAL_ORDER = Object.keys(CASCADE_RULE.signals) as SignalName[];

/** The gateways a pay click reaches (the coupon service holds coupons, it takes no payment). */
const PAYMENT_GATEWAYS = ['bank', 'wallet'];
/** Breaker states that refuse calls: 1 open, 3 isolated (0 closed, 2 half-open). */
const OPEN_STATES = new Set([1, 3]);

type Values = (number | null)[];
type Onset = Cascade['onsets'][number];

interface Signal {
  signal: SignalName;
  dependency?: string;
  values: Values;
}

/** The cascade of a run: its onsets in time order, the story, the amplification. */
export function cascadeOf(ts: TimeSeries, metrics: Record<string, number | null>): Cascade {
  const window = baselineWindow(ts);
  const firstFaultS = ts.bands.length ? Math.min(...ts.bands.map((b) => b.fromS)) : null;
  const onsets: Onset[] = [];
  const none: string[] = [];
  for (const s of signalsOf(ts)) {
    const o = onsetOf(s, ts.t, window, firstFaultS);
    if (o) onsets.push(o);
    else none.push(s.dependency ? seriesKey(s.signal, { dependency: s.dependency }) : s.signal);
  }
  onsets.sort(
    (a, b) =>
      a.atS - b.atS ||
      SIGNAL_ORDER.indexOf(a.signal as SignalName) - SIGNAL_ORDER.indexOf(b.signal as SignalName) ||
      (a.dependency ?? '').localeCompare(b.dependency ?? ''),
  );
  return {
    rule: CASCADE_RULE,
    firstFaultS,
    onsets,
    none,
    story: onsets.length ? onsets.map(phrase).join(' -> ') : 'no onset',
    amplification: amplificationOf(ts, metrics),
  };
}

// ---------------------------------------------------------------- signals

type Where = (labels: Record<string, string>) => boolean;
const every: Where = () => true;
const p99: Where = (l) => l.q === '0.99';

/** Every signal, per second: five per dependency seen in the series, then Redis', the checkout's and the stock's. */
function signalsOf(ts: TimeSeries): Signal[] {
  const parsed = Object.entries(ts.series).map(([key, values]) => ({
    ...parseSeriesKey(key),
    values,
  }));
  const pick = (name: string, where: Where = every) =>
    parsed.filter((p) => p.name === name && where(p.labels)).map((p) => p.values);
  const n = ts.t.length;
  const deps = new Set(parsed.map((p) => p.labels.dependency).filter((d) => d !== undefined));
  const out: Signal[] = [];
  for (const dependency of [...deps].sort()) {
    const of = (name: string, where: Where = every) =>
      pick(name, (l) => l.dependency === dependency && where(l));
    const failed = of('dep_calls_per_s', (l) => l.outcome !== 'ok');
    out.push(
      { signal: 'dep.p99_ms', dependency, values: sumAt(of('dep_latency_ms', p99), n) },
      { signal: 'dep.error_rate', dependency, values: ratioAt(failed, of('dep_calls_per_s'), n) },
      { signal: 'dep.retries_per_s', dependency, values: sumAt(of('retries_per_s'), n) },
      { signal: 'dep.breaker_open', dependency, values: openAt(of('breaker_state'), n) },
      { signal: 'dep.bulkhead_queued', dependency, values: sumAt(of('bulkhead_queued'), n) },
    );
  }
  const requests = pick('requests_per_s', (l) => !NON_SHOPPER_ROUTES.has(l.route ?? ''));
  out.push(
    { signal: 'redis.p99_ms', values: sumAt(pick('redis_latency_ms', p99), n) },
    { signal: 'checkout.queue_ms', values: sumAt(pick('queue_latency_ms', p99), n) },
    { signal: 'checkout.p99_ms', values: sumAt(pick('latency_ms', p99), n) },
    { signal: 'checkout.loop_delay_ms', values: sumAt(pick('loop_delay_ms'), n) },
    { signal: 'checkout.failure_rate', values: ratioAt(pick('failures_per_s'), requests, n) },
    { signal: 'checkout.shed_per_s', values: sumAt(pick('shed_per_s'), n) },
    { signal: 'stock.held', values: sumAt(pick('stock_reserved'), n) },
    { signal: 'coupons.locked', values: sumAt(pick('coupons_locked'), n) },
    { signal: 'notify.backlog', values: sumAt(pick('notify_backlog'), n) },
  );
  return out;
}

/** The sum of the series at each second; null where none has a value. */
function sumAt(series: Values[], n: number): Values {
  return Array.from({ length: n }, (_, i) => {
    let sum: number | null = null;
    for (const s of series) if (s[i] != null) sum = (sum ?? 0) + s[i]!;
    return sum;
  });
}

/** part / whole at each second; null where whole is null or 0. */
function ratioAt(part: Values[], whole: Values[], n: number): Values {
  const p = sumAt(part, n);
  return sumAt(whole, n).map((w, i) => (w ? (p[i] ?? 0) / w : null));
}

/** 1 where any breaker is open, 0 where all known ones are not, null where none is known. */
function openAt(states: Values[], n: number): Values {
  return Array.from({ length: n }, (_, i) => {
    const known = states.map((s) => s[i]).filter((v) => v != null);
    return known.length ? (known.some((v) => OPEN_STATES.has(v)) ? 1 : 0) : null;
  });
}

// ---------------------------------------------------------------- the rule

/**
 * The indices of the baseline samples: those in the stage labelled
 * `baseline`, else the first 20% of the run; at least the first 3.
 */
export function baselineWindow(ts: TimeSeries): number[] {
  const { baselineStage, baselineShare, baselineMinSamples } = CASCADE_RULE;
  const stage = ts.stages.find((s) => s.label === baselineStage);
  const all = ts.t.map((_, i) => i);
  const picked = stage
    ? all.filter((i) => ts.t[i]! >= stage.fromS && ts.t[i]! < stage.toS)
    : all.slice(0, Math.ceil(ts.t.length * baselineShare));
  return picked.length >= baselineMinSamples ? picked : all.slice(0, baselineMinSamples);
}

/** The median of the known values at `indices`; 0 when there is none. */
function median(values: Values, indices: number[]): number {
  const known = indices.map((i) => values[i]).filter((v) => v != null);
  if (!known.length) return 0;
  known.sort((a, b) => a - b);
  const m = known.length >> 1;
  return known.length % 2 ? known[m]! : (known[m - 1]! + known[m]!) / 2;
}

/** The signal's onset under CASCADE_RULE, or undefined when it never crossed its threshold. */
function onsetOf(s: Signal, t: readonly number[], window: number[], firstFaultS: number | null) {
  const { factor, floor, consecutive } = CASCADE_RULE.signals[s.signal];
  const baseline = median(s.values, window);
  const threshold = Math.max(baseline * factor, baseline + floor);
  let run = 0;
  for (let i = 0; i < s.values.length; i++) {
    const v = s.values[i];
    run = v != null && v > threshold ? run + 1 : 0;
    if (run < consecutive) continue;
    const from = i - consecutive + 1;
    const peak = s.values.slice(from).reduce<number>((m, x) => (x != null && x > m ? x : m), v!);
    const atS = t[from]!;
    const lagS = firstFaultS === null ? null : atS - firstFaultS;
    const dep = s.dependency !== undefined ? { dependency: s.dependency } : {};
    return { signal: s.signal, ...dep, atS, lagS, baseline, threshold, peak } satisfies Onset;
  }
  return undefined;
}

// ---------------------------------------------------------------- words

/** `bank p99 latency`, `checkout shed load`...: how the report names a signal. */
export function signalLabel(signal: string, dependency?: string): string {
  const words: Record<string, string> = {
    'dep.p99_ms': 'p99 latency',
    'dep.error_rate': 'error rate',
    'dep.retries_per_s': 'retries',
    'dep.breaker_open': 'breaker open',
    'dep.bulkhead_queued': 'bulkhead queue',
    'redis.p99_ms': "the checkout's Redis p99 latency",
    'checkout.queue_ms': 'checkout queue time (p99)',
    'checkout.p99_ms': 'checkout p99 latency',
    'checkout.loop_delay_ms': 'checkout event-loop delay',
    'checkout.failure_rate': 'shopper failure rate',
    'checkout.shed_per_s': 'checkout shed load',
    'stock.held': 'stock held',
    'coupons.locked': 'coupons locked',
    'notify.backlog': 'wallet notification backlog',
  };
  const w = words[signal] ?? signal;
  return dependency ? `${dependency} ${w}` : w;
}

/** How far the peak went: x4.2 the baseline, or the peak itself over a zero baseline. */
function times(o: Onset): string {
  return o.baseline > 0
    ? `x${Number((o.peak / o.baseline).toFixed(1))}`
    : fmtMetric(o.signal, o.peak);
}

/** One step of the story: `bank p99 x4.2 at 12 s`. */
function phrase(o: Onset): string {
  const who = o.dependency ?? 'checkout';
  const what: Record<SignalName, string> = {
    'dep.p99_ms': `${who} p99 ${times(o)}`,
    'dep.error_rate': `${who} errors ${fmtMetric(o.signal, o.peak)}`,
    'dep.retries_per_s': `${who} retries ${times(o)}`,
    'dep.breaker_open': `${who} breaker open`,
    'dep.bulkhead_queued': `${who} bulkhead queue ${fmtMetric(o.signal, o.peak)}`,
    'redis.p99_ms': `Redis p99 ${times(o)}`,
    'checkout.queue_ms': `checkout queue time ${times(o)}`,
    'checkout.p99_ms': `checkout p99 ${times(o)}`,
    'checkout.loop_delay_ms': `checkout event-loop delay ${times(o)}`,
    'checkout.failure_rate': `shopper failures ${fmtMetric(o.signal, o.peak)}`,
    'checkout.shed_per_s': 'checkout shed',
    'stock.held': `stock held +${fmtMetric(o.signal, o.peak - o.baseline)}`,
    'coupons.locked': `coupons locked +${fmtMetric(o.signal, o.peak - o.baseline)}`,
    'notify.backlog': `notifications waiting ${fmtMetric(o.signal, o.peak)}`,
  };
  return `${what[o.signal as SignalName]} at ${Number(o.atS.toFixed(1))} s`;
}

// ---------------------------------------------------------------- amplification

const div = (a: number | null, b: number | null) =>
  a !== null && b !== null && b > 0 ? a / b : null;

/** Gateway calls per shopper pay click, by layer, from the metrics and the series' totals. */
function amplificationOf(
  ts: TimeSeries,
  metrics: Record<string, number | null>,
): Cascade['amplification'] {
  const payClicks = metrics['pay.attempted'] ?? null;
  const payRequests = integrate(ts, seriesKey('requests_per_s', { route: 'orders.pay' }));
  const calls = (dependency: string) => metrics[seriesKey('dep.calls', { dependency })] ?? null;
  const deps = Object.keys(metrics)
    .map((k) => parseSeriesKey(k))
    .filter((k) => k.name === 'dep.calls' && k.labels.dependency !== undefined)
    .map((k) => k.labels.dependency!)
    .sort();
  const paying = PAYMENT_GATEWAYS.map(calls).filter((c) => c !== null);
  const paymentCalls = paying.length ? paying.reduce((a, b) => a + b, 0) : null;
  return {
    payClicks,
    payRequests,
    reclickX: div(payRequests, payClicks),
    paymentCalls,
    checkoutX: div(paymentCalls, payRequests),
    endToEndX: div(paymentCalls, payClicks),
    dependencies: deps.map((dependency) => {
      const n = calls(dependency);
      // The checkout's retry counter appears with its first retry: no series, no retry.
      const retries =
        integrate(ts, seriesKey('retries_per_s', { dependency })) ?? (n !== null ? 0 : null);
      return {
        dependency,
        calls: n,
        retries,
        retryX: n !== null && retries !== null ? div(n, n - retries) : null,
        perPayClick: PAYMENT_GATEWAYS.includes(dependency) ? div(n, payClicks) : null,
      };
    }),
  };
}
