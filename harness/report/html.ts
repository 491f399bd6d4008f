// index.html: the run as one self-contained page, readable offline and in
// print. Inline CSS, charts as inline SVG rendered here (charts.ts), no script,
// no external style, font or image; a Content-Security-Policy forbids loading
// anything. The markup is also well-formed XML (void elements closed, no
// named entities), so it can be checked with an XML parser.
import type { RunSummary, TimeSeries } from '../summary.ts';
import { buildCharts, renderChart } from './charts.ts';
import {
  fmtDateTime,
  fmtInt,
  fmtMetric,
  fmtNumber,
  fmtPercent,
  fmtScale,
  fmtSeconds,
  unshownBreaks,
  xmlEscape as e,
  engineText,
  fmtRedis,
} from './format.ts';
import {
  AMPLIFICATION_HEAD,
  CASCADE_HEAD,
  amplificationRows,
  budgetMessage,
  cascadeNone,
  cascadeRows,
  presetTitle,
  verdictCounts,
  verdictLine,
} from './markdown.ts';

/** How many example ids an invariant row shows (the rest are counted). */
export const HTML_MAX_EXAMPLES = 10;

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; color: #1d1d1f; background: #f6f7f9; }
main, header .inner, footer { max-width: 1020px; margin: 0 auto; padding: 0 16px; }
header { padding: 18px 0 14px; color: #ffffff; }
header.pass { background: #1a7f37; }
header.fail { background: #b42318; }
header h1 { margin: 0; font-size: 26px; letter-spacing: 0.02em; }
header .verdict { display: inline-block; padding: 1px 10px; margin-right: 10px; border: 2px solid #ffffff; border-radius: 6px; }
header p { margin: 6px 0 0; }
nav { margin: 10px 0 0; font-size: 13px; }
nav a { color: #ffffff; margin-right: 12px; }
section { background: #ffffff; border: 1px solid #d8dbe0; border-radius: 8px; margin: 16px 0; padding: 12px 16px 14px; }
h2 { font-size: 18px; margin: 2px 0 10px; }
h3 { font-size: 15px; margin: 14px 0 2px; }
p.desc { margin: 0 0 6px; color: #555555; font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e6ea; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 190px; background: none; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; background: #f0f2f5; padding: 0 3px; border-radius: 3px; overflow-wrap: anywhere; }
.tag { display: inline-block; padding: 0 7px; border-radius: 10px; font-weight: 600; font-size: 12px; white-space: nowrap; }
.tag.pass { background: #dafbe1; color: #116329; }
.tag.fail { background: #ffebe9; color: #a40e26; }
.tag.undecided { background: #eaeef2; color: #424a53; }
tr.fail td { background: #fff6f5; }
.muted { color: #666666; }
figure { margin: 8px 0 18px; break-inside: avoid; page-break-inside: avoid; }
svg.chart { display: block; width: 100%; height: auto; max-width: 960px; border: 1px solid #e4e6ea; border-radius: 4px; }
ul.warnings { margin: 4px 0; padding-left: 20px; }
footer { color: #666666; font-size: 12px; padding-bottom: 24px; }
@media print {
  body { background: #ffffff; font-size: 11px; }
  header { color: #000000; background: none !important; border-bottom: 3px solid #000000; }
  header .verdict { border-color: #000000; }
  nav { display: none; }
  section { border: none; padding: 0; margin: 10px 0; break-inside: auto; }
  table, tr, figure { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  svg.chart { border: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
@page { margin: 12mm; }
`;

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

function tag(kind: 'pass' | 'fail' | 'undecided', text: string): string {
  return `<span class="tag ${kind}">${e(text)}</span>`;
}

const code = (s: string) => `<code>${e(s)}</code>`;

function kvTable(rows: [string, string][]): string {
  return `<table class="kv"><tbody>\n${rows
    .map(([k, v]) => `<tr><th scope="row">${e(k)}</th><td>${v}</td></tr>`)
    .join('\n')}\n</tbody></table>`;
}

interface Col {
  head: string;
  num?: boolean;
}

function dataTable(cols: Col[], rows: { cells: string[]; cls?: string }[], empty: string): string {
  if (!rows.length) return `<p class="muted">${e(empty)}</p>`;
  const head = cols
    .map((c) => `<th scope="col"${c.num ? ' class="num"' : ''}>${e(c.head)}</th>`)
    .join('');
  const body = rows
    .map(
      (r) =>
        `<tr${r.cls ? ` class="${r.cls}"` : ''}>${r.cells
          .map((cell, i) => `<td${cols[i]?.num ? ' class="num"' : ''}>${cell}</td>`)
          .join('')}</tr>`,
    )
    .join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function recordText(r: Record<string, string | number | boolean>): string {
  const entries = Object.entries(r);
  if (!entries.length) return '<span class="muted">none</span>';
  return entries
    .map(([k, v]) => code(v === true ? k : `${k}=${typeof v === 'number' ? fmtNumber(v) : v}`))
    .join(' ');
}

/** The cascade section: the story, the onsets in time order, the signals without one, the amplification. */
function cascadeSection(c: RunSummary['cascade']): string {
  const o = ['<section id="cascade"><h2>Cascade</h2>'];
  if (!c) o.push('<p class="muted">Not recorded (a summary from before the cascade timeline).</p>');
  else {
    o.push(`<p><strong>${e(c.story)}</strong></p>`);
    o.push(
      '<p class="desc">A signal\'s onset is the first second it stays above max(baseline x factor, baseline + floor) for its number of consecutive seconds; the baseline is its median over the baseline stage (docs/REPORTS.md lists the constants). Lag is from the start of the first fault window.</p>',
    );
    const cols = CASCADE_HEAD.map((head, i) => ({ head, num: i !== 1 }));
    const rows = cascadeRows(c).map((r) => ({ cells: r.map(e) }));
    o.push(dataTable(cols, rows, 'No signal left its baseline.'));
    if (c.none.length) o.push(`<p class="muted">No onset: ${e(cascadeNone(c))}.</p>`);
    o.push('<h3>Retry amplification</h3>');
    const amp = amplificationRows(c.amplification).map((r) => ({ cells: r.map(e) }));
    o.push(
      dataTable(
        AMPLIFICATION_HEAD.map((head, i) => ({ head, num: i === 1 })),
        amp,
        '',
      ),
    );
  }
  o.push('</section>');
  return o.join('\n');
}

export function renderHtml(s: RunSummary, ts: TimeSeries): string {
  const c = verdictCounts(s);
  const pass = s.verdict === 'pass';
  const title = `${pass ? 'PASS' : 'FAIL'}: ${presetTitle(s)}`;
  const o: string[] = [];

  o.push('<!DOCTYPE html>');
  o.push('<html lang="en">');
  o.push('<head>');
  o.push('<meta charset="utf-8"/>');
  o.push(`<meta http-equiv="Content-Security-Policy" content="${e(CSP)}"/>`);
  o.push('<meta name="viewport" content="width=device-width, initial-scale=1"/>');
  o.push(`<meta name="generator" content="${e(`${s.tool.name} ${s.tool.version}`)}"/>`);
  o.push(`<title>${e(`${title} · flashcrowd run ${s.runId}`)}</title>`);
  o.push(`<style>${CSS}</style>`);
  o.push('</head>');
  o.push('<body>');

  // ---- verdict
  o.push(`<header class="${pass ? 'pass' : 'fail'}"><div class="inner">`);
  o.push(`<h1><span class="verdict">${pass ? 'PASS' : 'FAIL'}</span>${e(presetTitle(s))}</h1>`);
  o.push(`<p><strong>${e(verdictLine(s))}.</strong> Exit code ${s.exitCode}.</p>`);
  if (s.preset.description) o.push(`<p>${e(s.preset.description)}</p>`);
  o.push(
    '<nav><a href="#run">Run</a><a href="#budgets">Budgets</a><a href="#invariants">Invariants</a><a href="#charts">Charts</a><a href="#stock">Stock</a><a href="#failures">Failures</a><a href="#events">Orders and payments</a><a href="#faults">Faults</a><a href="#cascade">Cascade</a><a href="#metrics">Metrics</a></nav>',
  );
  o.push('</div></header>');
  o.push('<main>');

  // ---- run parameters
  o.push('<section id="run"><h2>Run</h2>');
  o.push(
    kvTable([
      ['preset', `${code(s.preset.name)} <span class="muted">${e(s.preset.file)}</span>`],
      ['variant', s.preset.variant ? code(s.preset.variant) : '<span class="muted">none</span>'],
      ['seed', code(String(s.params.seed))],
      [
        'scales',
        `time ${e(fmtScale(s.params.timeScale))}, load ${e(fmtScale(s.params.loadScale))}`,
      ],
      [
        'duration',
        e(
          `${fmtSeconds(s.durations.totalS)} (traffic ${fmtSeconds(s.durations.trafficS)}, quiescence ${fmtSeconds(s.durations.quiescenceS)})`,
        ),
      ],
      ['target', e(s.params.target)],
      ...(s.redis ? [['redis', e(fmtRedis(s.redis))] as [string, string]] : []),
      ['checkout mode', e(s.checkout.mode)],
      ['checkout features', recordText(s.checkout.features)],
      ['checkout parameters', recordText(s.checkout.params)],
      ['started', e(fmtDateTime(s.startedAt))],
      ['ended', e(fmtDateTime(s.endedAt))],
      ['run id', code(s.runId)],
      ['tool', e(`${s.tool.name} ${s.tool.version}`)],
      ...(s.engine ? [['engine', e(engineText(s.engine))] as [string, string]] : []),
    ]),
  );
  o.push('</section>');

  // ---- budgets
  o.push(
    `<section id="budgets"><h2>Budgets <span class="muted">(${fmtInt(c.budgets - c.budgetsFailed)} of ${fmtInt(c.budgets)} met)</span></h2>`,
  );
  o.push(
    dataTable(
      [{ head: 'budget' }, { head: 'value', num: true }, { head: 'verdict' }, { head: 'note' }],
      s.budgets.map((b) => ({
        cls: b.ok ? undefined : 'fail',
        cells: [
          code(b.expr),
          b.value === null ? '<span class="muted">no data</span>' : e(fmtMetric(b.metric, b.value)),
          b.ok ? tag('pass', 'pass') : tag('fail', 'FAIL'),
          e(
            [
              b.ok ? '' : budgetMessage(b),
              b.note ?? '',
              b.source !== 'preset' ? `from ${b.source}` : '',
            ]
              .filter(Boolean)
              .join('; '),
          ),
        ],
      })),
      'No budgets were set.',
    ),
  );
  o.push('</section>');

  // ---- invariants
  o.push(
    `<section id="invariants"><h2>Invariants <span class="muted">(${fmtInt(c.invariants - c.broken - c.undecided)} hold, ${fmtInt(c.broken)} broken, ${fmtInt(c.undecided)} undecided)</span></h2>`,
  );
  o.push(
    dataTable(
      [
        { head: 'id' },
        { head: 'invariant' },
        { head: 'verdict' },
        { head: 'count', num: true },
        { head: 'examples' },
      ],
      s.invariants.map((i) => {
        const shown = i.examples.slice(0, HTML_MAX_EXAMPLES).map(code);
        const more = unshownBreaks(i, shown.length);
        if (more > 0) shown.push(`<span class="muted">and ${fmtInt(more)} more</span>`);
        return {
          cls: i.ok === false ? 'fail' : undefined,
          cells: [
            e(i.id),
            e(i.name) + (i.note ? `<br/><span class="muted">${e(i.note)}</span>` : ''),
            i.ok === true
              ? tag('pass', 'holds')
              : i.ok === false
                ? tag('fail', 'BROKEN')
                : tag('undecided', 'undecided'),
            e(fmtInt(i.count)),
            shown.join(' '),
          ],
        };
      }),
      'No invariants were audited.',
    ),
  );
  o.push('</section>');

  // ---- charts
  o.push('<section id="charts"><h2>Over time</h2>');
  o.push(
    '<p class="desc">Seconds from the start of traffic. Dashed vertical lines separate the stages of the traffic shape (labels on top); shaded regions are injected faults, labelled service: fault.</p>',
  );
  for (const spec of buildCharts(ts)) {
    o.push(`<figure id="fig-${e(spec.id)}">`);
    o.push(`<h3>${e(spec.title)}</h3>`);
    o.push(`<p class="desc">${e(spec.description)}</p>`);
    o.push(renderChart(spec));
    o.push('</figure>');
  }
  o.push('</section>');

  // ---- stock
  o.push('<section id="stock"><h2>Stock</h2>');
  o.push(
    dataTable(
      [
        { head: 'SKU' },
        { head: 'initial', num: true },
        { head: 'available', num: true },
        { head: 'reserved', num: true },
        { head: 'sold', num: true },
        { head: 'sold %', num: true },
      ],
      s.stock.map((r) => ({
        cls:
          r.available < 0 || r.available + r.reserved + r.sold !== r.initial ? 'fail' : undefined,
        cells: [
          code(r.sku),
          e(fmtNumber(r.initial)),
          e(fmtNumber(r.available)),
          e(fmtNumber(r.reserved)),
          e(fmtNumber(r.sold)),
          r.initial > 0 ? e(fmtPercent(r.sold / r.initial)) : 'n/a',
        ],
      })),
      'No stock rows.',
    ),
  );
  o.push('</section>');

  // ---- failures
  const totalF = s.failures.reduce((n, f) => n + f.count, 0);
  o.push(
    `<section id="failures"><h2>Shopper failures <span class="muted">(${fmtInt(totalF)})</span></h2>`,
  );
  o.push(
    dataTable(
      [
        { head: 'step' },
        { head: 'reason' },
        { head: 'count', num: true },
        { head: 'share', num: true },
      ],
      [...s.failures]
        .sort(
          (a, b) =>
            a.step.localeCompare(b.step) || b.count - a.count || a.reason.localeCompare(b.reason),
        )
        .map((f) => ({
          cells: [
            e(f.step),
            code(f.reason),
            e(fmtInt(f.count)),
            totalF > 0 ? e(fmtPercent(f.count / totalF)) : '',
          ],
        })),
      'No shopper saw a failure.',
    ),
  );
  o.push('</section>');

  // ---- order events and declines
  o.push('<section id="events"><h2>Orders and payments</h2>');
  if (!s.events) o.push('<p class="muted">Not recorded (a summary from before order events).</p>');
  else {
    o.push('<h3>Order events</h3>');
    o.push(
      dataTable(
        [{ head: 'event' }, { head: 'count', num: true }],
        s.events.orders.map((x) => ({ cells: [code(x.event), e(fmtNumber(x.count))] })),
        'The checkout counted no order events.',
      ),
    );
    o.push('<h3>Gateway declines</h3>');
    o.push(
      dataTable(
        [
          { head: 'service' },
          { head: 'operation' },
          { head: 'declined for' },
          { head: 'count', num: true },
        ],
        s.events.declines.map((x) => ({
          cells: [e(x.service), code(x.operation), code(x.reason), e(fmtNumber(x.count))],
        })),
        'The gateways declined nothing.',
      ),
    );
    if (s.events.notifications?.length) {
      o.push('<h3>Wallet notifications</h3>');
      o.push(
        dataTable(
          [{ head: 'event' }, { head: 'count', num: true }],
          s.events.notifications.map((x) => ({ cells: [code(x.event), e(fmtNumber(x.count))] })),
          '',
        ),
      );
    }
  }
  o.push('</section>');

  // ---- faults
  o.push('<section id="faults"><h2>Injected faults</h2>');
  o.push('<h3>Fault windows</h3>');
  o.push(
    dataTable(
      [
        { head: 'service' },
        { head: 'fault' },
        { head: 'from', num: true },
        { head: 'to', num: true },
      ],
      s.chaos.bands.map((b) => ({
        cells: [
          e(b.service),
          e(b.label),
          e(fmtSeconds(b.fromS)),
          b.toS === null ? 'end of run' : e(fmtSeconds(b.toS)),
        ],
      })),
      'No fault windows.',
    ),
  );
  o.push('<h3>Faults the mocks injected</h3>');
  o.push(
    dataTable(
      [{ head: 'service' }, { head: 'operation' }, { head: 'kind' }, { head: 'count', num: true }],
      [...s.chaos.injected]
        .sort((a, b) => b.count - a.count)
        .map((f) => ({
          cells: [e(f.service), code(f.operation), e(f.kind), e(fmtNumber(f.count))],
        })),
      'The mocks injected no faults.',
    ),
  );
  o.push('</section>');

  // ---- cascade
  o.push(cascadeSection(s.cascade));

  // ---- quiescence and warnings
  o.push('<section id="quiescence"><h2>Quiescence</h2>');
  o.push(
    `<p>${s.quiescence.settled ? tag('pass', 'settled') : tag('fail', 'did not settle')} after ${e(fmtSeconds(s.quiescence.waitedS))}${s.quiescence.note ? `: ${e(s.quiescence.note)}` : '.'}</p>`,
  );
  o.push('</section>');
  if (s.warnings.length) {
    o.push(
      `<section id="warnings"><h2>Warnings <span class="muted">(${fmtInt(s.warnings.length)})</span></h2>`,
    );
    o.push(`<ul class="warnings">${s.warnings.map((w) => `<li>${e(w)}</li>`).join('\n')}</ul>`);
    o.push('</section>');
  }

  // ---- metrics
  o.push('<section id="metrics"><h2>Metrics</h2>');
  o.push(
    dataTable(
      [{ head: 'metric' }, { head: 'value', num: true }],
      Object.entries(s.metrics)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => ({
          cells: [code(k), v === null ? '<span class="muted">no data</span>' : e(fmtMetric(k, v))],
        })),
      'No metrics.',
    ),
  );
  o.push('</section>');
  o.push('</main>');

  // Relative links only: a file name with a scheme or a host would leave the run directory.
  const files = Object.values(s.files).filter(
    (f) => f !== 'index.html' && !/^([a-z][a-z0-9+.-]*:|\/\/)/i.test(f),
  );
  o.push(
    `<footer>${e(`${s.tool.name} ${s.tool.version}`)}, run ${code(s.runId)}.${files.length ? ` Files of this run: ${files.map((f) => `<a href="${e(f)}">${e(f)}</a>`).join(', ')}.` : ''}</footer>`,
  );
  o.push('</body>');
  o.push('</html>');
  o.push('');
  return o.join('\n');
}
