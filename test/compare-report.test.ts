// Two runs side by side (harness/report/comparison.ts): `flashcrowd compare A B
// --out DIR` writes compare.md and compare.html with the builds, each budget
// and invariant in both runs, and every metric with its delta; a difference
// in build is said, not hidden; the HTML escapes what it shows.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareCommand, compareSummaries } from '../harness/compare.ts';
import { comparisonHtml, comparisonMarkdown } from '../harness/report/comparison.ts';
import type { RunSummary } from '../harness/summary.ts';
import { baseSummary } from './support/report-fixtures.ts';

/** A naive and a hardened run of one preset: the naive one leaks and fails a budget. */
function pair(): [RunSummary, RunSummary] {
  const h = baseSummary();
  const n = structuredClone(h);
  n.preset.variant = 'naive';
  n.checkout.mode = 'naive';
  n.verdict = 'fail';
  n.metrics = { ...h.metrics, 'leaks.stock': 12, 'pay.failure_rate': 0.25 };
  n.budgets = h.budgets.map((b) =>
    b.metric === 'leaks.stock' ? { ...b, value: 12, ok: false } : b,
  );
  n.invariants = h.invariants.map((i) => (i.id === 'I3' ? { ...i, ok: false, count: 3 } : i));
  return [n, h];
}

describe('two runs side by side', () => {
  const [n, h] = pair();
  const c = compareSummaries(n, h);
  const sides: Parameters<typeof comparisonMarkdown>[0] = [
    { label: 'naive', summary: n },
    { label: 'hardened', summary: h },
  ];

  it('shows the builds, each budget and invariant in both runs, and metrics with deltas', () => {
    const md = comparisonMarkdown(sides, c);
    expect(md).toContain('# naive vs hardened');
    expect(md).toMatch(
      /\| checkout build \| naive \(variant naive\) \| hardened \(variant hardened\) \|/,
    );
    expect(md).toMatch(/\| verdict \| FAIL \| PASS \|/);
    expect(md).toMatch(/\| leaks\.stock==0 \| FAIL 12 \| ok 0 \|/);
    expect(md).toMatch(/\| I3 \| BROKEN 3 \| held \|/);
    expect(md).toMatch(/\| leaks\.stock \| exact \| 12 \| 0 \| -12 \|/);
    expect(md).toMatch(
      /Not the same run \(.*checkout: "naive" vs "hardened"\): deltas show what changed/,
    );
    for (const t of ['Runs', 'Budgets', 'Invariants', 'Cascade', 'Metrics'])
      expect(md).toContain(`## ${t}`);
  });

  it('escapes what the HTML page shows', () => {
    const evil = structuredClone(sides);
    evil[0].label = '<script>x</script>';
    const html = comparisonHtml(evil, c);
    expect(html).not.toContain('<script>x');
    expect(html).toContain('&lt;script&gt;x&lt;/script&gt;');
  });

  it('compare --out writes both files next to the verdict on stdout (exit 1: not the same run)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-cmp-'));
    const dirs = ['naive', 'hardened'].map((d, i) => {
      mkdirSync(join(tmp, d));
      writeFileSync(join(tmp, d, 'summary.json'), JSON.stringify([n, h][i]));
      return join(tmp, d);
    });
    const lines: string[] = [];
    const out = join(tmp, 'cmp');
    const code = await compareCommand(dirs[0]!, dirs[1]!, { out }, (l) => lines.push(l));
    expect(code).toBe(1);
    expect(lines.join('\n')).toContain(
      `side by side: ${join(out, 'compare.md')}, ${join(out, 'compare.html')}`,
    );
    expect(readFileSync(join(out, 'compare.md'), 'utf8')).toContain('# naive vs hardened');
    expect(readFileSync(join(out, 'compare.html'), 'utf8')).toContain('<h2>Invariants</h2>');
  });
});
