// Budgets: `pay.failure_rate<0.02`, `leaks.stock==0`, `checkout.p99_ms<800`,
// `pay.failure_rate{stage=spike}<5%`... parsed once (bad ones are usage
// errors that point at the problem) and evaluated against the run's flat
// metrics (summary.json `metrics`). A metric without a value fails its budget.
// docs/BUDGETS.md is the reference for the syntax and every metric name.
import { UsageError } from './errors.ts';
import { seriesKey, type BudgetResult } from './summary.ts';

export type BudgetOp = '<' | '<=' | '>' | '>=' | '==' | '!=';
export type BudgetSource = BudgetResult['source'];
export type MetricLabel = 'stage' | 'dependency' | 'instance';
/**
 * What a metric's value is, which decides the suffixes its threshold accepts:
 * `%` on ratios (2% = 0.02), `ms`/`s` on durations in milliseconds (0.8s = 800).
 */
export type MetricUnit = 'count' | 'ratio' | 'ms' | 'factor' | 'flag';

export interface KnownMetric {
  name: string;
  unit: MetricUnit;
  /** The labels a budget may narrow the metric by. */
  labels: readonly MetricLabel[];
  description: string;
}

export interface ParsedBudget {
  /** As written (trimmed). */
  expr: string;
  /** The metric's name without labels: `pay.failure_rate`. */
  name: string;
  labels: Record<string, string>;
  /** Canonical key, labels sorted (`seriesKey`): `pay.failure_rate{stage=spike}`. */
  metric: string;
  op: BudgetOp;
  /** The threshold as written; for a relative budget, resolved from the baseline run. */
  threshold: number;
  /** `baseline*1.1`, `baseline+100ms`: threshold = the baseline run's value x factor + offset. */
  relative?: { factor: number; offset: number };
  source: BudgetSource;
}

export const DEPENDENCIES = ['bank', 'wallet', 'coupon'] as const;

const S: readonly MetricLabel[] = ['stage'];
const D: readonly MetricLabel[] = ['dependency'];
const I: readonly MetricLabel[] = ['instance'];
const none: readonly MetricLabel[] = [];
const m = (
  name: string,
  unit: MetricUnit,
  labels: readonly MetricLabel[],
  description: string,
): KnownMetric => ({ name, unit, labels, description });

/** Every metric a budget can name (docs/BUDGETS.md describes each). */
export const KNOWN_METRICS: readonly KnownMetric[] = [
  m('arrivals', 'count', none, 'shoppers the engine started (k6: its iterations)'),
  m('arrivals.scheduled', 'count', none, "arrivals the preset's shape schedules"),
  m(
    'arrivals.unaccounted',
    'count',
    none,
    'scheduled arrivals neither started nor dropped (a run that sent no traffic); every run checks it',
  ),
  m(
    'quiescence.unsettled',
    'count',
    none,
    'what still moved when the quiescence bound ran out (reserved units, watched orders, payments processing); every run checks it',
  ),
  m(
    'faults.failed',
    'count',
    none,
    "fault steps of the preset's `faults` that did not take effect; every run with faults checks it",
  ),
  m(
    'dropped_iterations',
    'count',
    none,
    'arrivals the engine could not start for want of a free VU',
  ),
  m('orders.attempted', 'count', S, 'order requests shoppers sent (k6)'),
  m('orders.created', 'count', none, 'orders created (201 on POST /v1/orders)'),
  m(
    'orders.failure_rate',
    'ratio',
    S,
    'share of order requests that failed, as the shopper saw it (k6)',
  ),
  m('orders.sold_out', 'count', none, 'order requests answered sold_out'),
  m(
    'orders.false_sold_out',
    'count',
    none,
    'sold_out answered from the naive stock copy (stockCacheMs) while Redis had the units',
  ),
  m('orders.expired', 'count', none, 'unpaid orders released at their payment deadline'),
  m(
    'retries.end_to_end',
    'factor',
    none,
    'payment-gateway calls (bank and wallet, every operation) per shopper pay click: re-clicks and checkout retries together',
  ),
  m(
    'capacity.arrivals_per_s',
    'count',
    none,
    'flashcrowd sweep only: the offered peak arrival rate of the highest step that met every budget (the knee)',
  ),
  m(
    'checkout.unexplained',
    'count',
    none,
    "the checkout's 4xx and 5xx answers without a reason code",
  ),
  m(
    'failures.reasons',
    'count',
    none,
    "distinct reason codes of the checkout's 4xx and 5xx answers",
  ),
  m('pay.failover', 'count', none, 'payments moved to another channel the shopper allowed'),
  m(
    'risk.declines',
    'count',
    none,
    'payments the bank and the wallet declined for risk control (card_velocity_exceeded, risk_control_rejected)',
  ),
  m('pay.attempted', 'count', S, 'pay requests shoppers sent (k6)'),
  m(
    'pay.paid',
    'count',
    none,
    'orders paid, however the payment was confirmed (answer, callback, reconciler)',
  ),
  m(
    'pay.failure_rate',
    'ratio',
    S,
    'share of pay requests that failed, as the shopper saw it (k6)',
  ),
  m('order.p99_ms', 'ms', S, 'p99 latency of order requests, as the shopper saw it (k6)'),
  m('pay.p99_ms', 'ms', S, 'p99 latency of pay requests, as the shopper saw it (k6)'),
  m('checkout.p50_ms', 'ms', none, 'median latency of every request k6 sent to the checkout'),
  m('checkout.p95_ms', 'ms', none, 'p95 latency of every request k6 sent to the checkout'),
  m('checkout.p99_ms', 'ms', none, 'p99 latency of every request k6 sent to the checkout'),
  m('checkout.error_rate', 'ratio', none, "share of the checkout's answers with a 5xx status"),
  m('checkout.shed', 'count', none, 'requests refused by load shedding (503 overloaded)'),
  m('checkout.instances', 'count', none, 'checkout instances the run loaded (checkout.instances)'),
  m(
    'checkout.requests',
    'count',
    I,
    'requests a checkout instance counted (its every process; a killed one up to its last scrape)',
  ),
  m('dep.calls', 'count', D, 'attempts at calling a dependency (retries included)'),
  m('dep.error_rate', 'ratio', D, "share of a dependency's attempts that did not end ok"),
  m(
    'dep.timeouts',
    'count',
    D,
    "a dependency's attempts that timed out (the checkout's own timeout)",
  ),
  m('dep.refused', 'count', D, "a dependency's attempts whose connection was refused"),
  m(
    'retries.amplification',
    'factor',
    none,
    'dependency attempts per first attempt (1 = no retries)',
  ),
  m('leaks.stock', 'count', none, 'orders still holding stock after quiescence (I3)'),
  m('leaks.stock_units', 'count', none, 'units those hold, plus reserved units no order explains'),
  m('leaks.coupon', 'count', none, 'coupons still locked by an order that is not open (I8)'),
  m(
    'leaks.stream_pending',
    'count',
    none,
    "payment-stream entries read by a checkout consumer and never acknowledged (a dead consumer's not claimed); every audited run checks it",
  ),
  m('double_charges', 'count', none, 'orders with more than one capture not refunded (I5)'),
  m('captures_without_paid_order', 'count', none, 'captures no paid order explains (I6)'),
  m('paid_without_capture', 'count', none, 'paid orders without a capture (I7)'),
  m('late_payments', 'count', none, 'captures that landed after their order ended (I9)'),
  m('stuck_processing', 'count', none, 'orders still in paying after quiescence'),
  m(
    'oversold',
    'count',
    none,
    'units sold or reserved beyond the initial stock, per SKU max(0, sold - initial, -available) (I2)',
  ),
  m(
    'invariants.broken',
    'count',
    none,
    "invariants I1-I11 broken, plus undecided ones the preset's allowUndecided does not list",
  ),
  m('invariants.undecided', 'count', none, 'invariants I1-I11 the run could not decide'),
  ...Array.from({ length: 11 }, (_, i) =>
    m(
      `invariants.I${i + 1}`,
      'flag',
      none,
      `1 when I${i + 1} holds, 0 when broken, none undecided`,
    ),
  ),
  m('stock.sold', 'count', none, 'units sold at the end, every SKU'),
  m('stock.sold_ratio', 'ratio', none, 'units sold / initial stock, every SKU'),
];

const BY_NAME = new Map(KNOWN_METRICS.map((k) => [k.name, k]));

const OPS: readonly BudgetOp[] = ['<=', '>=', '==', '!=', '<', '>'];

/**
 * Tolerance of `==`, `!=`, `<=`, `>=` and the strictness of `<`, `>`: two
 * values are equal when |a - b| <= max(RELATIVE x max(|a|, |b|), ABSOLUTE).
 */
export const EQUALITY_TOLERANCE = { relative: 1e-9, absolute: 1e-12 } as const;

const SOURCE_TEXT: Record<BudgetSource, string> = {
  preset: "the preset's budgets",
  variant: "the variant's budgets",
  cli: '--budget',
  harness: 'the checks every run makes',
};

class ParseError extends Error {
  constructor(
    message: string,
    readonly at: number,
    readonly length = 1,
  ) {
    super(message);
  }
}

function pointer(expr: string, at: number, length: number): string {
  const width = Math.max(1, Math.min(length, expr.length - at));
  return `    ${expr}\n    ${' '.repeat(at)}${'^'.repeat(width)}`;
}

function budgetError(expr: string, source: BudgetSource, e: ParseError): UsageError {
  return new UsageError(
    `budget \`${expr}\` (in ${SOURCE_TEXT[source]}): ${e.message}\n${pointer(expr, e.at, e.length)}`,
  );
}

/** Levenshtein distance (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The known names closest to `name`: within an edit distance of about a
 * third of its length (case ignored), else those sharing its last part
 * (`p99_ms` -> checkout.p99_ms, order.p99_ms, pay.p99_ms). At most `max`.
 */
export function closestMetrics(name: string, max = 3): string[] {
  const lower = name.toLowerCase();
  const limit = Math.max(2, Math.ceil(lower.length / 3));
  const near = KNOWN_METRICS.map((k) => ({
    k: k.name,
    d: editDistance(lower, k.name.toLowerCase()),
  }))
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d || a.k.localeCompare(b.k))
    .map((x) => x.k);
  if (near.length) return near.slice(0, max);
  const last = lower.split('.').pop()!;
  return KNOWN_METRICS.map((k) => k.name)
    .filter((k) => k.toLowerCase().split('.').pop() === last)
    .sort()
    .slice(0, max);
}

export interface ParseBudgetOptions {
  /** The preset's stage labels: when given, `{stage=X}` must name one of them. */
  stages?: readonly string[];
}

/** Parse one budget expression; a bad one throws a UsageError quoting it and pointing at the problem. */
export function parseBudget(
  expr: string,
  source: BudgetSource,
  opts: ParseBudgetOptions = {},
): ParsedBudget {
  const text = expr.trim();
  try {
    return parse(text, source, opts);
  } catch (e) {
    if (e instanceof ParseError) throw budgetError(text, source, e);
    throw e;
  }
}

/** Parse several; every bad one is reported in one UsageError. */
export function parseBudgets(
  exprs: readonly string[],
  source: BudgetSource,
  opts: ParseBudgetOptions = {},
): ParsedBudget[] {
  const out: ParsedBudget[] = [];
  const errors: string[] = [];
  for (const e of exprs) {
    try {
      out.push(parseBudget(e, source, opts));
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      errors.push(err.message);
    }
  }
  if (errors.length) throw new UsageError(errors.join('\n'));
  return out;
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*/y;
const LABEL_NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const LABEL_VALUE = /[A-Za-z0-9_.:-]+/y;
const QUOTED_VALUE = /"([^"\\]*)"/y;
const NUMBER = /[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const UNIT = /%|ms\b|s\b/y;
const OP = /<=|>=|==|!=|<|>/y;
const BASELINE = /baseline\b/y;
const UNSIGNED = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;

/** What a unit after an offset multiplies it by (`%` 0.01, `s` 1000, `ms` 1); refuses a unit the metric does not take. */
function unitFactor(
  unit: string | undefined,
  known: KnownMetric,
  name: string,
  at: number,
  expr: string,
): number {
  if (!unit) return 1;
  if (unit === '%' && known.unit === 'ratio') return 0.01;
  if ((unit === 'ms' || unit === 's') && known.unit === 'ms') return unit === 's' ? 1000 : 1;
  throw new ParseError(
    `\`${unit}\` does not apply to ${name}, a ${unitWord(known.unit)}`,
    at - unit.length,
    Math.min(unit.length, expr.length),
  );
}

function parse(expr: string, source: BudgetSource, opts: ParseBudgetOptions): ParsedBudget {
  let pos = 0;
  const ws = () => {
    while (pos < expr.length && /\s/.test(expr[pos]!)) pos++;
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    const r = re.exec(expr);
    if (!r) return undefined;
    pos += r[0].length;
    return r[0];
  };
  const found = () => (pos < expr.length ? `\`${expr[pos]}\`` : 'the end');

  if (!expr)
    throw new ParseError(
      'empty budget; expected METRIC OP NUMBER, e.g. `pay.failure_rate<0.02`',
      0,
    );
  const nameAt = pos;
  const name = match(NAME);
  if (!name)
    throw new ParseError(
      `expected a metric name (letters, digits, _ and .), found ${found()}`,
      pos,
    );
  const known = BY_NAME.get(name);
  if (!known) {
    const close = closestMetrics(name);
    throw new ParseError(
      `unknown metric \`${name}\`; ${
        close.length ? `did you mean ${close.join(', ')}?` : 'docs/BUDGETS.md lists the metrics'
      }`,
      nameAt,
      name.length,
    );
  }

  const labels: Record<string, string> = {};
  ws();
  if (expr[pos] === '{') {
    const open = pos;
    pos++;
    for (;;) {
      ws();
      if (pos >= expr.length) throw new ParseError('missing `}` to close the labels', open);
      if (expr[pos] === '}' && Object.keys(labels).length === 0)
        throw new ParseError(
          'empty labels `{}`; remove them or name a label',
          open,
          pos - open + 1,
        );
      const keyAt = pos;
      const key = match(LABEL_NAME);
      if (!key) throw new ParseError(`expected a label name, found ${found()}`, pos);
      if (!known.labels.includes(key as MetricLabel))
        throw new ParseError(
          known.labels.length
            ? `${name} takes no label \`${key}\`; it takes ${known.labels.join(', ')}`
            : `${name} takes no labels`,
          keyAt,
          key.length,
        );
      if (key in labels) throw new ParseError(`label \`${key}\` given twice`, keyAt, key.length);
      ws();
      if (expr[pos] !== '=' || expr[pos + 1] === '=')
        throw new ParseError(
          `expected \`=\` after the label name \`${key}\`, found ${found()}`,
          pos,
        );
      pos++;
      ws();
      const valueAt = pos;
      let value: string | undefined;
      QUOTED_VALUE.lastIndex = pos;
      const q = QUOTED_VALUE.exec(expr);
      if (q) {
        value = q[1];
        pos += q[0].length;
      } else value = match(LABEL_VALUE);
      if (!value)
        throw new ParseError(
          `expected a value for label \`${key}\` (letters, digits, _ . : -), found ${found()}`,
          pos,
        );
      checkLabelValue(key as MetricLabel, value, opts, valueAt, pos - valueAt);
      labels[key] = value;
      ws();
      if (expr[pos] === ',') {
        pos++;
        continue;
      }
      if (expr[pos] === '}') {
        pos++;
        break;
      }
      throw new ParseError(
        pos >= expr.length
          ? 'missing `}` to close the labels'
          : `expected \`,\` or \`}\` after the label, found ${found()}`,
        pos >= expr.length ? open : pos,
      );
    }
    ws();
  }

  const opAt = pos;
  const op = match(OP) as BudgetOp | undefined;
  if (!op) {
    const bad = /^(=<|=>|<>|=|!)/.exec(expr.slice(pos))?.[0];
    throw new ParseError(
      bad === '='
        ? '`=` is not an operator; use `==` for equality'
        : `expected an operator (${OPS.join(' ')}), found ${bad ? `\`${bad}\`` : found()}`,
      opAt,
      bad?.length ?? 1,
    );
  }
  ws();
  const baselineAt = pos;
  if (match(BASELINE)) {
    const relative = parseRelative(expr, pos, baselineAt, known, name);
    return {
      expr,
      name,
      labels,
      metric: seriesKey(name, labels),
      op,
      threshold: 0,
      relative,
      source,
    };
  }
  const numAt = pos;
  const num = match(NUMBER);
  if (!num) throw new ParseError(`expected a number after \`${op}\`, found ${found()}`, pos);
  let threshold = Number(num);
  ws();
  const unitAt = pos;
  const unit = match(UNIT);
  if (unit) {
    if (unit === '%') {
      if (known.unit !== 'ratio')
        throw new ParseError(
          `\`%\` applies to ratios (*_rate, *_ratio); ${name} is a ${unitWord(known.unit)}`,
          unitAt,
        );
      threshold /= 100;
    } else {
      if (known.unit !== 'ms')
        throw new ParseError(
          `\`${unit}\` applies to latencies (*_ms); ${name} is a ${unitWord(known.unit)}`,
          unitAt,
          unit.length,
        );
      if (unit === 's') threshold *= 1000;
    }
    ws();
  }
  if (pos < expr.length)
    throw new ParseError(
      `unexpected \`${expr.slice(pos)}\` after the threshold \`${expr.slice(numAt, unit ? unitAt + unit.length : numAt + num.length).trim()}\``,
      pos,
      expr.length - pos,
    );
  if (!Number.isFinite(threshold))
    throw new ParseError(`the threshold \`${num}\` is not a finite number`, numAt, num.length);

  return {
    expr,
    name,
    labels,
    metric: seriesKey(name, labels),
    op,
    threshold,
    source,
  };
}

/**
 * What follows `baseline` (from `at`): nothing, `*FACTOR`, or `+OFFSET[unit]`
 * / `-OFFSET[unit]`, to the end of the expression.
 */
function parseRelative(
  expr: string,
  at: number,
  baselineAt: number,
  known: KnownMetric,
  name: string,
): NonNullable<ParsedBudget['relative']> {
  let pos = at;
  const ws = () => {
    while (pos < expr.length && /\s/.test(expr[pos]!)) pos++;
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    const r = re.exec(expr);
    if (r) pos += r[0].length;
    return r?.[0];
  };
  const found = () => (pos < expr.length ? `\`${expr[pos]}\`` : 'the end');
  const atEnd = (after: string) => {
    ws();
    if (pos < expr.length)
      throw new ParseError(
        `unexpected \`${expr.slice(pos)}\` after ${after}`,
        pos,
        expr.length - pos,
      );
  };
  ws();
  const how = expr[pos];
  if (how === undefined) return { factor: 1, offset: 0 };
  if (how !== '*' && how !== '+' && how !== '-')
    throw new ParseError(
      `expected \`*\`, \`+\` or \`-\` and a number after \`baseline\`, found ${found()}`,
      pos,
    );
  pos++;
  ws();
  const k = match(UNSIGNED);
  if (!k) throw new ParseError(`expected a number after \`baseline${how}\`, found ${found()}`, pos);
  if (!Number.isFinite(Number(k)))
    throw new ParseError(`\`${k}\` is not a finite number`, baselineAt, pos - baselineAt);
  if (how === '*') {
    atEnd(`\`baseline*${k}\` (a factor takes no unit)`);
    return { factor: Number(k), offset: 0 };
  }
  ws();
  const offset = Number(k) * unitFactor(match(UNIT), known, name, pos, expr);
  atEnd('the offset');
  return { factor: 1, offset: how === '-' ? -offset : offset };
}

function unitWord(u: MetricUnit): string {
  return { count: 'count', ratio: 'ratio', ms: 'latency', factor: 'factor', flag: 'flag (0 or 1)' }[
    u
  ];
}

function checkLabelValue(
  key: MetricLabel,
  value: string,
  opts: ParseBudgetOptions,
  at: number,
  length: number,
) {
  if (key === 'instance' && !/^(0|[1-9]\d?)$/.test(value))
    throw new ParseError(`instance \`${value}\` is not an instance index (0, 1, ...)`, at, length);
  if (key === 'dependency' && !(DEPENDENCIES as readonly string[]).includes(value))
    throw new ParseError(
      `unknown dependency \`${value}\`; expected ${DEPENDENCIES.join(', ')}`,
      at,
      length,
    );
  if (key === 'stage') {
    if (!/^[a-z0-9_-]+$/.test(value))
      throw new ParseError(
        `stage \`${value}\` is not a stage label (lower-case letters, digits, - and _)`,
        at,
        length,
      );
    if (opts.stages && !opts.stages.includes(value))
      throw new ParseError(
        `unknown stage \`${value}\`; this preset's stages are ${
          opts.stages.length ? opts.stages.join(', ') : '(none labelled)'
        }`,
        at,
        length,
      );
  }
}

/** a == b within EQUALITY_TOLERANCE. */
export function approxEqual(a: number, b: number): boolean {
  const tol = Math.max(
    EQUALITY_TOLERANCE.relative * Math.max(Math.abs(a), Math.abs(b)),
    EQUALITY_TOLERANCE.absolute,
  );
  return Math.abs(a - b) <= tol;
}

/** `value op threshold`, with equality within EQUALITY_TOLERANCE (so 0.1 + 0.2 <= 0.3, and not < 0.3). */
export function compare(value: number, op: BudgetOp, threshold: number): boolean {
  const eq = approxEqual(value, threshold);
  switch (op) {
    case '==':
      return eq;
    case '!=':
      return !eq;
    case '<':
      return value < threshold && !eq;
    case '<=':
      return value < threshold || eq;
    case '>':
      return value > threshold && !eq;
    case '>=':
      return value > threshold || eq;
  }
}

/**
 * Each budget against `metrics` (keys as `ParsedBudget.metric`). A metric
 * absent or null fails with note "no samples"; NaN and infinities fail too
 * (value null, the note says which): a budget never passes without a number.
 */
export function evaluateBudgets(
  budgets: readonly ParsedBudget[],
  metrics: Readonly<Record<string, number | null | undefined>>,
  /** The baseline run's metrics (`run --baseline`), for relative budgets. */
  baseline?: Readonly<Record<string, number | null | undefined>>,
): BudgetResult[] {
  return budgets.map((b) => {
    const resolved = b.relative ? resolveRelative(b, baseline) : { threshold: b.threshold };
    const base = {
      expr: b.expr,
      metric: b.metric,
      op: b.op,
      threshold: resolved.threshold,
      source: b.source,
    };
    const v = Object.hasOwn(metrics, b.metric) ? metrics[b.metric] : undefined;
    if ('missing' in resolved) {
      const value = typeof v === 'number' && Number.isFinite(v) ? v : null;
      return { ...base, value, ok: false, note: resolved.missing };
    }
    if (v === undefined || v === null)
      return { ...base, value: null, ok: false, note: 'no samples' };
    if (!Number.isFinite(v))
      return {
        ...base,
        value: null,
        ok: false,
        note: Number.isNaN(v) ? 'not a number (NaN)' : `not finite (${v})`,
      };
    return {
      ...base,
      value: v,
      ok: compare(v, b.op, resolved.threshold),
      ...('note' in resolved ? { note: resolved.note } : {}),
    };
  });
}

/** A relative budget's threshold from the baseline run, or why there is none (the budget then fails). */
function resolveRelative(
  b: ParsedBudget,
  baseline: Readonly<Record<string, number | null | undefined>> | undefined,
): { threshold: number; note: string } | { threshold: number; missing: string } {
  const { factor, offset } = b.relative!;
  if (!baseline)
    return { threshold: 0, missing: 'a relative budget needs a baseline run (--baseline DIR)' };
  const v = Object.hasOwn(baseline, b.metric) ? baseline[b.metric] : undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    return { threshold: 0, missing: `the baseline run has no samples of ${b.metric}` };
  const threshold = Number((v * factor + offset).toPrecision(12));
  const how =
    factor !== 1 ? ` x ${factor}` : offset ? ` ${offset > 0 ? '+' : '-'} ${Math.abs(offset)}` : '';
  return { threshold, note: `baseline ${Number(v.toPrecision(4))}${how}` };
}
