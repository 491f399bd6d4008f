// `flashcrowd run`, budgets and verdict: each budget against the metrics (and
// the traffic check every run makes); pass when all hold and no invariant
// broke. The verdict as printed, and for variants run together, whether each
// did what it expects.
import { join } from 'node:path';
import type { AuditReport } from '../audit.ts';
import { evaluateBudgets } from '../budgets.ts';
import type { Variant } from '../preset.ts';
import type { BudgetResult, RunSummary } from '../summary.ts';
import { trafficBudget, type Traffic } from './load.ts';
import type { Print } from './options.ts';
import type { RunBudget } from './preset.ts';

export interface Judgement {
  budgets: BudgetResult[];
  verdict: RunSummary['verdict'];
}

export function judge(
  budgets: RunBudget[],
  metrics: Record<string, number | null>,
  traffic: Traffic,
  report: AuditReport | undefined,
  interrupted?: RunSummary['interrupted'],
  harnessChecks: BudgetResult[] = [],
  baseline?: Record<string, number | null>,
): Judgement {
  const results = [
    ...evaluateBudgets(
      budgets.map((b) => b.parsed),
      metrics,
      baseline,
    ),
    trafficBudget(traffic),
    ...harnessChecks,
  ];
  const invariantsBroken = report ? report.violated.length > 0 : false;
  const verdict = results.every((b) => b.ok) && !invariantsBroken && !interrupted ? 'pass' : 'fail';
  return { budgets: results, verdict };
}

/** PASS or FAIL, each budget, broken invariants, warnings, and where the report is. */
export function printVerdict(s: RunSummary, dir: string, print: Print) {
  print(
    `\n${s.verdict === 'pass' ? 'PASS' : 'FAIL'}: ${s.preset.name}${s.preset.variant ? ` / ${s.preset.variant}` : ''}`,
  );
  for (const b of s.budgets)
    print(
      `  ${b.ok ? 'ok  ' : 'FAIL'} ${b.expr.padEnd(40)} ${b.value === null ? 'no samples' : String(Number(b.value.toPrecision(4)))}`,
    );
  const broken = s.invariants.filter((i) => i.ok === false);
  for (const i of broken)
    print(`  FAIL ${i.id} ${i.name}: ${i.count} (e.g. ${i.examples.slice(0, 3).join(', ')})`);
  if (!broken.length && s.invariants.length)
    print(
      `  ok   invariants I1-I11 (${
        s.invariants
          .filter((i) => i.ok === null)
          .map((i) => i.id)
          .join(', ') || 'none'
      } undecided)`,
    );
  for (const w of s.warnings) print(`  warning: ${w}`);
  print(
    `  report: ${join(dir, 'index.html')} (and ${Object.values(s.files)
      .filter((f) => f !== 'index.html')
      .join(', ')})`,
  );
}

/** Variants run together: each must do what it expects (e.g. naive fails, hardened passes). */
export function printExpectations(
  results: { variant?: Variant; summary: RunSummary }[],
  print: Print,
): boolean {
  let ok = true;
  print('\nvariants:');
  for (const { variant, summary } of results) {
    const expect = variant?.expect ?? 'pass';
    const met = summary.verdict === expect;
    ok &&= met;
    print(
      `  ${variant?.name ?? '-'}: ${summary.verdict.toUpperCase()} (expected ${expect}) ${met ? 'as expected' : 'NOT AS EXPECTED'}`,
    );
  }
  return ok;
}
