// `flashcrowd run`, the load: the livestream shoppers run by the load engine
// (flashcrowd's own, or the user's k6) while the collector reads every
// service's metrics each second and the progress line shows them; then what
// the engine did against its schedule.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gracefulStopS } from '../../scenarios/lib/preset.ts';
import { Collector } from '../collect.ts';
import { EmbeddedEngine } from '../engine/embedded.ts';
import { K6Engine, k6OutArgs, resolveK6Engine } from '../engine/k6.ts';
import { RemoteEngine } from '../engine/remote.ts';
import type { LoadEngine, LoadPlan, LoadResult } from '../engine/types.ts';
import type { ResolvedPreset } from '../preset.ts';
import type { StackUrls } from '../stack.ts';
import type { BudgetResult, FaultBand, RunSummary, TimeSeries } from '../summary.ts';
import { PROJECT_ROOT } from '../tools.ts';
import type { Print, RunOptions } from './options.ts';
import { UsageError } from '../errors.ts';
import type { RunContext } from './preset.ts';
import { sharedRunExporter } from '../run-exporter.ts';
import { showProgress, trafficLine } from './progress.ts';
import type { Target } from './target.ts';

const SCENARIO = join(PROJECT_ROOT, 'scenarios', 'livestream.ts');

export type Traffic = NonNullable<RunSummary['traffic']>;

/**
 * How each run gets its engine: k6 is resolved here, before the stack starts
 * (exit 2 without one); with --runners, flashcrowd's engine in runner
 * processes that register with this one.
 */
export async function engineFactory(o: RunOptions, print: Print): Promise<() => LoadEngine> {
  if (o.engine === 'k6') {
    if (o.runners !== undefined)
      throw new UsageError(
        "--runners spreads flashcrowd's engine over runner processes; it does not apply to --engine k6",
      );
    const outputs = o.k6Out ?? [];
    k6OutArgs(outputs); // a bad --k6-out is a usage error before anything starts
    const k6 = (await resolveK6Engine()).k6;
    return () => new K6Engine(k6, outputs);
  }
  if (o.k6Out?.length)
    throw new UsageError('--k6-out passes outputs to k6: it goes with --engine k6');
  if (o.runners !== undefined) {
    const remote = {
      runners: o.runners,
      ...(o.listen !== undefined ? { listen: checkListen(o.listen) } : {}),
      registerTimeoutS: o.runnerTimeoutS ?? 120,
      print,
    };
    return () => new RemoteEngine(remote);
  }
  if (o.listen !== undefined || o.runnerTimeoutS !== undefined)
    throw new UsageError('--listen and --runner-timeout go with --runners');
  return () => new EmbeddedEngine({ workers: o.workers ?? 1 });
}

/** host:port with a port 0-65535 (0: a free one), or a usage error naming --listen. */
function checkListen(v: string): string {
  const m = /^(.+):(\d+)$/.exec(v);
  if (!m || Number(m[2]) > 65535)
    throw new UsageError(`--listen must be host:port (e.g. 0.0.0.0:7070), got "${v}"`);
  return v;
}

/** The files the load engine reads (k6 reads them as files): the resolved preset and the shoppers. */
export interface LoadFiles {
  presetFile: string;
  shoppersFile: string;
}

/**
 * The load engine's input files, written to the run's folder. They depend on
 * the preset and the seed alone, not on the target, so the run writes them
 * while the stack starts (the shoppers file takes a child process about a
 * second).
 */
export async function writeLoadFiles(ctx: RunContext): Promise<LoadFiles> {
  const { r, resolved } = ctx;
  const presetFile = join(r.dir, 'preset.resolved.json');
  writeFileSync(presetFile, JSON.stringify(resolved, null, 2));
  const shoppersFile = join(r.dir, 'shoppers.json');
  // As many shoppers as the shape brings arrivals, with a margin (scenarios/lib/preset.ts).
  await writeShoppersApart(shoppersFile, presetFile, r.seed);
  return { presetFile, shoppersFile };
}

/** The load engine's plan against the target, from its input files. */
export function prepareLoad(
  ctx: RunContext,
  { urls }: Target,
  { presetFile, shoppersFile }: LoadFiles,
): LoadPlan {
  return livestreamPlan(ctx.resolved, urls, ctx.r.dir, presetFile, shoppersFile, ctx.r.seed);
}

/** harness/shoppers-main.ts in a child process: faker stays out of this one. */
async function writeShoppersApart(file: string, presetFile: string, seed: number): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      join(PROJECT_ROOT, 'bin', 'run-ts.js'),
      join(PROJECT_ROOT, 'harness', 'shoppers-main.ts'),
      file,
      presetFile,
      String(seed),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`writing the shoppers file failed (exit ${code}): ${stderr}`);
}

/** The livestream shoppers as the engines run them: the journey, its shape, and k6's script and files. */
function livestreamPlan(
  resolved: ResolvedPreset,
  urls: StackUrls,
  dir: string,
  presetFile: string,
  shoppersFile: string,
  seed: number,
): LoadPlan {
  const summaryFile = join(dir, 'k6-summary.json');
  const coupon = urls.coupon ? { couponUrl: urls.coupon } : {};
  return {
    journey: {
      name: 'livestream',
      config: { preset: resolved, target: urls.checkouts ?? [urls.checkout], ...coupon },
    },
    shape: resolved.traffic,
    preAllocatedVUs: resolved.traffic.preAllocatedVUs,
    maxVUs: resolved.traffic.maxVUs,
    gracefulStopS: gracefulStopS(resolved),
    k6: {
      script: SCENARIO,
      // The run's files (preset, shoppers, summary) are in dir.
      mounts: [dir],
      summaryFile,
      env: {
        TARGET_URL: urls.checkout,
        TARGET_URLS: (urls.checkouts ?? [urls.checkout]).join(','),
        ...(urls.coupon ? { COUPON_URL: urls.coupon } : {}),
        PRESET_FILE: presetFile,
        SHOPPERS_FILE: shoppersFile,
        SUMMARY_FILE: summaryFile,
        SEED: seed,
      },
    },
  };
}

export interface LoadRun {
  load: LoadResult;
  traffic: Traffic;
  /** Seconds from the start of traffic to the engine's result. */
  trafficS: number;
  /** Still collecting: stopped once the system has settled (timeSeries). */
  collector: Collector;
}

/**
 * The traffic, collected and shown as it runs; Ctrl-C (o.signal) cuts it
 * short. The engine starts first and says when its first arrival is due
 * (t0): `onStart(t0)` starts the chaos and fault clocks there, and the
 * collector's grid counts from it, so nothing the harness waits for in
 * between can move the faults against the traffic.
 */
export async function runLoad(
  ctx: RunContext,
  target: Target,
  a: {
    engine: LoadEngine;
    plan: LoadPlan;
    bands: FaultBand[];
    onStart: (t0: number) => Promise<void>;
  },
): Promise<LoadRun> {
  ctx.print(trafficLine(ctx.resolved, ctx.r));
  const { engine, bands } = a;
  const stopLoad = () => void engine.stop();
  ctx.o.signal?.addEventListener('abort', stopLoad, { once: true });
  try {
    const startMs = await engine.start(a.plan);
    const collector = startCollector(target, engine, startMs);
    await Promise.all([a.onStart(startMs), collector.start()]).catch(async (e: unknown) => {
      await engine.stop();
      await collector.stop();
      throw e;
    });
    const load = await watchLoad(ctx, { engine, collector, bands, startMs });
    const trafficS = (Date.now() - startMs) / 1000;
    return { load, traffic: checkLoad(ctx, load), trafficS, collector };
  } finally {
    ctx.o.signal?.removeEventListener('abort', stopLoad);
  }
}

/** The engine's result, with live progress and the run's metrics endpoint meanwhile. */
async function watchLoad(
  ctx: RunContext,
  a: { engine: LoadEngine; collector: Collector; bands: FaultBand[]; startMs: number },
): Promise<LoadResult> {
  const { engine, collector, bands, startMs } = a;
  if (ctx.o.metricsPort !== undefined)
    (await sharedRunExporter(ctx.o.metricsPort)).serve({
      load: () => engine.snapshot(),
      stock: () => collector.snapshot().stock,
      bands,
      startMs,
      preset: ctx.r.preset.name,
      variant: ctx.r.variant?.name ?? '',
    });
  const stopProgress = showProgress(ctx.o, ctx.print, {
    collector,
    bands,
    durationS: ctx.resolved.durationS,
    startMs,
  });
  try {
    return await engine.result();
  } finally {
    stopProgress();
  }
}

function startCollector(
  { urls, haveMocks }: Target,
  engine: LoadEngine,
  startedAtMs: number,
): Collector {
  return new Collector({
    intervalMs: 1_000,
    checkoutUrl: urls.checkout,
    checkoutUrls: urls.checkouts ?? [urls.checkout],
    mocks: haveMocks ? { bank: urls.bank, wallet: urls.wallet, coupon: urls.coupon } : undefined,
    load: () => engine.snapshot(),
    adminToken: process.env.FLASHCROWD_ADMIN_TOKEN,
    startedAtMs,
  });
}

/**
 * The engine made ready before the chaos timeline starts (worker threads
 * booted, runner processes registered), so faults and traffic share a clock.
 * Ctrl-C while waiting stops the engine and gives up.
 */
export async function readyEngine(engine: LoadEngine, plan: LoadPlan, signal?: AbortSignal) {
  if (!engine.ready) return;
  if (signal?.aborted) throw new Error('interrupted before the load started');
  let onAbort = () => undefined as void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      void engine.stop();
      reject(new Error('interrupted before the load started'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([engine.ready(plan), aborted]);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** The engine's log and warnings kept; a warning when arrivals went missing. */
function checkLoad(ctx: RunContext, load: LoadResult): Traffic {
  if (load.log) writeFileSync(join(ctx.r.dir, load.logFile), load.log);
  // Its summary, histograms merged over threads and runners (k6 writes its own, k6-summary.json).
  if (load.engine.name === 'flashcrowd' && load.summary)
    writeFileSync(join(ctx.r.dir, 'engine-summary.json'), JSON.stringify(load.summary, null, 1));
  ctx.warnings.push(...load.warnings);
  const traffic = trafficCheck(load);
  if (traffic.unaccounted > traffic.tolerance)
    ctx.warnings.push(
      `the engine started ${traffic.started ?? 'no'} of ${traffic.scheduled} scheduled arrivals and dropped ${traffic.dropped}: ` +
        `${traffic.unaccounted} are unaccounted for, so the run cannot pass` +
        (ctx.o.signal?.aborted
          ? ' (the run was interrupted before the schedule ended)'
          : ' (a load generator that sent no traffic?)'),
    );
  return traffic;
}

/**
 * The schedule against what the engine did. flashcrowd's engine accounts for
 * every arrival (started or dropped); k6 counts completed iterations only, so
 * a few interrupted at the end are allowed for (1%, at least 2).
 */
export function trafficCheck(load: LoadResult): Traffic {
  const unaccounted = load.scheduled - (load.started ?? 0) - load.dropped;
  const tolerance = load.engine.name === 'k6' ? Math.max(2, Math.ceil(load.scheduled * 0.01)) : 0;
  return {
    scheduled: load.scheduled,
    started: load.started,
    dropped: load.dropped,
    unaccounted,
    tolerance,
  };
}

/** The check every run makes: arrivals that were neither started nor dropped. */
export function trafficBudget(t: Traffic): BudgetResult {
  return {
    expr: `arrivals.unaccounted<=${t.tolerance}`,
    metric: 'arrivals.unaccounted',
    op: '<=',
    threshold: t.tolerance,
    value: t.unaccounted,
    ok: t.unaccounted <= t.tolerance,
    source: 'harness',
    note:
      `${t.started ?? 'unknown'} of ${t.scheduled} scheduled arrivals started, ${t.dropped} dropped` +
      (t.unaccounted > t.tolerance ? ': the load did not run as scheduled' : ''),
  };
}

/** Collection stopped once the system settled: the series with its fault bands and stages. */
export async function timeSeries(
  collector: Collector,
  bands: FaultBand[],
  resolved: ResolvedPreset,
): Promise<TimeSeries> {
  const series = await collector.stop();
  series.bands = bands;
  let at = 0;
  series.stages = resolved.traffic.stages.map((s, i) => {
    const st = { label: s.label ?? `stage${i + 1}`, fromS: at, toS: at + s.durationS };
    at += s.durationS;
    return st;
  });
  return series;
}
