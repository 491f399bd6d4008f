// `flashcrowd run --baseline DIR`: the earlier run relative budgets are judged
// against (`pay.failure_rate<=baseline*1.1`, a regression gate in CI). Read
// before anything starts; a variant's baseline is the same variant's run
// (DIR/<variant>/summary.json when DIR holds several, else DIR/summary.json).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readRunSummary } from '../compare.ts';
import { UsageError } from '../errors.ts';
import type { Preset, Variant } from '../preset.ts';
import type { Print, RunOptions } from './options.ts';
import type { RunBudget } from './preset.ts';

/** The baseline metrics of one variant's run (undefined without --baseline). */
export async function baselineOf(
  o: Pick<RunOptions, 'baseline'>,
  preset: Preset,
  variant: Variant | undefined,
  budgets: RunBudget[],
  print: Print,
): Promise<Record<string, number | null> | undefined> {
  const relative = budgets.filter((b) => b.parsed.relative);
  if (!o.baseline) {
    if (relative.length)
      throw new UsageError(
        `${relative.map((b) => b.expr).join(', ')}: a relative budget needs --baseline DIR (an earlier run of ${preset.name})`,
      );
    return undefined;
  }
  const own = variant ? join(o.baseline, variant.name) : o.baseline;
  const dir = existsSync(join(own, 'summary.json')) ? own : o.baseline;
  if (!existsSync(join(dir, 'summary.json')))
    throw new UsageError(`--baseline ${o.baseline}: no summary.json there (give a run directory)`);
  const s = await readRunSummary(dir);
  if (s.preset.name !== preset.name)
    throw new UsageError(
      `--baseline ${dir} is a run of ${s.preset.name}, not ${preset.name}: a baseline is an earlier run of the same preset`,
    );
  if (variant && s.preset.variant && s.preset.variant !== variant.name)
    throw new UsageError(
      `--baseline ${dir} is a run of variant ${s.preset.variant}, not ${variant.name}`,
    );
  print(
    `baseline${variant ? ` for ${variant.name}` : ''}: ${dir} (seed ${s.params.seed}, ${relative.length} relative budget(s))`,
  );
  return s.metrics;
}
