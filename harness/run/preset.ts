// `flashcrowd run`, the preset: its variants and budgets, and for each run the
// preset resolved at the run's seed and scales.
import { mkdirSync } from 'node:fs';
import { parseBudget, type ParsedBudget } from '../budgets.ts';
import type { LoadEngine } from '../engine/types.ts';
import { UsageError } from '../errors.ts';
import { resolvePreset, type Preset, type ResolvedPreset, type Variant } from '../preset.ts';
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
  /** The checkout build: the variant's, else the preset's. */
  build: Preset['checkout'];
  resolved: ResolvedPreset;
}

/** The runs --variant asks for: the one named, else every variant, else the preset itself. */
export function variantsOf(preset: Preset, name: string | undefined): (Variant | undefined)[] {
  if (preset.variants?.length)
    return name
      ? [preset.variants.find((v) => v.name === name) ?? usageNoVariant(preset, name)]
      : preset.variants;
  return name ? [usageNoVariant(preset, name)] : [undefined];
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
  const build = r.variant?.checkout ?? r.preset.checkout;
  return { r, o, print, startedAt, warnings: [], build, resolved };
}
