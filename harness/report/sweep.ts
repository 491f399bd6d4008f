// The sweep report (`flashcrowd sweep`): per step, the offered peak arrival
// rate against failure rates, p99, dropped arrivals, throughput and shed
// requests, the process that saturated, and the knee; as Markdown and as one
// self-contained HTML page whose charts are inline SVG (offered rate on the x
// axis).
import type { SweepResult, SweepStep } from '../sweep.ts';
import { niceTicks } from './charts.ts';
import { fmtCompact, xmlEscape } from './format.ts';

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const num = (x: number | null, d = 0) => (x === null ? '-' : x.toFixed(d));
const cores = (s: SweepStep) =>
  s.cpu
    .filter((c) => c.name !== 'machine')
    .map(
      (c) =>
        `${c.name} ${c.cores.toFixed(2)}${c.peakCores !== undefined ? ` (${c.peakCores.toFixed(2)})` : ''}`,
    )
    .join(', ');

/** Each gateway's call error rate: `bank 2.0%, wallet 0.0%` (those with calls). */
const depErrors = (s: SweepStep) =>
  Object.entries(s.depErrorRate)
    .filter(([, x]) => x !== null)
    .map(([d, x]) => `${d} ${pct(x)}`)
    .join(', ');

function rows(r: SweepResult): string[][] {
  return r.steps.map((s) => [
    String(s.loadScale),
    num(s.offeredPerS),
    pct(s.payFailureRate),
    pct(s.orderFailureRate),
    s.p99Ms === null ? '-' : `${Math.round(s.p99Ms)} ms`,
    num(s.dropped),
    num(s.paidPerS, 1),
    num(s.shed),
    depErrors(s) || '-',
    s.verdict.toUpperCase() + (s.firstBroken ? ` (${s.firstBroken})` : ''),
    s.saturated ?? '-',
    cores(s) || '-',
  ]);
}

const HEAD = [
  'load-scale',
  'offered peak /s',
  'pay failed',
  'orders failed',
  'p99',
  'dropped',
  'paid /s',
  'shed',
  'gateway errors',
  'verdict',
  'saturated',
  'cores (traffic; busiest 3 s)',
];

function verdictLine(r: SweepResult): string {
  const knee = r.knee
    ? `knee: ${fmtCompact(r.knee.offeredPerS)} arrivals/s (load-scale ${r.knee.loadScale}) met every budget`
    : 'knee: no step met every budget';
  const first = r.breaksFirst
    ? `; beyond it, load-scale ${r.breaksFirst.loadScale} broke ${r.breaksFirst.budget} first`
    : '; nothing broke within the range';
  return knee + first;
}

export function sweepMarkdown(r: SweepResult): string {
  const out = [
    `# Sweep: ${r.preset}${r.variant ? ` / ${r.variant}` : ''} (seed ${r.seed}, time-scale ${r.timeScale})`,
    '',
    verdictLine(r),
    '',
    `| ${HEAD.join(' | ')} |`,
    `|${HEAD.map(() => '---').join('|')}|`,
    ...rows(r).map((x) => `| ${x.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`),
    '',
  ];
  for (const b of r.budgets)
    out.push(`- ${b.ok ? 'ok' : 'FAIL'} \`${b.expr}\`: ${b.value === null ? 'no knee' : b.value}`);
  if (r.budgets.length) out.push('');
  return out.join('\n');
}

/** One line chart of `y` against the offered rate, as inline SVG. */
function chart(title: string, r: SweepResult, y: (s: SweepStep) => number | null, unit: string) {
  const W = 520;
  const H = 220;
  const [ml, mr, mt, mb] = [56, 16, 28, 36];
  const pts = r.steps.flatMap((s) => {
    const v = y(s);
    return v === null || !Number.isFinite(v)
      ? []
      : [{ x: s.offeredPerS, y: v, ok: s.verdict === 'pass' }];
  });
  const e = xmlEscape;
  if (!pts.length) return `<figure><figcaption>${e(title)}</figcaption><p>no data</p></figure>`;
  const xt = niceTicks(0, Math.max(...pts.map((p) => p.x)));
  const yt = niceTicks(0, Math.max(...pts.map((p) => p.y), 0));
  const [xMax, yMax] = [xt.at(-1)! || 1, yt.at(-1)! || 1];
  const X = (v: number) => ml + (v / xMax) * (W - ml - mr);
  const Y = (v: number) => H - mb - (v / yMax) * (H - mt - mb);
  const grid = yt
    .map(
      (t) =>
        `<line x1="${ml}" x2="${W - mr}" y1="${Y(t)}" y2="${Y(t)}" stroke="#eee"/><text x="${ml - 6}" y="${Y(t) + 4}" text-anchor="end" font-size="11">${e(fmtCompact(t))}${e(unit)}</text>`,
    )
    .join('');
  const xlab = xt
    .map(
      (t) =>
        `<text x="${X(t)}" y="${H - mb + 16}" text-anchor="middle" font-size="11">${e(fmtCompact(t))}</text>`,
    )
    .join('');
  const line = pts
    .map((p, i) => `${i ? 'L' : 'M'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`)
    .join('');
  const dots = pts
    .map(
      (p) =>
        `<circle cx="${X(p.x)}" cy="${Y(p.y)}" r="4" fill="${p.ok ? '#2a7' : '#c33'}"><title>${e(`${fmtCompact(p.x)}/s: ${p.y}`)}</title></circle>`,
    )
    .join('');
  const knee = r.knee
    ? `<line x1="${X(r.knee.offeredPerS)}" x2="${X(r.knee.offeredPerS)}" y1="${mt}" y2="${H - mb}" stroke="#888" stroke-dasharray="4 3"/><text x="${X(r.knee.offeredPerS) + 4}" y="${mt + 10}" font-size="11">knee</text>`
    : '';
  return `<figure><figcaption>${e(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${e(title)}">${grid}${xlab}<text x="${(ml + W - mr) / 2}" y="${H - 4}" text-anchor="middle" font-size="11">offered peak arrivals/s</text>${knee}<path d="${line}" fill="none" stroke="#36c" stroke-width="2"/>${dots}</svg></figure>`;
}

export function sweepHtml(r: SweepResult): string {
  const e = xmlEscape;
  const title = `Sweep: ${r.preset}${r.variant ? ` / ${r.variant}` : ''}`;
  const table = `<table><thead><tr>${HEAD.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>${rows(
    r,
  )
    .map((x) => `<tr>${x.map((c) => `<td>${e(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
  const charts = [
    chart(
      'pay failure rate',
      r,
      (s) => (s.payFailureRate === null ? null : s.payFailureRate * 100),
      '%',
    ),
    chart(
      'order failure rate',
      r,
      (s) => (s.orderFailureRate === null ? null : s.orderFailureRate * 100),
      '%',
    ),
    chart('checkout p99', r, (s) => s.p99Ms, ' ms'),
    chart('dropped arrivals', r, (s) => s.dropped, ''),
    chart('orders paid per second', r, (s) => s.paidPerS, ''),
    chart('requests shed (503 overloaded)', r, (s) => s.shed, ''),
  ].join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${e(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1150px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}th{background:#f3f3f3}figure{display:inline-block;margin:.5em}figcaption{font-weight:600}</style>
</head><body><h1>${e(title)}</h1><p>seed ${r.seed}, time-scale ${r.timeScale}. ${e(verdictLine(r))}. Green: the step met every budget; red: it broke one.</p>
${charts}
${table}
${r.budgets.map((b) => `<p>${b.ok ? 'ok' : 'FAIL'} <code>${e(b.expr)}</code>: ${b.value === null ? 'no knee' : b.value}</p>`).join('')}
</body></html>
`;
}
