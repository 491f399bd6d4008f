// summary.md: the run in GitHub-flavoured Markdown, verdict first. The same
// text is appended to $GITHUB_STEP_SUMMARY in CI, so it must read well on
// GitHub: tables, no raw HTML except <details> for the long lists.
import { signalLabel } from '../cascade.ts';
import type { Cascade, RunSummary } from '../summary.ts';
import { parseSeriesKey } from './charts.ts';
import {
  OP_WORDS,
  fmtDateTime,
  fmtInt,
  fmtMetric,
  fmtNumber,
  fmtPercent,
  fmtScale,
  fmtSeconds,
  plural,
  unshownBreaks,
  engineText,
  fmtRedis,
} from './format.ts';

/** How many example ids an invariant row shows (the rest are counted). */
export const MD_MAX_EXAMPLES = 5;
/** How many warnings are listed (the rest are counted). */
export const MD_MAX_WARNINGS = 50;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001F\u007F]/g;

/** Text for a table cell or a line: Markdown and inline HTML neutralised, one line. */
export function mdText(s: string): string {
  return s
    .replace(/\r?\n|\r/g, ' ')
    .replace(CONTROL, ' ')
    .replace(/([\\`*_[\]<>|#~!])/g, '\\$1')
    .replace(/&/g, '&amp;');
}

/** Inline code (budget expressions, ids), safe inside a table cell. */
export function mdCode(s: string): string {
  const one = s.replace(/\r?\n|\r/g, ' ').replace(CONTROL, ' ');
  const ticks = one.match(/`+/g)?.reduce((m, x) => Math.max(m, x.length), 0) ?? 0;
  const fence = '`'.repeat(ticks + 1);
  const pad = ticks || one.startsWith(' ') ? ' ' : '';
  // In a GFM table a pipe ends the cell even inside code: escape it (GitHub shows `|`).
  return `${fence}${pad}${one.replace(/\|/g, '\\|')}${pad}${fence}`;
}

function table(head: string[], rows: string[][], align?: ('l' | 'r' | 'c')[]): string {
  const sep = head.map((_, i) => {
    const a = align?.[i] ?? 'l';
    return a === 'r' ? '---:' : a === 'c' ? ':---:' : '---';
  });
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function presetTitle(s: RunSummary): string {
  return s.preset.variant ? `${s.preset.name} (${s.preset.variant})` : s.preset.name;
}

export function invariantVerdict(ok: boolean | null): string {
  return ok === true ? 'holds' : ok === false ? 'BROKEN' : 'undecided';
}

/** The one-line message for a failed budget, shared with junit.xml. */
export function budgetMessage(b: RunSummary['budgets'][number]): string {
  const want = `${OP_WORDS[b.op] ?? b.op} ${fmtMetric(b.metric, b.threshold)}`;
  if (b.value === null)
    return `${b.metric} had no samples: a budget on a metric with no data fails (wanted ${want})`;
  return `${b.metric} was ${fmtMetric(b.metric, b.value)}, wanted ${want}`;
}

/** Counts for the verdict line, shared with the HTML report. */
export function verdictCounts(s: RunSummary) {
  return {
    budgets: s.budgets.length,
    budgetsFailed: s.budgets.filter((b) => !b.ok).length,
    invariants: s.invariants.length,
    broken: s.invariants.filter((i) => i.ok === false).length,
    undecided: s.invariants.filter((i) => i.ok === null).length,
  };
}

export function verdictLine(s: RunSummary): string {
  const c = verdictCounts(s);
  const parts = [
    `${fmtInt(c.budgetsFailed)} of ${plural(c.budgets, 'budget')} failed`,
    `${fmtInt(c.broken)} of ${plural(c.invariants, 'invariant')} broken`,
  ];
  if (c.undecided) parts.push(`${fmtInt(c.undecided)} undecided`);
  return parts.join(', ');
}

function featuresText(f: RunSummary['checkout']['features']): string {
  const on = Object.entries(f)
    .filter(([, v]) => v !== false)
    .map(([k, v]) => (v === true ? k : `${k}=${v}`));
  return on.length ? on.join(', ') : 'none';
}

// ---------------------------------------------------------------- cascade (shared with index.html)

export const CASCADE_HEAD = [
  '#',
  'signal',
  'onset',
  'lag',
  'baseline',
  'threshold',
  'peak',
  'vs baseline',
];

/** The onsets as plain-text cells, in time order. */
export function cascadeRows(c: Cascade): string[][] {
  return c.onsets.map((o, i) => [
    String(i + 1),
    signalLabel(o.signal, o.dependency),
    fmtSeconds(o.atS),
    o.lagS === null ? 'no fault' : `${o.lagS >= 0 ? '+' : ''}${fmtSeconds(o.lagS)}`,
    fmtMetric(o.signal, o.baseline),
    fmtMetric(o.signal, o.threshold),
    fmtMetric(o.signal, o.peak),
    o.baseline > 0
      ? `x${fmtNumber(o.peak / o.baseline)}`
      : `+${fmtMetric(o.signal, o.peak - o.baseline)}`,
  ]);
}

/** The signals without an onset, by name: `wallet p99 latency, checkout shed load`. */
export function cascadeNone(c: Cascade): string {
  return c.none
    .map((k) => {
      const { name, labels } = parseSeriesKey(k);
      return signalLabel(name, labels.dependency);
    })
    .join(', ');
}

const fmtX = (x: number | null) => (x === null ? 'no data' : `x${fmtNumber(x)}`);
const fmtN = (n: number | null) => (n === null ? 'no data' : fmtNumber(n));

export const AMPLIFICATION_HEAD = ['layer', 'factor', 'from'];

/** The retry amplification by layer, as plain-text cells. */
export function amplificationRows(a: Cascade['amplification']): string[][] {
  const rows = [
    [
      'shopper re-clicks',
      fmtX(a.reclickX),
      `${fmtN(a.payRequests)} pay requests / ${fmtN(a.payClicks)} pay clicks`,
    ],
    [
      'checkout',
      fmtX(a.checkoutX),
      `${fmtN(a.paymentCalls)} payment gateway calls / ${fmtN(a.payRequests)} pay requests`,
    ],
    [
      'end to end',
      fmtX(a.endToEndX),
      `${fmtN(a.paymentCalls)} payment gateway calls / ${fmtN(a.payClicks)} pay clicks`,
    ],
  ];
  for (const d of a.dependencies) {
    rows.push([
      `${d.dependency} retries`,
      fmtX(d.retryX),
      `${fmtN(d.calls)} calls, ${fmtN(d.retries)} of them retries`,
    ]);
    if (d.perPayClick !== null)
      rows.push([
        `${d.dependency} calls per pay click`,
        fmtNumber(d.perPayClick),
        `${fmtN(d.calls)} calls / ${fmtN(a.payClicks)} pay clicks`,
      ]);
  }
  return rows;
}

function cascadeSection(c: Cascade | undefined): string[] {
  const out = ['', '### Cascade', ''];
  if (!c) return [...out, 'Not recorded (a summary from before the cascade timeline).'];
  out.push(`**${mdText(c.story)}**`, '');
  out.push(
    'Onset: the first second a signal stays above max(baseline x factor, baseline + floor) for its consecutive seconds; ' +
      'baseline: its median over the baseline stage; lag: from the start of the first fault window (constants: docs/REPORTS.md, Cascade).',
    '',
  );
  if (c.onsets.length)
    out.push(
      table(
        CASCADE_HEAD,
        cascadeRows(c).map((r) => r.map(mdText)),
        ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
  if (c.none.length) out.push(`No onset: ${mdText(cascadeNone(c))}.`, '');
  out.push(
    table(
      AMPLIFICATION_HEAD,
      amplificationRows(c.amplification).map((r) => r.map(mdText)),
      ['l', 'r', 'l'],
    ),
  );
  return out;
}

export function renderMarkdown(s: RunSummary): string {
  const c = verdictCounts(s);
  const pass = s.verdict === 'pass';
  const out: string[] = [];

  out.push(`## ${pass ? '✅ PASS' : '❌ FAIL'}: ${mdText(presetTitle(s))}`);
  out.push('');
  out.push(`**${mdText(verdictLine(s))}.** Exit code ${s.exitCode}.`);
  out.push('');
  out.push(
    table(
      ['run', ''],
      [
        ['preset', `${mdCode(s.preset.name)} (${mdCode(s.preset.file)})`],
        ['variant', s.preset.variant ? mdCode(s.preset.variant) : 'none'],
        ['seed', mdCode(String(s.params.seed))],
        ['scales', `time ${fmtScale(s.params.timeScale)}, load ${fmtScale(s.params.loadScale)}`],
        [
          'duration',
          `${fmtSeconds(s.durations.totalS)} (traffic ${fmtSeconds(s.durations.trafficS)}, quiescence ${fmtSeconds(s.durations.quiescenceS)})`,
        ],
        ['checkout', `${s.checkout.mode}; features: ${mdText(featuresText(s.checkout.features))}`],
        ['target', mdText(s.params.target)],
        ...(s.redis ? [['redis', mdText(fmtRedis(s.redis))]] : []),
        ['run id', mdCode(s.runId)],
        ['started', `${fmtDateTime(s.startedAt)}, ended ${fmtDateTime(s.endedAt)}`],
        ['tool', `${s.tool.name} ${mdText(s.tool.version)}`],
        ...(s.engine ? [['engine', mdText(engineText(s.engine))]] : []),
      ],
    ),
  );
  if (s.preset.description) {
    out.push('');
    out.push(`> ${mdText(s.preset.description)}`);
  }

  out.push('');
  out.push(`### Budgets (${fmtInt(c.budgets - c.budgetsFailed)} of ${fmtInt(c.budgets)} met)`);
  out.push('');
  if (!s.budgets.length) out.push('No budgets were set.');
  else
    out.push(
      table(
        ['budget', 'value', 'verdict', 'note'],
        s.budgets.map((b) => [
          mdCode(b.expr),
          b.value === null ? '_no data_' : fmtMetric(b.metric, b.value),
          b.ok ? '✅ pass' : '❌ **FAIL**',
          mdText(
            [
              b.ok ? '' : budgetMessage(b),
              b.note ?? '',
              b.source !== 'preset' ? `from ${b.source}` : '',
            ]
              .filter(Boolean)
              .join('; '),
          ),
        ]),
        ['l', 'r', 'l', 'l'],
      ),
    );

  out.push('');
  out.push(
    `### Invariants (${fmtInt(c.invariants - c.broken - c.undecided)} hold, ${fmtInt(c.broken)} broken, ${fmtInt(c.undecided)} undecided)`,
  );
  out.push('');
  if (!s.invariants.length) out.push('No invariants were audited.');
  else
    out.push(
      table(
        ['id', 'invariant', 'verdict', 'count', 'examples'],
        s.invariants.map((i) => {
          const shown = i.examples.slice(0, MD_MAX_EXAMPLES).map(mdCode);
          const more = unshownBreaks(i, shown.length);
          if (more > 0) shown.push(`and ${fmtInt(more)} more`);
          const note = i.note ? ` (${mdText(i.note)})` : '';
          return [
            i.id,
            mdText(i.name) + note,
            i.ok === true ? '✅ holds' : i.ok === false ? '❌ **BROKEN**' : '❔ undecided',
            fmtInt(i.count),
            shown.join(', '),
          ];
        }),
        ['l', 'l', 'l', 'r', 'l'],
      ),
    );

  out.push('');
  out.push('### Stock');
  out.push('');
  if (!s.stock.length) out.push('No stock rows.');
  else
    out.push(
      table(
        ['SKU', 'initial', 'available', 'reserved', 'sold', 'sold %'],
        s.stock.map((r) => [
          mdCode(r.sku),
          fmtNumber(r.initial),
          fmtNumber(r.available),
          fmtNumber(r.reserved),
          fmtNumber(r.sold),
          r.initial > 0 ? fmtPercent(r.sold / r.initial) : 'n/a',
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r'],
      ),
    );

  out.push('');
  out.push('### Shopper failures');
  out.push('');
  if (!s.failures.length) out.push('No shopper saw a failure.');
  else {
    const sorted = [...s.failures].sort(
      (a, b) =>
        a.step.localeCompare(b.step) || b.count - a.count || a.reason.localeCompare(b.reason),
    );
    const totalF = s.failures.reduce((n, f) => n + f.count, 0);
    out.push(
      table(
        ['step', 'reason', 'count'],
        [
          ...sorted.map((f) => [mdText(f.step), mdCode(f.reason), fmtInt(f.count)]),
          ['**total**', '', `**${fmtInt(totalF)}**`],
        ],
        ['l', 'l', 'r'],
      ),
    );
  }

  out.push('');
  out.push('### Orders and payments');
  out.push('');
  const ev = s.events;
  if (!ev) out.push('Not recorded (a summary from before order events).');
  else {
    out.push(
      ev.orders.length
        ? table(
            ['order event', 'count'],
            ev.orders.map((x) => [mdCode(x.event), fmtNumber(x.count)]),
            ['l', 'r'],
          )
        : 'The checkout counted no order events.',
    );
    out.push('');
    out.push(
      ev.declines.length
        ? table(
            ['service', 'operation', 'declined for', 'count'],
            ev.declines.map((x) => [
              mdText(x.service),
              mdCode(x.operation),
              mdCode(x.reason),
              fmtNumber(x.count),
            ]),
            ['l', 'l', 'l', 'r'],
          )
        : 'The gateways declined nothing.',
    );
    if (ev.notifications?.length) {
      out.push('');
      out.push(
        table(
          ['wallet notifications', 'count'],
          ev.notifications.map((x) => [mdCode(x.event), fmtNumber(x.count)]),
          ['l', 'r'],
        ),
      );
    }
  }

  out.push('');
  out.push('### Injected faults');
  out.push('');
  if (!s.chaos.bands.length && !s.chaos.injected.length) out.push('No faults were injected.');
  if (s.chaos.bands.length) {
    out.push(
      table(
        ['service', 'fault', 'from', 'to'],
        s.chaos.bands.map((b) => [
          b.service,
          mdText(b.label),
          fmtSeconds(b.fromS),
          b.toS === null ? 'end of run' : fmtSeconds(b.toS),
        ]),
        ['l', 'l', 'r', 'r'],
      ),
    );
    out.push('');
  }
  if (s.chaos.injected.length)
    out.push(
      table(
        ['service', 'operation', 'kind', 'count'],
        [...s.chaos.injected]
          .sort((a, b) => b.count - a.count)
          .map((f) => [mdText(f.service), mdCode(f.operation), mdText(f.kind), fmtNumber(f.count)]),
        ['l', 'l', 'l', 'r'],
      ),
    );

  out.push(...cascadeSection(s.cascade));

  out.push('');
  out.push('### Quiescence');
  out.push('');
  out.push(
    `${s.quiescence.settled ? 'Settled' : '⚠️ **Did not settle**'} after ${fmtSeconds(s.quiescence.waitedS)}` +
      (s.quiescence.note ? `: ${mdText(s.quiescence.note)}` : '.'),
  );

  if (s.warnings.length) {
    out.push('');
    out.push(`### Warnings (${fmtInt(s.warnings.length)})`);
    out.push('');
    for (const w of s.warnings.slice(0, MD_MAX_WARNINGS)) out.push(`- ${mdText(w)}`);
    if (s.warnings.length > MD_MAX_WARNINGS)
      out.push(`- and ${fmtInt(s.warnings.length - MD_MAX_WARNINGS)} more (see summary.json)`);
  }

  const metrics = Object.entries(s.metrics).sort(([a], [b]) => a.localeCompare(b));
  if (metrics.length) {
    out.push('');
    out.push('<details><summary>All metrics</summary>');
    out.push('');
    out.push(
      table(
        ['metric', 'value'],
        metrics.map(([k, v]) => [mdCode(k), v === null ? '_no data_' : fmtMetric(k, v)]),
        ['l', 'r'],
      ),
    );
    out.push('');
    out.push('</details>');
  }
  out.push('');
  return out.join('\n');
}
