// The engine's metrics: counters, rates and trends per metric and tag set, in
// memory that does not grow with the run's length (a trend is an HDR
// histogram, hdr-histogram-js, 3 significant digits, plus its exact count,
// sum, min and max). A snapshot is plain JSON (histograms compressed, base64)
// so it crosses worker threads and HTTP; snapshots merge (counts add,
// histograms add), and the merge of the segments' snapshots is the run's.
// `summarize` turns a snapshot into the k6 summary shape the harness reads
// (`metrics["fc_pay_failed{stage:spike}"].values.rate`), so the rest of the
// run does not know which engine ran.
import * as hdr from 'hdr-histogram-js';
import {
  expectedStatus,
  type JourneyAnswer,
  type JourneyRequest,
  type MetricDef,
  type MetricSink,
  type Tags,
} from '../../scenarios/lib/journey.ts';

/** Trend values are recorded in microseconds: ms x 1000, whole. */
const US = 1000;

function newHistogram(): hdr.Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 2,
    numberOfSignificantValueDigits: 3,
  });
}

/** `k=v,k=v` with the keys sorted: one series per tag set. */
export function tagsKey(tags: Tags): string {
  const keys = Object.keys(tags);
  if (keys.length === 0) return '';
  keys.sort();
  let s = '';
  for (const k of keys) s += (s ? ',' : '') + k + '=' + tags[k];
  return s;
}

export function parseTagsKey(key: string): Tags {
  const t: Tags = {};
  if (!key) return t;
  for (const part of key.split(',')) {
    const eq = part.indexOf('=');
    t[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return t;
}

/** One trend series: its histogram (µs) and exact count, sum, min and max (ms). */
export class TrendCell {
  readonly h = newHistogram();
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  /** The encoded histogram as of the last snapshot (undefined: changed since). */
  encoded: string | undefined;

  record(v: number): void {
    const us = Math.round(v * US);
    this.h.recordValue(us > 0 ? us : 0);
    this.count += 1;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.encoded = undefined;
  }
}

/** One counter series. */
export interface CounterCell {
  n: number;
}

/** One rate series. */
export interface RateCell {
  passes: number;
  fails: number;
}

export interface TrendState {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** hdr-histogram-js compressed base64, values in µs. */
  histogram: string;
}

/** A snapshot: every series by metric name, then tag-set key. Cumulative since the start. */
export interface MetricSnapshot {
  counters: Record<string, Record<string, number>>;
  rates: Record<string, Record<string, { passes: number; fails: number }>>;
  trends: Record<string, Record<string, TrendState>>;
  /** Gauges: last value and the highest seen (VUs). Merged by adding (segments run side by side). */
  gauges: Record<string, { value: number; max: number }>;
}

export function emptySnapshot(): MetricSnapshot {
  return { counters: {}, rates: {}, trends: {}, gauges: {} };
}

/** The engine's built-in metrics (k6's names); journeys declare their own. */
export const BUILTIN_METRICS: readonly MetricDef[] = [
  { name: 'http_reqs', type: 'counter' },
  { name: 'http_req_duration', type: 'trend', time: true },
  { name: 'http_req_failed', type: 'rate' },
  { name: 'iterations', type: 'counter' },
  { name: 'interrupted_iterations', type: 'counter' },
  { name: 'dropped_iterations', type: 'counter' },
  { name: 'iteration_duration', type: 'trend', time: true },
  /** How late each arrival started against its scheduled instant. */
  { name: 'arrival_lateness', type: 'trend', time: true },
];

/** A series of one metric by tag-set key, made on first use. */
class Series<C> extends Map<string, C> {
  constructor(private readonly make: () => C) {
    super();
  }
  cell(key: string): C {
    let c = this.get(key);
    if (c === undefined) this.set(key, (c = this.make()));
    return c;
  }
}

const newCounter = (): CounterCell => ({ n: 0 });
const newRate = (): RateCell => ({ passes: 0, fails: 0 });
const newTrend = () => new TrendCell();

export class MetricStore implements MetricSink {
  private readonly types = new Map<string, MetricDef['type']>();
  private readonly counters = new Map<string, Series<CounterCell>>();
  private readonly rates = new Map<string, Series<RateCell>>();
  private readonly trends = new Map<string, Series<TrendCell>>();
  private readonly gauges = new Map<string, { value: number; max: number }>();
  // The built-in http metrics (every answer records them), and the key of a tag set plus a status.
  private readonly httpReqs: Series<CounterCell>;
  private readonly httpDuration: Series<TrendCell>;
  private readonly httpFailed: Series<RateCell>;
  private readonly statusKeys = new Map<string, Map<number, string>>();

  constructor(defs: readonly MetricDef[]) {
    for (const d of [...BUILTIN_METRICS, ...defs]) {
      this.types.set(d.name, d.type);
      if (d.type === 'counter') this.counters.set(d.name, new Series(newCounter));
      else if (d.type === 'rate') this.rates.set(d.name, new Series(newRate));
      else this.trends.set(d.name, new Series(newTrend));
    }
    this.httpReqs = this.counters.get('http_reqs')!;
    this.httpDuration = this.trends.get('http_req_duration')!;
    this.httpFailed = this.rates.get('http_req_failed')!;
  }

  add(name: string, value: number | boolean, tags: Tags): void {
    const type = this.types.get(name);
    if (type === undefined) throw new Error(`metric ${name} is not declared`);
    const key = tagsKey(tags);
    if (type === 'counter') this.counters.get(name)!.cell(key).n += Number(value);
    else if (type === 'rate')
      rateSample(
        this.rates.get(name)!.cell(key),
        value === true || (typeof value === 'number' && value !== 0),
      );
    else this.trends.get(name)!.cell(key).record(Number(value));
  }

  /** A counter series to add to directly (the runner's built-ins: no look-up per value). */
  counterCell(name: string, tags: Tags = {}): CounterCell {
    const m = this.counters.get(name);
    if (!m) throw new Error(`counter ${name} is not declared`);
    return m.cell(tagsKey(tags));
  }

  /** A trend series to record into directly. */
  trendCell(name: string, tags: Tags = {}): TrendCell {
    const m = this.trends.get(name);
    if (!m) throw new Error(`trend ${name} is not declared`);
    return m.cell(tagsKey(tags));
  }

  /** The built-in metrics of one answer (k6's http_reqs, http_req_duration, http_req_failed). */
  answered(r: JourneyRequest, a: JourneyAnswer, expected: readonly number[]): void {
    const tags = r.tags;
    const key = tagsKey(tags);
    this.httpReqs.cell(this.statusKey(key, tags, a.status)).n += 1;
    this.httpDuration.cell(key).record(a.durationMs);
    rateSample(this.httpFailed.cell(key), !expectedStatus(a.status, expected));
  }

  /** The key of `tags` with `status` added (cached: a series' statuses are few). */
  private statusKey(key: string, tags: Tags, status: number): string {
    let m = this.statusKeys.get(key);
    if (!m) this.statusKeys.set(key, (m = new Map()));
    let k = m.get(status);
    if (k === undefined) m.set(status, (k = tagsKey({ ...tags, status: String(status) })));
    return k;
  }

  gauge(name: string, value: number): void {
    const g = this.gauges.get(name);
    if (g) {
      g.value = value;
      if (value > g.max) g.max = value;
    } else this.gauges.set(name, { value, max: value });
  }

  /** One counter's total over every tag set. */
  total(name: string): number {
    let n = 0;
    for (const c of this.counters.get(name)?.values() ?? []) n += c.n;
    return n;
  }

  snapshot(): MetricSnapshot {
    const s = emptySnapshot();
    for (const [name, m] of this.counters)
      s.counters[name] = Object.fromEntries([...m].map(([k, c]) => [k, c.n]));
    for (const [name, m] of this.rates)
      s.rates[name] = Object.fromEntries([...m].map(([k, c]) => [k, { ...c }]));
    for (const [name, m] of this.trends) {
      const out: Record<string, TrendState> = {};
      for (const [k, c] of m) {
        c.encoded ??= hdr.encodeIntoCompressedBase64(c.h);
        out[k] = { count: c.count, sum: c.sum, min: c.min, max: c.max, histogram: c.encoded };
      }
      s.trends[name] = out;
    }
    for (const [name, g] of this.gauges) s.gauges[name] = { ...g };
    return s;
  }

  destroy(): void {
    for (const m of this.trends.values()) for (const c of m.values()) c.h.destroy();
  }
}

function rateSample(c: RateCell, pass: boolean) {
  if (pass) c.passes += 1;
  else c.fails += 1;
}

// ---------------------------------------------------------------- merging

function decode(b64: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(b64, 32, false);
}

function mergeTrend(a: TrendState, b: TrendState): TrendState {
  // Into a fresh auto-resizing histogram: a decoded one keeps its own range.
  const h = newHistogram();
  for (const part of [a, b]) {
    const d = decode(part.histogram);
    h.add(d);
    d.destroy();
  }
  const histogram = hdr.encodeIntoCompressedBase64(h);
  h.destroy();
  return {
    count: a.count + b.count,
    sum: a.sum + b.sum,
    min: Math.min(a.min, b.min),
    max: Math.max(a.max, b.max),
    histogram,
  };
}

function mergeInto<T>(
  into: Record<string, Record<string, T>>,
  from: Record<string, Record<string, T>>,
  add: (a: T, b: T) => T,
) {
  for (const [name, series] of Object.entries(from)) {
    const m = (into[name] ??= {});
    for (const [k, v] of Object.entries(series)) m[k] = m[k] === undefined ? v : add(m[k], v);
  }
}

/** The snapshot of segments run side by side: counts add, histograms add, gauges add. */
export function mergeSnapshots(snaps: readonly MetricSnapshot[]): MetricSnapshot {
  const out = emptySnapshot();
  for (const s of snaps) {
    mergeInto(out.counters, s.counters, (a, b) => a + b);
    mergeInto(out.rates, s.rates, (a, b) => ({
      passes: a.passes + b.passes,
      fails: a.fails + b.fails,
    }));
    mergeInto(out.trends, s.trends, mergeTrend);
    for (const [name, g] of Object.entries(s.gauges)) {
      const o = out.gauges[name];
      out.gauges[name] = o ? { value: o.value + g.value, max: o.max + g.max } : { ...g };
    }
  }
  return out;
}

// ---------------------------------------------------------------- the k6 summary shape

export interface SummaryMetric {
  type: 'counter' | 'rate' | 'trend' | 'gauge';
  contains?: 'time' | 'default';
  values: Record<string, number>;
}

export interface EngineSummary {
  metrics: Record<string, SummaryMetric>;
  state: { testRunDurationMs: number };
}

/** The series of one metric grouped as k6 names them: the whole metric, and `name{tag:value}` for every single tag. */
function groups<T>(name: string, series: Record<string, T>): Map<string, T[]> {
  const out = new Map<string, T[]>([[name, []]]);
  for (const [key, v] of Object.entries(series)) {
    out.get(name)!.push(v);
    for (const [t, val] of Object.entries(parseTagsKey(key))) {
      const g = `${name}{${t}:${val}}`;
      if (!out.has(g)) out.set(g, []);
      out.get(g)!.push(v);
    }
  }
  return out;
}

function trendValues(parts: TrendState[]): Record<string, number> {
  const h = newHistogram();
  let count = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const p of parts) {
    const d = decode(p.histogram);
    h.add(d);
    d.destroy();
    count += p.count;
    sum += p.sum;
    min = Math.min(min, p.min);
    max = Math.max(max, p.max);
  }
  const q = (p: number) => Math.min(max, h.getValueAtPercentile(p) / US);
  const values: Record<string, number> =
    count === 0
      ? {}
      : {
          count,
          min,
          max,
          avg: sum / count,
          med: q(50),
          'p(90)': q(90),
          'p(95)': q(95),
          'p(99)': q(99),
        };
  h.destroy();
  return values;
}

export function summarize(
  s: MetricSnapshot,
  durationS: number,
  timeMetrics: ReadonlySet<string>,
): EngineSummary {
  const metrics: Record<string, SummaryMetric> = {};
  const perS = durationS > 0 ? durationS : 1;
  for (const [name, series] of Object.entries(s.counters))
    for (const [g, parts] of groups(name, series)) {
      const count = parts.reduce((a, b) => a + b, 0);
      if (parts.length) metrics[g] = { type: 'counter', values: { count, rate: count / perS } };
    }
  for (const [name, series] of Object.entries(s.rates))
    for (const [g, parts] of groups(name, series)) {
      const passes = parts.reduce((a, b) => a + b.passes, 0);
      const fails = parts.reduce((a, b) => a + b.fails, 0);
      if (parts.length)
        metrics[g] = {
          type: 'rate',
          values: { rate: passes + fails > 0 ? passes / (passes + fails) : 0, passes, fails },
        };
    }
  for (const [name, series] of Object.entries(s.trends))
    for (const [g, parts] of groups(name, series))
      if (parts.length)
        metrics[g] = {
          type: 'trend',
          contains: timeMetrics.has(name) ? 'time' : 'default',
          values: trendValues(parts),
        };
  for (const [name, g] of Object.entries(s.gauges))
    metrics[name] = { type: 'gauge', values: { value: g.value, max: g.max } };
  return { metrics, state: { testRunDurationMs: Math.round(durationS * 1000) } };
}
