// `flashcrowd run`, the preset: its variants and budgets, and for each run the
// preset resolved at the run's seed and scales.
import { mkdirSync } from 'node:fs';
import { applyOverrides, defaultConfig } from '../../checkout/config.ts';
import { ValidationError } from '../../mock-gateways/errors.ts';
import { parseBudget, type ParsedBudget } from '../budgets.ts';
import type { LoadEngine } from '../engine/types.ts';
import { UsageError } from '../errors.ts';
import { resolvePreset, type Preset, type ResolvedPreset, type Variant } from '../preset.ts';
import { DEFAULT_MASTERS } from '../redis-cluster.ts';
import type { BudgetResult } from '../summary.ts';
import type { Print, RunOptions } from './options.ts';

export type RunBudget = { expr: string; parsed: ParsedBudget; source: BudgetResult['source'] };

/** One run (a preset, or one of its variants), as runCommand settles it. */
export interface OneRun {
  preset: Preset;
  presetFile: string;
  variant?: Variant;
  dir: string;
  runId: string;
  seed: number;
  timeScale: number;
  loadScale: number;
  budgets: RunBudget[];
  /** The baseline run's metrics (--baseline), for relative budgets. */
  baseline?: Record<string, number | null>;
  /** A fresh load engine for this run. */
  engine: () => LoadEngine;
}

/** What every stage of one run reads: the run, the command's options, the resolved preset. */
export interface RunContext {
  r: OneRun;
  o: RunOptions;
  print: Print;
  startedAt: Date;
  /** The run's warnings, in the order they come (summary.json `warnings`). */
  warnings: string[];
  /** The checkout build: the variant's, else the preset's, with --mode and --set on top. */
  build: Preset['checkout'];
  resolved: ResolvedPreset;
}

/**
 * The runs --variant asks for: those named (`naive`, or `naive,hardened` in
 * that order), else every variant, else the preset itself.
 */
export function variantsOf(preset: Preset, names: string | undefined): (Variant | undefined)[] {
  const wanted = names ? [...new Set(names.split(',').map((n) => n.trim()))] : [];
  if (preset.variants?.length)
    return wanted.length
      ? wanted.map((n) => preset.variants!.find((v) => v.name === n) ?? usageNoVariant(preset, n))
      : preset.variants;
  return wanted.length ? [usageNoVariant(preset, wanted[0]!)] : [undefined];
}

function usageNoVariant(p: Preset, v: string): never {
  throw new UsageError(
    p.variants?.length
      ? `preset ${p.name} has no variant "${v}" (variants: ${p.variants.map((x) => x.name).join(', ')})`
      : `preset ${p.name} has no variants (--variant does not apply)`,
  );
}

/** --budget expressions, parsed before anything starts. */
export function cliBudgets(exprs: string[]): RunBudget[] {
  return exprs.map((e) => ({ expr: e, parsed: parseBudget(e, 'cli'), source: 'cli' as const }));
}

/** A run's budgets: the variant's (else the preset's), then the command line's. */
export function budgetsOf(preset: Preset, variant: Variant | undefined, cli: RunBudget[]) {
  const source: BudgetResult['source'] = variant?.budgets ? 'variant' : 'preset';
  return [
    ...(variant?.budgets ?? preset.budgets).map((e) => ({
      expr: e,
      parsed: parseBudget(e, source),
      source,
    })),
    ...cli,
  ];
}

/** The run's folder, its clock, and the preset at the run's seed and scales. */
export function resolveRun(r: OneRun, o: RunOptions, print: Print): RunContext {
  mkdirSync(r.dir, { recursive: true });
  const startedAt = new Date();
  const resolved = resolvePreset(r.preset, {
    seed: r.seed,
    timeScale: r.timeScale,
    loadScale: r.loadScale,
    variant: r.variant?.name,
  });
  const build = buildOf(r.preset, r.variant, o);
  return { r, o, print, startedAt, warnings: [], build, resolved };
}

/** Whether --mode or --set change the preset's builds (then variants' expectations do not apply). */
export const buildOverridden = (o: Pick<RunOptions, 'mode' | 'set'>) =>
  Boolean(o.mode || o.set?.length);

/**
 * The checkout build of one run: the variant's, else the preset's; --mode
 * replaces its mode (features from that mode's preset, the build's own `set`
 * still on top), then each --set KEY=VALUE, last one winning. Its instances:
 * --instances, else the variant's, else the preset's, else 1. Its Redis
 * Cluster's masters: --redis-masters, else the variant's or the preset's
 * `redisCluster`, else DEFAULT_MASTERS with --redis-cluster, else none (one
 * Redis).
 */
export function buildOf(
  preset: Preset,
  variant: Variant | undefined,
  o: Pick<RunOptions, 'mode' | 'set' | 'instances' | 'redisCluster' | 'redisMasters'>,
): Preset['checkout'] & { instances: number } {
  const own = variant?.checkout ?? preset.checkout;
  const set: Record<string, string | number | boolean> = { ...own.set };
  for (const kv of o.set ?? []) {
    const eq = kv.indexOf('=');
    set[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const instances = o.instances ?? variant?.checkout?.instances ?? preset.checkout.instances ?? 1;
  const redisPersistence = variant?.checkout?.redisPersistence ?? preset.checkout.redisPersistence;
  const presetMasters = variant?.checkout?.redisCluster ?? preset.checkout.redisCluster;
  const redisCluster =
    o.redisMasters ?? (o.redisCluster ? (presetMasters ?? DEFAULT_MASTERS) : presetMasters);
  return {
    mode: o.mode ?? own.mode,
    set,
    instances,
    ...(redisPersistence ? { redisPersistence } : {}),
    ...(redisCluster ? { redisCluster } : {}),
  };
}

/** --set KEY=VALUE, checked against the checkout's settings before anything starts. */
export function checkBuildFlags(o: Pick<RunOptions, 'mode' | 'set'>): void {
  const mode = o.mode ?? 'hardened';
  for (const kv of o.set ?? [])
    if (kv.indexOf('=') <= 0) throw new UsageError(`--set ${kv}: expected KEY=VALUE`);
  if (o.set?.some((kv) => kv.startsWith('mode=')))
    throw new UsageError('--set mode=...: give --mode instead');
  try {
    applyOverrides(defaultConfig(mode), o.set ?? []);
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    throw new UsageError(
      `--set: ${e.errors.map((x) => `${x.field}: ${x.reason}`).join('; ')} (docs/CHECKOUT.md lists every setting)`,
    );
  }
}
