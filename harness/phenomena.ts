// The phenomenon matrix (`flashcrowd phenomena`, docs/PHENOMENA.md): one row
// per failure of the brief (shared/BRIEF.md, in its order), the preset and the
// builds that reproduce it, and what each build's run must show, as budget
// expressions judged on its metrics. A row holds when the naive build shows
// the phenomenon and the hardened build, on the same traffic and faults,
// passes its own budgets and shows what its row says. Each distinct run
// (preset and build) is made once, however many rows read it.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { evaluateBudgets, parseBudgets } from './budgets.ts';
import { UsageError } from './errors.ts';
import { runCommand } from './run.ts';
import type { Print } from './run/options.ts';
import type { BudgetResult, RunSummary } from './summary.ts';
import { PROJECT_ROOT } from './tools.ts';

export interface PhenomenonRow {
  /** Its number in the brief's table. */
  n: number;
  phenomenon: string;
  seeds: string;
  preset: string;
  /** The preset's variants that run the naive and the hardened build. */
  naive: string;
  hardened: string;
  /** What the naive build's run shows (each must hold): the phenomenon, by its metric. */
  naiveShows: string[];
  /** What the hardened build's run shows besides passing its budgets. */
  hardenedShows: string[];
}

const NAIVE = 'naive';
const HARDENED = 'hardened';

export const PHENOMENA: readonly PhenomenonRow[] = [
  {
    n: 1,
    phenomenon: 'failure rate climbs at peak (8-11pm, on the hour)',
    seeds: '000',
    preset: 'capacity-knee',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['pay.failure_rate{stage=baseline}<0.02', 'pay.failure_rate{stage=peak}>0.1'],
    hardenedShows: ['checkout.p99_ms<2000'],
  },
  {
    n: 2,
    phenomenon: 'a few ms of latency in one service avalanches',
    seeds: '000',
    preset: 'retry-storm',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['retries.amplification>=1.1'],
    hardenedShows: ['retries.amplification<1.1'],
  },
  {
    n: 3,
    phenomenon: 'coupon stays locked after a failed payment',
    seeds: '000',
    preset: 'coupon-contention',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['leaks.coupon>0'],
    hardenedShows: ['leaks.coupon==0'],
  },
  {
    n: 4,
    phenomenon: 'stock held by a payment stuck between bank and platform ("ghost stock")',
    seeds: '000',
    preset: 'ghost-stock',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['leaks.stock>0'],
    hardenedShows: ['leaks.stock==0'],
  },
  {
    n: 5,
    phenomenon: 'unpaid order kept 15-30 min, then released',
    seeds: '000',
    preset: 'livestream-spike',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['orders.expired>0'],
    hardenedShows: ['orders.expired>0', 'leaks.stock==0'],
  },
  {
    n: 6,
    phenomenon: 'frantic re-clicks trigger risk control',
    seeds: '000, 003',
    preset: 'risk-control',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['risk.declines>0'],
    hardenedShows: ['risk.declines==0'],
  },
  {
    n: 7,
    phenomenon: 'switching channel (e.g. to UnionPay) succeeds',
    seeds: '000, 001',
    preset: 'flapping-channel',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['pay.failure_rate>=0.1', 'pay.failover==0'],
    hardenedShows: ['pay.failover>0', 'pay.failure_rate<0.1'],
  },
  {
    n: 8,
    phenomenon: 'gateway crash (~8 min) and third-party outages (47% failures)',
    seeds: '001',
    preset: 'gateway-outage',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['pay.failure_rate{stage=peak}>0.2'],
    hardenedShows: ['pay.failover>0'],
  },
  {
    n: 9,
    phenomenon: 'stock sync lag, "sold out" at click',
    seeds: '001',
    preset: 'stock-lag',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['orders.false_sold_out>0'],
    hardenedShows: ['orders.false_sold_out==0', 'oversold==0'],
  },
  {
    n: 10,
    phenomenon: 'paid, but order still "processing" (callback late or lost)',
    seeds: '003',
    preset: 'ghost-stock',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['stuck_processing>0'],
    hardenedShows: ['stuck_processing==0'],
  },
  {
    n: 11,
    phenomenon: 'charged twice after repeated clicks',
    seeds: '003',
    preset: 'livestream-spike',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['double_charges>0'],
    hardenedShows: ['double_charges==0'],
  },
  {
    n: 12,
    phenomenon: 'fewer retries at peak raised success',
    seeds: '003',
    preset: 'risk-control',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['retries.end_to_end>=2', 'pay.failure_rate>=0.02'],
    hardenedShows: ['retries.end_to_end<2', 'pay.failure_rate<0.02'],
  },
  {
    n: 13,
    phenomenon: 'daily reconciliation: bank statement vs orders',
    seeds: '003',
    preset: 'ambiguous-capture',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['invariants.I11==0'],
    hardenedShows: ['invariants.I11==1'],
  },
  {
    n: 14,
    phenomenon: 'vague error messages',
    seeds: '000, 002, 003',
    preset: 'retry-storm',
    naive: NAIVE,
    hardened: HARDENED,
    // Not a failure of one build: both must name every failure with a reason code.
    naiveShows: ['checkout.unexplained==0', 'failures.reasons>=2'],
    hardenedShows: ['checkout.unexplained==0', 'failures.reasons>=2'],
  },
  // Faults beyond the mocks (docs/CHAOS.md): the network, Redis and the
  // checkout's own processes. Not rows of the brief's table: its cascade
  // (row 15) and the crashes every real checkout meets.
  {
    n: 15,
    phenomenon: 'Redis slows at the peak: the cascade (Redis queued, coupons locked, stock leaked)',
    seeds: '000',
    preset: 'redis-slow',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['oversold>0'],
    hardenedShows: ['checkout.shed>0', 'oversold==0'],
  },
  {
    n: 16,
    phenomenon: 'a checkout instance crashes at the peak',
    seeds: '-',
    preset: 'checkout-crash',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['captures_without_paid_order>0'],
    hardenedShows: ['captures_without_paid_order==0', 'leaks.stream_pending==0'],
  },
  {
    n: 17,
    phenomenon: 'Redis crashes and restarts at the peak',
    seeds: '-',
    preset: 'redis-restart',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['captures_without_paid_order>0'],
    hardenedShows: ['captures_without_paid_order==0'],
  },
  {
    n: 18,
    phenomenon: 'the network to the bank is cut (timeouts, not refusals)',
    seeds: '-',
    preset: 'network-partition',
    naive: NAIVE,
    hardened: HARDENED,
    naiveShows: ['double_charges>0'],
    hardenedShows: [
      'double_charges==0',
      'dep.timeouts{dependency=bank}>0',
      'dep.refused{dependency=bank}==0',
    ],
  },
];

/** Rows of the brief's table (1-14); the rest are the faults beyond the mocks. */
export const BRIEF_ROWS = 14;

/** A run's directory under --out: `preset-variant`. */
export const runName = (preset: string, variant: string) => `${preset}-${variant}`;

export interface RowResult {
  row: PhenomenonRow;
  naive: { dir: string; verdict: string; shows: BudgetResult[] };
  hardened: { dir: string; verdict: string; shows: BudgetResult[] };
  /** The naive build showed the phenomenon and the hardened build passed and showed its row. */
  ok: boolean;
}

/** Judge one row on the summaries of its two runs. */
export function judgeRow(
  row: PhenomenonRow,
  naive: { dir: string; summary: RunSummary },
  hardened: { dir: string; summary: RunSummary },
): RowResult {
  const shows = (exprs: string[], s: RunSummary) =>
    evaluateBudgets(parseBudgets(exprs, 'cli'), s.metrics);
  const n = shows(row.naiveShows, naive.summary);
  const h = shows(row.hardenedShows, hardened.summary);
  return {
    row,
    naive: { dir: naive.dir, verdict: naive.summary.verdict, shows: n },
    hardened: { dir: hardened.dir, verdict: hardened.summary.verdict, shows: h },
    ok: n.every((b) => b.ok) && h.every((b) => b.ok) && hardened.summary.verdict === 'pass',
  };
}

/** --rows 1,4,9: those rows (all by default); a row the brief does not have is a usage error. */
export function selectRows(spec: string | undefined): PhenomenonRow[] {
  if (!spec) return [...PHENOMENA];
  const want = spec.split(',').map((x) => Number(x.trim()));
  const bad = want.filter((n) => !PHENOMENA.some((r) => r.n === n));
  if (bad.length)
    throw new UsageError(`--rows: no row ${bad.join(', ')} (rows 1-${PHENOMENA.length})`);
  return PHENOMENA.filter((r) => want.includes(r.n));
}

export interface PhenomenaOptions {
  rows?: string;
  seed: number;
  /** Scales of every run instead of each preset's `ci` ones (a smaller matrix: the test suite). */
  timeScale?: number;
  loadScale?: number;
  /** Default reports/phenomena-<time>. */
  out?: string;
  progress: 'auto' | 'tty' | 'plain' | 'none';
}

/** Run every run the rows need (once each, at --ci scales), judge the rows, write phenomena.md and .json. */
export async function phenomenaCommand(o: PhenomenaOptions, print: Print = console.log) {
  const rows = selectRows(o.rows);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = resolve(o.out ?? join(PROJECT_ROOT, 'reports', `phenomena-${stamp}`));
  const runs = new Map<string, { preset: string; variant: string }>();
  for (const r of rows)
    for (const variant of [r.naive, r.hardened])
      runs.set(runName(r.preset, variant), { preset: r.preset, variant });
  print(`phenomena: ${rows.length} row(s), ${runs.size} run(s) at --ci, seed ${o.seed} -> ${out}`);
  const done = new Map<string, { dir: string; summary: RunSummary }>();
  let k = 0;
  for (const [name, { preset, variant }] of runs) {
    const dir = join(out, name);
    print(`\n[${(k += 1)}/${runs.size}] ${name}`);
    const code = await runCommand(
      {
        preset,
        seed: o.seed,
        ci: true,
        ...(o.timeScale ? { timeScale: o.timeScale } : {}),
        ...(o.loadScale ? { loadScale: o.loadScale } : {}),
        variant,
        out: dir,
        budgets: [],
        allowRemoteTarget: false,
        progress: o.progress,
      },
      print,
    );
    if (code === 2) throw new UsageError(`the run of ${name} could not start`);
    const summary = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as RunSummary;
    done.set(name, { dir, summary });
  }
  const results = rows.map((r) =>
    judgeRow(r, done.get(runName(r.preset, r.naive))!, done.get(runName(r.preset, r.hardened))!),
  );
  await writeFile(join(out, 'phenomena.json'), JSON.stringify(results, null, 2) + '\n');
  const scales =
    o.timeScale || o.loadScale
      ? `time-scale ${o.timeScale ?? 'ci'}, load-scale ${o.loadScale ?? 'ci'}`
      : '--ci';
  const md = phenomenaMarkdown(results, `seed ${o.seed}, ${scales}`);
  await writeFile(join(out, 'phenomena.md'), md);
  print(`\n${md}`);
  return results.every((r) => r.ok) ? 0 : 1;
}

const shown = (bs: BudgetResult[]) =>
  bs.map((b) => `${b.ok ? '' : '**NOT** '}${b.metric} ${fmt(b.value)}`).join(', ');
const fmt = (v: number | null) => (v === null ? 'no samples' : String(Number(v.toPrecision(3))));

/** The matrix as docs/PHENOMENA.md shows it. */
export function phenomenaMarkdown(results: RowResult[], how: string): string {
  const lines = [
    `| # | phenomenon | preset | naive variant | hardened variant | naive shows (${how}) | hardened shows | holds |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results)
    lines.push(
      `| ${r.row.n} | ${r.row.phenomenon} (seed ${r.row.seeds}) | ${r.row.preset} | ${r.row.naive} | ${r.row.hardened} | ${shown(r.naive.shows)} (verdict ${r.naive.verdict}) | ${shown(r.hardened.shows)} (verdict ${r.hardened.verdict}) | ${r.ok ? 'yes' : '**no**'} |`,
    );
  return lines.join('\n') + '\n';
}
