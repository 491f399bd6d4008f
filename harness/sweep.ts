// `flashcrowd sweep <preset>`: the capacity curve. The preset runs at several
// load scales (`--load-scales`), or a bisection looks for the knee
// (`--search`), each step a full run with its own report; the sweep says, per
// step, the offered peak arrival rate against failure rate, p99, dropped
// arrivals and throughput, which process saturated, and the knee: the highest
// offered rate whose run met every budget, and the first budget to break
// beyond it. `capacity.*` budgets gate on the sweep itself.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { evaluateBudgets, parseBudget, type ParsedBudget } from './budgets.ts';
import { UsageError } from './errors.ts';
import { loadPreset, type Preset } from './preset.ts';
import { saturated, type CpuShare } from './run/cpu.ts';
import type { BudgetResult, RunSummary } from './summary.ts';
import { sweepHtml, sweepMarkdown } from './report/sweep.ts';
import { PROJECT_ROOT } from './tools.ts';

export interface SweepStep {
  loadScale: number;
  /** Peak arrival rate the shape offers at this scale (arrivals/s). */
  offeredPerS: number;
  arrivals: number | null;
  dropped: number | null;
  payFailureRate: number | null;
  orderFailureRate: number | null;
  p99Ms: number | null;
  /** Orders paid per second of traffic. */
  paidPerS: number | null;
  depErrorRate: Record<string, number | null>;
  shed: number | null;
  verdict: 'pass' | 'fail';
  /** The first budget this step broke (preset order), if any. */
  firstBroken?: string;
  /** Cores each process used during the traffic, and the one that saturated. */
  cpu: CpuShare[];
  saturated?: string;
  dir: string;
}

export interface SweepResult {
  preset: string;
  variant?: string;
  seed: number;
  timeScale: number;
  mode: 'scales' | 'search';
  steps: SweepStep[];
  /** The highest offered rate that met every budget (null: none did). */
  knee: { loadScale: number; offeredPerS: number } | null;
  /** The first budget to break above the knee (null: nothing broke in the range). */
  breaksFirst: { loadScale: number; budget: string } | null;
  /** capacity.* budgets judged on the sweep. */
  budgets: BudgetResult[];
  verdict: 'pass' | 'fail';
}

/** Runs one step: the preset at `loadScale`, its report in `dir`; its summary. */
export type StepRunner = (loadScale: number, dir: string) => Promise<RunSummary>;

export interface SweepPlan {
  loadScales?: number[];
  search?: boolean;
  /** Bisection steps after the two ends (--search; default 4). */
  searchSteps?: number;
}

/** The peak arrival rate of the preset's shape at a load scale. */
export function offeredPeak(p: Preset, loadScale: number): number {
  const peak = Math.max(p.traffic.startRate, ...p.traffic.stages.map((s) => s.target));
  return peak * loadScale;
}

/** A step as the sweep reports it, from its run's summary. */
export function stepOf(p: Preset, loadScale: number, dir: string, s: RunSummary): SweepStep {
  const m = s.metrics;
  const v = (k: string) => (typeof m[k] === 'number' ? m[k] : null);
  const paid = v('pay.paid');
  const cpu = s.cpu;
  const broken = s.budgets.find((b) => !b.ok);
  const sat = cpu ? saturated(cpu.shares, cpu.cores) : undefined;
  return {
    loadScale,
    offeredPerS: offeredPeak(p, loadScale),
    arrivals: v('arrivals'),
    dropped: v('dropped_iterations'),
    payFailureRate: v('pay.failure_rate'),
    orderFailureRate: v('orders.failure_rate'),
    p99Ms: v('checkout.p99_ms'),
    paidPerS: paid !== null && s.durations.trafficS > 0 ? paid / s.durations.trafficS : null,
    depErrorRate: Object.fromEntries(
      ['bank', 'wallet', 'coupon'].map((d) => [d, v(`dep.error_rate{dependency=${d}}`)]),
    ),
    shed: v('checkout.shed'),
    verdict: s.verdict,
    ...(broken ? { firstBroken: broken.expr } : {}),
    cpu: cpu?.shares ?? [],
    ...(sat ? { saturated: sat } : {}),
    dir,
  };
}

/** The knee: the highest passing step below the first failing one; and that step's first broken budget. */
export function kneeOf(steps: SweepStep[]): Pick<SweepResult, 'knee' | 'breaksFirst'> {
  const sorted = [...steps].sort((a, b) => a.loadScale - b.loadScale);
  const firstFail = sorted.find((s) => s.verdict === 'fail');
  const below = sorted.filter(
    (s) => s.verdict === 'pass' && (!firstFail || s.loadScale < firstFail.loadScale),
  );
  const k = below.at(-1);
  return {
    knee: k ? { loadScale: k.loadScale, offeredPerS: k.offeredPerS } : null,
    breaksFirst: firstFail
      ? { loadScale: firstFail.loadScale, budget: firstFail.firstBroken ?? '(an invariant)' }
      : null,
  };
}

/** Split --budget: `capacity.*` gate the sweep, the rest go to every step. */
export function splitBudgets(exprs: string[]): { sweep: ParsedBudget[]; step: string[] } {
  const parsed = exprs.map((e) => ({ e, b: parseBudget(e, 'cli') }));
  return {
    sweep: parsed.filter((x) => x.b.name.startsWith('capacity.')).map((x) => x.b),
    step: parsed.filter((x) => !x.b.name.startsWith('capacity.')).map((x) => x.e),
  };
}

/** Run the steps (given scales, or a bisection between the two ends), then judge the sweep. */
export async function runSweep(
  p: Preset,
  plan: SweepPlan,
  run: StepRunner,
  out: string,
  sweepBudgets: ParsedBudget[] = [],
  print: (l: string) => void = console.log,
): Promise<Omit<SweepResult, 'preset' | 'variant' | 'seed' | 'timeScale'>> {
  const steps: SweepStep[] = [];
  const step = async (x: number) => {
    const scale = Number(x.toPrecision(3));
    const done = steps.find((s) => s.loadScale === scale);
    if (done) return done;
    const dir = join(out, `load-${scale}`);
    print(
      `\nsweep step ${steps.length + 1}: load-scale ${scale} (peak ${fmt(offeredPeak(p, scale))}/s)`,
    );
    const s = stepOf(p, scale, dir, await run(scale, dir));
    steps.push(s);
    print(`  ${s.verdict.toUpperCase()}${s.firstBroken ? ` (${s.firstBroken})` : ''}`);
    return s;
  };
  const scales = plan.loadScales ?? (plan.search ? [0.25, 4] : [0.25, 0.5, 1, 2, 4]);
  if (plan.search) await bisect(scales, plan.searchSteps ?? 4, step);
  else for (const x of scales) await step(x);
  steps.sort((a, b) => a.loadScale - b.loadScale);
  const k = kneeOf(steps);
  const metrics = { 'capacity.arrivals_per_s': k.knee?.offeredPerS ?? null };
  const budgets = evaluateBudgets(sweepBudgets, metrics);
  const verdict = budgets.every((b) => b.ok) ? 'pass' : 'fail';
  return { mode: plan.search ? 'search' : 'scales', steps, ...k, budgets, verdict };
}

/**
 * Bisection on the load scale (geometric midpoints): the low end must pass and
 * the high end fail, else the knee is outside the range and the sweep says so.
 */
async function bisect(
  ends: number[],
  n: number,
  step: (x: number) => Promise<SweepStep>,
): Promise<void> {
  if (ends.length !== 2)
    throw new UsageError('--search takes two load scales: --load-scales LOW,HIGH');
  let [lo, hi] = ends as [number, number];
  if ((await step(lo)).verdict === 'fail') return; // the knee is below the range
  if ((await step(hi)).verdict === 'pass') return; // above it
  for (let i = 0; i < n; i++) {
    const mid = Math.sqrt(lo * hi);
    if ((await step(mid)).verdict === 'pass') lo = mid;
    else hi = mid;
  }
}

const fmt = (x: number) => String(Number(x.toPrecision(3)));

export interface SweepCommandOptions extends SweepPlan {
  preset: string;
  variant?: string;
  seed: number;
  timeScale?: number;
  budgets: string[];
  out?: string;
}

/** `flashcrowd sweep`: each step through `run` (the caller's runner), then sweep.json, .md, .html. */
export async function sweepCommand(
  o: SweepCommandOptions,
  run: (step: {
    loadScale: number;
    timeScale: number;
    dir: string;
    budgets: string[];
  }) => Promise<RunSummary>,
  print: (l: string) => void = console.log,
): Promise<number> {
  const { preset } = loadPreset(o.preset);
  if (preset.variants?.length && !o.variant)
    throw new UsageError(
      `preset ${preset.name} has variants (${preset.variants.map((v) => v.name).join(', ')}): give --variant, a sweep measures one build`,
    );
  for (const x of o.loadScales ?? [])
    if (!(x > 0 && x <= 100)) throw new UsageError(`--load-scales: ${x} is not in (0, 100]`);
  const { sweep, step } = splitBudgets(o.budgets);
  const timeScale = o.timeScale ?? preset.ci.timeScale;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = resolve(o.out ?? join(PROJECT_ROOT, 'reports', `sweep-${preset.name}-${stamp}`));
  await mkdir(out, { recursive: true });
  print(
    `sweep ${preset.name}${o.variant ? ` (variant ${o.variant})` : ''} at time-scale ${timeScale} -> ${out}`,
  );
  const r = await runSweep(
    preset,
    o,
    (loadScale, dir) => run({ loadScale, timeScale, dir, budgets: step }),
    out,
    sweep,
    print,
  );
  const result: SweepResult = {
    preset: preset.name,
    ...(o.variant ? { variant: o.variant } : {}),
    seed: o.seed,
    timeScale,
    ...r,
  };
  await writeFile(join(out, 'sweep.json'), JSON.stringify(result, null, 2) + '\n');
  await writeFile(join(out, 'sweep.md'), sweepMarkdown(result));
  await writeFile(join(out, 'sweep.html'), sweepHtml(result));
  print(`\n${sweepMarkdown(result)}`);
  print(`sweep report: ${join(out, 'sweep.html')} (and sweep.md, sweep.json)`);
  return result.verdict === 'pass' ? 0 : 1;
}
