// Reproducibility: two runs of the same preset, seed and scales compared
// metric by metric (`flashcrowd compare A B`, `flashcrowd run --repeat N`).
// Each metric has a class that says how far apart the two may be:
//   exact    the schedule, the audit (leaks, double charges, every invariant
//            and its count), and the faults the mocks injected per service,
//            operation and kind when the checkout's calls are a function of
//            the seed (no breaker, retry budget, bulkhead or load shedding:
//            the naive build): any difference is a reproducibility bug;
//   count    shopper outcomes and gateway calls, and the faults of a checkout
//            whose breaker, retry budget, bulkhead or shedder decide on the
//            run's timing whether a call is made: within 5%, or 2, or two
//            Poisson standard deviations (2 x sqrt(n));
//   race     which of two paths got there first (an order paid by the pay
//            answer, the notification or the reconciler), the stage a click
//            falls in (orders.attempted{stage}, pay.attempted{stage}), and a
//            hardened checkout's calls per gateway: within 50% or 20;
//   rate     failure rates and ratios: within 0.02 (absolute), or, for a
//            failure rate whose attempts are counted (X.failure_rate with
//            X.attempted), three standard errors of the difference of two
//            binomial proportions of those sizes (a stage of 40 pay clicks);
//   latency  quantiles in ms: machine noise, within a factor of 4 or 100 ms.
// docs/REPRODUCIBILITY.md has what each class holds and the measured spread.
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeComparison } from './report/comparison.ts';
import { UsageError } from './errors.ts';
import { runSummarySchema, type RunSummary } from './summary.ts';

export type MetricClass = 'exact' | 'count' | 'race' | 'rate' | 'latency';

/** The tolerances of each class (documented in docs/REPRODUCIBILITY.md). */
export const TOLERANCE = {
  /**
   * Counts: within 5% of the larger, or 2 apart, or 2 standard deviations of a
   * Poisson count of that size (2 x sqrt(n): 23 vs 27 pay clicks in one stage
   * are within it, 900 vs 1022 faults are not).
   */
  countRel: 0.05,
  countAbs: 2,
  countSigmas: 2,
  /** Races: within 50% of the larger, or 20 apart. */
  raceRel: 0.5,
  raceAbs: 20,
  /**
   * Rates and ratios: 0.02 apart (2 percentage points), or, where the attempts
   * behind a failure rate are known, within 3 standard errors of the
   * difference of two binomial proportions: sqrt(p(1-p)(1/na + 1/nb)) with p
   * pooled. Where timing decides an outcome (a breaker), the outcome is a coin
   * toss per attempt, and a small stage's rate moves with its size (9% vs 13%
   * of 45 pay clicks in a one-second stage).
   */
  rateAbs: 0.02,
  rateSigmas: 3,
  /**
   * Latency quantiles: within a factor of 4 (0.75 of the larger), or 100 ms
   * apart. A p99 of a few hundred samples on a shared machine moves that much
   * from run to run (measured: 16 vs 54 ms, docs/REPRODUCIBILITY.md).
   */
  latencyRel: 0.75,
  latencyAbsMs: 100,
} as const;

const EXACT = [
  /^arrivals\.scheduled$/,
  /^leaks\./,
  /^double_charges$/,
  /^captures_without_paid_order$/,
  /^paid_without_capture$/,
  /^late_payments$/,
  /^stuck_processing$/,
  /^oversold$/,
  /^invariants\./,
  /^quiescence\.unsettled$/,
  /^invariant_count\./,
];

/**
 * Order events that say which path won a race (their sum, order_events.paid_total,
 * is a count); and clicks counted per stage: a click is counted in the stage it
 * is sent in, after the answers before it, so a click near a stage's edge falls
 * on either side with the run's latencies (a one-second rush: 2 vs 10 pay clicks
 * under a loaded machine). Their totals are counts.
 */
const RACE = [
  /^order_events\.(paid|paid_by_\w+|late_rereserved|reconciled|notify_received)$/,
  /^(orders|pay)\.attempted\{stage=/,
];

/**
 * The class of a compared value by its name; `timedCalls`: the checkout's
 * breaker, retry budget, bulkhead or shedder decide whether a call is made
 * (its faults are then counts, not exact).
 */
export function classOf(name: string, timedCalls = false): MetricClass {
  if (name.startsWith('faults.')) return timedCalls ? 'count' : 'exact';
  // A hardened checkout's calls to a gateway: retries, breaker, reconciler queries, all on timing.
  if (timedCalls && /^dep\.calls\{/.test(name)) return 'race';
  if (EXACT.some((r) => r.test(name))) return 'exact';
  if (RACE.some((r) => r.test(name))) return 'race';
  if (/_ms(\{|$)/.test(name)) return 'latency';
  if (/(rate|ratio|amplification)(\{|$)/.test(name)) return 'rate';
  return 'count';
}

export interface ComparedRow {
  name: string;
  class: MetricClass;
  a: number | null;
  b: number | null;
  ok: boolean;
  /** How the two differ, in the class's terms ('' when equal). */
  diff: string;
}

export interface Comparison {
  rows: ComparedRow[];
  identical: number;
  withinTolerance: number;
  outOfTolerance: number;
  ok: boolean;
  /** What the two runs did not share (preset, seed, scales...), which makes the comparison moot. */
  mismatch: string[];
}

/** The values compared: the flat metrics, each invariant's count, each injected fault kind. */
function valuesOf(s: RunSummary): Map<string, number | null> {
  const v = new Map<string, number | null>(Object.entries(s.metrics));
  for (const i of s.invariants) v.set(`invariant_count.${i.id}`, i.count);
  for (const f of s.chaos.injected)
    v.set(
      `faults.${f.service}.${f.operation}.${f.kind}`,
      (v.get(`faults.${f.service}.${f.operation}.${f.kind}`) ?? 0) + f.count,
    );
  let paid = 0;
  for (const e of s.events?.orders ?? []) {
    v.set(`order_events.${e.event}`, e.count);
    if (/^(paid|paid_by_\w+|late_rereserved)$/.test(e.event)) paid += e.count;
  }
  if (s.events) v.set('order_events.paid_total', paid);
  return v;
}

/** The checkout features that make its gateway calls depend on the run's timing. */
export function timedCalls(features: Record<string, boolean | string>): boolean {
  return Boolean(
    features.circuitBreaker || features.retryBudget || features.bulkhead || features.loadShedding,
  );
}

/** `pay.failure_rate{stage=peak}` -> `pay.attempted{stage=peak}`: the attempts behind a failure rate. */
export function attemptsOf(name: string): string | undefined {
  const m = /^([a-z_]+)\.failure_rate(\{.*\})?$/.exec(name);
  return m ? `${m[1]}.attempted${m[2] ?? ''}` : undefined;
}

/** The tolerance of a rate: 0.02, or 3 binomial standard errors of the difference when the attempts are known. */
export function rateTolerance(
  a: number,
  b: number,
  na?: number | null,
  nb?: number | null,
): number {
  if (!na || !nb || na <= 0 || nb <= 0) return TOLERANCE.rateAbs;
  const p = (a * na + b * nb) / (na + nb);
  const se = Math.sqrt(Math.max(0, p * (1 - p)) * (1 / na + 1 / nb));
  return Math.max(TOLERANCE.rateAbs, TOLERANCE.rateSigmas * se);
}

/** One value of two runs against the tolerance of its class (by its name). */
export function compareValue(
  name: string,
  a: number | null,
  b: number | null,
  timed: boolean,
  attempts: [number | null, number | null] = [null, null],
): ComparedRow {
  const cls = classOf(name, timed);
  if (a === b) return { name, class: cls, a, b, ok: true, diff: '' };
  // A fault kind, an event or an invariant count only one run has is 0 in the other.
  const zeroIfAbsent = /^(faults|order_events)\./.test(name);
  const x = a ?? (zeroIfAbsent ? 0 : null);
  const y = b ?? (zeroIfAbsent ? 0 : null);
  if (x === null || y === null)
    return { name, class: cls, a, b, ok: false, diff: 'no value in one run' };
  const d = y - x;
  const rel = Math.abs(d) / Math.max(Math.abs(x), Math.abs(y));
  const signed = `${d > 0 ? '+' : ''}${Number(d.toPrecision(4))}`;
  switch (cls) {
    case 'exact':
      return { name, class: cls, a, b, ok: x === y, diff: x === y ? '' : signed };
    case 'rate': {
      const tol = rateTolerance(x, y, attempts[0], attempts[1]);
      return {
        name,
        class: cls,
        a,
        b,
        ok: Math.abs(d) <= tol,
        diff:
          tol > TOLERANCE.rateAbs ? `${signed} (tolerance ${Number(tol.toPrecision(2))})` : signed,
      };
    }
    case 'race':
      return {
        name,
        class: cls,
        a,
        b,
        ok: rel <= TOLERANCE.raceRel || Math.abs(d) <= TOLERANCE.raceAbs,
        diff: `${signed} (${(rel * 100).toFixed(1)}%)`,
      };
    case 'latency':
      return {
        name,
        class: cls,
        a,
        b,
        ok: rel <= TOLERANCE.latencyRel || Math.abs(d) <= TOLERANCE.latencyAbsMs,
        diff: `${signed} (${(rel * 100).toFixed(1)}%)`,
      };
    default:
      return {
        name,
        class: cls,
        a,
        b,
        ok:
          rel <= TOLERANCE.countRel ||
          Math.abs(d) <= TOLERANCE.countAbs ||
          Math.abs(d) <= TOLERANCE.countSigmas * Math.sqrt(Math.max(Math.abs(x), Math.abs(y))),
        diff: `${signed} (${(rel * 100).toFixed(1)}%)`,
      };
  }
}

/** Compare run B with run A. */
export function compareSummaries(a: RunSummary, b: RunSummary): Comparison {
  const mismatch: string[] = [];
  const same = (what: string, x: unknown, y: unknown) => {
    if (JSON.stringify(x) !== JSON.stringify(y))
      mismatch.push(`${what}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
  };
  same('preset', [a.preset.name, a.preset.variant], [b.preset.name, b.preset.variant]);
  same('seed', a.params.seed, b.params.seed);
  same(
    'scales',
    [a.params.timeScale, a.params.loadScale],
    [b.params.timeScale, b.params.loadScale],
  );
  same('checkout', a.checkout.mode, b.checkout.mode);
  const va = valuesOf(a);
  const vb = valuesOf(b);
  const names = [...new Set([...va.keys(), ...vb.keys()])].sort();
  const timed = timedCalls(a.checkout.features) || timedCalls(b.checkout.features);
  const rows = names.map((n) => {
    const att = attemptsOf(n);
    return compareValue(n, va.get(n) ?? null, vb.get(n) ?? null, timed, [
      att ? (va.get(att) ?? null) : null,
      att ? (vb.get(att) ?? null) : null,
    ]);
  });
  const identical = rows.filter((r) => r.diff === '').length;
  const outOfTolerance = rows.filter((r) => !r.ok).length;
  return {
    rows,
    identical,
    withinTolerance: rows.length - identical - outOfTolerance,
    outOfTolerance,
    ok: outOfTolerance === 0 && mismatch.length === 0,
    mismatch,
  };
}

/** summary.json of a run directory, validated. */
export async function readRunSummary(dir: string): Promise<RunSummary> {
  const file = join(dir, 'summary.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError(
      `cannot read ${file}: ${(err as Error).message} (is ${dir} a run directory?)`,
    );
  }
  const r = runSummarySchema.safeParse(raw);
  if (!r.success)
    throw new UsageError(
      `${file}: not a flashcrowd run summary: ${r.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
    );
  return r.data;
}

const show = (v: number | null) => (v === null ? 'none' : String(Number(v.toPrecision(6))));

/** The comparison as lines for a person: the verdict, then every row that differs. */
export function formatComparison(c: Comparison, labels: [string, string]): string[] {
  const out: string[] = [];
  for (const m of c.mismatch) out.push(`  not the same run: ${m}`);
  out.push(
    `${c.ok ? 'REPRODUCED' : 'NOT REPRODUCED'}: ${c.rows.length} values compared, ${c.identical} identical, ` +
      `${c.withinTolerance} within tolerance, ${c.outOfTolerance} out of tolerance`,
  );
  const differ = c.rows.filter((r) => r.diff !== '');
  if (differ.length) {
    const w = Math.max(...differ.map((r) => r.name.length), 6);
    out.push(
      `  ${'value'.padEnd(w)}  class    ${labels[0].padStart(12)}  ${labels[1].padStart(12)}  diff`,
    );
    for (const r of differ)
      out.push(
        `  ${r.name.padEnd(w)}  ${r.class.padEnd(7)}  ${show(r.a).padStart(12)}  ${show(r.b).padStart(12)}  ${r.diff}${r.ok ? '' : '  OUT OF TOLERANCE'}`,
      );
  }
  return out;
}

/** `flashcrowd compare A B`: 0 reproduced, 1 not. */
export async function compareCommand(
  dirA: string,
  dirB: string,
  o: { json?: boolean; out?: string },
  print: (line: string) => void = console.log,
): Promise<number> {
  const [a, b] = await Promise.all([readRunSummary(dirA), readRunSummary(dirB)]);
  const c = compareSummaries(a, b);
  if (o.json) print(JSON.stringify(c, null, 2));
  else for (const l of formatComparison(c, ['A', 'B'])) print(l);
  if (o.out) {
    await mkdir(o.out, { recursive: true });
    const label = (s: RunSummary, dir: string) =>
      s.preset.variant ?? (basename(dir) || s.checkout.mode);
    const files = await writeComparison(
      o.out,
      [
        { label: label(a, dirA), summary: a },
        { label: label(b, dirB), summary: b },
      ],
      c,
    );
    if (!o.json) print(`side by side: ${files.map((f) => join(o.out!, f)).join(', ')}`);
  }
  return c.ok ? 0 : 1;
}
