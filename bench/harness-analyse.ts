// The timed half of `npm run bench:harness` (bench/harness.ts starts it in a
// fresh process, so that its peak RSS is the analysis alone), in a run's
// order: a Collector taking TICKS ticks from live servers (during a run, its
// ticks come once a second while the traffic runs), then what comes after the
// traffic: the audit of the sale, and the metrics, budgets and report files
// of harness/run.ts. Prints one JSON line.
import { connectRedis, Store } from '../checkout/store.ts';
import { audit } from '../harness/audit.ts';
import { evaluateBudgets, parseBudget } from '../harness/budgets.ts';
import { Collector } from '../harness/collect.ts';
import { writeReports } from '../harness/report/index.ts';
import { computeMetrics } from '../harness/run.ts';
import { SUMMARY_SCHEMA_VERSION, type RunSummary } from '../harness/summary.ts';

interface Job {
  redisUrl: string;
  prefix: string;
  sku: string;
  bank: string;
  wallet: string;
  coupon: string;
  checkoutUrl: string;
  mockUrl: string;
  ticks: number;
  out: string;
}

const job = JSON.parse(process.argv[2]!) as Job;
const baselineRssMb = process.memoryUsage().rss / 2 ** 20;
const steps: {
  name: string;
  s: number;
  wallS: number;
  peakRssMb: number;
  afterTraffic: boolean;
}[] = [];
/** Time a step: wall time, or (cpu) the process's CPU time for work spread over a run. */
async function step<T>(name: string, fn: () => Promise<T>, cpu = false): Promise<T> {
  const t = performance.now();
  const c = process.cpuUsage();
  const r = await fn();
  const wallS = (performance.now() - t) / 1000;
  const u = process.cpuUsage(c);
  // maxRSS is the process's peak so far: after each step, the peak up to its end.
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  // The collector (cpu) works during the traffic; the other steps come after it.
  steps.push({
    name,
    s: cpu ? (u.user + u.system) / 1e6 : wallS,
    wallS,
    peakRssMb,
    afterTraffic: !cpu,
  });
  return r;
}

const client = connectRedis(job.redisUrl);
const store = new Store(client, job.prefix);
const startedAt = new Date();

// During a run the collector's work is spread over its seconds: count its CPU time.
const series = await step(
  `collector, CPU time: ${job.ticks} ticks of 4 scrapes and a stock read`,
  async () => {
    const c = new Collector({
      intervalMs: 10,
      checkoutUrl: job.checkoutUrl,
      mocks: { bank: job.mockUrl, wallet: job.mockUrl, coupon: job.mockUrl },
      startedAtMs: Date.now(),
    });
    await c.start();
    // One snapshot a tick, as a run's progress line takes one a second.
    while (c.snapshot().ticks < job.ticks) await new Promise((r) => setTimeout(r, 10));
    return c.stop();
  },
  true,
);

const report = await step('audit (Redis orders, bank/wallet/coupon statements)', () =>
  audit({ store, bank: job.bank, wallet: job.wallet, coupon: job.coupon, skus: [job.sku] }),
);

const files = await step('metrics, budgets and the five report files', async () => {
  const stock = [{ sku: job.sku, initial: 0, available: 0, reserved: 0, sold: 0 }];
  const metrics = computeMetrics({
    load: undefined,
    checkoutProm: undefined,
    audit: report,
    stock,
    stages: [],
  });
  const budgets = evaluateBudgets(
    ['leaks.stock==0', 'double_charges==0', 'invariants.broken==0'].map((e) =>
      parseBudget(e, 'preset'),
    ),
    metrics,
  );
  series.stages = [{ label: 'run', fromS: 0, toS: series.t.length }];
  const summary: RunSummary = {
    schemaVersion: SUMMARY_SCHEMA_VERSION,
    runId: 'bench-harness',
    tool: { name: 'flashcrowd', version: 'bench' },
    preset: { name: 'bench', file: 'bench', description: 'bench:harness' },
    params: { seed: 1, timeScale: 1, loadScale: 1, target: 'embedded' },
    startedAt: startedAt.toISOString(),
    endedAt: new Date().toISOString(),
    durations: { trafficS: series.t.length, quiescenceS: 0, totalS: series.t.length },
    verdict: budgets.every((b) => b.ok) && report.violated.length === 0 ? 'pass' : 'fail',
    exitCode: budgets.every((b) => b.ok) && report.violated.length === 0 ? 0 : 1,
    checkout: { mode: 'hardened', features: {}, params: {} },
    metrics,
    budgets: budgets.map((b) => ({ ...b })),
    invariants: report.invariants.map((i) => ({
      id: i.id,
      name: i.name,
      ok: i.ok,
      count: i.count,
      examples: i.examples,
      ...(i.note ? { note: i.note } : {}),
    })),
    stock,
    failures: [],
    chaos: { bands: [], injected: [] },
    quiescence: { settled: report.quiescent, waitedS: 0 },
    warnings: [],
    files: {},
  };
  return writeReports(job.out, summary, series, { stepSummary: null });
});

client.disconnect();
const maxRssMb = process.resourceUsage().maxRSS / 1024;
console.log(
  JSON.stringify({
    steps,
    maxRssMb,
    baselineRssMb,
    orders: report.totals.orders,
    captures: report.totals.captures,
    ticks: series.t.length,
    violated: report.violated,
    files: Object.keys(files),
  }),
);
