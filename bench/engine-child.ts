// flashcrowd's engine in a process of its own, for the benchmarks (bench/engine.ts,
// bench/mocks.ts): `node bin/run-ts.js bench/engine-child.ts JSON`, where JSON is
// an EngineChildInput. Its CPU and RSS are this whole process (main thread, worker
// threads, tsx's loader), read from /proc/self by the process itself at each of the
// engine's one-second reports. It prints JSON lines: one `tick` per report, then
// one `result` with the counts and quantiles over the measured window (from the
// first report at or after `warmupS` to the last one before the traffic ends:
// cumulative histograms subtracted) and over the whole run.
import { readFileSync } from 'node:fs';
import * as hdr from 'hdr-histogram-js';
import { EmbeddedEngine } from '../harness/engine/embedded.ts';
import type { MetricSnapshot } from '../harness/engine/metrics.ts';
import type { SegmentReport } from '../harness/engine/runner.ts';
import type { LoadPlan } from '../harness/engine/types.ts';

export interface EngineChildInput {
  plan: LoadPlan;
  workers: number;
  /** Seconds of the shape before the measured window. */
  warmupS: number;
  /** Requests after which to note the RSS (e.g. 1e6, 1e7). */
  rssAt?: number[];
  /** Stop the engine once the last `rssAt` mark is noted (the RSS run's shape is longer than needed). */
  stopAfterRss?: boolean;
  /** Trend metrics to report over the window besides arrival_lateness and http_req_duration. */
  trends?: string[];
}

export interface Quantiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface EngineTick {
  type: 'tick';
  /** Date.now() when the report arrived. */
  t: number;
  elapsedS: number;
  started: number;
  dropped: number;
  active: number;
  /** http_reqs so far, every status. */
  reqs: number;
  /** utime + stime of this process so far, s. */
  cpuS: number;
  rssMb: number;
}

export interface WindowFigures {
  /** Requests answered before the window. */
  fromReqs: number;
  fromS: number;
  toS: number;
  wallS: number;
  cpuS: number;
  reqs: number;
  started: number;
  dropped: number;
  /** http_reqs by tag set (`name=...,status=...`). */
  reqsBy: Record<string, number>;
  /** Rates (http_req_failed and the journey's): passes and fails in the window. */
  rates: Record<string, { passes: number; fails: number }>;
  /** Counters of the journey in the window, over all tag sets. */
  counters: Record<string, number>;
  trends: Record<string, Quantiles>;
}

export interface EngineChildResult {
  type: 'result';
  scheduled: number;
  started: number | null;
  dropped: number;
  reqs: number;
  window: WindowFigures | null;
  whole: { trends: Record<string, Quantiles> };
  rss: { atReqs: number; reqs: number; rssMb: number; elapsedS: number }[];
  peakRssMb: number;
  durationS: number;
}

const TICKS = 100; // USER_HZ: /proc/self/stat counts in it on Linux

function cpuSelf(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}

function statusKb(field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const sum = (o: Record<string, number> | undefined) =>
  Object.values(o ?? {}).reduce((a, b) => a + b, 0);

function decode(b64: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(b64, 32, false);
}

/** One trend over every tag set of several snapshots (segments), as a histogram (µs). */
function trendHistogram(snaps: MetricSnapshot[], name: string): hdr.Histogram | undefined {
  let h: hdr.Histogram | undefined;
  for (const s of snaps)
    for (const cell of Object.values(s.trends[name] ?? {})) {
      // A histogram that grows to fit: decoded ones are only as wide as their own values.
      h ??= hdr.build({
        bitBucketSize: 32,
        autoResize: true,
        lowestDiscernibleValue: 1,
        highestTrackableValue: 2,
        numberOfSignificantValueDigits: 3,
      });
      const d = decode(cell.histogram);
      h.add(d);
      d.destroy();
    }
  return h;
}

function quantiles(h: hdr.Histogram | undefined): Quantiles {
  if (!h || h.totalCount === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN };
  const q = (p: number) => h.getValueAtPercentile(p) / 1000;
  return { count: h.totalCount, p50: q(50), p90: q(90), p99: q(99), max: h.maxValue / 1000 };
}

function flatCounters(snaps: MetricSnapshot[], name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of snaps)
    for (const [k, v] of Object.entries(s.counters[name] ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
}

function flatRates(snaps: MetricSnapshot[]): Record<string, { passes: number; fails: number }> {
  const out: Record<string, { passes: number; fails: number }> = {};
  for (const s of snaps)
    for (const [name, series] of Object.entries(s.rates))
      for (const c of Object.values(series)) {
        const o = (out[name] ??= { passes: 0, fails: 0 });
        o.passes += c.passes;
        o.fails += c.fails;
      }
  return out;
}

interface Mark {
  tick: EngineTick;
  snaps: MetricSnapshot[];
}

async function main() {
  const input = JSON.parse(process.argv[2] ?? '{}') as EngineChildInput;
  const { plan, workers, warmupS } = input;
  const endS = plan.shape.stages.reduce((s, st) => s + st.durationS, 0);
  const trendNames = ['arrival_lateness', 'http_req_duration', ...(input.trends ?? [])];
  const rssAt = [...(input.rssAt ?? [])].sort((a, b) => a - b);
  const rss: EngineChildResult['rss'] = [];
  const latest = new Map<number, SegmentReport>();
  let from: Mark | undefined;
  let to: Mark | undefined;
  let stopping = false;

  const onReport = (r: SegmentReport, final: boolean) => {
    latest.set(r.segment.index, r);
    if (latest.size < workers) return;
    const reports = [...latest.values()];
    const snaps = reports.map((x) => x.metrics);
    const tick: EngineTick = {
      type: 'tick',
      t: Date.now(),
      elapsedS: Math.min(...reports.map((x) => x.elapsedS)),
      started: reports.reduce((a, x) => a + x.started, 0),
      dropped: reports.reduce((a, x) => a + x.dropped, 0),
      active: reports.reduce((a, x) => a + x.active, 0),
      reqs: snaps.reduce((a, s) => a + sum(s.counters.http_reqs), 0),
      cpuS: cpuSelf(),
      rssMb: statusKb('VmRSS') / 1024,
    };
    if (!final) process.stdout.write(`${JSON.stringify(tick)}\n`);
    while (rssAt.length && tick.reqs >= rssAt[0]!)
      rss.push({
        atReqs: rssAt.shift()!,
        reqs: tick.reqs,
        rssMb: tick.rssMb,
        elapsedS: tick.elapsedS,
      });
    if (final) return;
    if (input.stopAfterRss && rssAt.length === 0 && !stopping) {
      stopping = true;
      void engine.stop();
    }
    if (!from && tick.elapsedS >= warmupS) from = { tick, snaps };
    if (from && tick.elapsedS <= endS + 0.05) to = { tick, snaps };
  };

  const engine = new EmbeddedEngine({ workers, onReport });
  await engine.start(plan);
  const res = await engine.result();
  const whole = res.summary?.metrics ?? {};
  const wholeTrend = (name: string): Quantiles => {
    const v = whole[name]?.values ?? {};
    return {
      count: v.count ?? 0,
      p50: v.med ?? NaN,
      p90: v['p(90)'] ?? NaN,
      p99: v['p(99)'] ?? NaN,
      max: v.max ?? NaN,
    };
  };

  let window: WindowFigures | null = null;
  if (from && to && to.tick.t > from.tick.t) {
    const trends: Record<string, Quantiles> = {};
    for (const name of trendNames) {
      const b = trendHistogram(to.snaps, name);
      const a = trendHistogram(from.snaps, name);
      if (b && a) b.subtract(a);
      trends[name] = quantiles(b);
      a?.destroy();
      b?.destroy();
    }
    const reqsB = flatCounters(to.snaps, 'http_reqs');
    const reqsA = flatCounters(from.snaps, 'http_reqs');
    const reqsBy = Object.fromEntries(
      Object.entries(reqsB).map(([k, v]) => [k, v - (reqsA[k] ?? 0)]),
    );
    const ra = flatRates(from.snaps);
    const rates = Object.fromEntries(
      Object.entries(flatRates(to.snaps)).map(([k, v]) => [
        k,
        { passes: v.passes - (ra[k]?.passes ?? 0), fails: v.fails - (ra[k]?.fails ?? 0) },
      ]),
    );
    const counters: Record<string, number> = {};
    for (const name of Object.keys(to.snaps[0]?.counters ?? {}))
      counters[name] = sum(flatCounters(to.snaps, name)) - sum(flatCounters(from.snaps, name));
    window = {
      fromReqs: from.tick.reqs,
      fromS: from.tick.elapsedS,
      toS: to.tick.elapsedS,
      wallS: (to.tick.t - from.tick.t) / 1000,
      cpuS: to.tick.cpuS - from.tick.cpuS,
      reqs: to.tick.reqs - from.tick.reqs,
      started: to.tick.started - from.tick.started,
      dropped: to.tick.dropped - from.tick.dropped,
      reqsBy,
      rates,
      counters,
      trends,
    };
  }
  const out: EngineChildResult = {
    type: 'result',
    scheduled: res.scheduled,
    started: res.started,
    dropped: res.dropped,
    reqs: whole.http_reqs?.values.count ?? 0,
    window,
    whole: { trends: Object.fromEntries(trendNames.map((n) => [n, wholeTrend(n)])) },
    rss,
    peakRssMb: statusKb('VmHWM') / 1024,
    durationS: (res.summary?.state.testRunDurationMs ?? 0) / 1000,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(`[engine-child] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
