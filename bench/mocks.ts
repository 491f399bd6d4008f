// `npm run bench:mocks`: the mock bank's throughput against a bare node:http
// server (the ceiling) and a bare express app (the floor the bank stands on),
// all answering the same payment JSON, in one run; then the injected latency
// quantiles the bank shows under 1,000 req/s against its profile's.
// docs/PERFORMANCE.md explains the method and records the figures.
//
//   npm run bench:mocks                      the full run (about 4 minutes)
//   npm run bench:mocks -- --help            options
//
// The load generator runs on one core, each server (one child process at a time) on
// another, with taskset; without taskset or a second core the run is unpinned and says
// so. Generators (k6 until 2026-12): wrk (Debian; closed model, the throughput and
// paired phases) and flashcrowd's own engine (open model, the latency phases; the
// bench-post journey of scenarios/lib/bench-journeys.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ChaosEngine } from '../mock-gateways/chaos/engine.ts';
import { latencyQuantile } from '../mock-gateways/chaos/latency.ts';
import type { LatencySpec } from '../mock-gateways/chaos/profile.ts';
import { createBank } from '../mock-gateways/bank/service.ts';
import { createInterface } from 'node:readline';
import type { EngineChildInput, EngineChildResult, EngineTick } from './engine-child.ts';
import { findTool, PROJECT_ROOT } from '../harness/tools.ts';
import {
  BENCH_SEED,
  PROFILE_CHAOS,
  PROFILE_LATENCY,
  PROFILE_NONE,
  type ServerKind,
} from './profiles.ts';
import { costsPerUnit } from './cpuprofile.ts';
import { mean, median, pctDev, percentileSorted, quantileInterval, zFor } from './stats.ts';
import {
  allowedCpus,
  cores,
  cpuModel,
  cpuSeconds,
  fmtInt,
  machineBusySeconds,
  otherLoad,
  pct,
  selfCpuSeconds,
  setUpPinning,
  signed,
  sleep,
  stopChild,
  table,
  type Pinning,
} from './common.ts';

const THROUGHPUT_KINDS = ['node-http', 'express', 'bank', 'bank-chaos'] as const;
type ThroughputKind = (typeof THROUGHPUT_KINDS)[number];

/** A measurement is disturbed when everything else on the machine used more CPU than this (cores). */
const OTHER_LIMIT = 0.15;

const HELP = `usage: npm run bench:mocks -- [options]

  --rounds N            throughput rounds, each over all servers (default 3)
  --vus N               closed-model VUs in the throughput phase (default 128)
  --warmup S            warm-up seconds before each measurement (default 2)
  --duration S          measured seconds per server and round (default 5)
  --only a,b            throughput servers to run (${THROUGHPUT_KINDS.join(',')})
  --rate N              latency phase arrival rate, req/s (default 1000)
  --latency-warmup S    latency phase warm-up seconds (default 5)
  --latency-duration S  latency phase measured seconds (default 30)
  --skip-throughput     latency phase only
  --skip-latency        no latency phase
  --pair-rounds N       paired rounds (two servers sharing the server core at once)
                        per pair: bank+express, bank-chaos+express (default 3; 0: none)
  --no-pin              do not pin with taskset
  --retries N           measurements to redo when other work on the machine disturbs
                        them (more than ${OTHER_LIMIT} cores busy elsewhere; default 8)
  --budget S            soft wall-time budget in seconds (default 240): waiting for a quiet
                        machine and redoing disturbed measurements stop when the rest of
                        the plan would not fit any more
  --cpu-prof DIR        run the servers under node --cpu-prof (profiles into DIR) and
                        print their CPU per answer by module (profiling slows them:
                        do not quote those req/s)
  --out FILE            JSON report (default reports/bench-mocks.json)
`;

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    vus: { type: 'string', default: '128' },
    warmup: { type: 'string', default: '2' },
    duration: { type: 'string', default: '5' },
    only: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    'latency-warmup': { type: 'string', default: '5' },
    'latency-duration': { type: 'string', default: '30' },
    'skip-throughput': { type: 'boolean', default: false },
    'skip-latency': { type: 'boolean', default: false },
    'pair-rounds': { type: 'string', default: '3' },
    'no-pin': { type: 'boolean', default: false },
    retries: { type: 'string', default: '8' },
    budget: { type: 'string', default: '240' },
    'cpu-prof': { type: 'string' },
    out: { type: 'string', default: 'reports/bench-mocks.json' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function posInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer (got ${raw})`);
    process.exit(2);
  }
  return n;
}

const ROUNDS = posInt('rounds', opt.rounds);
const VUS = posInt('vus', opt.vus);
const WARMUP_S = posInt('warmup', opt.warmup);
const DURATION_S = posInt('duration', opt.duration);
const RATE = posInt('rate', opt.rate);
const LAT_WARMUP_S = posInt('latency-warmup', opt['latency-warmup']);
const LAT_DURATION_S = posInt('latency-duration', opt['latency-duration']);
const ONLY = (opt.only?.split(',') ?? [...THROUGHPUT_KINDS]).map((s) => s.trim());
for (const k of ONLY)
  if (!(THROUGHPUT_KINDS as readonly string[]).includes(k)) {
    console.error(`--only: unknown server ${k} (known: ${THROUGHPUT_KINDS.join(', ')})`);
    process.exit(2);
  }
const PAIR_ROUNDS = opt['pair-rounds'] === '0' ? 0 : posInt('pair-rounds', opt['pair-rounds']);
const RETRIES = opt.retries === '0' ? 0 : posInt('retries', opt.retries);
const BUDGET_S = posInt('budget', opt.budget);
const CPU_PROF_DIR = opt['cpu-prof'] ? resolve(opt['cpu-prof']) : undefined;
const OUT = resolve(opt.out);
const ENGINE_CHILD = join(PROJECT_ROOT, 'bench', 'engine-child.ts');
/** Every request's body (the one the k6 script this replaced sent). */
const PAYMENT_BODY = JSON.stringify({
  orderId: 'bench-order',
  amount: 1999,
  currency: 'CNY',
  card: { number: '4242424242424242' },
});
const SERVER_ENTRY = join(PROJECT_ROOT, 'bench', 'servers.ts');
const RUN_TS = join(PROJECT_ROOT, 'bin', 'run-ts.js');

const t0Run = performance.now();
const log = (msg: string) =>
  console.log(`[bench ${((performance.now() - t0Run) / 1000).toFixed(0).padStart(3)}s] ${msg}`);

// ---------------------------------------------------------------- machine and pinning

/** The commit measured, and whether the mock's sources differ from it (read-only git). */
function codeVersion(): { commit?: string; mockGatewaysModified?: boolean } {
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  if (head.status !== 0) return {};
  const st = spawnSync('git', ['status', '--porcelain', '--', 'mock-gateways'], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
  });
  return { commit: head.stdout.trim(), mockGatewaysModified: (st.stdout ?? '').trim() !== '' };
}

// ---------------------------------------------------------------- the time budget

const runStart = Date.now();
const elapsedS = () => (Date.now() - runStart) / 1000;
const BASELINE_WARMUP_S = 2;
const BASELINE_DURATION_S = 8;

type PhaseKind = 'throughput' | 'pair' | 'baseline' | 'latency';
/** Measured seconds of each kind of measurement (warm-up + measured window). */
const windowS: Record<PhaseKind, number> = {
  throughput: WARMUP_S + DURATION_S,
  pair: WARMUP_S + DURATION_S,
  baseline: BASELINE_WARMUP_S + BASELINE_DURATION_S,
  latency: LAT_WARMUP_S + LAT_DURATION_S,
};
/**
 * Seconds a measurement costs beyond its window (the quiet check, server start, generator
 * start and stop), learnt as we go; an open-model run starts more VUs.
 */
const overheadS: Record<PhaseKind, number> = { throughput: 2, pair: 3, baseline: 3, latency: 4 };
/** Measurements still to do, the current one excluded. */
const plan: Record<PhaseKind, number> = { throughput: 0, pair: 0, baseline: 0, latency: 0 };
const costS = (k: PhaseKind) => windowS[k] + overheadS[k];
const plannedLeftS = () =>
  (Object.keys(plan) as PhaseKind[]).reduce((sum, k) => sum + plan[k] * costS(k), 0);
/** Whether spending `s` more seconds still lets the rest of the plan finish within the budget. */
const canSpend = (s: number) => elapsedS() + plannedLeftS() + s <= BUDGET_S;
let retriesLeft = RETRIES;
let quietWaitS = 0;

/** Before a measurement of kind `k`: wait (within the budget) until the rest of the machine is idle. */
async function waitForQuiet(k: PhaseKind): Promise<number | undefined> {
  let said = false;
  for (;;) {
    const other = await otherLoad(500);
    if (other === undefined || other <= OTHER_LIMIT) return other;
    if (!canSpend(costS(k) + 1)) {
      log(`  the machine is busy (${cores(other)} cores elsewhere); going on (time budget)`);
      return other;
    }
    if (!said) log(`  waiting for other work to finish (${cores(other)} cores busy elsewhere)`);
    said = true;
    quietWaitS += 0.5;
    await sleep(500);
    quietWaitS += 0.5;
  }
}

/** Run a measurement of kind `k` (after waiting for quiet); redo it while disturbed and the budget allows. */
async function measured<T extends { disturbed: boolean; otherCores?: number }>(
  k: PhaseKind,
  measure: () => Promise<T>,
  discard: (t: T) => void,
): Promise<T> {
  plan[k] -= 1;
  for (;;) {
    await waitForQuiet(k);
    const t1 = performance.now();
    const out = await measure();
    // Learn the overhead: the whole measurement minus its window, plus the quiet check.
    overheadS[k] = Math.max(1, (performance.now() - t1) / 1000 - windowS[k] + 0.5);
    if (!out.disturbed) return out;
    const why = `disturbed (${cores(out.otherCores)} cores busy elsewhere)`;
    if (retriesLeft <= 0) {
      log(`  ${why}; no retry left (--retries ${RETRIES})`);
      return out;
    }
    if (!canSpend(costS(k))) {
      log(`  ${why}; no time left to measure again (--budget ${BUDGET_S})`);
      return out;
    }
    retriesLeft -= 1;
    log(`  ${why}; measuring again`);
    discard(out);
  }
}

// ---------------------------------------------------------------- children and clean-up

const liveServers = new Set<ChildProcess>();
const liveGen = new Set<ChildProcess>();

function killAll(signal: NodeJS.Signals = 'SIGTERM') {
  for (const c of liveServers) c.kill(signal);
  for (const c of liveGen) c.kill(signal);
}
process.on('exit', () => killAll('SIGKILL'));
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    stopping = true;
    console.error(`\n[bench] ${sig}: stopping the servers and the generators`);
    killAll('SIGTERM');
    setTimeout(() => process.exit(130), 300);
  });

interface Server {
  kind: ServerKind;
  url: string;
  pid: number;
  child: ChildProcess;
  /** Where --cpu-prof writes this server's profiles. */
  profDir?: string;
  /** Lines it printed after its first (the --eld report). */
  lines: string[];
}

export interface EventLoopDelay {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** The event-loop delay a server started with --eld reported when stopped. */
function eldOf(s: Server): EventLoopDelay | undefined {
  for (const l of s.lines)
    try {
      const j = JSON.parse(l) as { eld?: EventLoopDelay };
      if (j.eld) return j.eld;
    } catch {
      /* not JSON */
    }
  return undefined;
}

let serversStarted = 0;

async function startServer(
  kind: ServerKind,
  pin: Pinning,
  extraArgs: string[] = [],
): Promise<Server> {
  if (stopping) throw new Error('stopping');
  serversStarted += 1;
  // One file per thread (main, and tsx's loader worker), so one folder per server.
  const profDir = CPU_PROF_DIR
    ? join(CPU_PROF_DIR, `${String(serversStarted).padStart(2, '0')}-${kind}`)
    : undefined;
  const prof = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
  const nodeArgs = [...prof, RUN_TS, SERVER_ENTRY, kind, '--exit-with-stdin', ...extraArgs];
  const [cmd, args] = pin.pinned
    ? [findTool('taskset')!, ['-c', String(pin.serverCpu), process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], cwd: PROJECT_ROOT });
  liveServers.add(child);
  child.on('exit', () => liveServers.delete(child));
  const lines: string[] = [];
  const line = await new Promise<string>((res, rej) => {
    let buf = '';
    let first = true;
    const timer = setTimeout(() => rej(new Error(`${kind} server did not start in 20 s`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (first) {
          first = false;
          clearTimeout(timer);
          res(l);
        } else lines.push(l);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${kind} server exited (code ${code}) before listening`));
    });
  });
  const info = JSON.parse(line) as { url: string; pid: number };
  return { kind, url: info.url, pid: info.pid, child, lines, ...(profDir ? { profDir } : {}) };
}

/** 'close': exited and its stdout drained (the last lines come at exit). */
const stopServer = (s: Server) => stopChild(s.child);

// ---------------------------------------------------------------- one load phase against one server

interface GenValues {
  count?: number;
  rate?: number;
  med?: number;
  max?: number;
  'p(99)'?: number;
}

interface GenMeasured {
  reqs: GenValues | null;
  status200: GenValues | null;
  /** Answers that were not 2xx (wrk counts them, not by status). */
  non2xx: GenValues | null;
  failed: GenValues | null;
  duration: GenValues | null;
  dropped: GenValues | null;
  warmupReqs: GenValues | null;
  /** MODE=open: the engine's arrival lateness over the window, and the window's length. */
  lateness?: { p50: number; p99: number; max: number };
  windowS?: number;
}

interface GenSummary extends GenMeasured {
  /** MODE=pair: the second server's figures. */
  b?: GenMeasured;
}

interface PhaseResult {
  summary: GenSummary;
  /** CPU used by the server and by the generator in the middle of the measured window, in cores (1 = one core busy). */
  serverCores?: number;
  genCores?: number;
  /** With two servers (MODE=pair): each one's share; serverCores is their sum. */
  serverCoresEach?: number[];
  /** CPU used by everything else on the machine in that window (other users' work, kernel). */
  otherCores?: number;
  cpuWindowS?: number;
}

const tmp = join(tmpdir(), `flashcrowd-bench-${process.pid}`);
mkdirSync(tmp, { recursive: true });
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** wrk's Lua script: every request the same POST /v1/payments with one prebuilt body. */
const WRK_SCRIPT = join(tmp, 'payment.lua');
writeFileSync(
  WRK_SCRIPT,
  [
    'wrk.method = "POST"',
    `wrk.body = '${PAYMENT_BODY}'`,
    'wrk.headers["Content-Type"] = "application/json"',
    '',
  ].join('\n'),
);

interface WrkOut {
  requests: number;
  non2xx: number;
  p50Ms: number;
  p99Ms: number;
  code: number | null;
  stderr: string;
}

function wrkMs(s: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec((s ?? '').trim());
  if (!m) return NaN;
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3, m: 6e4 }[m[2] as 'us' | 'ms' | 's' | 'm'];
}

/** One wrk process (closed model, one thread, `connections` kept-alive connections) for `seconds`. */
function spawnWrk(url: string, connections: number, seconds: number) {
  const child = spawn(
    findTool('wrk')!,
    [
      '-t1',
      `-c${connections}`,
      `-d${seconds}s`,
      '--latency',
      '-s',
      WRK_SCRIPT,
      `${url}/v1/payments`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  liveGen.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<WrkOut>((res) =>
    child.on('exit', (code) => {
      liveGen.delete(child);
      res({
        requests: Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0),
        non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0),
        p50Ms: wrkMs(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1]),
        p99Ms: wrkMs(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1]),
        code,
        stderr,
      });
    }),
  );
  return { pid: child.pid, done };
}

const wrkMeasured = (w: WrkOut, warm?: WrkOut): GenMeasured => ({
  reqs: { count: w.requests },
  status200: { count: w.requests - w.non2xx },
  non2xx: { count: w.non2xx },
  failed: { rate: w.requests ? w.non2xx / w.requests : 0 },
  duration: { med: w.p50Ms, 'p(99)': w.p99Ms },
  dropped: null,
  warmupReqs: warm ? { count: warm.requests } : null,
});

interface CpuSample {
  t: number;
  server: (number | undefined)[];
  gen?: number;
  machine?: number;
  self: number;
}

/** Sample the servers', the generators' and the machine's CPU every 200 ms until `until` settles. */
async function sampleUntil(
  servers: Server[],
  genPids: () => (number | undefined)[],
  until: Promise<unknown>,
): Promise<CpuSample[]> {
  let done = false;
  void until.finally(() => (done = true));
  const samples: CpuSample[] = [];
  const take = () => {
    const g = genPids().map((p) => (p === undefined ? undefined : cpuSeconds(p)));
    samples.push({
      t: performance.now(),
      server: servers.map((x) => cpuSeconds(x.pid)),
      gen: g.every((x) => x !== undefined) ? g.reduce((a, b) => a! + b!, 0) : undefined,
      machine: machineBusySeconds(),
      self: selfCpuSeconds(),
    });
  };
  while (!done) {
    take();
    await Promise.race([sleep(200), until]);
  }
  return samples;
}

/** Cores used from the first sample at or after `from` to the last at or before `to`. */
function usageOf(
  samples: CpuSample[],
  from: number,
  to: number,
  genCpuS?: number,
): Omit<PhaseResult, 'summary'> {
  const a = samples.find((s) => s.t >= from);
  const b = [...samples].reverse().find((s) => s.t <= to);
  if (!a || !b || b.t - a.t < 1000) return {};
  const each = servers2(a, b);
  if (!each) return {};
  const wall = (b.t - a.t) / 1000;
  const usage: Omit<PhaseResult, 'summary'> = { cpuWindowS: wall };
  usage.serverCoresEach = each.map((x) => x / wall);
  usage.serverCores = usage.serverCoresEach.reduce((sum, x) => sum + x, 0);
  const gen = genCpuS ?? (a.gen !== undefined && b.gen !== undefined ? b.gen - a.gen : undefined);
  if (gen !== undefined) usage.genCores = gen / wall;
  if (a.machine !== undefined && b.machine !== undefined && usage.genCores !== undefined)
    usage.otherCores = Math.max(
      0,
      (b.machine - a.machine - (b.self - a.self)) / wall - usage.serverCores - usage.genCores,
    );
  return usage;
}

function servers2(a: CpuSample, b: CpuSample): number[] | undefined {
  const out: number[] = [];
  for (let i = 0; i < a.server.length; i++) {
    const x = a.server[i];
    const y = b.server[i];
    if (x === undefined || y === undefined) return undefined;
    out.push(y - x);
  }
  return out;
}

/**
 * One load phase. MODE=closed: wrk, VUS connections, a warm-up run then the measured
 * run; MODE=pair: two wrk at once, VUS/2 connections each, one per server; MODE=open:
 * flashcrowd's engine (bench/engine-child.ts, the bench-post journey) at RATE
 * arrivals/s. CPU over the middle of the measured window (1 s in to 1 s before its end;
 * the engine's own CPU over its window, from its /proc/self).
 */
async function runPhase(
  server: Server | Server[],
  env: Record<string, string | number>,
  warmupS: number,
  durationS: number,
): Promise<PhaseResult> {
  const servers = Array.isArray(server) ? server : [server];
  const label = servers.map((x) => x.kind).join('+');
  if (env.MODE === 'open') return openPhase(servers[0]!, Number(env.RATE), warmupS, durationS);
  const conns = env.MODE === 'pair' ? Math.max(1, VUS / 2) : VUS;
  const warm = servers.map((x) => spawnWrk(x.url, conns, warmupS));
  const warmOut = await Promise.all(warm.map((w) => w.done));
  const t0 = performance.now();
  const runs = servers.map((x) => spawnWrk(x.url, conns, durationS));
  const all = Promise.all(runs.map((w) => w.done));
  const samples = await sampleUntil(servers, () => runs.map((r) => r.pid), all);
  const outs = await all;
  for (const o of outs)
    if (o.code !== 0) throw new Error(`wrk exited ${o.code} for ${label}: ${o.stderr.slice(-500)}`);
  const usage = usageOf(samples, t0 + 1000, t0 + (durationS - 1) * 1000);
  const first = wrkMeasured(outs[0]!, warmOut[0]);
  return {
    summary: { ...first, ...(outs[1] ? { b: wrkMeasured(outs[1], warmOut[1]) } : {}) },
    ...usage,
  };
}

/** MODE=open: the engine at `rate` arrivals/s, constant, warm-up then the measured window. */
async function openPhase(
  server: Server,
  rate: number,
  warmupS: number,
  durationS: number,
): Promise<PhaseResult> {
  const input: EngineChildInput = {
    plan: {
      journey: {
        name: 'bench-post',
        config: { url: `${server.url}/v1/payments`, body: PAYMENT_BODY, name: 'POST /v1/payments' },
      },
      shape: {
        startRate: rate,
        stages: [
          { durationS: warmupS, target: rate },
          { durationS, target: rate },
        ],
      },
      // Little's law: rate x mean latency VUs are busy; leave room for the tail (as k6 had).
      preAllocatedVUs: Math.max(50, Math.ceil(rate * 0.3)),
      maxVUs: Math.max(200, rate * 2),
      gracefulStopS: 5,
    },
    workers: 1,
    warmupS,
  };
  const child = spawn(process.execPath, [RUN_TS, ENGINE_CHILD, JSON.stringify(input)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: PROJECT_ROOT,
  });
  liveGen.add(child);
  const ticks: { wall: number; t: number; elapsedS: number }[] = [];
  let result: EngineChildResult | undefined;
  const lines = (async () => {
    for await (const line of createInterface({ input: child.stdout! })) {
      const m = JSON.parse(line) as EngineTick | EngineChildResult;
      if (m.type === 'tick') ticks.push({ wall: m.t, t: performance.now(), elapsedS: m.elapsedS });
      else result = m;
    }
  })();
  const samples = await sampleUntil([server], () => [], lines);
  liveGen.delete(child);
  const w = result?.window;
  if (!result || !w) throw new Error('the engine wrote no result');
  const at = (elapsed: number) =>
    ticks.reduce((b, t) =>
      Math.abs(t.elapsedS - elapsed) < Math.abs(b.elapsedS - elapsed) ? t : b,
    ).t;
  const usage = usageOf(samples, at(w.fromS), at(w.toS), w.cpuS);
  const d = w.trends.http_req_duration;
  const failed = w.rates.http_req_failed;
  const non2xx = Object.entries(w.reqsBy)
    .filter(([k]) => !/status=2\d\d/.test(k))
    .reduce((a, [, n]) => a + Number(n), 0);
  return {
    summary: {
      reqs: { count: w.reqs },
      status200: { count: w.reqs - non2xx },
      non2xx: { count: non2xx },
      failed: { rate: failed ? failed.passes / Math.max(1, failed.passes + failed.fails) : 0 },
      duration: { med: d?.p50, 'p(99)': d?.p99, max: d?.max },
      dropped: { count: w.dropped },
      warmupReqs: { count: w.fromReqs },
      lateness: w.trends.arrival_lateness,
      windowS: w.wallS,
    },
    ...usage,
  };
}

// ---------------------------------------------------------------- phase 1: throughput

export interface ThroughputRun {
  kind: ThroughputKind;
  round: number;
  /** Answers of any status per second over the measured window. */
  reqPerS: number;
  requests: number;
  ok200: number;
  /** Answers that were not 2xx (bank-chaos: its 503s and 429s). */
  non2xx: number;
  failedShare: number;
  p50Ms: number;
  p99Ms: number;
  serverCores?: number;
  genCores?: number;
  otherCores?: number;
  /** generator CPU per request, µs: it rises when the host slows the VM down (a noise indicator). */
  genUsPerReq?: number;
  /** Answers per second of server CPU: the server's cost, robust to others sharing its core. */
  reqPerServerCpuS?: number;
  /** Other work on the machine took more than OTHER_LIMIT cores during the measurement. */
  disturbed: boolean;
  /** Which side ran out of CPU: the server, the generator, or neither clearly. */
  limit: 'server' | 'generator' | 'both' | 'unclear';
  /** With --cpu-prof: where the server's CPU went, per answer. */
  profile?: ProfileCosts;
}

function limitOf(serverCores?: number, genCores?: number): ThroughputRun['limit'] {
  if (serverCores === undefined || genCores === undefined) return 'unclear';
  const s = serverCores >= 0.9;
  const k = genCores >= 0.9;
  if (s && k) return 'both';
  if (s) return 'server';
  if (k) return 'generator';
  return 'unclear';
}

async function measureThroughput(
  kind: ThroughputKind,
  round: number,
  pin: Pinning,
): Promise<ThroughputRun> {
  const server = await startServer(kind, pin);
  let res: PhaseResult;
  try {
    res = await runPhase(
      server,
      { MODE: 'closed', VUS, WARMUP_S, DURATION_S },
      WARMUP_S,
      DURATION_S,
    );
  } finally {
    await stopServer(server);
  }
  const s = res.summary;
  const requests = s.reqs?.count ?? 0;
  const profile = server.profDir ? profileCosts(server.profDir, requests) : undefined;
  const ok200 = s.status200?.count ?? 0;
  const non2xx = s.non2xx?.count ?? 0;
  const reqPerS = requests / DURATION_S;
  return {
    kind,
    round,
    reqPerS,
    requests,
    ok200,
    non2xx,
    failedShare: s.failed?.rate ?? 0,
    p50Ms: s.duration?.med ?? NaN,
    p99Ms: s.duration?.['p(99)'] ?? NaN,
    serverCores: res.serverCores,
    genCores: res.genCores,
    otherCores: res.otherCores,
    reqPerServerCpuS: res.serverCores ? reqPerS / res.serverCores : undefined,
    genUsPerReq:
      res.genCores !== undefined && reqPerS > 0 ? (res.genCores / reqPerS) * 1e6 : undefined,
    disturbed: (res.otherCores ?? 0) > OTHER_LIMIT,
    limit: limitOf(res.serverCores, res.genCores),
    ...(profile ? { profile } : {}),
  };
}

interface ProfileCosts {
  file: string;
  /** Busy CPU per answer, µs, from the profile (warm-up left out). */
  busyUsPerReq: number;
  modules: { name: string; usPerReq: number }[];
  functions: { name: string; usPerReq: number }[];
}

/** Per-answer CPU of the server from its main-thread profile (see costsPerUnit). */
function profileCosts(dir: string, requests: number): ProfileCosts | undefined {
  const c = costsPerUnit(dir, requests, { top: 60, skipMs: WARMUP_S * 1000 });
  return (
    c && {
      file: c.file,
      busyUsPerReq: c.busyUs,
      modules: c.modules.map((m) => ({ name: m.name, usPerReq: m.us })),
      functions: c.functions.map((m) => ({ name: m.name, usPerReq: m.us })),
    }
  );
}

/** Measurements redone because other work disturbed them (kept in the report, not in the figures). */
const discarded: ThroughputRun[] = [];
const discardedLatency: LatencyResult[] = [];

async function throughputPhase(pin: Pinning): Promise<ThroughputRun[]> {
  const kinds = THROUGHPUT_KINDS.filter((k) => ONLY.includes(k));
  const runs: ThroughputRun[] = [];
  const total = ROUNDS * kinds.length;
  for (let round = 1; round <= ROUNDS; round++) {
    // ABCD then DCBA: a drift over the run (thermal, noisy neighbour) hits every server alike.
    const order = round % 2 === 1 ? kinds : [...kinds].reverse();
    for (const kind of order) {
      const n = runs.length + 1;
      log(
        `throughput ${n}/${total}: ${kind} (round ${round}), ${VUS} VUs, ${WARMUP_S} s warm-up + ${DURATION_S} s`,
      );
      const run = await measured(
        'throughput',
        () => measureThroughput(kind, round, pin),
        (r) => discarded.push(r),
      );
      runs.push(run);
      log(
        `  ${fmtInt(run.reqPerS)} req/s, ${pct(run.failedShare)} non-2xx, p50 ${run.p50Ms.toFixed(2)} ms; ` +
          `CPU server ${cores(run.serverCores)} wrk ${cores(run.genCores)} other ${cores(run.otherCores)}` +
          ` -> limit: ${run.limit}${run.disturbed ? ' (DISTURBED by other work)' : ''}`,
      );
    }
  }
  return runs;
}

// ---------------------------------------------------------------- phase 1b: paired on one core

const PAIRS: [ThroughputKind, ThroughputKind][] = [
  ['bank', 'express'],
  ['bank-chaos', 'express'],
];

interface PairRun {
  a: ThroughputKind;
  b: ThroughputKind;
  round: number;
  reqPerSA: number;
  reqPerSB: number;
  /** reqPerSA / reqPerSB: with the core shared, the inverse of their CPU cost per answer. */
  ratio: number;
  /** The same, each divided by its own CPU share first (corrects an uneven split of the core). */
  ratioPerCpu?: number;
  failedShareA: number;
  failedShareB: number;
  coresA?: number;
  coresB?: number;
  genCores?: number;
  otherCores?: number;
  /** Both servers kept the shared core busy (else the ratio leans to 1). */
  saturated: boolean;
  disturbed: boolean;
}

async function measurePair(
  a: ThroughputKind,
  b: ThroughputKind,
  round: number,
  pin: Pinning,
): Promise<PairRun> {
  // Start them in alternating order, so neither always has the head start.
  const first = round % 2 === 1 ? a : b;
  const s1 = await startServer(first, pin);
  let s2: Server | undefined;
  let res: PhaseResult;
  try {
    s2 = await startServer(first === a ? b : a, pin);
    const [sa, sb] = first === a ? [s1, s2] : [s2, s1];
    res = await runPhase(
      [sa, sb],
      { MODE: 'pair', VUS, WARMUP_S, DURATION_S },
      WARMUP_S,
      DURATION_S,
    );
  } finally {
    await stopServer(s1);
    if (s2) await stopServer(s2);
  }
  const sum = res.summary;
  const reqPerSA = (sum.reqs?.count ?? 0) / DURATION_S;
  const reqPerSB = (sum.b?.reqs?.count ?? 0) / DURATION_S;
  const [coresA, coresB] = res.serverCoresEach ?? [];
  return {
    a,
    b,
    round,
    reqPerSA,
    reqPerSB,
    ratio: reqPerSA / reqPerSB,
    ...(coresA && coresB ? { ratioPerCpu: reqPerSA / coresA / (reqPerSB / coresB) } : {}),
    failedShareA: sum.failed?.rate ?? 0,
    failedShareB: sum.b?.failed?.rate ?? 0,
    coresA,
    coresB,
    genCores: res.genCores,
    otherCores: res.otherCores,
    saturated: (res.serverCores ?? 0) >= 0.9,
    disturbed: (res.otherCores ?? 0) > OTHER_LIMIT,
  };
}

const discardedPairs: PairRun[] = [];

async function pairPhase(pin: Pinning): Promise<PairRun[]> {
  const pairs = PAIRS.filter(([a, b]) => ONLY.includes(a) && ONLY.includes(b));
  const out: PairRun[] = [];
  const total = PAIR_ROUNDS * pairs.length;
  for (let round = 1; round <= PAIR_ROUNDS; round++)
    for (const [a, b] of round % 2 === 1 ? pairs : [...pairs].reverse()) {
      log(
        `paired ${out.length + 1}/${total}: ${a} + ${b} sharing CPU ${pin.serverCpu ?? '(any)'} (round ${round}), ` +
          `${VUS / 2} VUs each, ${WARMUP_S} s warm-up + ${DURATION_S} s`,
      );
      const run = await measured(
        'pair',
        () => measurePair(a, b, round, pin),
        (r) => discardedPairs.push(r),
      );
      out.push(run);
      log(
        `  ${a} ${fmtInt(run.reqPerSA)} req/s, ${b} ${fmtInt(run.reqPerSB)} req/s: ratio ${run.ratio.toFixed(3)}; ` +
          `CPU ${cores(run.coresA)} + ${cores(run.coresB)}, wrk ${cores(run.genCores)}, other ${cores(run.otherCores)}` +
          (run.saturated ? '' : ' (NOT saturated: the core was not kept busy)') +
          (run.disturbed ? ' (DISTURBED by other work)' : ''),
      );
    }
  return out;
}

export interface PairSummary {
  name: string;
  a: ThroughputKind;
  b: ThroughputKind;
  /** Median of the per-round ratios. */
  value: number;
  perRound: number[];
  /** Median of the per-round CPU-normalised ratios. */
  perCpuValue?: number;
  coresA?: number;
  coresB?: number;
  unsaturatedRounds: number;
  disturbedRounds: number;
  goal?: number;
  met?: boolean;
}

function summarisePairs(runs: PairRun[]): PairSummary[] {
  return PAIRS.filter(([a, b]) => runs.some((r) => r.a === a && r.b === b)).map(([a, b]) => {
    const rs = runs.filter((r) => r.a === a && r.b === b).sort((x, y) => x.round - y.round);
    const value = median(rs.map((r) => r.ratio));
    const goal = b === 'express' ? 0.8 : undefined;
    return {
      name: `${a} / ${b}`,
      a,
      b,
      value,
      perRound: rs.map((r) => r.ratio),
      ...(rs.every((r) => r.ratioPerCpu !== undefined)
        ? { perCpuValue: median(rs.map((r) => r.ratioPerCpu!)) }
        : {}),
      coresA: meanIfAll(rs.map((r) => r.coresA)),
      coresB: meanIfAll(rs.map((r) => r.coresB)),
      unsaturatedRounds: rs.filter((r) => !r.saturated).length,
      disturbedRounds: rs.filter((r) => r.disturbed).length,
      ...(goal !== undefined ? { goal, met: value >= goal } : {}),
    };
  });
}

// ---------------------------------------------------------------- phase 2: latency under load

export interface LatencyResult {
  rate: number;
  durationS: number;
  requests: number;
  achievedReqPerS: number;
  dropped: number;
  failedShare: number;
  profile: LatencySpec;
  serverCores?: number;
  genCores?: number;
  otherCores?: number;
  /** The bank's event-loop delay over its life (warm-up included). */
  eventLoopDelay?: EventLoopDelay;
  disturbed: boolean;
  quantiles: {
    q: number;
    profileMs: number;
    observedMs: number;
    deviationPct: number;
    /** The same seed's draws for these requests, replayed offline: what the bank was told to wait. */
    drawnMs: number;
    drawnDeviationPct: number;
    /** 99.9% interval of the sample quantile of n draws from the profile (order-statistic normal approx.). */
    interval999: { lo: number; hi: number; loPct: number; hiPct: number };
    withinGoal: boolean;
  }[];
}

/** The injected latencies the bank drew for requests first..first+n-1 (same seed, same profile). */
function replayDraws(first: number, n: number): number[] {
  const def = createBank();
  const engine = new ChaosEngine({
    service: 'bank',
    operations: def.operations,
    declineReasons: def.declineReasons,
    extraSchema: def.extraSchema,
    seed: BENCH_SEED,
    profile: PROFILE_LATENCY,
  });
  const out: number[] = [];
  for (let i = 0; i < first + n; i++) {
    const d = engine.decide('payments.create');
    if (i >= first) out.push(d.latencyMs);
  }
  return out.sort((a, b) => a - b);
}

export interface LatencyBaseline {
  kind: 'bank';
  rate: number;
  durationS: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  serverCores?: number;
  otherCores?: number;
  /** The bank's event-loop delay over its life (warm-up included). */
  eventLoopDelay?: EventLoopDelay;
  disturbed: boolean;
}

/** The faultless bank at the same rate: what the server and the engine add with nothing injected. */
async function measureBaseline(pin: Pinning): Promise<LatencyBaseline> {
  const server = await startServer('bank', pin, ['--eld']);
  let res: PhaseResult;
  try {
    res = await runPhase(
      server,
      { MODE: 'open', RATE, WARMUP_S: BASELINE_WARMUP_S, DURATION_S: BASELINE_DURATION_S },
      BASELINE_WARMUP_S,
      BASELINE_DURATION_S,
    );
  } finally {
    await stopServer(server);
  }
  const s = res.summary;
  return {
    kind: 'bank',
    rate: RATE,
    durationS: BASELINE_DURATION_S,
    requests: s.reqs?.count ?? 0,
    p50Ms: s.duration?.med ?? NaN,
    p99Ms: s.duration?.['p(99)'] ?? NaN,
    serverCores: res.serverCores,
    otherCores: res.otherCores,
    eventLoopDelay: eldOf(server),
    disturbed: (res.otherCores ?? 0) > OTHER_LIMIT,
  };
}

async function latencyPhase(
  pin: Pinning,
): Promise<{ latency: LatencyResult; baseline: LatencyBaseline }> {
  log(
    `latency baseline: bank without faults at ${RATE} req/s (open model), ${BASELINE_WARMUP_S} s warm-up + ${BASELINE_DURATION_S} s`,
  );
  const baseline = await measured(
    'baseline',
    () => measureBaseline(pin),
    () => undefined,
  );
  log(
    `  p50 ${baseline.p50Ms.toFixed(2)} ms, p99 ${baseline.p99Ms.toFixed(2)} ms; CPU server ${cores(baseline.serverCores)} other ${cores(baseline.otherCores)}` +
      (baseline.disturbed ? ' (DISTURBED by other work)' : ''),
  );
  log(
    `latency: bank-latency at ${RATE} req/s (open model), ${LAT_WARMUP_S} s warm-up + ${LAT_DURATION_S} s`,
  );
  const out = await measured(
    'latency',
    () => measureLatency(pin),
    (r) => discardedLatency.push(r),
  );
  log(
    `  ${out.requests} requests (${fmtInt(out.achievedReqPerS)} req/s, ${out.dropped} dropped), ` +
      out.quantiles
        .map((x) => `p${x.q * 100} ${x.observedMs.toFixed(1)} ms (${signed(x.deviationPct)})`)
        .join(', ') +
      `; CPU server ${cores(out.serverCores)} other ${cores(out.otherCores)}` +
      (out.disturbed ? ' (DISTURBED by other work)' : ''),
  );
  return { latency: out, baseline };
}

async function measureLatency(pin: Pinning): Promise<LatencyResult> {
  const server = await startServer('bank-latency', pin, ['--eld']);
  let res: PhaseResult;
  try {
    res = await runPhase(
      server,
      { MODE: 'open', RATE, WARMUP_S: LAT_WARMUP_S, DURATION_S: LAT_DURATION_S },
      LAT_WARMUP_S,
      LAT_DURATION_S,
    );
  } finally {
    await stopServer(server);
  }
  const s = res.summary;
  const n = s.reqs?.count ?? 0;
  const warm = s.warmupReqs?.count ?? 0;
  const spec = PROFILE_LATENCY.latency as LatencySpec;
  const draws = replayDraws(warm, n);
  const z = zFor(0.999);
  const quantiles = [
    { q: 0.5, observedMs: s.duration?.med ?? NaN },
    { q: 0.99, observedMs: s.duration?.['p(99)'] ?? NaN },
  ].map(({ q, observedMs }) => {
    const profileMs = latencyQuantile(spec, q);
    const drawnMs = percentileSorted(draws, q);
    const iv = quantileInterval(q, n, z, (p) => latencyQuantile(spec, p));
    const deviationPct = pctDev(observedMs, profileMs);
    return {
      q,
      profileMs,
      observedMs,
      deviationPct,
      drawnMs,
      drawnDeviationPct: pctDev(drawnMs, profileMs),
      interval999: {
        lo: iv.lo,
        hi: iv.hi,
        loPct: pctDev(iv.lo, profileMs),
        hiPct: pctDev(iv.hi, profileMs),
      },
      withinGoal: Math.abs(deviationPct) <= 5,
    };
  });
  const out: LatencyResult = {
    rate: RATE,
    durationS: LAT_DURATION_S,
    requests: n,
    achievedReqPerS: n / (s.windowS ?? LAT_DURATION_S),
    dropped: s.dropped?.count ?? 0,
    failedShare: s.failed?.rate ?? 0,
    profile: spec,
    serverCores: res.serverCores,
    genCores: res.genCores,
    otherCores: res.otherCores,
    eventLoopDelay: eldOf(server),
    disturbed: (res.otherCores ?? 0) > OTHER_LIMIT,
    quantiles,
  };
  return out;
}

// ---------------------------------------------------------------- report

export interface KindSummary {
  kind: ThroughputKind;
  medianReqPerS: number;
  meanReqPerS: number;
  minReqPerS: number;
  maxReqPerS: number;
  rounds: number[];
  /** Mean answers per server CPU-second (undefined when CPU was not measured). */
  meanReqPerServerCpuS?: number;
  roundsPerCpuS: (number | undefined)[];
  failedShare: number;
  p50Ms: number;
  p99Ms: number;
  serverCores?: number;
  genCores?: number;
  otherCores?: number;
  disturbedRounds: number;
  limits: ThroughputRun['limit'][];
}

const meanIfAll = (xs: (number | undefined)[]) =>
  xs.length > 0 && xs.every((x) => x !== undefined) ? mean(xs as number[]) : undefined;

function summarise(runs: ThroughputRun[]): KindSummary[] {
  return THROUGHPUT_KINDS.filter((k) => runs.some((r) => r.kind === k)).map((kind) => {
    const rs = runs.filter((r) => r.kind === kind).sort((a, b) => a.round - b.round);
    return {
      kind,
      medianReqPerS: median(rs.map((r) => r.reqPerS)),
      meanReqPerS: mean(rs.map((r) => r.reqPerS)),
      minReqPerS: Math.min(...rs.map((r) => r.reqPerS)),
      maxReqPerS: Math.max(...rs.map((r) => r.reqPerS)),
      rounds: rs.map((r) => r.reqPerS),
      meanReqPerServerCpuS: meanIfAll(rs.map((r) => r.reqPerServerCpuS)),
      roundsPerCpuS: rs.map((r) => r.reqPerServerCpuS),
      failedShare: mean(rs.map((r) => r.failedShare)),
      p50Ms: mean(rs.map((r) => r.p50Ms)),
      p99Ms: mean(rs.map((r) => r.p99Ms)),
      serverCores: meanIfAll(rs.map((r) => r.serverCores)),
      genCores: meanIfAll(rs.map((r) => r.genCores)),
      otherCores: meanIfAll(rs.map((r) => r.otherCores)),
      disturbedRounds: rs.filter((r) => r.disturbed).length,
      limits: rs.map((r) => r.limit),
    };
  });
}

export interface Ratio {
  name: string;
  /** Median over rounds of the ratio within each round (servers measured a few seconds apart). */
  value: number;
  perRound: number[];
  /** Ratio of the mean req/s. */
  ofMeans: number;
  /** Ratio of mean answers per server CPU-second (the cost ratio; robust to CPU stolen by others). */
  perCpuValue?: number;
  goal?: number;
  met?: boolean;
}

function ratios(sums: KindSummary[]): Ratio[] {
  const get = (k: ThroughputKind) => sums.find((s) => s.kind === k);
  const defs: [ThroughputKind, ThroughputKind, number?][] = [
    ['bank', 'express', 0.8],
    ['bank-chaos', 'express', 0.8],
    ['express', 'node-http'],
    ['bank', 'node-http'],
  ];
  const out: Ratio[] = [];
  for (const [a, b, goal] of defs) {
    const A = get(a);
    const B = get(b);
    if (!A || !B) continue;
    const perRound = A.rounds.map((x, i) => x / (B.rounds[i] ?? NaN));
    const value = median(perRound);
    const perCpuValue =
      A.meanReqPerServerCpuS !== undefined && B.meanReqPerServerCpuS !== undefined
        ? A.meanReqPerServerCpuS / B.meanReqPerServerCpuS
        : undefined;
    out.push({
      name: `${a} / ${b}`,
      value,
      perRound,
      ofMeans: A.meanReqPerS / B.meanReqPerS,
      ...(perCpuValue !== undefined ? { perCpuValue } : {}),
      ...(goal !== undefined ? { goal, met: value >= goal } : {}),
    });
  }
  return out;
}

function throughputReport(sums: KindSummary[], rs: Ratio[]): string[] {
  const lines = [
    `Throughput: closed model, ${VUS} VUs, ${WARMUP_S} s warm-up + ${DURATION_S} s measured, ${ROUNDS} round(s) ` +
      '(order ABCD, DCBA, ...); every answer counts (the chaos profile answers about 7% with 503/429).',
    'Ratios: within each round (servers measured seconds apart), then the median over rounds; goals are checked on it.',
    'CPU columns: cores used in the middle of the measured window; "other" is everything else on the machine.',
    '',
    table(
      [
        'server',
        'req/s median',
        'mean',
        'per round',
        'req/CPU-s',
        'non-2xx',
        'p50 ms',
        'p99 ms',
        'CPU server',
        'gen',
        'other',
        'limit',
      ],
      sums.map((s) => [
        s.kind,
        fmtInt(s.medianReqPerS),
        fmtInt(s.meanReqPerS),
        s.rounds.map(fmtInt).join(' / '),
        s.meanReqPerServerCpuS === undefined ? 'n/a' : fmtInt(s.meanReqPerServerCpuS),
        pct(s.failedShare),
        s.p50Ms.toFixed(2),
        s.p99Ms.toFixed(2),
        cores(s.serverCores),
        cores(s.genCores),
        cores(s.otherCores) + (s.disturbedRounds ? '!' : ''),
        [...new Set(s.limits)].join(','),
      ]),
    ),
    '',
    table(
      ['ratio', 'median of rounds', 'per round', 'of means', 'req/CPU-s', 'goal', 'met'],
      rs.map((r) => [
        r.name,
        r.value.toFixed(3),
        r.perRound.map((x) => x.toFixed(2)).join(' / '),
        r.ofMeans.toFixed(3),
        r.perCpuValue === undefined ? 'n/a' : r.perCpuValue.toFixed(3),
        r.goal !== undefined ? `>= ${r.goal}` : '',
        r.met === undefined ? '' : r.met ? 'yes' : 'NO',
      ]),
    ),
    '',
  ];
  const disturbed = sums.reduce((n, s) => n + s.disturbedRounds, 0);
  if (disturbed > 0)
    lines.push(
      `! WARNING: ${disturbed} of ${sums.reduce((n, s) => n + s.rounds.length, 0)} measurements ran while other work ` +
        `used more than ${OTHER_LIMIT} cores (no retry or time left): their req/s are low and the ratios unreliable.`,
    );
  const nh = sums.find((s) => s.kind === 'node-http');
  if (nh)
    lines.push(
      nh.limits.includes('generator') || nh.limits.includes('both')
        ? `note: wrk on one core was the limit for node-http (wrk CPU ${cores(nh.genCores)}, server CPU ${cores(nh.serverCores)}): ` +
            'its req/s is what wrk could send, a lower bound for node:http, so req/s ratios against node-http overstate the others.'
        : `note: node-http server CPU ${cores(nh.serverCores)}, wrk CPU ${cores(nh.genCores)}: wrk was not the limit.`,
    );
  lines.push('');
  return lines;
}

/** With --cpu-prof: CPU per answer by module, one column per server (means over rounds). */
function profileReport(runs: ThroughputRun[]): string[] {
  const kinds = THROUGHPUT_KINDS.filter((k) => runs.some((r) => r.kind === k && r.profile));
  if (!kinds.length) return [];
  const per = (kind: ThroughputKind, name?: string) => {
    const ps = runs.filter((r) => r.kind === kind && r.profile).map((r) => r.profile!);
    return mean(
      ps.map((p) =>
        name === undefined
          ? p.busyUsPerReq
          : (p.modules.find((m) => m.name === name)?.usPerReq ?? 0),
      ),
    );
  };
  const names = [...new Set(runs.flatMap((r) => r.profile?.modules.map((m) => m.name) ?? []))]
    .map((name) => ({ name, max: Math.max(...kinds.map((k) => per(k, name))) }))
    .sort((a, b) => b.max - a.max)
    .slice(0, 25);
  return [
    'CPU per answer from the profiles (µs; warm-up left out; profiling itself adds some):',
    '',
    table(
      ['module', ...kinds],
      [
        ['(all busy time)', ...kinds.map((k) => per(k).toFixed(1))],
        ...names.map(({ name }) => [name, ...kinds.map((k) => per(k, name).toFixed(1))]),
      ],
    ),
    '',
  ];
}

function pairReport(ps: PairSummary[]): string[] {
  const lines = [
    `Paired: two servers on the one server CPU at the same time, ${VUS / 2} VUs each (${WARMUP_S} s warm-up + ${DURATION_S} s, ` +
      `${PAIR_ROUNDS} round(s)). Both keep the core busy, so the ratio of their req/s is the inverse ratio of their CPU`,
    'cost per answer, measured in the same seconds: a slower or busier machine moves both alike.',
    '',
    table(
      ['pair', 'ratio (median)', 'per round', 'per CPU-s', 'CPU a + b', 'goal', 'met'],
      ps.map((p) => [
        p.name,
        p.value.toFixed(3),
        p.perRound.map((x) => x.toFixed(2)).join(' / '),
        p.perCpuValue === undefined ? 'n/a' : p.perCpuValue.toFixed(3),
        `${cores(p.coresA)} + ${cores(p.coresB)}`,
        p.goal !== undefined ? `>= ${p.goal}` : '',
        p.met === undefined ? '' : p.met ? 'yes' : 'NO',
      ]),
    ),
    '',
  ];
  const uns = ps.reduce((n, p) => n + p.unsaturatedRounds, 0);
  const dis = ps.reduce((n, p) => n + p.disturbedRounds, 0);
  if (uns)
    lines.push(
      `! ${uns} paired round(s) did not keep the core busy (under 0.9 core: the generator side, or waits): those ratios lean to 1.`,
    );
  if (dis)
    lines.push(`! ${dis} paired round(s) ran while other work was busy (no retry or time left).`);
  if (uns || dis) lines.push('');
  return lines;
}

const eldText = (e?: EventLoopDelay) =>
  e
    ? `p50 ${e.p50Ms.toFixed(2)} ms, p99 ${e.p99Ms.toFixed(2)} ms, max ${e.maxMs.toFixed(1)} ms`
    : 'n/a';

function latencyReport(latency: LatencyResult, base: LatencyBaseline): string[] {
  return [
    `Baseline: the bank without faults at ${base.rate} req/s answers in p50 ${base.p50Ms.toFixed(2)} ms, p99 ${base.p99Ms.toFixed(2)} ms ` +
      `(server CPU ${cores(base.serverCores)}, other ${cores(base.otherCores)}${base.disturbed ? ', DISTURBED' : ''}): ` +
      'the floor that server, timers and the engine add to any injected latency.',
    `Event-loop delay of the bank (5 ms timer, whole life): baseline ${eldText(base.eventLoopDelay)}; ` +
      `with the latency profile ${eldText(latency.eventLoopDelay)}.`,
    `Latency: bank with ${JSON.stringify(latency.profile)}, open model ${latency.rate} req/s, ` +
      `${latency.durationS} s measured: ${latency.requests} requests, ${latency.dropped} dropped, ` +
      `${pct(latency.failedShare)} non-2xx; CPU server ${cores(latency.serverCores)}, other ${cores(latency.otherCores)}` +
      (latency.disturbed ? ' (DISTURBED by other work)' : ''),
    '',
    table(
      [
        'quantile',
        'profile ms',
        'observed ms',
        'deviation',
        'drawn ms (seed replay)',
        '99.9% sampling interval, n draws',
        'goal |dev|<=5%',
      ],
      latency.quantiles.map((x) => [
        `p${x.q * 100}`,
        x.profileMs.toFixed(1),
        x.observedMs.toFixed(1),
        signed(x.deviationPct),
        `${x.drawnMs.toFixed(1)} (${signed(x.drawnDeviationPct)})`,
        `${x.interval999.lo.toFixed(1)}..${x.interval999.hi.toFixed(1)} (${signed(x.interval999.loPct)}..${signed(x.interval999.hiPct)})`,
        x.withinGoal ? 'yes' : 'NO',
      ]),
    ),
    '',
    '"drawn" replays offline the seeded latencies the bank drew for the measured requests: observed - drawn is',
    'what the server, its timers and the engine add; drawn - profile is the sampling noise of this many draws.',
    '',
  ];
}

async function main() {
  const pin = setUpPinning(opt['no-pin']);
  const machine = {
    nproc: cpus().length,
    allowedCpus: allowedCpus(),
    cpuModel: cpuModel(),
    node: process.version,
    generators: {
      throughput: `wrk (${(spawnSync(findTool('wrk') ?? 'wrk', ['-v'], { encoding: 'utf8' }).stdout ?? '').trim().split('\n')[0]}), one thread`,
      latency: "flashcrowd's engine (bench/engine-child.ts), bench-post journey, one worker thread",
    },
    pinning: pin,
    code: codeVersion(),
  };
  log(
    `${machine.cpuModel}, ${machine.nproc} CPUs; node ${machine.node}; ${machine.generators.throughput}`,
  );
  log(pin.note);
  if (CPU_PROF_DIR) {
    mkdirSync(CPU_PROF_DIR, { recursive: true });
    log(`profiling the servers into ${relative(process.cwd(), CPU_PROF_DIR) || '.'}`);
  }
  const t0 = Date.now();
  plan.throughput = opt['skip-throughput']
    ? 0
    : ROUNDS * THROUGHPUT_KINDS.filter((k) => ONLY.includes(k)).length;
  plan.pair = opt['skip-throughput']
    ? 0
    : PAIR_ROUNDS * PAIRS.filter(([a, b]) => ONLY.includes(a) && ONLY.includes(b)).length;
  plan.latency = opt['skip-latency'] ? 0 : 1;
  plan.baseline = plan.latency;
  const runs = opt['skip-throughput'] ? [] : await throughputPhase(pin);
  const pairRuns = plan.pair > 0 ? await pairPhase(pin) : [];
  const pairSums = summarisePairs(pairRuns);
  const lat = opt['skip-latency'] ? undefined : await latencyPhase(pin);
  const latency = lat?.latency;
  const latencyBaseline = lat?.baseline;
  const wallS = (Date.now() - t0) / 1000;

  const sums = summarise(runs);
  const rs = ratios(sums);
  const lines: string[] = ['', `flashcrowd bench:mocks (${pin.note})`, ''];
  if (sums.length) lines.push(...throughputReport(sums, rs), ...profileReport(runs));
  if (pairSums.length) lines.push(...pairReport(pairSums));
  if (latency && latencyBaseline) lines.push(...latencyReport(latency, latencyBaseline));
  lines.push(
    `wall time ${wallS.toFixed(0)} s (budget ${BUDGET_S} s); ${discarded.length} disturbed measurement(s) redone, ` +
      `${quietWaitS.toFixed(0)} s waiting for other work${CPU_PROF_DIR ? '; PROFILED (figures not comparable)' : ''}`,
  );
  console.log(lines.join('\n'));

  const report = {
    generatedAt: new Date().toISOString(),
    command: `npm run bench:mocks${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine,
    parameters: {
      rounds: ROUNDS,
      vus: VUS,
      warmupS: WARMUP_S,
      durationS: DURATION_S,
      rate: RATE,
      latencyWarmupS: LAT_WARMUP_S,
      latencyDurationS: LAT_DURATION_S,
      seed: BENCH_SEED,
      otherCoresLimit: OTHER_LIMIT,
      retries: RETRIES,
      budgetS: BUDGET_S,
      cpuProfiling: CPU_PROF_DIR !== undefined,
    },
    profiles: { bank: PROFILE_NONE, 'bank-chaos': PROFILE_CHAOS, 'bank-latency': PROFILE_LATENCY },
    throughput: { runs, servers: sums, ratios: rs, discarded },
    paired: { runs: pairRuns, pairs: pairSums, discarded: discardedPairs },
    latency,
    latencyBaseline,
    discardedLatency,
    wallS,
    quietWaitS,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${relative(process.cwd(), OUT)}`);
}

main().catch((e: unknown) => {
  console.error(`[bench] failed: ${e instanceof Error ? e.message : String(e)}`);
  killAll('SIGTERM');
  process.exitCode = 1;
});
