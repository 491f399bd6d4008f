// `npm run bench:checkout`: sustained orders per second through the reference
// checkout (POST /v1/orders, then POST /v1/orders/:id/pay by card against the
// faultless mocks), with two references measured in the same run:
//
//   express-pair  a bare express app answering the same two requests from memory
//                 (the framework's floor)
//   ceiling       the checkout's reserve, start_payment and confirm Lua scripts driven
//                 straight at Redis from Node, unpipelined (Redis's ceiling)
//
// and, per order in the checkout: p50/p99, CPU time of the checkout process, Redis
// round trips (the Store's counter, cross-checked with INFO commandstats); then a
// sell-out at full speed that checks no oversell (I1, I2). docs/PERFORMANCE.md
// ("Checkout") explains the method and records the figures.
//
//   npm run bench:checkout                      the full run (about 2-3 minutes)
//   npm run bench:checkout -- --help            options
//
// Load: a closed model of our own over the engine's HTTP client (bench/closed-loop.ts,
// the bench-order journey of scenarios/lib/bench-journeys.ts; k6 until 2026-12).
//
// Placement on a 2-core machine (taskset): the generator and this runner on one core, the
// measured server (express-pair or checkout) alone on the other; Redis and the
// mocks, which must run somewhere, share the generator's core. The Redis ceiling's driver runs
// on the server core, Redis on the other. Without taskset or a second core the run
// is unpinned and says so.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Store, type StockSnapshot } from '../checkout/store.ts';
import { startLocalRedis } from '../harness/redis.ts';
import { findTool, PROJECT_ROOT } from '../harness/tools.ts';
import type { CeilingResult } from './checkout-servers.ts';
import type { ClosedLoopInput, ClosedLoopResult } from './closed-loop.ts';
import {
  allowedCpus,
  cores,
  cpuModel,
  cpuSeconds,
  fmtInt,
  machineBusySeconds,
  otherLoad,
  selfCpuSeconds,
  setUpPinning,
  sleep,
  table,
  type Pinning,
} from './common.ts';
import { costsPerUnit } from './cpuprofile.ts';
import { mean, median } from './stats.ts';

/** A measurement is disturbed when everything else on the machine used more CPU than this (cores). */
const OTHER_LIMIT = 0.15;
/** Goals from the product issue. */
const GOAL_RATIO = 0.4;
const GOAL_ROUND_TRIPS = 3;

const PARTS = ['ceiling', 'express-pair', 'checkout'] as const;

const HELP = `usage: npm run bench:checkout -- [options]

  --rounds N            rounds, each over ceiling, express-pair and checkout (default 3)
  --vus N               closed-model VUs for express-pair and checkout (default 64)
  --warmup S            warm-up seconds before each measurement (default 3)
  --duration S          measured seconds per server and round (default 8)
  --ceiling-loops N     concurrent sequential loops driving Redis (default 64)
  --ceiling-duration S  measured seconds of the Redis ceiling (default 6)
  --sellout S           seconds of the sell-out check (default 8; 0 skips it)
  --only a,b            parts to run (${PARTS.join(',')}; default all)
  --mode M              checkout mode: hardened (default) or naive
  --set K=V             checkout override, repeatable (as flashcrowd checkout --set)
  --no-pin              do not pin with taskset
  --budget S            wall-time budget in seconds (default 240): waiting for a quiet
                        machine and redoing disturbed measurements stop when the rest
                        of the plan would not fit any more
  --cpu-prof DIR        run the checkout under node --cpu-prof, profiles into DIR, and
                        print where its CPU per order goes (profiling slows it: do not
                        compare those figures)
  --out FILE            JSON report (default reports/bench-checkout.json)
`;

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    vus: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    'ceiling-loops': { type: 'string', default: '64' },
    'ceiling-duration': { type: 'string', default: '6' },
    sellout: { type: 'string', default: '8' },
    only: { type: 'string' },
    mode: { type: 'string', default: 'hardened' },
    set: { type: 'string', multiple: true, default: [] },
    'no-pin': { type: 'boolean', default: false },
    budget: { type: 'string', default: '240' },
    'cpu-prof': { type: 'string' },
    out: { type: 'string', default: 'reports/bench-checkout.json' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function posInt(name: string, raw: string, min = 1): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min} (got ${raw})`);
    process.exit(2);
  }
  return n;
}

const ROUNDS = posInt('rounds', opt.rounds);
const VUS = posInt('vus', opt.vus);
const WARMUP_S = posInt('warmup', opt.warmup, 0);
const DURATION_S = posInt('duration', opt.duration, 4);
const CEIL_LOOPS = posInt('ceiling-loops', opt['ceiling-loops']);
const CEIL_WARMUP_S = 1;
const CEIL_DURATION_S = posInt('ceiling-duration', opt['ceiling-duration'], 2);
const SELLOUT_S = posInt('sellout', opt.sellout, 0);
const BUDGET_S = posInt('budget', opt.budget);
if (opt.mode !== 'hardened' && opt.mode !== 'naive') {
  console.error(`--mode must be hardened or naive (got ${opt.mode})`);
  process.exit(2);
}
const MODE = opt.mode;
const ONLY = (opt.only?.split(',') ?? [...PARTS]).map((x) => x.trim());
for (const k of ONLY)
  if (!(PARTS as readonly string[]).includes(k)) {
    console.error(`--only: unknown part ${k} (known: ${PARTS.join(', ')})`);
    process.exit(2);
  }
const CPU_PROF_DIR = opt['cpu-prof'] ? resolve(opt['cpu-prof']) : undefined;
const SETS = opt.set;
const OUT = resolve(opt.out);
const LOOP_ENTRY = join(PROJECT_ROOT, 'bench', 'closed-loop.ts');
const SERVER_ENTRY = join(PROJECT_ROOT, 'bench', 'checkout-servers.ts');
const RUN_TS = join(PROJECT_ROOT, 'bin', 'run-ts.js');
const SKU = 'bench';
const WARM_SKU = 'bench-warm';
const BIG_STOCK = 50_000_000;
const PRICE = 1_999;

const t0Run = performance.now();
const log = (msg: string) =>
  console.log(
    `[bench:checkout ${((performance.now() - t0Run) / 1000).toFixed(0).padStart(3)}s] ${msg}`,
  );

// ---------------------------------------------------------------- children and clean-up

interface Child {
  name: string;
  child: ChildProcess;
  pid: number;
  info: Record<string, unknown>;
  lines: Interface;
  /** Send "stats ARG" and read the JSON line it answers. */
  stats<T>(arg?: string): Promise<T>;
}

const live = new Set<ChildProcess>();
let stopRedis: (() => Promise<void>) | undefined;
let redisPid: number | undefined;

function killAll(signal: NodeJS.Signals = 'SIGTERM') {
  for (const c of live) c.kill(signal);
  if (redisPid !== undefined) {
    try {
      process.kill(redisPid, signal);
    } catch {
      /* gone */
    }
  }
}
process.on('exit', () => killAll('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    console.error(`\n[bench:checkout] ${sig}: stopping the servers, Redis and the generator`);
    killAll('SIGTERM');
    setTimeout(() => process.exit(130), 300);
  });

/** Start one part (bench/checkout-servers.ts KIND) on `cpu` (undefined: this runner's CPU). */
async function startChild(
  kind: string,
  options: unknown,
  cpu: number | undefined,
  nodeFlags: string[] = [],
  timeoutMs = 30_000,
): Promise<Child> {
  const nodeArgs = [
    ...nodeFlags,
    RUN_TS,
    SERVER_ENTRY,
    kind,
    JSON.stringify(options),
    '--exit-with-stdin',
  ];
  const [cmd, args] =
    cpu !== undefined
      ? [findTool('taskset')!, ['-c', String(cpu), process.execPath, ...nodeArgs]]
      : [process.execPath, nodeArgs];
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], cwd: PROJECT_ROOT });
  live.add(child);
  child.on('exit', () => live.delete(child));
  const lines = createInterface({ input: child.stdout! });
  const queue: ((line: string) => void)[] = [];
  const next = () => new Promise<string>((r) => queue.push(r));
  lines.on('line', (l) => queue.shift()?.(l));
  const first = await Promise.race([
    next(),
    new Promise<never>((_, rej) => {
      const t = setTimeout(
        () => rej(new Error(`${kind} did not start in ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      t.unref();
      child.once('exit', (code) => rej(new Error(`${kind} exited (code ${code}) before ready`)));
    }),
  ]);
  const info = JSON.parse(first) as Record<string, unknown>;
  return {
    name: kind,
    child,
    pid: Number(info.pid),
    info,
    lines,
    async stats<T>(arg = '') {
      const answer = next();
      child.stdin!.write(`stats ${arg}\n`);
      const v = JSON.parse(await answer) as T & { error?: string };
      if (v.error) throw new Error(`${kind}: ${v.error}`);
      return v;
    },
  };
}

async function stopChild(c: Child): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.child.once('exit', () => r()));
  c.child.kill('SIGTERM');
  const t = setTimeout(() => c.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

// ---------------------------------------------------------------- time budget and quiet machine

const elapsedS = () => (performance.now() - t0Run) / 1000;
const loadCostS = () => WARMUP_S + DURATION_S + 6;
const ceilingCostS = () => CEIL_WARMUP_S + CEIL_DURATION_S + Math.min(2, CEIL_DURATION_S) + 3;
const plan = { loadLeft: 0, ceilingLeft: 0, selloutLeft: 0 };
const plannedLeftS = () =>
  plan.loadLeft * loadCostS() +
  plan.ceilingLeft * ceilingCostS() +
  plan.selloutLeft * (WARMUP_S + SELLOUT_S + 8);
const canSpend = (s: number) => elapsedS() + plannedLeftS() + s <= BUDGET_S;
let quietWaitS = 0;
let redone = 0;

async function waitForQuiet(): Promise<void> {
  let said = false;
  for (;;) {
    const other = await otherLoad(500);
    if (other === undefined || other <= OTHER_LIMIT) return;
    if (!canSpend(1)) {
      log(`  the machine is busy (${cores(other)} cores elsewhere); going on (time budget)`);
      return;
    }
    if (!said) log(`  waiting for other work to finish (${cores(other)} cores busy elsewhere)`);
    said = true;
    quietWaitS += 1;
    await sleep(500);
  }
}

/** Wait for quiet, measure; redo once when other work disturbed it and the budget allows. */
async function measured<T extends { disturbed: boolean; otherCores?: number }>(
  costS: number,
  measure: () => Promise<T>,
  discarded: T[],
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    await waitForQuiet();
    const out = await measure();
    if (!out.disturbed) return out;
    if (attempt >= 1 || !canSpend(costS)) {
      log(`  disturbed (${cores(out.otherCores)} cores busy elsewhere); no retry left`);
      return out;
    }
    log(`  disturbed (${cores(out.otherCores)} cores busy elsewhere); measuring again`);
    redone += 1;
    discarded.push(out);
  }
}

// ---------------------------------------------------------------- CPU sampling

type Pids = Record<string, number | undefined>;
interface Sample {
  t: number;
  cpu: Record<string, number | undefined>;
  machine?: number;
  self: number;
}

function sample(pids: Pids): Sample {
  return {
    t: performance.now(),
    cpu: Object.fromEntries(
      Object.entries(pids).map(([k, p]) => [k, p === undefined ? undefined : cpuSeconds(p)]),
    ),
    machine: machineBusySeconds(),
    self: selfCpuSeconds(),
  };
}

/** Cores each named process used between two samples, and "other" (the rest of the machine, this runner excluded). */
function usage(
  a: Sample,
  b: Sample,
): { wallS: number; cores: Record<string, number>; other?: number } {
  const wallS = (b.t - a.t) / 1000;
  const out: Record<string, number> = {};
  let sum = 0;
  for (const k of Object.keys(a.cpu)) {
    const x = a.cpu[k];
    const y = b.cpu[k];
    if (x === undefined || y === undefined) continue;
    out[k] = (y - x) / wallS;
    sum += out[k]!;
  }
  const other =
    a.machine !== undefined && b.machine !== undefined
      ? Math.max(0, (b.machine - a.machine - (b.self - a.self)) / wallS - sum)
      : undefined;
  return { wallS, cores: out, ...(other !== undefined ? { other } : {}) };
}

// ---------------------------------------------------------------- Redis

let admin: Redis;

/** Calls per command from INFO commandstats. */
async function commandCalls(): Promise<Record<string, number>> {
  const text = await admin.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

function diffCalls(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const d = v - (a[k] ?? 0);
    if (d > 0 && k !== 'info') out[k] = d;
  }
  return out;
}

function checkStock(s: StockSnapshot) {
  return {
    ...s,
    i1: s.available + s.reserved + s.sold === s.initial,
    noOversell: s.available >= 0 && s.sold <= s.initial,
  };
}

/** A fingerprint of the checkout's sources, so a run notices when they change under it. */
function checkoutSourceHash(): string {
  const h = createHash('sha256');
  const dir = join(PROJECT_ROOT, 'checkout');
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|lua)$/.test(e.name)) h.update(e.name).update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex').slice(0, 12);
}

/** Non-2xx answers by route, status and reason, and failed dependency calls, from the checkout's /metrics. */
async function checkoutOutcomes(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  const label = (labels: string, name: string) =>
    new RegExp(`${name}="([^"]*)"`).exec(labels)?.[1] ?? '';
  for (const m of text.matchAll(/^flashcrowd_checkout_(\w+)\{([^}]*)\} (\S+)$/gm)) {
    const [, metric, labels, raw] = m as unknown as [string, string, string, string];
    const v = Number(raw);
    if (!v) continue;
    if (metric === 'requests_total') {
      const status = label(labels, 'status');
      if (!status.startsWith('2'))
        out[`${label(labels, 'route')} ${status} ${label(labels, 'reason')}`] = v;
    } else if (metric === 'dependency_calls_total') {
      const outcome = label(labels, 'outcome');
      if (outcome !== 'ok')
        out[`${label(labels, 'dependency')} ${label(labels, 'operation')} ${outcome}`] = v;
    } else if (metric === 'shed_total') out.shed = v;
  }
  return out;
}

// ---------------------------------------------------------------- load phases

interface Values {
  count?: number;
  rate?: number;
  med?: number;
  avg?: number;
  min?: number;
  max?: number;
  'p(90)'?: number;
  'p(99)'?: number;
}
/** The figures a phase reads (the names bench-checkout's k6 script used to write). */
interface PhaseSummary {
  paid: Values | null;
  refused: Values | null;
  failed: Values | null;
  orderDuration: Values | null;
  reqs: Values | null;
  reqDuration: Values | null;
  allPaid: Values | null;
  allRefused: Values | null;
  allFailed: Values | null;
  allReqs: Values | null;
}

let phaseNo = 0;

/**
 * Closed-model load against `url` (bench/closed-loop.ts: VUS loops of the
 * bench-order journey, on this runner's CPU); sample the CPU of `pids` in the
 * middle of the measured window. The generator's own CPU is its process's, from /proc.
 */
async function loadPhase(
  url: string,
  pids: Pids,
  warmupSku: string | undefined,
  warmupS: number,
  durationS: number,
): Promise<{ summary: PhaseSummary; cores: Record<string, number>; other?: number }> {
  phaseNo += 1;
  const order = (sku: string, prefix: string) =>
    ({
      name: 'bench-order',
      config: { target: url, sku, userPrefix: `r${phaseNo}${prefix}` },
    }) as const;
  const input: ClosedLoopInput = {
    journey: order(SKU, 'm'),
    ...(warmupSku ? { warmupJourney: order(warmupSku, 'w') } : {}),
    loops: VUS,
    warmupS,
    durationS,
  };
  const child = spawn(process.execPath, [RUN_TS, LOOP_ENTRY, JSON.stringify(input)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: PROJECT_ROOT,
  });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  let done = false;
  void exited.then(() => (done = true));
  const samples: (Sample & { wall: number })[] = [];
  while (!done) {
    samples.push({ ...sample(pids), wall: Date.now() });
    await Promise.race([sleep(200), exited]);
  }
  const code = await exited;
  live.delete(child);
  let r: ClosedLoopResult;
  try {
    r = JSON.parse(out.trim().split('\n').pop() ?? '') as ClosedLoopResult;
  } catch {
    throw new Error(`the closed-loop generator wrote no result (exit ${code})`);
  }
  const m = (name: string, from = r.measured) => (from[name] as Values | undefined) ?? null;
  const summary: PhaseSummary = {
    paid: m('orders_paid'),
    refused: m('orders_refused'),
    failed: m('orders_failed'),
    orderDuration: m('order_duration'),
    reqs: m('http_reqs'),
    reqDuration: m('http_req_duration'),
    allPaid: m('orders_paid', r.all),
    allRefused: m('orders_refused', r.all),
    allFailed: m('orders_failed', r.all),
    allReqs: m('http_reqs', r.all),
  };
  // The measured window's middle: 1 s in, to 1 s before its end (as before).
  const a = samples.find((s) => s.wall >= r.windowStartMs + 1000);
  const b = [...samples].reverse().find((s) => s.wall <= r.windowEndMs - 1000);
  if (!a || !b || b.t - a.t < 1000) return { summary, cores: {} };
  const u = usage(a, b);
  // The generator's CPU over its whole window (from its own /proc/self), in cores.
  const gen = r.wallS > 0 ? r.cpuS / r.wallS : undefined;
  const cores = { ...u.cores, ...(gen !== undefined ? { gen } : {}) };
  const other = u.other !== undefined && gen !== undefined ? Math.max(0, u.other - gen) : u.other;
  return { summary, cores, ...(other !== undefined ? { other } : {}) };
}

interface OrderRun {
  kind: 'express-pair' | 'checkout';
  round: number;
  ordersPerS: number;
  paid: number;
  refused: number;
  failed: number;
  /** Create + pay, ms. */
  p50Ms: number;
  p99Ms: number;
  reqP50Ms: number;
  reqP99Ms: number;
  /** Cores used in the measured window, by process. */
  cores: Record<string, number>;
  otherCores?: number;
  /** Server (express-pair or checkout) CPU per order, ms. */
  cpuMsPerOrder?: number;
  ordersPerServerCpuS?: number;
  limit: 'server' | 'generator' | 'both' | 'unclear';
  disturbed: boolean;
  /** Checkout only. */
  roundTripsPerOrder?: number;
  commandsPerOrder?: Record<string, number>;
  stock?: ReturnType<typeof checkStock>;
  /** With --cpu-prof: where the checkout's CPU went, per order. */
  profile?: ProfileCosts;
  /** Checkout only: non-2xx answers and failed gateway calls (its /metrics), whole run. */
  outcomes?: Record<string, number>;
  /** Checkout only: fingerprint of checkout/ sources when it started. */
  checkoutSource?: string;
  /** Checkout only: Redis round trips of orders made one at a time (no load, no failures). */
  probe?: Probe;
}

interface Probe {
  orders: number;
  paid: number;
  roundTripsPerOrder: number;
  commandsPerOrder: Record<string, number>;
}

const PROBE_ORDERS = 200;

/**
 * Orders one at a time through the checkout (create, pay), before the load: the
 * round trips of the happy path exactly, with nothing timing out or retried.
 */
async function probe(co: Child, url: string): Promise<Probe> {
  const post = (path: string, body: unknown) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const trips = async () => (await co.stats<{ roundTrips: number }>()).roundTrips;
  const calls0 = await commandCalls();
  let paid = 0;
  let paidTrips = 0;
  for (let i = 0; i < PROBE_ORDERS; i++) {
    // Each order's own trips: one that was shed or failed does not blur the figure.
    const rt0 = await trips();
    const c = await post('/v1/orders', { user: `probe${i}`, sku: WARM_SKU });
    const { id } = (await c.json()) as { id?: string };
    if (c.status !== 201 || !id) continue;
    const p = await post(`/v1/orders/${id}/pay`, {});
    if (p.status !== 200 || ((await p.json()) as { state?: string }).state !== 'paid') continue;
    paid += 1;
    paidTrips += (await trips()) - rt0;
  }
  const calls = diffCalls(calls0, await commandCalls());
  return {
    orders: PROBE_ORDERS,
    paid,
    roundTripsPerOrder: paid ? paidTrips / paid : NaN,
    // All the probe's commands (background tasks and any unpaid order included) per order made.
    commandsPerOrder: Object.fromEntries(
      Object.entries(calls)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, v / PROBE_ORDERS]),
    ),
  };
}

function limitOf(server?: number, gen?: number): OrderRun['limit'] {
  if (server === undefined || gen === undefined) return 'unclear';
  if (server >= 0.9 && gen >= 0.9) return 'both';
  if (server >= 0.9) return 'server';
  if (gen >= 0.9) return 'generator';
  return 'unclear';
}

function orderRun(
  kind: OrderRun['kind'],
  round: number,
  res: Awaited<ReturnType<typeof loadPhase>>,
): OrderRun {
  const s = res.summary;
  const paid = s.paid?.count ?? 0;
  const ordersPerS = paid / DURATION_S;
  const server = res.cores.server;
  return {
    kind,
    round,
    ordersPerS,
    paid,
    refused: s.refused?.count ?? 0,
    failed: s.failed?.count ?? 0,
    p50Ms: s.orderDuration?.med ?? NaN,
    p99Ms: s.orderDuration?.['p(99)'] ?? NaN,
    reqP50Ms: s.reqDuration?.med ?? NaN,
    reqP99Ms: s.reqDuration?.['p(99)'] ?? NaN,
    cores: res.cores,
    ...(res.other !== undefined ? { otherCores: res.other } : {}),
    ...(server
      ? { cpuMsPerOrder: (server / ordersPerS) * 1000, ordersPerServerCpuS: ordersPerS / server }
      : {}),
    limit: limitOf(server, res.cores.gen),
    disturbed: (res.other ?? 0) > OTHER_LIMIT,
  };
}

async function measureExpress(round: number, pin: Pinning): Promise<OrderRun> {
  const server = await startChild('express-pair', {}, pin.serverCpu);
  try {
    const res = await loadPhase(
      String(server.info.url),
      { server: server.pid },
      undefined,
      WARMUP_S,
      DURATION_S,
    );
    return orderRun('express-pair', round, res);
  } finally {
    await stopChild(server);
  }
}

interface Mocks {
  bank: string;
  wallet: string;
  coupon: string;
  pid: number;
}

let checkoutsStarted = 0;

async function startCheckoutChild(
  mocks: Mocks,
  redisUrl: string,
  pin: Pinning,
  stock: number,
  profile = false,
) {
  await admin.flushall();
  checkoutsStarted += 1;
  const source = checkoutSourceHash();
  sourcesSeen.add(source);
  // One folder per checkout (main thread and tsx's loader worker each write a file).
  const profDir =
    profile && CPU_PROF_DIR
      ? join(CPU_PROF_DIR, `${String(checkoutsStarted).padStart(2, '0')}-checkout`)
      : undefined;
  const co = await startChild(
    'checkout',
    {
      redisUrl,
      bank: mocks.bank,
      wallet: mocks.wallet,
      coupon: mocks.coupon,
      mode: MODE,
      set: SETS,
    },
    pin.serverCpu,
    profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
  );
  const url = String(co.info.url);
  const sale = await fetch(`${url}/admin/sale`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      skus: [
        { id: SKU, price: PRICE, stock, limit: 1 },
        // The sell-out's warm-up buys this one.
        { id: WARM_SKU, price: PRICE, stock: BIG_STOCK, limit: 1 },
      ],
    }),
  });
  if (sale.status !== 201)
    throw new Error(`seeding the sale failed: ${sale.status} ${await sale.text()}`);
  return { co, url, profDir, source };
}

/** Fingerprints of checkout/ seen over the run: more than one means its code changed mid-run. */
const sourcesSeen = new Set<string>();

interface ProfileCosts {
  file: string;
  /** Busy CPU per paid order, µs, from the profile (start-up and warm-up left out). */
  busyUsPerOrder: number;
  modules: { name: string; usPerOrder: number }[];
  functions: { name: string; usPerOrder: number }[];
  inclusive: { name: string; usPerOrder: number }[];
}

/** Per-order CPU of the server from its main-thread profile (see costsPerUnit). */
function profileCosts(dir: string, orders: number): ProfileCosts | undefined {
  const c = costsPerUnit(dir, orders, { top: 40, skipMs: WARMUP_S * 1000 });
  return (
    c && {
      file: c.file,
      busyUsPerOrder: c.busyUs,
      modules: c.modules.map((m) => ({ name: m.name, usPerOrder: m.us })),
      functions: c.functions.map((m) => ({ name: m.name, usPerOrder: m.us })),
      inclusive: c.inclusive.map((m) => ({ name: m.name, usPerOrder: m.us })),
    }
  );
}

let checkoutFeatures: unknown;

async function measureCheckout(
  round: number,
  pin: Pinning,
  mocks: Mocks,
  redisUrl: string,
  store: Store,
): Promise<OrderRun> {
  const { co, url, profDir, source } = await startCheckoutChild(
    mocks,
    redisUrl,
    pin,
    BIG_STOCK,
    true,
  );
  checkoutFeatures ??= co.info.features;
  let run: OrderRun | undefined;
  let run0: Probe | undefined;
  try {
    run0 = await probe(co, url);
    const rt0 = (await co.stats<{ roundTrips: number }>()).roundTrips;
    const calls0 = await commandCalls();
    const res = await loadPhase(
      url,
      { server: co.pid, redis: redisPid, mocks: mocks.pid },
      undefined,
      WARMUP_S,
      DURATION_S,
    );
    const calls = diffCalls(calls0, await commandCalls());
    const rt = (await co.stats<{ roundTrips: number }>()).roundTrips - rt0;
    const stock = checkStock(await store.snapshot(SKU));
    run = orderRun('checkout', round, res);
    run.probe = run0;
    run.checkoutSource = source;
    run.outcomes = await checkoutOutcomes(url);
    // Per paid order over the whole load run (warm-up included). Orders that failed add their
    // trips without adding a paid order, so with failures this is an upper bound.
    const s = res.summary;
    const orders = s.allPaid?.count ?? 0;
    run.roundTripsPerOrder = orders ? rt / orders : NaN;
    run.commandsPerOrder = Object.fromEntries(
      Object.entries(calls)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, orders ? v / orders : NaN]),
    );
    run.stock = stock;
    if (!stock.i1 || !stock.noOversell) log(`  INVARIANT BROKEN: ${JSON.stringify(stock)}`);
    // The generator counts an order paid when the pay call answered 200 paid. A pay whose bank call
    // timed out answers 202 pending; the reconciler confirms its capture later, so sold
    // may exceed the generator's count by those (never the other way round).
    const genPaid = s.allPaid?.count ?? 0;
    if (stock.sold < genPaid) log(`  BROKEN: sold ${stock.sold} < ${genPaid} orders answered paid`);
    else if (stock.sold > genPaid)
      log(
        `  note: sold ${stock.sold} = ${genPaid} answered paid + ${stock.sold - genPaid} answered ` +
          'pending (bank call timed out) whose capture the reconciler confirmed',
      );
    return run;
  } finally {
    await stopChild(co);
    if (profDir && run) {
      // Paid orders after the warm-up, and those still in the tail of the run.
      const s = run.paid;
      const p = profileCosts(profDir, s);
      if (p) run.profile = p;
    }
  }
}

// ---------------------------------------------------------------- Redis ceiling

interface CeilingRun extends CeilingResult {
  round: number;
  redisCores?: number;
  driverCores?: number;
  otherCores?: number;
  disturbed: boolean;
  stock: ReturnType<typeof checkStock>;
}

async function measureCeiling(round: number, pin: Pinning, redisUrl: string): Promise<CeilingRun> {
  await admin.flushall();
  const store = new Store(admin, 'fcb');
  await store.seedSale([{ id: 'ceil', name: 'ceil', price: PRICE, stock: BIG_STOCK, limit: 1 }]);
  const driver = await startChild(
    'ceiling',
    {
      redisUrl,
      sku: 'ceil',
      loops: CEIL_LOOPS,
      warmupS: CEIL_WARMUP_S,
      durationS: CEIL_DURATION_S,
    },
    pin.serverCpu,
  );
  try {
    const pids = { redis: redisPid, driver: driver.pid };
    const result = driver.stats<CeilingResult>();
    // Sample inside the measured window: 0.5 s after the warm-up to 0.5 s before the end.
    await sleep((CEIL_WARMUP_S + 0.5) * 1000);
    const a = sample(pids);
    await sleep((CEIL_DURATION_S - 1) * 1000);
    const b = sample(pids);
    const r = await result;
    const u = usage(a, b);
    return {
      ...r,
      round,
      redisCores: u.cores.redis,
      driverCores: u.cores.driver,
      ...(u.other !== undefined ? { otherCores: u.other } : {}),
      disturbed: (u.other ?? 0) > OTHER_LIMIT,
      stock: checkStock(await store.snapshot('ceil')),
    };
  } finally {
    await stopChild(driver);
  }
}

// ---------------------------------------------------------------- sell-out

interface SelloutRun {
  stock: number;
  durationS: number;
  paid: number;
  refused: number;
  failed: number;
  /** Paid orders beyond the stock (must be 0). */
  oversold: number;
  snapshot: ReturnType<typeof checkStock>;
  ordersPerS: number;
  outcomes: Record<string, number>;
  checkoutSource: string;
  soldOut: boolean;
  ok: boolean;
}

async function sellout(
  pin: Pinning,
  mocks: Mocks,
  redisUrl: string,
  store: Store,
  rate: number,
): Promise<SelloutRun> {
  // About half the orders the best rate would take in the window: it sells out midway.
  const stock = Math.max(100, Math.round(rate * SELLOUT_S * 0.5));
  const { co, url, source } = await startCheckoutChild(mocks, redisUrl, pin, stock);
  try {
    // Warm up on another SKU (a cold checkout is slow for its first seconds), then sell out SKU.
    const res = await loadPhase(url, { server: co.pid }, WARM_SKU, WARMUP_S, SELLOUT_S);
    const s = res.summary;
    const paid = s.paid?.count ?? 0;
    const outcomes = await checkoutOutcomes(url);
    // Let in-flight orders settle (the generator waited for its journeys; belt and braces).
    await sleep(200);
    const snapshot = checkStock(await store.snapshot(SKU));
    const orders = await store.allOrders(SKU);
    const paidInRedis = orders.filter((o) => o.state === 'paid').length;
    return {
      stock,
      durationS: SELLOUT_S,
      paid,
      refused: s.refused?.count ?? 0,
      failed: s.failed?.count ?? 0,
      outcomes,
      checkoutSource: source,
      oversold: Math.max(0, paid - stock, snapshot.sold - stock, paidInRedis - stock),
      snapshot,
      ordersPerS: paid / SELLOUT_S,
      soldOut: snapshot.available === 0,
      // No oversell and I1; every unit sold belongs to one paid order. (Orders that failed
      // may leave units reserved or back in stock: then it did not sell out.)
      ok:
        snapshot.i1 &&
        snapshot.noOversell &&
        paid <= stock &&
        paidInRedis === snapshot.sold &&
        snapshot.sold >= paid,
    };
  } finally {
    await stopChild(co);
  }
}

// ---------------------------------------------------------------- report

interface Summary {
  kind: OrderRun['kind'];
  meanOrdersPerS: number;
  rounds: number[];
  p50Ms: number;
  p99Ms: number;
  reqP50Ms: number;
  reqP99Ms: number;
  cpuMsPerOrder?: number;
  ordersPerServerCpuS?: number;
  cores: Record<string, number>;
  otherCores?: number;
  failed: number;
  refused: number;
  disturbedRounds: number;
  limits: OrderRun['limit'][];
  roundTripsPerOrder?: number;
  commandsPerOrder?: Record<string, number>;
  /** Orders one at a time (the happy path, exactly). */
  probeRoundTripsPerOrder?: number;
  probeCommandsPerOrder?: Record<string, number>;
}

const meanIfAll = (xs: (number | undefined)[]) =>
  xs.length > 0 && xs.every((x) => x !== undefined && Number.isFinite(x))
    ? mean(xs as number[])
    : undefined;

function summarise(runs: OrderRun[]): Summary[] {
  return (['express-pair', 'checkout'] as const)
    .filter((k) => runs.some((r) => r.kind === k))
    .map((kind) => {
      const rs = runs.filter((r) => r.kind === kind).sort((a, b) => a.round - b.round);
      const procs = [...new Set(rs.flatMap((r) => Object.keys(r.cores)))];
      const commands = [...new Set(rs.flatMap((r) => Object.keys(r.commandsPerOrder ?? {})))];
      return {
        kind,
        meanOrdersPerS: mean(rs.map((r) => r.ordersPerS)),
        rounds: rs.map((r) => r.ordersPerS),
        p50Ms: mean(rs.map((r) => r.p50Ms)),
        p99Ms: mean(rs.map((r) => r.p99Ms)),
        reqP50Ms: mean(rs.map((r) => r.reqP50Ms)),
        reqP99Ms: mean(rs.map((r) => r.reqP99Ms)),
        cpuMsPerOrder: meanIfAll(rs.map((r) => r.cpuMsPerOrder)),
        ordersPerServerCpuS: meanIfAll(rs.map((r) => r.ordersPerServerCpuS)),
        cores: Object.fromEntries(
          procs.map((p) => [p, meanIfAll(rs.map((r) => r.cores[p])) ?? NaN]),
        ),
        otherCores: meanIfAll(rs.map((r) => r.otherCores)),
        failed: rs.reduce((s, r) => s + r.failed, 0),
        refused: rs.reduce((s, r) => s + r.refused, 0),
        disturbedRounds: rs.filter((r) => r.disturbed).length,
        limits: rs.map((r) => r.limit),
        ...(kind === 'checkout'
          ? {
              roundTripsPerOrder: meanIfAll(rs.map((r) => r.roundTripsPerOrder)),
              commandsPerOrder: Object.fromEntries(
                commands.map((c) => [c, mean(rs.map((r) => r.commandsPerOrder?.[c] ?? 0))]),
              ),
              probeRoundTripsPerOrder: meanIfAll(rs.map((r) => r.probe?.roundTripsPerOrder)),
              probeCommandsPerOrder: Object.fromEntries(
                [...new Set(rs.flatMap((r) => Object.keys(r.probe?.commandsPerOrder ?? {})))].map(
                  (c) => [c, mean(rs.map((r) => r.probe?.commandsPerOrder[c] ?? 0))],
                ),
              ),
            }
          : {}),
      };
    });
}

async function main() {
  // The CPUs this run may use, before pinning narrows this runner to one of them.
  const allowed = allowedCpus();
  const pin = setUpPinning(opt['no-pin']);
  const machine = {
    nproc: cpus().length,
    allowedCpus: allowed,
    cpuModel: cpuModel(),
    node: process.version,
    generator: `bench/closed-loop.ts (flashcrowd's engine HTTP client, bench-order journey), ${VUS} loops`,
    redis: (
      spawnSync(findTool('redis-server') ?? 'redis-server', ['--version'], { encoding: 'utf8' })
        .stdout ?? ''
    ).trim(),
    pinning: pin,
    placement: pin.pinned
      ? `CPU ${pin.loadCpu}: the generator, this runner, redis-server and the mocks; CPU ${pin.serverCpu}: the measured server (express-pair or checkout) alone, or the Redis ceiling's driver`
      : 'unpinned: every process floats over all CPUs',
  };
  log(`${machine.cpuModel}, ${machine.nproc} CPUs; node ${machine.node}; ${machine.redis}`);
  log(machine.placement);

  // Redis and the mocks inherit this runner's CPU (the generator's): they must run somewhere.
  log('starting redis-server and the mocks (faultless)');
  const redis = await startLocalRedis();
  stopRedis = () => redis.close();
  redisPid = redis.process.pid;
  admin = new Redis(redis.url, { maxRetriesPerRequest: 2 });
  const store = new Store(admin, 'fc');
  const mocksChild = await startChild('mocks', {}, undefined);
  const mocks: Mocks = {
    bank: String(mocksChild.info.bank),
    wallet: String(mocksChild.info.wallet),
    coupon: String(mocksChild.info.coupon),
    pid: mocksChild.pid,
  };

  const parts = PARTS.filter((p) => ONLY.includes(p));
  plan.loadLeft = ROUNDS * parts.filter((p) => p !== 'ceiling').length;
  plan.ceilingLeft = ONLY.includes('ceiling') ? ROUNDS : 0;
  plan.selloutLeft = SELLOUT_S > 0 ? 1 : 0;
  const runs: OrderRun[] = [];
  const ceilings: CeilingRun[] = [];
  const discarded: (OrderRun | CeilingRun)[] = [];
  const total = ROUNDS * parts.length;
  let n = 0;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      // ABC then CBA: a drift over the run hits every part alike.
      for (const part of round % 2 === 1 ? parts : [...parts].reverse()) {
        n += 1;
        if (part === 'ceiling') {
          log(
            `${n}/${total} Redis ceiling (round ${round}): ${CEIL_LOOPS} loops x reserve+start_payment+confirm, ${CEIL_WARMUP_S} s + ${CEIL_DURATION_S} s`,
          );
          plan.ceilingLeft -= 1;
          const c = await measured(
            ceilingCostS(),
            () => measureCeiling(round, pin, redis.url),
            discarded as CeilingRun[],
          );
          ceilings.push(c);
          log(
            `  ${fmtInt(c.scriptsPerS)} scripts/s = ${fmtInt(c.ordersPerS)} orders/s (trivial script ${fmtInt(c.trivialScriptsPerS)}/s); CPU redis ${cores(c.redisCores)} driver ${cores(c.driverCores)} other ${cores(c.otherCores)}` +
              (Object.keys(c.failures).length ? `; failures ${JSON.stringify(c.failures)}` : '') +
              (c.disturbed ? ' (DISTURBED)' : ''),
          );
          continue;
        }
        log(
          `${n}/${total} ${part} (round ${round}): ${VUS} VUs, create + pay, ${WARMUP_S} s warm-up + ${DURATION_S} s`,
        );
        plan.loadLeft -= 1;
        const r = await measured(
          loadCostS(),
          () =>
            part === 'express-pair'
              ? measureExpress(round, pin)
              : measureCheckout(round, pin, mocks, redis.url, store),
          discarded as OrderRun[],
        );
        runs.push(r);
        log(
          `  ${fmtInt(r.ordersPerS)} orders/s (${r.failed} failed), p50 ${r.p50Ms.toFixed(1)} ms p99 ${r.p99Ms.toFixed(1)} ms` +
            (r.cpuMsPerOrder !== undefined ? `, ${r.cpuMsPerOrder.toFixed(3)} CPU-ms/order` : '') +
            (r.roundTripsPerOrder !== undefined
              ? `, ${r.roundTripsPerOrder.toFixed(2)} round trips/order` +
                (r.probe ? ` (${r.probe.roundTripsPerOrder.toFixed(2)} one at a time)` : '')
              : '') +
            `; CPU ${Object.entries(r.cores)
              .map(([k, v]) => `${k} ${cores(v)}`)
              .join(' ')} other ${cores(r.otherCores)} -> limit: ${r.limit}` +
            (r.disturbed ? ' (DISTURBED)' : ''),
        );
        if (r.outcomes && Object.keys(r.outcomes).length)
          log(`  non-2xx and failed gateway calls (whole run): ${JSON.stringify(r.outcomes)}`);
      }
    }
    const sums = summarise(runs);
    const co = sums.find((s) => s.kind === 'checkout');
    const ex = sums.find((s) => s.kind === 'express-pair');
    let sold: SelloutRun | undefined;
    if (SELLOUT_S > 0 && co) {
      plan.selloutLeft = 0;
      const best = Math.max(...runs.filter((r) => r.kind === 'checkout').map((r) => r.ordersPerS));
      log(
        `sell-out: ${VUS} VUs for ${SELLOUT_S} s against stock sized to sell out midway (best rate ${fmtInt(best)} orders/s)`,
      );
      await waitForQuiet();
      sold = await sellout(pin, mocks, redis.url, store, best);
      log(
        `  stock ${sold.stock}: ${sold.paid} paid, ${sold.refused} refused sold out, ${sold.failed} failed; ` +
          `snapshot available ${sold.snapshot.available} reserved ${sold.snapshot.reserved} sold ${sold.snapshot.sold}; ` +
          `oversold ${sold.oversold} -> ${sold.ok ? 'ok' : 'BROKEN'}${sold.soldOut ? '' : ' (did NOT sell out)'}`,
      );
      if (Object.keys(sold.outcomes).length)
        log(`  non-2xx and failed gateway calls: ${JSON.stringify(sold.outcomes)}`);
    }
    if (sourcesSeen.size > 1)
      log(
        `WARNING: checkout/ changed during the run (${sourcesSeen.size} versions measured): the rounds measured different code`,
      );
    report(pin, machine, runs, sums, ceilings, discarded, sold, co, ex);
  } finally {
    await stopChild(mocksChild);
    admin.disconnect();
    await stopRedis?.();
    redisPid = undefined;
  }
}

function ceilingLimit(redis?: number, driver?: number): string {
  if (redis === undefined || driver === undefined) return 'unclear';
  if (redis >= 0.8 && driver >= 0.8) return 'both (Redis and the Node driver each near one core)';
  if (redis >= 0.9) return 'redis';
  if (driver >= 0.9) return 'the Node driver';
  return 'unclear';
}

function report(
  pin: Pinning,
  machine: Record<string, unknown>,
  runs: OrderRun[],
  sums: Summary[],
  ceilings: CeilingRun[],
  discarded: unknown[],
  sold: SelloutRun | undefined,
  co: Summary | undefined,
  ex: Summary | undefined,
) {
  const ceil = ceilings.length
    ? {
        meanScriptsPerS: mean(ceilings.map((c) => c.scriptsPerS)),
        meanOrdersPerS: mean(ceilings.map((c) => c.ordersPerS)),
        rounds: ceilings.map((c) => c.ordersPerS),
        redisCores: meanIfAll(ceilings.map((c) => c.redisCores)),
        driverCores: meanIfAll(ceilings.map((c) => c.driverCores)),
        otherCores: meanIfAll(ceilings.map((c) => c.otherCores)),
        redisUsPerScript: meanIfAll(
          ceilings.map((c) =>
            c.redisCores === undefined ? undefined : (c.redisCores / c.scriptsPerS) * 1e6,
          ),
        ),
        trivialScriptsPerS: mean(ceilings.map((c) => c.trivialScriptsPerS)),
      }
    : undefined;
  // This machine's speed drifts within a minute (shared host): compare the two servers
  // within each round (measured seconds apart), then take the median over rounds.
  const perRound: { round: number; value: number; perCpu?: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const c = runs.find((r) => r.kind === 'checkout' && r.round === round);
    const e = runs.find((r) => r.kind === 'express-pair' && r.round === round);
    if (!c || !e) continue;
    perRound.push({
      round,
      value: c.ordersPerS / e.ordersPerS,
      ...(c.ordersPerServerCpuS && e.ordersPerServerCpuS
        ? { perCpu: c.ordersPerServerCpuS / e.ordersPerServerCpuS }
        : {}),
    });
  }
  const ratio = perRound.length ? median(perRound.map((r) => r.value)) : undefined;
  const perCpus = perRound.map((r) => r.perCpu).filter((x): x is number => x !== undefined);
  const costRatio =
    perCpus.length === perRound.length && perCpus.length ? median(perCpus) : undefined;
  const ratioOfMeans = co && ex ? co.meanOrdersPerS / ex.meanOrdersPerS : undefined;
  const goals = {
    ordersVsExpress: {
      goal: `>= ${GOAL_RATIO}`,
      value: ratio,
      perRound,
      perCpuValue: costRatio,
      ratioOfMeans,
      met: ratio !== undefined ? ratio >= GOAL_RATIO : undefined,
    },
    // Judged on the orders made one at a time: the happy path exactly. Under load, orders
    // whose bank call timed out add the reconciler's trips (reported beside it).
    roundTripsPerOrder: {
      goal: `<= ${GOAL_ROUND_TRIPS}`,
      value: co?.probeRoundTripsPerOrder,
      underLoad: co?.roundTripsPerOrder,
      met:
        co?.probeRoundTripsPerOrder !== undefined
          ? co.probeRoundTripsPerOrder <= GOAL_ROUND_TRIPS + 1e-9
          : undefined,
    },
    zeroOversell: {
      goal: '0 oversold, I1 at every snapshot',
      value: sold?.oversold,
      met:
        (sold ? sold.ok && sold.oversold === 0 : true) &&
        runs.every((r) => !r.stock || (r.stock.i1 && r.stock.noOversell)),
    },
  };
  const per = (x?: number) => (x === undefined ? 'n/a' : x.toFixed(3));
  const lines: string[] = [
    '',
    `flashcrowd bench:checkout (${pin.note}; checkout ${MODE}${SETS.length ? ` ${SETS.join(' ')}` : ''})`,
    '',
    `Orders: closed model, ${VUS} VUs, ${WARMUP_S} s warm-up + ${DURATION_S} s measured, ${ROUNDS} round(s); an order = POST /v1/orders + POST /v1/orders/:id/pay -> paid.`,
    'CPU columns: cores used in the middle of the measured window; "other" is everything else on the machine.',
    '',
    table(
      [
        'server',
        'orders/s',
        'per round',
        'p50 ms',
        'p99 ms',
        'req p50',
        'req p99',
        'CPU ms/order',
        'failed',
        'CPU server',
        'generator',
        'redis',
        'mocks',
        'other',
        'limit',
      ],
      sums.map((s) => [
        s.kind,
        fmtInt(s.meanOrdersPerS),
        s.rounds.map(fmtInt).join(' / '),
        s.p50Ms.toFixed(2),
        s.p99Ms.toFixed(2),
        s.reqP50Ms.toFixed(2),
        s.reqP99Ms.toFixed(2),
        per(s.cpuMsPerOrder),
        String(s.failed),
        cores(s.cores.server),
        cores(s.cores.gen),
        s.cores.redis !== undefined ? cores(s.cores.redis) : '-',
        s.cores.mocks !== undefined ? cores(s.cores.mocks) : '-',
        cores(s.otherCores) + (s.disturbedRounds ? '!' : ''),
        [...new Set(s.limits)].join(','),
      ]),
    ),
    '',
  ];
  if (ceil)
    lines.push(
      `Redis ceiling: ${CEIL_LOOPS} concurrent loops, each awaiting reserve, start_payment, confirm in turn (no pipelining), ${CEIL_DURATION_S} s x ${ceilings.length}:`,
      `  ${fmtInt(ceil.meanScriptsPerS)} scripts/s = ${fmtInt(ceil.meanOrdersPerS)} orders/s (per round ${ceil.rounds.map(fmtInt).join(' / ')}); ` +
        `CPU redis ${cores(ceil.redisCores)}, driver ${cores(ceil.driverCores)}, other ${cores(ceil.otherCores)} ` +
        `-> limit: ${ceilingLimit(ceil.redisCores, ceil.driverCores)}`,
      `  Redis CPU per script ${ceil.redisUsPerScript === undefined ? 'n/a' : ceil.redisUsPerScript.toFixed(1)} µs; ` +
        `calibration: \`return 1\` as a script, same loops: ${fmtInt(ceil.trivialScriptsPerS)} scripts/s`,
      '',
    );
  const cmds = (c?: Record<string, number>) =>
    Object.entries(c ?? {})
      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
      .join(', ');
  if (co?.commandsPerOrder)
    lines.push(
      `Redis round trips per checkout order (Store counter; INFO commandstats counts the commands inside scripts too):`,
      `  orders one at a time (${PROBE_ORDERS} per checkout run; per paid order): ${per(co.probeRoundTripsPerOrder)}; commandstats per order: ${cmds(co.probeCommandsPerOrder)}`,
      `  under load, per paid order: ${per(co.roundTripsPerOrder)}; commandstats: ${cmds(co.commandsPerOrder)}`,
      '',
    );
  const profiled = runs.filter((r) => r.profile);
  if (profiled.length) {
    const avg = (pick: (p: ProfileCosts) => { name: string; usPerOrder: number }[], name: string) =>
      mean(profiled.map((r) => pick(r.profile!).find((x) => x.name === name)?.usPerOrder ?? 0));
    const top = (pick: (p: ProfileCosts) => { name: string; usPerOrder: number }[], n: number) =>
      [...new Set(profiled.flatMap((r) => pick(r.profile!).map((x) => x.name)))]
        .map((name) => [name, avg(pick, name)] as const)
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([name, v]) => [name, v.toFixed(1)]);
    lines.push(
      `Checkout CPU per order from the profiles (µs; warm-up left out; profiling itself adds some): ` +
        `${mean(profiled.map((r) => r.profile!.busyUsPerOrder)).toFixed(0)} µs busy`,
      '',
      table(
        ['module (self time)', 'µs/order'],
        top((p) => p.modules, 20),
      ),
      '',
      table(
        ['function (self time)', 'µs/order'],
        top((p) => p.functions, 25),
      ),
      '',
      table(
        ['function (inclusive)', 'µs/order'],
        top((p) => p.inclusive, 40),
      ),
      '',
    );
  }
  lines.push(
    table(
      ['goal', 'target', 'measured', 'met'],
      [
        [
          'checkout orders/s vs express-pair pairs/s (median of rounds)',
          goals.ordersVsExpress.goal,
          `${per(ratio)} (rounds ${perRound.map((r) => r.value.toFixed(3)).join(' / ')}; per CPU-s ${per(costRatio)})`,
          ratio === undefined ? 'n/a' : ratio >= GOAL_RATIO ? 'yes' : 'NO',
        ],
        [
          'Redis round trips per order',
          goals.roundTripsPerOrder.goal,
          `${per(co?.probeRoundTripsPerOrder)} (under load ${per(co?.roundTripsPerOrder)})`,
          goals.roundTripsPerOrder.met === undefined
            ? 'n/a'
            : goals.roundTripsPerOrder.met
              ? 'yes'
              : 'NO',
        ],
        [
          'oversell at the highest rate',
          '0',
          sold
            ? `${sold.oversold} (stock ${sold.stock}, ${sold.paid} paid, ${sold.soldOut ? 'sold out' : 'NOT sold out'})`
            : 'not run',
          goals.zeroOversell.met ? 'yes' : 'NO',
        ],
        ...(ceil && co
          ? [
              [
                'checkout orders/s vs Redis ceiling orders/s',
                '',
                per(co.meanOrdersPerS / ceil.meanOrdersPerS),
                '',
              ],
            ]
          : []),
      ],
    ),
    '',
    `wall time ${elapsedS().toFixed(0)} s (budget ${BUDGET_S} s); ${redone} disturbed measurement(s) redone, ${quietWaitS.toFixed(0)} s waiting for other work` +
      (CPU_PROF_DIR ? '; checkout PROFILED (figures not comparable)' : ''),
  );
  console.log(lines.join('\n'));

  const out = {
    generatedAt: new Date().toISOString(),
    command: `npm run bench:checkout${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine,
    parameters: {
      rounds: ROUNDS,
      vus: VUS,
      warmupS: WARMUP_S,
      durationS: DURATION_S,
      ceilingLoops: CEIL_LOOPS,
      ceilingWarmupS: CEIL_WARMUP_S,
      ceilingDurationS: CEIL_DURATION_S,
      selloutS: SELLOUT_S,
      mode: MODE,
      set: SETS,
      features: checkoutFeatures,
      otherCoresLimit: OTHER_LIMIT,
      budgetS: BUDGET_S,
      cpuProfiling: CPU_PROF_DIR !== undefined,
    },
    goals,
    orders: { runs, servers: sums },
    ceiling: { runs: ceilings, ...ceil },
    sellout: sold,
    discarded,
    checkoutSources: [...sourcesSeen],
    wallS: elapsedS(),
    quietWaitS,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
  log(`wrote ${relative(process.cwd(), OUT)}`);
}

main().catch((e: unknown) => {
  console.error(
    `[bench:checkout] failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
  );
  killAll('SIGTERM');
  process.exitCode = 1;
});
