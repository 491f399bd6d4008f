// Two runs side by side (`flashcrowd compare A B --out DIR`, and `run` of
// several variants): the builds, budgets, invariants, the cascade story and
// every metric with its delta, in Markdown and in one self-contained HTML page.
// Whether B reproduces A is harness/compare.ts's business; this page only
// shows, and it is as useful for naive vs hardened as for two repetitions.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Comparison } from '../compare.ts';
import type { RunSummary } from '../summary.ts';
import { fmtMetric, xmlEscape } from './format.ts';

export interface Side {
  label: string;
  summary: RunSummary;
}

type Table = { head: string[]; rows: string[][] };

const build = (s: RunSummary) =>
  `${s.checkout.mode}${s.preset.variant ? ` (variant ${s.preset.variant})` : ''}`;

const delta = (a: number | null | undefined, b: number | null | undefined) =>
  typeof a === 'number' && typeof b === 'number' && a !== b
    ? `${b - a > 0 ? '+' : ''}${Number((b - a).toPrecision(4))}`
    : '';

function headTable([a, b]: [Side, Side]): Table {
  const row = (what: string, f: (s: RunSummary) => string) => [what, f(a.summary), f(b.summary)];
  return {
    head: ['', a.label, b.label],
    rows: [
      row('preset', (s) => s.preset.name),
      row('checkout build', build),
      row('seed, scales', (s) => `${s.params.seed}, ${s.params.timeScale} x ${s.params.loadScale}`),
      row('verdict', (s) => s.verdict.toUpperCase()),
    ],
  };
}

function budgetTable([a, b]: [Side, Side]): Table {
  const exprs = [...new Set([...a.summary.budgets, ...b.summary.budgets].map((x) => x.expr))];
  const cell = (s: RunSummary, e: string) => {
    const r = s.budgets.find((x) => x.expr === e);
    return r ? `${r.ok ? 'ok' : 'FAIL'} ${fmtMetric(r.metric, r.value)}` : '-';
  };
  return {
    head: ['budget', a.label, b.label],
    rows: exprs.map((e) => [e, cell(a.summary, e), cell(b.summary, e)]),
  };
}

function invariantTable([a, b]: [Side, Side]): Table {
  const cell = (s: RunSummary, id: string) => {
    const i = s.invariants.find((x) => x.id === id);
    if (!i) return '-';
    return i.ok === null ? 'undecided' : i.ok ? 'held' : `BROKEN ${i.count}`;
  };
  const ids = [...new Set([...a.summary.invariants, ...b.summary.invariants].map((i) => i.id))];
  return {
    head: ['invariant', a.label, b.label],
    rows: ids.map((id) => [id, cell(a.summary, id), cell(b.summary, id)]),
  };
}

function metricTable([a, b]: [Side, Side], c: Comparison): Table {
  return {
    head: ['metric', 'class', a.label, b.label, 'delta'],
    rows: c.rows.map((r) => [
      r.name,
      r.class,
      fmtMetric(r.name, r.a),
      fmtMetric(r.name, r.b),
      delta(r.a, r.b),
    ]),
  };
}

/** The cascade stories, when the runs carry them (summary.json `cascade`). */
function cascadeLines([a, b]: [Side, Side]): string[] {
  const story = (s: RunSummary) => s.cascade?.story ?? '(no cascade timeline)';
  return [`${a.label}: ${story(a.summary)}`, `${b.label}: ${story(b.summary)}`];
}

function sections(sides: [Side, Side], c: Comparison) {
  return [
    { title: 'Runs', table: headTable(sides) },
    { title: 'Budgets', table: budgetTable(sides) },
    { title: 'Invariants', table: invariantTable(sides) },
    { title: 'Cascade', lines: cascadeLines(sides) },
    { title: 'Metrics', table: metricTable(sides, c) },
  ];
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|');

export function comparisonMarkdown(sides: [Side, Side], c: Comparison): string {
  const out = [`# ${sides[0].label} vs ${sides[1].label}`, ''];
  if (c.mismatch.length)
    out.push(`Not the same run (${c.mismatch.join('; ')}): deltas show what changed.`, '');
  for (const s of sections(sides, c)) {
    out.push(`## ${s.title}`, '');
    if (s.lines) out.push(...s.lines.map((l) => `- ${l}`));
    if (s.table) {
      out.push(`| ${s.table.head.map(mdCell).join(' | ')} |`);
      out.push(`|${s.table.head.map(() => '---').join('|')}|`);
      for (const r of s.table.rows) out.push(`| ${r.map(mdCell).join(' | ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

export function comparisonHtml(sides: [Side, Side], c: Comparison): string {
  const e = xmlEscape;
  const body = sections(sides, c).map((s) => {
    const inner = s.table
      ? `<table><thead><tr>${s.table.head.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>${s.table.rows
          .map((r) => `<tr>${r.map((x) => `<td>${e(x)}</td>`).join('')}</tr>`)
          .join('')}</tbody></table>`
      : `<ul>${(s.lines ?? []).map((l) => `<li>${e(l)}</li>`).join('')}</ul>`;
    return `<section><h2>${e(s.title)}</h2>${inner}</section>`;
  });
  const title = `${sides[0].label} vs ${sides[1].label}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${e(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}th{background:#f3f3f3}td:nth-child(n+3){font-variant-numeric:tabular-nums}</style>
</head><body><h1>${e(title)}</h1>${c.mismatch.length ? `<p>Not the same run (${e(c.mismatch.join('; '))}): deltas show what changed.</p>` : ''}${body.join('\n')}</body></html>
`;
}

/** Write compare.md and compare.html into `dir`; their names. */
export async function writeComparison(
  dir: string,
  sides: [Side, Side],
  c: Comparison,
  base = 'compare',
): Promise<string[]> {
  const md = `${base}.md`;
  const html = `${base}.html`;
  await writeFile(join(dir, md), comparisonMarkdown(sides, c));
  await writeFile(join(dir, html), comparisonHtml(sides, c));
  return [md, html];
}
