// `flashcrowd run --baseline DIR` reads the earlier run before anything
// starts: a relative budget without one, a directory that is not a run, a run
// of another preset or another variant are refused (exit 2); the same variant's
// run inside a directory of several is the one used.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBudget } from '../harness/budgets.ts';
import { loadPreset } from '../harness/preset.ts';
import { baselineOf } from '../harness/run/baseline.ts';
import { baseSummary } from './support/report-fixtures.ts';
import { runCli } from './support/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-baseline-'));
const { preset } = loadPreset('retry-storm');
const [naive, hardened] = preset.variants!;
const REL = 'pay.failure_rate<=baseline*1.1';
const rel = [{ expr: REL, parsed: parseBudget(REL, 'preset'), source: 'preset' as const }];

/** A run directory holding a summary of `name` / `variant` with these metrics. */
function runDir(
  dir: string,
  name: string,
  variant: string | undefined,
  metrics: Record<string, number>,
) {
  const s = baseSummary();
  s.preset = { ...s.preset, name, ...(variant ? { variant } : {}) };
  if (!variant) delete s.preset.variant;
  s.metrics = metrics;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(s));
  return dir;
}

describe('the baseline of a run', () => {
  const lines: string[] = [];
  const print = (l: string) => lines.push(l);

  it("is the same variant's run in a directory of several, and says so", async () => {
    const base = join(tmp, 'both');
    runDir(join(base, 'naive'), 'retry-storm', 'naive', { 'pay.failure_rate': 0.4 });
    runDir(join(base, 'hardened'), 'retry-storm', 'hardened', { 'pay.failure_rate': 0.05 });
    expect(await baselineOf({ baseline: base }, preset, naive, rel, print)).toEqual({
      'pay.failure_rate': 0.4,
    });
    expect(await baselineOf({ baseline: base }, preset, hardened, rel, print)).toEqual({
      'pay.failure_rate': 0.05,
    });
    expect(lines.join('\n')).toContain(`baseline for hardened: ${join(base, 'hardened')}`);
  });

  it('is not needed without relative budgets, and required with one', async () => {
    expect(await baselineOf({}, preset, naive, [], print)).toBeUndefined();
    await expect(baselineOf({}, preset, naive, rel, print)).rejects.toThrow(
      /pay\.failure_rate<=baseline\*1\.1.*needs --baseline DIR/,
    );
  });

  it('refuses a run of another preset or another variant', async () => {
    const other = runDir(join(tmp, 'other'), 'bank-brownout', undefined, {});
    await expect(baselineOf({ baseline: other }, preset, naive, rel, print)).rejects.toThrow(
      /is a run of bank-brownout, not retry-storm/,
    );
    const wrong = runDir(join(tmp, 'wrong'), 'retry-storm', 'hardened', {});
    await expect(baselineOf({ baseline: wrong }, preset, naive, rel, print)).rejects.toThrow(
      /is a run of variant hardened, not naive/,
    );
  });
});

describe('run refuses a bad baseline before anything starts (exit 2)', () => {
  it.each([
    [['--budget', 'pay.failure_rate<=baseline*1.1'], /a relative budget needs --baseline DIR/],
    [['--baseline', join(tmp, 'nothing-here')], /no summary\.json there/],
  ])('run retry-storm %j', async (args, reason) => {
    const r = await runCli(['run', 'retry-storm', '--ci', ...args], { timeoutMs: 60_000 });
    expect(r.code, r.log).toBe(2);
    expect(r.log).toMatch(reason);
    expect(r.log).not.toMatch(/engine:/);
  });
});
