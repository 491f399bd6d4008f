// `flashcrowd run <preset|file>`: from traffic spike to verdict, one stage a
// module, in the order they run:
//
//   preset.ts    resolve the preset (variants, budgets, scales, seed)
//   target.ts    start the stack, or take the user's --target
//   reset.ts     reset the target, and refuse it when it is not clean
//   sale.ts      seed the sale
//   load.ts      the load engine's inputs (shoppers, plan); the engine starts and
//                says when its first arrival is due (t0)
//   chaos.ts     apply the preset's chaos to the mocks, their clocks set to t0
//   faults.ts    play the faults beyond the mocks from t0 (checked before anything
//                starts; proxies set up with the stack)
//   load.ts      the traffic, collected each second from t0 (progress.ts: live progress)
//   faults.ts    end the faults still in force
//   chaos.ts     clear the chaos
//   quiesce.ts   wait for the system to settle, auditing the invariants
//   metrics.ts   the final readings and the flat metrics
//   probe.ts     I10: the shoppers' replays and an idempotency probe
//   verdict.ts   the budgets and the verdict
//   summary.ts   summary.json, and the report files (harness/report/)
//
// Exit codes: 0 every budget passed and no invariant broke; 1 a budget failed
// or an invariant broke (for a preset with variants run together: a variant
// did not do what it `expect`s); 2 usage or set-up error.
import { writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Store } from '../../checkout/store.ts';
import { notAudited } from '../audit.ts';
import { compareSummaries, formatComparison } from '../compare.ts';
import { UsageError } from '../errors.ts';
import { loadPreset, type Variant } from '../preset.ts';
import { writeComparison, type Side } from '../report/comparison.ts';
import { writeReports } from '../report/index.ts';
import type { RunSummary } from '../summary.ts';
import { PROJECT_ROOT } from '../tools.ts';
import { baselineOf } from './baseline.ts';
import { applyChaos, chaosBands, clearChaos } from './chaos.ts';
import { watchCpu } from './cpu.ts';
import { checkFaults, faultsBudget, rigFaults } from './faults.ts';
import {
  engineFactory,
  prepareLoad,
  readyEngine,
  runLoad,
  timeSeries,
  writeLoadFiles,
} from './load.ts';
import { finalReadings, runMetrics } from './metrics.ts';
import { decideI10 } from './probe.ts';
import { checkTargetFlags, runScales, type Print, type RunOptions } from './options.ts';
import {
  budgetsOf,
  buildOf,
  buildOverridden,
  checkBuildFlags,
  cliBudgets,
  resolveRun,
  variantsOf,
  type OneRun,
  type RunContext,
} from './preset.ts';
import { openStore, quiesce, quiescenceBudget, streamBudget } from './quiesce.ts';
import { formatLayout, redisLayout } from './redis-layout.ts';
import { resetTarget } from './reset.ts';
import { seedSale } from './sale.ts';
import { buildSummary } from './summary.ts';
import { checkStackRedis, startTarget, type Target } from './target.ts';
import { judge, printExpectations, printVerdict } from './verdict.ts';

export async function runCommand(o: RunOptions, print: Print = console.log): Promise<number> {
  // Refuse a target outside loopback before anything is read, started or written.
  checkTargetFlags(o);
  checkBuildFlags(o);
  const { preset, file } = loadPreset(o.preset);
  const { timeScale, loadScale } = runScales(o, preset);
  const cli = cliBudgets(o.budgets);
  const variants = variantsOf(preset, o.variant);
  // Which engine (and for k6, which binary or container) is settled before anything starts.
  if (o.runners !== undefined && variants.length > 1)
    throw new UsageError(
      `preset ${preset.name} runs ${variants.length} variants, and runner processes serve one run: ` +
        `give --variant (${variants.map((v) => v?.name).join(', ')}) with --runners`,
    );
  if (o.target && variants.length > 1)
    throw new UsageError(
      `preset ${preset.name} runs ${variants.length} variants, each on its own checkout build, and --target runs its own build: ` +
        `give --variant (${variants.map((v) => v?.name).join(', ')}) with --target`,
    );
  if (o.runners !== undefined && (o.repeat ?? 1) > 1)
    throw new UsageError(
      '--repeat runs the preset several times, and runner processes serve one run: drop one of them',
    );
  // Every variant's faults can be played, and its baseline is read, before anything starts.
  for (const v of variants) {
    checkStackRedis(preset, buildOf(preset, v, o), o);
    checkFaults(preset, buildOf(preset, v, o), o);
  }
  const baselines = new Map<Variant | undefined, Record<string, number | null> | undefined>();
  for (const v of variants)
    baselines.set(v, await baselineOf(o, preset, v, budgetsOf(preset, v, cli), print));
  const engine = await engineFactory(o, print);
  print(`engine: ${engine().describe()}`);
  if (buildOverridden(o))
    print(
      `checkout build from the command line: ${variants
        .map((v) => {
          const b = buildOf(preset, v, o);
          const sets = Object.entries(b.set).map(([k, x]) => `${k}=${x}`);
          return `${v ? `${v.name}: ` : ''}${b.mode}${sets.length ? ` ${sets.join(' ')}` : ''}`;
        })
        .join('; ')}` +
        (variants.length > 1
          ? " (the variants' expectations are for their own builds: each run is judged by its budgets alone)"
          : ''),
    );
  const runId = `${preset.name}-${stamp(new Date())}-s${o.seed}`;
  const base = resolve(o.out ?? join(PROJECT_ROOT, 'reports', runId));
  const results: { variant?: Variant; summary: RunSummary }[] = [];
  const repeat = o.repeat ?? 1;
  let reproduced = true;
  for (const variant of variants) {
    const budgets = budgetsOf(preset, variant, cli);
    const baseline = baselines.get(variant);
    const vdir = variants.length > 1 && variant ? join(base, variant.name) : base;
    const reps: { dir: string; summary: RunSummary }[] = [];
    for (let k = 1; k <= repeat; k++) {
      const dir = repeat > 1 ? join(vdir, `rep-${k}`) : vdir;
      print(
        `\nflashcrowd run ${preset.name}${variant ? ` (variant ${variant.name})` : ''}` +
          `${repeat > 1 ? ` repetition ${k} of ${repeat}` : ''} -> ${shown(dir)}`,
      );
      const summary = await runOne(
        {
          preset,
          presetFile: file,
          variant,
          dir,
          runId,
          seed: o.seed,
          timeScale,
          loadScale,
          budgets,
          baseline,
          engine,
        },
        o,
        print,
      );
      reps.push({ dir, summary });
      printVerdict(summary, shown(dir), print);
      if (summary.interrupted) return summary.exitCode;
    }
    results.push({ variant, summary: reps[0]!.summary });
    if (repeat > 1) reproduced = (await compareRepetitions(vdir, reps, print)) && reproduced;
  }
  if (results.length > 1) await compareVariants(base, results, print);
  const verdict =
    results.length === 1
      ? results[0]!.summary.exitCode
      : buildOverridden(o)
        ? Math.max(...results.map((x) => x.summary.exitCode))
        : printExpectations(results, print)
          ? 0
          : 1;
  return reproduced ? verdict : 1;
}

/** Variants run together: the first two side by side (compare.md, compare.html in the run's folder). */
async function compareVariants(
  base: string,
  results: { variant?: Variant; summary: RunSummary }[],
  print: Print,
) {
  const [a, b] = results as [(typeof results)[0], (typeof results)[0]];
  const sides: [Side, Side] = [
    { label: a.variant?.name ?? 'A', summary: a.summary },
    { label: b.variant?.name ?? 'B', summary: b.summary },
  ];
  const files = await writeComparison(base, sides, compareSummaries(a.summary, b.summary));
  print(
    `\n${sides[0].label} vs ${sides[1].label}: ${files.map((f) => join(shown(base), f)).join(', ')}`,
  );
}

/** --repeat: every repetition against the first, printed and written to compare.json. */
async function compareRepetitions(
  dir: string,
  reps: { dir: string; summary: RunSummary }[],
  print: Print,
): Promise<boolean> {
  const first = reps[0]!;
  const out = reps.slice(1).map((r, i) => {
    const c = compareSummaries(first.summary, r.summary);
    print(`\nrepetition ${i + 2} against repetition 1:`);
    for (const l of formatComparison(c, ['rep 1', `rep ${i + 2}`])) print(l);
    return { a: relative(dir, first.dir), b: relative(dir, r.dir), ...c };
  });
  await writeFile(join(dir, 'compare.json'), JSON.stringify(out, null, 2) + '\n');
  print(`  comparison: ${join(shown(dir), 'compare.json')}`);
  return out.every((c) => c.ok);
}

/** One run of the preset (or of one variant), stage by stage. */
async function runOne(r: OneRun, o: RunOptions, print: Print): Promise<RunSummary> {
  const ctx = resolveRun(r, o, print);
  const faults = rigFaults(ctx);
  // The engine's input files do not depend on the target: written while the stack starts.
  const files = writeLoadFiles(ctx);
  files.catch(() => undefined); // awaited below; a failed start must not leave it unhandled
  let target: Target | undefined;
  let store: Store | undefined;
  try {
    target = await startTarget(ctx, faults?.stackOptions);
    await resetTarget(ctx, target);
    const sale = await seedSale(ctx, target);
    const plan = prepareLoad(ctx, target, await files);
    const engine = r.engine();
    await readyEngine(engine, plan, o.signal);
    const bands = chaosBands(ctx, target);
    const cpu = watchCpu(target, o.runners ? 'harness' : 'harness+load');
    // The chaos and fault clocks start at the engine's start instant, not when the harness gets there.
    const onStart = async (t0: number) => {
      faults?.start(target!, t0);
      await applyChaos(ctx, target!, t0);
    };
    const loadRun = await runLoad(ctx, target, { engine, plan, bands, onStart });
    const played = (await faults?.stop(bands)) ?? [];
    const cpuShares = cpu.stop();
    await clearChaos(target);
    store = openStore(ctx, target, sale);
    const interrupted = interruption(o.signal, loadRun.trafficS);
    if (interrupted)
      ctx.warnings.unshift(
        `interrupted by ${interrupted.signal} after ${interrupted.afterTrafficS.toFixed(1)} s of traffic: ` +
          'the load was stopped and quiescence skipped, so the audit saw the state at that moment; ' +
          'an interrupted run never passes',
      );
    const settling = await quiesce(ctx, target, sale, store, interrupted !== undefined);
    const redis = store ? await readLayout(ctx, store, sale.skuIds) : undefined;
    const series = await timeSeries(loadRun.collector, bands, ctx.resolved);
    // I1 and I2 at every tick of the collector, not only at the end.
    if (settling.report) loadRun.collector.stockWatch.apply(settling.report);
    const readings = await finalReadings(target, loadRun.collector);
    // I10 from the shoppers' double-submitted orders and a probe, after the
    // final readings so the probe's orders are not in them.
    if (settling.report)
      await decideI10(
        ctx,
        target,
        settling.report,
        loadRun.load.summary,
        interrupted !== undefined,
      );
    const stages = series.stages.map((s) => s.label);
    const invariants = settling.report?.invariants ?? notAudited(settling.skipped ?? 'no audit');
    const metrics = runMetrics(
      readings,
      {
        load: loadRun.load.summary,
        audit: settling.report,
        invariants,
        allowUndecided: r.preset.allowUndecided,
        stages,
      },
      loadRun.traffic,
    );
    const settledCheck = interrupted
      ? undefined
      : quiescenceBudget(settling, store !== undefined && target.haveMocks);
    if (settledCheck) metrics['quiescence.unsettled'] = settledCheck.value;
    const streamCheck = interrupted ? undefined : streamBudget(settling.report);
    const faultsCheck = faultsBudget(played);
    if (faultsCheck) metrics['faults.failed'] = faultsCheck.value;
    const judgement = judge(
      r.budgets,
      metrics,
      loadRun.traffic,
      settling.report,
      interrupted,
      [settledCheck, streamCheck, faultsCheck].filter((c) => c !== undefined),
      r.baseline,
    );
    const summary = buildSummary(ctx, {
      target,
      sale,
      bands,
      played,
      series,
      cpu: cpuShares,
      loadRun,
      settling,
      readings,
      metrics,
      judgement,
      interrupted,
      invariants,
      ...(redis ? { redis } : {}),
    });
    summary.files = await writeReports(r.dir, summary, series);
    return summary;
  } finally {
    store?.redis.disconnect();
    await target?.stack?.stop();
    await faults?.close();
  }
}

/** Where the sale's data lived, printed; a failure to read it is a warning. */
async function readLayout(ctx: RunContext, store: Store, skuIds: readonly string[]) {
  try {
    const layout = await redisLayout(store, skuIds);
    ctx.print(formatLayout(layout));
    return layout;
  } catch (e) {
    ctx.warnings.push(
      `reading where the sale's data lives in Redis failed: ${(e as Error).message}`,
    );
    return undefined;
  }
}

/** The signal that cut the run short (the abort reason the CLI gives), if one did. */
function interruption(
  signal: AbortSignal | undefined,
  afterTrafficS: number,
): RunSummary['interrupted'] {
  if (!signal?.aborted) return undefined;
  return { signal: signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT', afterTrafficS };
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

/** A folder as printed: relative to the working directory. */
const shown = (dir: string) => relative(process.cwd(), dir) || dir;
