// The phenomenon matrix's rows (harness/phenomena.ts) are well formed: the
// brief's 14 in its order, each on two variants of a shipped preset
// and checks that parse; and a row holds only when the naive run shows the
// phenomenon and the hardened run passes and shows its part. The matrix
// itself is run by test/phenomena.test.ts.
import { describe, expect, it } from 'vitest';
import { parseBudgets } from '../harness/budgets.ts';
import { BRIEF_ROWS, judgeRow, PHENOMENA, runName, selectRows } from '../harness/phenomena.ts';
import { loadPreset } from '../harness/preset.ts';
import type { RunSummary } from '../harness/summary.ts';

const summary = (verdict: 'pass' | 'fail', metrics: Record<string, number | null>) =>
  ({ verdict, metrics }) as unknown as RunSummary;

describe('the phenomenon matrix', () => {
  it("has the brief's 14 rows in its order, then the 4 of the faults beyond the mocks", () => {
    expect(BRIEF_ROWS).toBe(14);
    expect(PHENOMENA.map((r) => r.n)).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
    expect(new Set(PHENOMENA.map((r) => r.phenomenon)).size).toBe(18);
    expect(PHENOMENA.slice(BRIEF_ROWS).map((r) => r.preset)).toEqual([
      'redis-slow',
      'checkout-crash',
      'redis-restart',
      'network-partition',
    ]);
  });

  it.each(PHENOMENA.map((r) => [r.n, r] as const))(
    'row %i runs two variants of a shipped preset, with checks that parse',
    (_n, r) => {
      const { preset } = loadPreset(r.preset);
      const variants = preset.variants?.map((v) => v.name);
      expect(variants).toContain(r.naive);
      expect(variants).toContain(r.hardened);
      expect(parseBudgets(r.naiveShows, 'cli')).toHaveLength(r.naiveShows.length);
      expect(parseBudgets(r.hardenedShows, 'cli')).toHaveLength(r.hardenedShows.length);
      expect(r.naiveShows.length).toBeGreaterThan(0);
      // The two runs of a row are different runs.
      expect(runName(r.preset, r.naive)).not.toBe(runName(r.preset, r.hardened));
    },
  );

  it('--rows picks rows and refuses one the brief does not have', () => {
    expect(selectRows('4,9').map((r) => r.n)).toEqual([4, 9]);
    expect(selectRows(undefined)).toHaveLength(18);
    expect(() => selectRows('0,19')).toThrow(/no row 0, 19 \(rows 1-18\)/);
  });

  describe('a row holds only when both builds do their part', () => {
    const row = PHENOMENA.find((r) => r.n === 4)!; // ghost stock: leaks.stock>0 / ==0
    const judge = (n: RunSummary, h: RunSummary) =>
      judgeRow(row, { dir: 'n', summary: n }, { dir: 'h', summary: h }).ok;
    const leaking = summary('fail', { 'leaks.stock': 7 });
    const clean = summary('pass', { 'leaks.stock': 0 });
    it('holds: the naive build leaks, the hardened one passes without leaks', () => {
      expect(judge(leaking, clean)).toBe(true);
    });
    it('does not hold when the naive build does not show the phenomenon', () => {
      expect(judge(summary('fail', { 'leaks.stock': 0 }), clean)).toBe(false);
    });
    it('does not hold when the metric has no samples', () => {
      expect(judge(summary('fail', {}), clean)).toBe(false);
    });
    it('does not hold when the hardened build shows it too', () => {
      expect(judge(leaking, summary('pass', { 'leaks.stock': 1 }))).toBe(false);
    });
    it('does not hold when the hardened build fails its budgets', () => {
      expect(judge(leaking, summary('fail', { 'leaks.stock': 0 }))).toBe(false);
    });
  });
});
