// `flashcrowd run`, the summary: every stage's result in summary.json's shape
// (harness/summary.ts), which the report files are written from.
import { relative } from 'node:path';
import { INVARIANT_NAMES, type InvariantId, type InvariantResult } from '../audit.ts';
import { cascadeOf } from '../cascade.ts';
import {
  SUMMARY_SCHEMA_VERSION,
  type FaultBand,
  type RunSummary,
  type TimeSeries,
} from '../summary.ts';
import { flashcrowdVersion, PROJECT_ROOT } from '../tools.ts';
import type { LoadRun } from './load.ts';
import {
  declinesOf,
  failuresOf,
  injectedOf,
  notificationsOf,
  orderEventsOf,
  type Readings,
} from './metrics.ts';
import type { OneRun, RunContext } from './preset.ts';
import type { Settling } from './quiesce.ts';
import type { Sale } from './sale.ts';
import type { Target } from './target.ts';
import type { Judgement } from './verdict.ts';
import type { PlayedStep } from '../faults/timeline.ts';

export interface SummaryParts {
  target: Target;
  sale: Sale;
  bands: FaultBand[];
  /** The preset's faults beyond the mocks as played (harness/run/faults.ts). */
  played: PlayedStep[];
  /** timeseries.json, for the cascade timeline. */
  series: TimeSeries;
  /** Cores each process used during the traffic (harness/run/cpu.ts). */
  cpu?: RunSummary['cpu'];
  loadRun: LoadRun;
  settling: Settling;
  readings: Readings;
  metrics: Record<string, number | null>;
  judgement: Judgement;
  interrupted?: RunSummary['interrupted'];
  /** Where the sale's data lived (harness/run/redis-layout.ts), when the run read its Redis. */
  redis?: RunSummary['redis'];
  /** The run's invariants: the audit's (I10 decided by the probe), or every one undecided when it could not run. */
  invariants: InvariantResult[];
}

/** summary.json, without its `files` (writeReports fills them in). */
export function buildSummary(ctx: RunContext, p: SummaryParts): RunSummary {
  const { r, startedAt } = ctx;
  const { load, traffic, trafficS } = p.loadRun;
  const { settled, quiescenceS, limitS } = p.settling;
  const { verdict } = p.judgement;
  const endedAt = new Date();
  return {
    schemaVersion: SUMMARY_SCHEMA_VERSION,
    runId: r.runId,
    tool: { name: 'flashcrowd', version: flashcrowdVersion() },
    engine: load.engine,
    traffic,
    preset: presetOf(r),
    params: {
      seed: r.seed,
      timeScale: r.timeScale,
      loadScale: r.loadScale,
      target: ctx.o.target ? p.target.urls.checkout : 'embedded',
    },
    startedAt: startedAt.toISOString(),
    endedAt: endedAt.toISOString(),
    durations: {
      trafficS,
      quiescenceS,
      totalS: (endedAt.getTime() - startedAt.getTime()) / 1000,
    },
    verdict,
    exitCode: p.interrupted
      ? p.interrupted.signal === 'SIGTERM'
        ? 143
        : 130
      : verdict === 'pass'
        ? 0
        : 1,
    ...(p.interrupted ? { interrupted: p.interrupted } : {}),
    checkout: {
      mode: p.sale.config.mode,
      features: p.sale.config.features,
      params: p.sale.config.params,
    },
    metrics: p.metrics,
    budgets: p.judgement.budgets,
    invariants: invariantsOf(p.invariants),
    stock: p.readings.stock,
    failures: failuresOf(p.readings.checkoutProm),
    events: {
      orders: orderEventsOf(p.readings.checkoutProm),
      declines: declinesOf(p.readings.mockProms),
      notifications: notificationsOf(p.readings.mockProms.wallet),
    },
    chaos: {
      bands: p.bands,
      injected: injectedOf(p.readings.mockProms),
      ...(p.played.length ? { timeline: p.played } : {}),
    },
    quiescence: {
      settled,
      waitedS: quiescenceS,
      ...(settled
        ? {}
        : {
            note: p.interrupted
              ? 'skipped: the run was interrupted; leaks counted as found'
              : `not settled within ${limitS} s: leaks counted as found`,
          }),
    },
    cascade: cascadeOf(p.series, p.metrics),
    ...(p.cpu ? { cpu: p.cpu } : {}),
    ...(p.redis ? { redis: p.redis } : {}),
    warnings: ctx.warnings,
    files: {},
  };
}

function presetOf(r: OneRun): RunSummary['preset'] {
  return {
    name: r.preset.name,
    file: relative(PROJECT_ROOT, r.presetFile) || r.presetFile,
    description: r.variant?.description ?? r.preset.description,
    ...(r.variant ? { variant: r.variant.name } : {}),
  };
}

function invariantsOf(invariants: InvariantResult[]): RunSummary['invariants'] {
  return invariants.map((i) => ({
    id: i.id,
    name: i.name ?? INVARIANT_NAMES[i.id as InvariantId],
    ok: i.ok,
    count: i.count,
    examples: i.examples,
    ...(i.note ? { note: i.note } : {}),
  }));
}
