// junit.xml: the run as JUnit results for CI (GitHub, GitLab, Jenkins...).
//
// One <testsuite> for the budgets and one for the invariants, one <testcase>
// per budget and per invariant. A failed budget or a broken invariant is a
// <failure> with a message; an undecided invariant (ok: null) is <skipped>.
// The document is valid against both widely used JUnit schemas, the Apache
// Ant one and Jenkins' (test/fixtures/junit.xsd checks the strict union of
// their rules): <testsuites> carries no attributes (Ant allows none), each
// <testsuite> has package, id, a timestamp in UTC without a zone, hostname,
// <properties> first and <system-out>/<system-err> last.
import type { RunSummary } from '../summary.ts';
import { fmtInt, xmlEscape as x } from './format.ts';
import { budgetMessage, presetTitle } from './markdown.ts';

/** `2025-06-18T20:00:03` (UTC, no zone: the Ant schema's pattern). */
export function junitTimestamp(iso: string): string {
  const ms = Date.parse(iso);
  return new Date(Number.isNaN(ms) ? 0 : ms).toISOString().slice(0, 19);
}

/** Where the system under test ran: the target URL's host, `localhost` for an embedded stack. */
export function junitHostname(target: string): string {
  try {
    const h = new URL(target).hostname.replace(/^\[|\]$/g, '');
    return h || 'localhost';
  } catch {
    return 'localhost';
  }
}

const secs = (s: number) => (Number.isFinite(s) && s > 0 ? s : 0).toFixed(3);

function classBase(s: RunSummary): string {
  return ['flashcrowd', s.preset.name, s.preset.variant].filter(Boolean).join('.');
}

function properties(s: RunSummary): [string, string][] {
  const p: [string, string][] = [
    ['runId', s.runId],
    ['preset', s.preset.name],
    ['preset.file', s.preset.file],
    ['variant', s.preset.variant ?? ''],
    ['seed', String(s.params.seed)],
    ['timeScale', String(s.params.timeScale)],
    ['loadScale', String(s.params.loadScale)],
    ['target', s.params.target],
    ['checkout.mode', s.checkout.mode],
    ['verdict', s.verdict],
    ['exitCode', String(s.exitCode)],
    ['startedAt', s.startedAt],
    ['endedAt', s.endedAt],
    ['tool.version', s.tool.version],
  ];
  return p;
}

interface Case {
  name: string;
  failure?: { type: string; message: string; body: string };
  skipped?: string;
}

function suite(
  s: RunSummary,
  id: number,
  kind: 'budgets' | 'invariants',
  cases: Case[],
  out: string,
  err: string,
): string {
  const classname = `${classBase(s)}.${kind}`;
  const failures = cases.filter((c) => c.failure).length;
  const skipped = cases.filter((c) => c.skipped !== undefined).length;
  const o: string[] = [];
  o.push(
    `  <testsuite name="${x(`${kind}: ${presetTitle(s)}`)}" package="flashcrowd" id="${id}" timestamp="${junitTimestamp(s.startedAt)}" hostname="${x(junitHostname(s.params.target))}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${secs(s.durations.totalS)}">`,
  );
  o.push('    <properties>');
  for (const [name, value] of properties(s))
    o.push(`      <property name="${x(name)}" value="${x(value)}"/>`);
  o.push('    </properties>');
  for (const c of cases) {
    const open = `    <testcase name="${x(c.name)}" classname="${x(classname)}" time="0"`;
    if (c.failure)
      o.push(
        `${open}>`,
        `      <failure type="${x(c.failure.type)}" message="${x(c.failure.message)}">${x(c.failure.body)}</failure>`,
        '    </testcase>',
      );
    else if (c.skipped !== undefined)
      o.push(`${open}>`, `      <skipped message="${x(c.skipped)}"/>`, '    </testcase>');
    else o.push(`${open}/>`);
  }
  o.push(`    <system-out>${x(out)}</system-out>`);
  o.push(`    <system-err>${x(err)}</system-err>`);
  o.push('  </testsuite>');
  return o.join('\n');
}

export function renderJUnit(s: RunSummary): string {
  const budgetCases: Case[] = s.budgets.map((b) => ({
    name: b.expr,
    failure: b.ok
      ? undefined
      : {
          type: b.value === null ? 'BudgetNoData' : 'BudgetFailed',
          message: budgetMessage(b),
          body: [
            `budget: ${b.expr} (from ${b.source})`,
            `metric: ${b.metric}`,
            `value: ${b.value === null ? 'no samples' : String(b.value)}`,
            `threshold: ${b.op} ${b.threshold}`,
            ...(b.note ? [`note: ${b.note}`] : []),
          ].join('\n'),
        },
  }));
  const invariantCases: Case[] = s.invariants.map((i) => {
    const name = `${i.id} ${i.name}`;
    if (i.ok === false)
      return {
        name,
        failure: {
          type: 'InvariantBroken',
          message: `${i.id} broken: ${fmtInt(i.count)} ${i.count === 1 ? 'case' : 'cases'}${i.examples.length ? `, e.g. ${i.examples.slice(0, 3).join(', ')}` : ''}${i.note ? ` (${i.note})` : ''}`,
          body: [
            `${i.id}: ${i.name}`,
            `count: ${i.count}`,
            `examples: ${i.examples.join(', ') || 'none recorded'}`,
            ...(i.note ? [`note: ${i.note}`] : []),
          ].join('\n'),
        },
      };
    if (i.ok === null)
      return { name, skipped: `undecided: ${i.note ?? 'the data could not decide'}` };
    return { name };
  });
  const budgetOut = s.budgets
    .map((b) => `${b.ok ? 'pass' : 'FAIL'}  ${b.expr}  value=${b.value ?? 'no data'}`)
    .join('\n');
  const invOut = s.invariants
    .map(
      (i) =>
        `${i.ok === true ? 'holds' : i.ok === false ? 'BROKEN' : 'undecided'}  ${i.id}  count=${i.count}`,
    )
    .join('\n');
  const warnings = s.warnings.join('\n');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<testsuites>',
    suite(s, 0, 'budgets', budgetCases, budgetOut, warnings),
    suite(s, 1, 'invariants', invariantCases, invOut, ''),
    '</testsuites>',
    '',
  ].join('\n');
}
