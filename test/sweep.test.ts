// The capacity sweep's logic (harness/sweep.ts) on a model system whose step
// results are a function of the load scale (no load here; a real sweep of
// livestream-spike is measured in docs/PERFORMANCE.md, "Capacity curve"): the
// knee is the highest step that met every budget below the first that broke
// one, the first broken budget is named, a bisection narrows the knee between
// its ends, capacity budgets gate on the knee, the reports show each step, and
// the saturated process is judged at its peak.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBudget } from '../harness/budgets.ts';
import { loadPreset } from '../harness/preset.ts';
import { fmtCompact } from '../harness/report/format.ts';
import { sweepHtml, sweepMarkdown } from '../harness/report/sweep.ts';
import type { RunSummary } from '../harness/summary.ts';
import { busiest, saturated } from '../harness/run/cpu.ts';
import { kneeOf, offeredPeak, runSweep, splitBudgets, type StepRunner } from '../harness/sweep.ts';
import { baseSummary } from './support/report-fixtures.ts';

const { preset } = loadPreset('livestream-spike');
const out = mkdtempSync(join(tmpdir(), 'flashcrowd-sweep-'));

/** A system that holds until `limit` load-scale, then fails pay.failure_rate<0.02. */
function model(limit: number): { run: StepRunner; calls: number[] } {
  const calls: number[] = [];
  const run: StepRunner = async (x) => {
    calls.push(x);
    const s: RunSummary = baseSummary();
    const rate = x <= limit ? 0.01 : 0.05 + x / 10;
    s.metrics = {
      ...s.metrics,
      'pay.failure_rate': rate,
      'orders.failure_rate': rate / 2,
      'checkout.shed': x > limit ? 50 * x : 0,
      'dep.error_rate{dependency=bank}': x > limit ? 0.05 : 0,
      'pay.paid': 100 * x,
    };
    s.budgets = [
      {
        expr: 'pay.failure_rate<0.02',
        metric: 'pay.failure_rate',
        op: '<',
        threshold: 0.02,
        value: rate,
        ok: rate < 0.02,
        source: 'preset',
      },
    ];
    s.verdict = rate < 0.02 ? 'pass' : 'fail';
    return s;
  };
  return { run, calls };
}
const quiet = () => undefined;

describe('the sweep', () => {
  it('finds the knee at the highest passing step and names the first budget broken beyond it', async () => {
    const { run, calls } = model(1);
    const r = await runSweep(preset, { loadScales: [0.25, 0.5, 1, 2, 4] }, run, out, [], quiet);
    expect(calls).toEqual([0.25, 0.5, 1, 2, 4]);
    expect(r.knee).toEqual({ loadScale: 1, offeredPerS: offeredPeak(preset, 1) });
    expect(r.breaksFirst).toEqual({ loadScale: 2, budget: 'pay.failure_rate<0.02' });
    expect(r.steps.map((s) => s.verdict)).toEqual(['pass', 'pass', 'pass', 'fail', 'fail']);
    expect(r.steps[2]!.paidPerS).toBeCloseTo(100 / baseSummary().durations.trafficS);
  });

  it('has no knee when the first step fails, and no break when every step passes', () => {
    const step = (loadScale: number, verdict: 'pass' | 'fail') =>
      ({ loadScale, offeredPerS: loadScale * 10, verdict }) as Parameters<typeof kneeOf>[0][0];
    expect(kneeOf([step(1, 'fail'), step(2, 'fail')]).knee).toBeNull();
    expect(kneeOf([step(1, 'pass'), step(2, 'pass')])).toEqual({
      knee: { loadScale: 2, offeredPerS: 20 },
      breaksFirst: null,
    });
    // A pass above a failure is not the knee: capacity ends at the first break.
    expect(kneeOf([step(1, 'pass'), step(2, 'fail'), step(4, 'pass')]).knee?.loadScale).toBe(1);
  });

  it('--search bisects between the ends: each step halves the interval (geometrically) around the knee', async () => {
    const { run, calls } = model(1.3);
    const r = await runSweep(
      preset,
      { search: true, loadScales: [0.25, 4], searchSteps: 4 },
      run,
      out,
      [],
      quiet,
    );
    expect(calls.slice(0, 3)).toEqual([0.25, 4, 1]);
    expect(calls).toHaveLength(6);
    expect(r.knee!.loadScale).toBeLessThanOrEqual(1.3);
    expect(r.breaksFirst!.loadScale).toBeGreaterThan(1.3);
    // After 4 bisections of a 16x range the knee is within a factor of 16^(1/16) of the break.
    expect(r.breaksFirst!.loadScale / r.knee!.loadScale).toBeLessThan(16 ** (1 / 16) + 1e-6);
  });

  it('capacity budgets gate on the knee; other budgets go to every step', async () => {
    const { sweep, step } = splitBudgets(['capacity.arrivals_per_s>=150', 'checkout.p99_ms<800']);
    expect(step).toEqual(['checkout.p99_ms<800']);
    const atOne = offeredPeak(preset, 1);
    const r = await runSweep(preset, { loadScales: [0.5, 1, 2] }, model(1).run, out, sweep, quiet);
    expect(r.budgets[0]).toMatchObject({ ok: atOne >= 150, value: atOne });
    const none = await runSweep(
      preset,
      { loadScales: [2] },
      model(1).run,
      out,
      [parseBudget('capacity.arrivals_per_s>=1', 'cli')],
      quiet,
    );
    expect(none.budgets[0]).toMatchObject({ ok: false, value: null, note: 'no samples' });
    expect(none.verdict).toBe('fail');
  });

  it('reports every step, the knee and the first break, in Markdown and in HTML with a chart per measure', async () => {
    const r = await runSweep(preset, { loadScales: [0.5, 1, 2] }, model(1).run, out, [], quiet);
    const full = { preset: 'livestream-spike', seed: 1, timeScale: 0.0167, ...r };
    const md = sweepMarkdown(full);
    expect(md).toContain(
      `knee: ${fmtCompact(offeredPeak(preset, 1))} arrivals/s (load-scale 1) met every budget; beyond it, load-scale 2 broke pay.failure_rate<0.02 first`,
    );
    const lines = md.split('\n').filter((l) => /^\| (0\.5|1|2) \|/.test(l));
    expect(lines).toHaveLength(3);
    // Per dependency: the bank's call error rate in each step.
    expect(lines[0]).toContain('| bank 0.0% |');
    expect(lines[2]).toContain('| bank 5.0% |');
    const html = sweepHtml(full);
    expect(html.match(/<svg /g)).toHaveLength(6);
    expect(html).toContain('>knee</text>');
  });
});

describe('which process saturated', () => {
  const share = (name: string, cores: number, peakCores?: number) => ({
    name,
    cores,
    ...(peakCores !== undefined ? { peakCores } : {}),
  });
  it('is judged at its peak: a checkout at 0.56 core on average and 0.98 in its busiest 3 s saturated', () => {
    const shares = [
      share('checkout', 0.56, 0.98),
      share('mocks', 0.27, 0.6),
      share('machine', 1.1, 1.9),
    ];
    expect(saturated(shares, 2)).toBe('checkout');
    expect(saturated([share('checkout', 0.56), share('machine', 1.1)], 2)).toBeUndefined();
    expect(saturated([share('checkout', 0.5, 0.7), share('machine', 1.1, 1.85)], 2)).toBe(
      'machine',
    );
  });

  it('the busiest window is the most cores over 3 consecutive seconds of samples', () => {
    // A process idle for 4 s, then a full core for 3 s, then half a core.
    const cum = [0, 0, 0, 0, 0, 1, 2, 3, 3.5, 4];
    const samples = cum.map((v, k) => ({ t: k * 1000, v: [v, undefined] }));
    expect(busiest(samples, 0)).toBeCloseTo(1, 6);
    expect(busiest(samples, 1)).toBeUndefined();
    expect(busiest(samples.slice(0, 3), 0)).toBeUndefined(); // shorter than the window
  });
});
