// `npm run bench:engine`: what flashcrowd's own load engine (harness/engine/)
// costs and how far it goes, side by side with a third-party generator, in one
// run, against a bare node:http server pinned to a core of its own:
//
//   engine-get        the engine at constant arrival rates, the `get` journey (one GET
//                     per arrival)
//   engine-livestream the engine running the real livestream shopper journey
//                     (livestream-spike at its CI scales) against a stub checkout
//   vegeta            vegeta (MIT, Go) `attack` at the same constant rates: the
//                     open-model ceiling
//   wrk               wrk (Debian, Apache-2.0-style, C) closed model, 64 connections:
//                     what the server and the loopback take when the generator costs
//                     next to nothing
//   k6                only where FLASHCROWD_K6 names a k6 binary (flashcrowd never
//                     installs k6): constant-arrival-rate GET, scenarios/bench-engine.ts
//
// For each: requests per generator CPU-second (the whole process from /proc: for the
// engine its main thread, worker thread and tsx's loader), the highest sustained
// arrival rate (a short search), arrival lateness p50/p99 (the engine's
// arrival_lateness over the measured window), and the engine's RSS after 1M and 10M
// requests. docs/PERFORMANCE.md ("Load engine") explains the method and records the
// figures.
//
//   npm run bench:engine                 the full run (about 13-15 minutes)
//   npm run bench:engine -- --quick      a short version (about 3 minutes)
//   npm run bench:engine -- --help       options
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { LoadPlan } from '../harness/engine/types.ts';
import { loadPreset, resolvePreset } from '../harness/preset.ts';
import { findTool, PROJECT_ROOT } from '../harness/tools.ts';
import type { EngineChildInput, EngineChildResult, EngineTick } from './engine-child.ts';
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
  stopChild,
  table,
  type Pinning,
} from './common.ts';

const OTHER_LIMIT = 0.15;
/** Goals of the engine issue. */
const GOAL_REQ_PER_CPU_S = 11_000;
const GOAL_OF_CEILING = 0.5;
const GOAL_LATENESS_P99_MS = 5;
const GOAL_LATENESS_RATE = 5_000;
const GOAL_RSS_GROWTH = 0.1;
/** A rate is sustained when nothing was dropped, this share of the arrivals came, and lateness p99 stayed under this. */
const SUSTAIN_SHARE = 0.99;
const SUSTAIN_LATENESS_P99_MS = 10;

const HELP = `usage: npm run bench:engine -- [options]

  --quick               a short version: fewer rates, shorter windows, RSS after 100k and 1M
  --rates a,b           constant arrival rates for the engine, vegeta and k6 (default 5000,10000)
  --livestream-rates    arrivals/s for the livestream journey (default 1000,2000)
  --warmup S            warm-up seconds (a ramp from a tenth of the rate) before each window (default 2)
  --duration S          measured seconds per rate (default 8)
  --search-from N       the sustained-rate search's first rate (default 8000; livestream a tenth)
  --search-steps N      most steps of each search (default 7)
  --rss-reqs a,b        requests after which to note the engine's RSS (default 1000000,10000000)
  --rss-rate N          arrival rate of the RSS run (default: 95% of the highest sustained rate found,
                        at most 40000)
  --skip-rss            no RSS run
  --budget S            wall-time budget (default 1800; --quick 240): the RSS run is cut short to fit
                        it, and its RSS compared at the most requests it reached
  --only a,b            parts: engine-get,engine-livestream,vegeta,wrk,k6,search,rss (default all)
  --engine-child FILE   the engine's process (default bench/engine-child.ts; a copy that imports a
                        patched engine A/B-tests a change)
  --no-pin              do not pin with taskset
  --out FILE            JSON report (default reports/bench-engine.json)
`;

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rates: { type: 'string' },
    'livestream-rates': { type: 'string' },
    warmup: { type: 'string' },
    duration: { type: 'string' },
    'search-from': { type: 'string' },
    'search-steps': { type: 'string' },
    'rss-reqs': { type: 'string' },
    'rss-rate': { type: 'string' },
    'skip-rss': { type: 'boolean', default: false },
    budget: { type: 'string' },
    only: { type: 'string' },
    'engine-child': { type: 'string', default: join('bench', 'engine-child.ts') },
    'no-pin': { type: 'boolean', default: false },
    out: { type: 'string', default: 'reports/bench-engine.json' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function nums(name: string, raw: string): number[] {
  const xs = raw.split(',').map((s) => Number(s.trim()));
  if (!xs.length || xs.some((x) => !Number.isFinite(x) || x <= 0)) {
    console.error(`--${name} must be positive numbers, comma-separated (got ${raw})`);
    process.exit(2);
  }
  return xs;
}
const num = (name: string, raw: string | undefined, dflt: number) =>
  raw === undefined ? dflt : nums(name, raw)[0]!;

const QUICK = opt.quick;
const RATES = nums('rates', opt.rates ?? (QUICK ? '5000' : '5000,10000'));
const LS_RATES = nums(
  'livestream-rates',
  opt['livestream-rates'] ?? (QUICK ? '1000' : '1000,2000'),
);
const WARMUP_S = num('warmup', opt.warmup, 2);
const DURATION_S = num('duration', opt.duration, QUICK ? 4 : 8);
const SEARCH_FROM = num('search-from', opt['search-from'], 8_000);
const SEARCH_STEPS = num('search-steps', opt['search-steps'], QUICK ? 3 : 7);
const SEARCH_DURATION_S = QUICK ? 3 : 4;
const RSS_REQS = nums(
  'rss-reqs',
  opt['rss-reqs'] ?? (QUICK ? '100000,1000000' : '1000000,10000000'),
);
const BUDGET_S = num('budget', opt.budget, QUICK ? 240 : 1800);
const RSS_RATE = opt['rss-rate'] === undefined ? undefined : num('rss-rate', opt['rss-rate'], 0);
const PARTS = ['engine-get', 'engine-livestream', 'vegeta', 'wrk', 'k6', 'search', 'rss'] as const;
type Part = (typeof PARTS)[number];
const ONLY = new Set((opt.only?.split(',') ?? [...PARTS]).map((s) => s.trim()));
for (const p of ONLY)
  if (!(PARTS as readonly string[]).includes(p)) {
    console.error(`--only: unknown part ${p} (known: ${PARTS.join(', ')})`);
    process.exit(2);
  }
const doing = (p: Part) => ONLY.has(p) && !(p === 'rss' && opt['skip-rss']);
const OUT = resolve(opt.out);
const ENGINE_CHILD = resolve(PROJECT_ROOT, opt['engine-child']);
const RUN_TS = join(PROJECT_ROOT, 'bin', 'run-ts.js');
const K6_SCRIPT = join(PROJECT_ROOT, 'scenarios', 'bench-engine.ts');

const t0Run = performance.now();
const elapsedS = () => (performance.now() - t0Run) / 1000;
const log = (msg: string) =>
  console.log(`[bench:engine ${elapsedS().toFixed(0).padStart(3)}s] ${msg}`);

const tmp = join(tmpdir(), `flashcrowd-bench-engine-${process.pid}`);
mkdirSync(tmp, { recursive: true });

// ---------------------------------------------------------------- children and clean-up

const live = new Set<ChildProcess>();
function killAll(signal: NodeJS.Signals = 'SIGTERM') {
  for (const c of live) c.kill(signal);
}
process.on('exit', () => {
  killAll('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    console.error(`\n[bench:engine] ${sig}: stopping the servers and generators`);
    killAll('SIGTERM');
    setTimeout(() => process.exit(130), 300);
  });

/** `cmd args` on one CPU (taskset), or unpinned. */
function pinned(cpu: number | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpu === undefined
    ? [cmd, args]
    : [findTool('taskset')!, ['-c', String(cpu), cmd, ...args]];
}

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

interface Server {
  kind: string;
  url: string;
  pid: number;
  child: ChildProcess;
}

async function startServer(kind: 'get' | 'stub-checkout', pin: Pinning): Promise<Server> {
  const [cmd, args] = pinned(pin.serverCpu, process.execPath, [
    RUN_TS,
    join(PROJECT_ROOT, 'bench', 'engine-servers.ts'),
    kind,
  ]);
  const child = track(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], cwd: PROJECT_ROOT }));
  const line = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${kind} server did not start in 30 s`)), 30_000);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(t);
      res(l);
    });
    child.once('exit', (code) => rej(new Error(`${kind} server exited (code ${code})`)));
  });
  const info = JSON.parse(line) as { url: string; pid: number };
  return { kind, url: info.url, pid: info.pid, child };
}

/** 'close': exited and its stdout drained (the last lines come at exit). */
const stopServer = (s: Server) => stopChild(s.child);

// ---------------------------------------------------------------- CPU sampling

interface Sample {
  /** Date.now() */
  t: number;
  gen?: number;
  server?: number;
  machine?: number;
  self: number;
}

/** Samples /proc every 200 ms until stopped. */
function sampler(server: Server, gen: () => number | undefined) {
  const samples: Sample[] = [];
  let on = true;
  const take = () =>
    samples.push({
      t: Date.now(),
      gen: ((p) => (p === undefined ? undefined : cpuSeconds(p)))(gen()),
      server: cpuSeconds(server.pid),
      machine: machineBusySeconds(),
      self: selfCpuSeconds(),
    });
  const loop = (async () => {
    while (on) {
      take();
      await sleep(200);
    }
    take();
  })();
  return {
    samples,
    async stop() {
      on = false;
      await loop;
    },
  };
}

interface Usage {
  wallS: number;
  genCores?: number;
  serverCores?: number;
  otherCores?: number;
}

/** Cores used between the first sample at or after `from` and the last at or before `to`. */
function usageBetween(samples: Sample[], from: number, to: number, genCpuS?: number): Usage {
  const a = samples.find((s) => s.t >= from);
  const b = [...samples].reverse().find((s) => s.t <= to);
  if (!a || !b || b.t - a.t < 500) return { wallS: 0 };
  const wallS = (b.t - a.t) / 1000;
  const d = (x?: number, y?: number) => (x === undefined || y === undefined ? undefined : y - x);
  const gen = genCpuS ?? d(a.gen, b.gen);
  const server = d(a.server, b.server);
  const machine = d(a.machine, b.machine);
  const genCores = gen === undefined ? undefined : gen / wallS;
  const serverCores = server === undefined ? undefined : server / wallS;
  const otherCores =
    machine === undefined || genCores === undefined || serverCores === undefined
      ? undefined
      : Math.max(0, (machine - (b.self - a.self)) / wallS - genCores - serverCores);
  return { wallS, genCores, serverCores, otherCores };
}

// ---------------------------------------------------------------- one measurement

type Generator = 'engine-get' | 'engine-livestream' | 'vegeta' | 'wrk' | 'k6';

export interface Measurement {
  generator: Generator;
  purpose: 'rate' | 'search' | 'rss' | 'closed';
  /** Arrivals per second asked for (closed model: undefined). */
  rate?: number;
  connections?: number;
  warmupS: number;
  durationS: number;
  /** Over the measured window. */
  reqPerS: number;
  arrivalsPerS?: number;
  /** Requests per CPU-second of the generator's process. */
  reqPerCpuS?: number;
  genCores?: number;
  serverCores?: number;
  otherCores?: number;
  dropped?: number;
  /** Dropped in the measured window (engine). */
  windowDropped?: number;
  /** Share of the window's expected arrivals (or requests) that came. */
  achievedShare?: number;
  latenessP50Ms?: number;
  latenessP99Ms?: number;
  latenessMaxMs?: number;
  reqP50Ms?: number;
  reqP99Ms?: number;
  /** Answers that were not 2xx (or failed), share. */
  failedShare?: number;
  sustained?: boolean;
  disturbed: boolean;
  limit?: 'generator' | 'server' | 'both' | 'neither';
  note?: string;
  rss?: EngineChildResult['rss'];
  /** The last report of the run: requests and RSS (the RSS run's end, when cut short). */
  last?: { reqs: number; rssMb: number; elapsedS: number };
  peakRssMb?: number;
  ticks?: number;
}

function limitOf(m: Pick<Measurement, 'genCores' | 'serverCores'>): Measurement['limit'] {
  const g = (m.genCores ?? 0) >= 0.9;
  const s = (m.serverCores ?? 0) >= 0.9;
  return g && s ? 'both' : g ? 'generator' : s ? 'server' : 'neither';
}

/** VUs of the get journey (and vegeta's workers): 1,000, or 100 ms of arrivals above 10,000/s. */
const getMaxVUs = (rate: number) => Math.max(1000, Math.ceil(rate / 10));

/** A shape: a ramp from a tenth of the rate over the warm-up, then the rate. */
function shapeFor(rate: number, warmupS: number, durationS: number) {
  return {
    startRate: rate / 10,
    stages: [
      { durationS: warmupS, target: rate },
      { durationS, target: rate },
    ],
  };
}

let livestreamPreset: ReturnType<typeof resolvePreset> | undefined;
function livestream() {
  if (!livestreamPreset) {
    const { preset } = loadPreset('livestream-spike');
    livestreamPreset = resolvePreset(preset, { seed: 1, ...preset.ci });
  }
  return livestreamPreset;
}

async function runEngine(
  gen: 'engine-get' | 'engine-livestream',
  purpose: Measurement['purpose'],
  server: Server,
  pin: Pinning,
  rate: number,
  warmupS: number,
  durationS: number,
  rssAt: number[] = [],
  stopAfterRss = false,
): Promise<Measurement> {
  const isGet = gen === 'engine-get';
  const plan: LoadPlan = {
    journey: isGet
      ? { name: 'get', config: { url: `${server.url}/` } }
      : { name: 'livestream', config: { preset: livestream(), target: server.url } },
    shape: shapeFor(rate, warmupS, durationS),
    preAllocatedVUs: 100,
    maxVUs: isGet ? getMaxVUs(rate) : Math.max(4000, rate * 4),
    gracefulStopS: isGet ? 2 : 10,
  };
  const input: EngineChildInput = { plan, workers: 1, warmupS, rssAt, stopAfterRss };
  const [cmd, args] = pinned(pin.loadCpu, process.execPath, [
    RUN_TS,
    ENGINE_CHILD,
    JSON.stringify(input),
  ]);
  const child = track(
    spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: PROJECT_ROOT }),
  );
  const s = sampler(server, () => undefined);
  const ticks: EngineTick[] = [];
  let result: EngineChildResult | undefined;
  let lastLog = Date.now();
  for await (const line of createInterface({ input: child.stdout! })) {
    const m = JSON.parse(line) as EngineTick | EngineChildResult;
    if (m.type === 'tick') {
      ticks.push(m);
      if (purpose === 'rss' && Date.now() - lastLog > 30_000) {
        lastLog = Date.now();
        log(
          `  ${fmtInt(m.reqs)} requests, ${m.elapsedS.toFixed(0)} s, RSS ${m.rssMb.toFixed(0)} MB, dropped ${m.dropped}`,
        );
      }
    } else result = m;
  }
  await s.stop();
  if (!result) throw new Error(`${gen}: the engine's child wrote no result`);
  const w = result.window;
  const u = w
    ? usageBetween(s.samples, nearestTick(ticks, w.fromS).t, nearestTick(ticks, w.toS).t, w.cpuS)
    : { wallS: 0 };
  const wallS = w?.wallS ?? 0;
  const reqPerS = w && wallS > 0 ? w.reqs / wallS : 0;
  const arrivalsPerS = w && wallS > 0 ? w.started / wallS : 0;
  const failed = w?.rates.http_req_failed;
  const late = w?.trends.arrival_lateness;
  const dur = w?.trends.http_req_duration;
  const expected = rate * (w ? w.toS - w.fromS : 0);
  const m: Measurement = {
    generator: gen,
    purpose,
    rate,
    warmupS,
    durationS,
    reqPerS,
    arrivalsPerS,
    reqPerCpuS: w && w.cpuS > 0 ? w.reqs / w.cpuS : undefined,
    genCores: w && wallS > 0 ? w.cpuS / wallS : undefined,
    serverCores: u.serverCores,
    otherCores: u.otherCores,
    dropped: result.dropped,
    achievedShare: expected > 0 && w ? w.started / expected : undefined,
    latenessP50Ms: late?.p50,
    latenessP99Ms: late?.p99,
    latenessMaxMs: late?.max,
    reqP50Ms: dur?.p50,
    reqP99Ms: dur?.p99,
    failedShare: failed ? failed.passes / Math.max(1, failed.passes + failed.fails) : undefined,
    disturbed: (u.otherCores ?? 0) > OTHER_LIMIT,
    rss: result.rss,
    peakRssMb: result.peakRssMb,
    ticks: ticks.length,
    ...(ticks.length
      ? {
          last: {
            reqs: ticks[ticks.length - 1]!.reqs,
            rssMb: ticks[ticks.length - 1]!.rssMb,
            elapsedS: ticks[ticks.length - 1]!.elapsedS,
          },
        }
      : {}),
  };
  m.limit = limitOf(m);
  // Drops in the window: a stall while the engine warms up (JIT, first connections) can drop a
  // burst in the ramp; the whole run's drops are reported beside.
  m.windowDropped = w?.dropped ?? 0;
  m.sustained =
    m.windowDropped === 0 &&
    (m.achievedShare ?? 0) >= SUSTAIN_SHARE &&
    (m.latenessP99Ms ?? Infinity) <= SUSTAIN_LATENESS_P99_MS;
  return m;
}

function nearestTick(ticks: EngineTick[], elapsed: number): EngineTick {
  return ticks.reduce((best, t) =>
    Math.abs(t.elapsedS - elapsed) < Math.abs(best.elapsedS - elapsed) ? t : best,
  );
}

/** Run a third-party generator to its end, sampling its CPU; the window is [warm-up + 0.5 s, end - 0.5 s] from its start. */
async function runTool(
  server: Server,
  cmd: string,
  args: string[],
  pin: Pinning,
  warmupS: number,
  durationS: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ usage: Usage; stdout: string; stderr: string; code: number | null }> {
  const [c, a] = pinned(pin.loadCpu, cmd, args);
  const startedAt = Date.now();
  const child = track(spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], env }));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const s = sampler(server, () => child.pid);
  const code = await new Promise<number | null>((r) => child.on('exit', (x) => r(x)));
  await s.stop();
  const usage = usageBetween(
    s.samples,
    startedAt + (warmupS + 0.5) * 1000,
    startedAt + (warmupS + durationS - 0.5) * 1000,
  );
  return { usage, stdout, stderr, code };
}

interface VegetaReport {
  requests: number;
  rate: number;
  throughput: number;
  success: number;
  latencies: { '50th': number; '99th': number; max: number };
  status_codes: Record<string, number>;
  errors: string[] | null;
}

async function runVegeta(
  purpose: Measurement['purpose'],
  server: Server,
  pin: Pinning,
  rate: number,
  warmupS: number,
  durationS: number,
): Promise<Measurement> {
  const vegeta = findTool('vegeta')!;
  const targets = join(tmp, 'targets.txt');
  writeFileSync(targets, `GET ${server.url}/\n`);
  const results = join(tmp, `vegeta-${rate}.bin`);
  // A constant rate from the start (vegeta has no ramp): the window leaves out the warm-up.
  const total = warmupS + durationS;
  const r = await runTool(
    server,
    vegeta,
    [
      'attack',
      `-rate=${rate}/s`,
      `-duration=${total}s`,
      `-targets=${targets}`,
      '-timeout=10s',
      // As many workers (each its own connection) as the engine has VUs: unbounded, vegeta
      // falling behind opens tens of thousands of connections and collapses.
      `-max-workers=${getMaxVUs(rate)}`,
      `-output=${results}`,
    ],
    pin,
    warmupS,
    durationS,
  );
  if (r.code !== 0) throw new Error(`vegeta attack exited ${r.code}: ${r.stderr.slice(-500)}`);
  const rep = spawnSync(vegeta, ['report', '-type=json', results], { encoding: 'utf8' });
  rmSync(results, { force: true });
  const v = JSON.parse(rep.stdout) as VegetaReport;
  const ok = Object.entries(v.status_codes)
    .filter(([k]) => k.startsWith('2'))
    .reduce((a, [, n]) => a + n, 0);
  // vegeta paces itself: its `rate` is the rate it achieved; when it cannot keep up it falls behind.
  const reqPerS = v.rate;
  const m: Measurement = {
    generator: 'vegeta',
    purpose,
    rate,
    warmupS,
    durationS,
    reqPerS,
    arrivalsPerS: reqPerS,
    reqPerCpuS: r.usage.genCores ? reqPerS / r.usage.genCores : undefined,
    genCores: r.usage.genCores,
    serverCores: r.usage.serverCores,
    otherCores: r.usage.otherCores,
    achievedShare: v.rate / rate,
    reqP50Ms: v.latencies['50th'] / 1e6,
    reqP99Ms: v.latencies['99th'] / 1e6,
    failedShare: v.requests ? 1 - ok / v.requests : undefined,
    disturbed: (r.usage.otherCores ?? 0) > OTHER_LIMIT,
    note: 'vegeta does not measure lateness; whole attack (warm-up included) for the latencies',
  };
  m.limit = limitOf(m);
  m.sustained = (m.achievedShare ?? 0) >= SUSTAIN_SHARE && (m.failedShare ?? 1) <= 0.001;
  return m;
}

function wrkNumber(s: string): number {
  const m = /^([\d.]+)([kMG]?)$/.exec(s.trim());
  if (!m) return NaN;
  return Number(m[1]) * ({ '': 1, k: 1e3, M: 1e6, G: 1e9 }[m[2] as '' | 'k' | 'M' | 'G'] ?? 1);
}
function wrkMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return NaN;
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3, m: 6e4 }[m[2] as 'us' | 'ms' | 's' | 'm'];
}

async function runWrk(server: Server, pin: Pinning, connections: number): Promise<Measurement> {
  const wrk = findTool('wrk')!;
  const total = WARMUP_S + DURATION_S;
  const r = await runTool(
    server,
    wrk,
    ['-t1', `-c${connections}`, `-d${total}s`, '--latency', `${server.url}/`],
    pin,
    WARMUP_S,
    DURATION_S,
  );
  if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${r.stderr.slice(-500)}`);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1];
  const p50 = /^\s+50%\s+(\S+)/m.exec(r.stdout)?.[1];
  const p99 = /^\s+99%\s+(\S+)/m.exec(r.stdout)?.[1];
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout)?.[1];
  const total2 = /(\d+) requests in/.exec(r.stdout)?.[1];
  const reqPerS = Number(rps ?? NaN);
  const m: Measurement = {
    generator: 'wrk',
    purpose: 'closed',
    connections,
    warmupS: WARMUP_S,
    durationS: DURATION_S,
    reqPerS,
    reqPerCpuS: r.usage.genCores ? reqPerS / r.usage.genCores : undefined,
    genCores: r.usage.genCores,
    serverCores: r.usage.serverCores,
    otherCores: r.usage.otherCores,
    reqP50Ms: p50 ? wrkMs(p50) : undefined,
    reqP99Ms: p99 ? wrkMs(p99) : undefined,
    failedShare: non2xx && total2 ? Number(non2xx) / wrkNumber(total2) : 0,
    disturbed: (r.usage.otherCores ?? 0) > OTHER_LIMIT,
    note: 'closed model: req/s over the whole run (wrk has no warm-up), CPU over the middle',
  };
  m.limit = limitOf(m);
  return m;
}

interface K6Summary {
  reqs?: { count?: number; rate?: number };
  dropped?: { count?: number };
  duration?: { med?: number; 'p(99)'?: number };
  failed?: { rate?: number };
  testRunDurationMs?: number;
}

async function runK6(
  k6: string,
  server: Server,
  pin: Pinning,
  rate: number,
  warmupS: number,
  durationS: number,
): Promise<Measurement> {
  const summary = join(tmp, `k6-${rate}.json`);
  const env = {
    ...process.env,
    GOGC: process.env.GOGC ?? '400',
    GOMEMLIMIT: process.env.GOMEMLIMIT ?? '1GiB',
  };
  const r = await runTool(
    server,
    k6,
    [
      'run',
      '--quiet',
      '--no-color',
      '-e',
      `TARGET_URL=${server.url}/`,
      '-e',
      `RATE=${rate}`,
      '-e',
      `WARMUP_S=${warmupS}`,
      '-e',
      `DURATION_S=${durationS}`,
      '-e',
      `SUMMARY_FILE=${summary}`,
      K6_SCRIPT,
    ],
    pin,
    warmupS + 1, // k6 takes about a second to start its VUs
    durationS,
    env,
  );
  const s = JSON.parse(readFileSync(summary, 'utf8')) as K6Summary;
  const reqPerS = (s.reqs?.count ?? 0) / durationS;
  const m: Measurement = {
    generator: 'k6',
    purpose: 'rate',
    rate,
    warmupS,
    durationS,
    reqPerS,
    arrivalsPerS: reqPerS,
    reqPerCpuS: r.usage.genCores ? reqPerS / r.usage.genCores : undefined,
    genCores: r.usage.genCores,
    serverCores: r.usage.serverCores,
    otherCores: r.usage.otherCores,
    dropped: s.dropped?.count ?? 0,
    achievedShare: reqPerS / rate,
    reqP50Ms: s.duration?.med,
    reqP99Ms: s.duration?.['p(99)'],
    failedShare: s.failed?.rate,
    disturbed: (r.usage.otherCores ?? 0) > OTHER_LIMIT,
    note: `k6 exit ${r.code}; GOGC=${env.GOGC}`,
  };
  m.limit = limitOf(m);
  m.sustained = (s.dropped?.count ?? 0) === 0 && (m.achievedShare ?? 0) >= SUSTAIN_SHARE;
  return m;
}

// ---------------------------------------------------------------- quiet machine, retries

let quietWaitS = 0;
const redone: Measurement[] = [];

async function waitForQuiet(maxS: number) {
  const t = elapsedS();
  let said = false;
  for (;;) {
    const other = await otherLoad(500);
    if (other === undefined || other <= OTHER_LIMIT) break;
    if (elapsedS() - t > maxS) {
      log(`  the machine is busy (${cores(other)} cores elsewhere); going on`);
      break;
    }
    if (!said) log(`  waiting for other work to finish (${cores(other)} cores busy elsewhere)`);
    said = true;
    await sleep(500);
  }
  quietWaitS += elapsedS() - t;
}

/** Measure after waiting for quiet; once more when other work disturbed it. */
async function measure(what: string, f: () => Promise<Measurement>): Promise<Measurement> {
  for (let attempt = 0; ; attempt++) {
    await waitForQuiet(QUICK ? 10 : 30);
    const m = await f();
    log(`  ${what}: ${describe(m)}`);
    if (!m.disturbed || attempt >= 1) return m;
    log('  disturbed by other work: measuring again');
    redone.push(m);
  }
}

const ms = (x?: number) => (x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(2));

function describe(m: Measurement): string {
  return (
    `${fmtInt(m.reqPerS)} req/s` +
    (m.reqPerCpuS !== undefined ? `, ${fmtInt(m.reqPerCpuS)} req/CPU-s` : '') +
    (m.latenessP99Ms !== undefined
      ? `, lateness p50 ${ms(m.latenessP50Ms)} p99 ${ms(m.latenessP99Ms)} ms`
      : '') +
    `, req p50 ${ms(m.reqP50Ms)} p99 ${ms(m.reqP99Ms)} ms` +
    (m.dropped !== undefined
      ? `, dropped ${m.windowDropped ?? '?'} in the window (${m.dropped} in the run)`
      : '') +
    (m.achievedShare !== undefined ? `, ${(m.achievedShare * 100).toFixed(1)}% of the rate` : '') +
    `; CPU generator ${cores(m.genCores)} server ${cores(m.serverCores)} other ${cores(m.otherCores)}` +
    ` -> limit ${m.limit}` +
    (m.sustained === undefined ? '' : m.sustained ? ', sustained' : ', NOT sustained') +
    (m.disturbed ? ' (DISTURBED)' : '')
  );
}

// ---------------------------------------------------------------- the sustained-rate search

interface Search {
  generator: Generator;
  steps: Measurement[];
  /** The highest rate sustained, and the lowest that was not. */
  best?: number;
  firstFailed?: number;
  limitAtFail?: Measurement['limit'];
}

/** Geometric steps up (x1.3) until a rate is not sustained, then halve the gap once or twice. */
async function search(
  gen: Generator,
  from: number,
  run: (rate: number) => Promise<Measurement>,
): Promise<Search> {
  const out: Search = { generator: gen, steps: [] };
  let lo: number | undefined;
  let hi: number | undefined;
  let rate = from;
  for (let i = 0; i < SEARCH_STEPS; i++) {
    log(`search ${gen} ${i + 1}/${SEARCH_STEPS}: ${fmtInt(rate)}/s`);
    const m = await measure(`${fmtInt(rate)}/s`, () => run(rate));
    out.steps.push(m);
    if (m.sustained) lo = rate;
    else {
      hi = rate;
      out.limitAtFail = m.limit;
    }
    if (hi === undefined) rate = Math.round(rate * 1.3);
    else if (lo === undefined) rate = Math.round(rate / 1.6);
    else if (hi / lo > 1.1) rate = Math.round((lo + hi) / 2 / 100) * 100;
    else break;
  }
  out.best = lo;
  out.firstFailed = hi;
  return out;
}

// ---------------------------------------------------------------- main

function codeVersion(): { commit?: string; engineModified?: boolean } {
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  if (head.status !== 0) return {};
  const st = spawnSync('git', ['status', '--porcelain', '--', 'harness/engine', 'scenarios/lib'], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
  });
  return { commit: head.stdout.trim(), engineModified: (st.stdout ?? '').trim() !== '' };
}

function toolVersion(cmd: string | undefined, args: string[]): string {
  if (!cmd) return 'not found';
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? 'unknown';
}

async function main() {
  const allowed = allowedCpus();
  const pin = setUpPinning(opt['no-pin']);
  const vegeta = findTool('vegeta');
  const wrk = findTool('wrk');
  const k6 = process.env.FLASHCROWD_K6;
  const machine = {
    nproc: cpus().length,
    allowedCpus: allowed,
    cpuModel: cpuModel(),
    node: process.version,
    vegeta: vegeta
      ? `${vegeta} (${toolVersion(vegeta, ['-version']).replace(/\s+/g, ' ')})`
      : 'not found',
    vegetaVersion: (await import('../scripts/versions.mjs')).VEGETA_VERSION,
    wrk: wrk ? `${wrk} (${toolVersion(wrk, ['-v'])})` : 'not found',
    k6: k6 ? toolVersion(k6, ['version']) : 'skipped: FLASHCROWD_K6 is not set',
    pinning: pin,
    code: codeVersion(),
  };
  log(`${machine.cpuModel}, ${machine.nproc} CPUs; node ${machine.node}`);
  log(
    pin.pinned
      ? `generators (and this runner) on CPU ${pin.loadCpu}, the server on CPU ${pin.serverCpu}`
      : pin.note,
  );
  log(`vegeta: ${machine.vegeta}; wrk: ${machine.wrk}`);
  if (!k6)
    log(
      'k6: skipped (FLASHCROWD_K6 does not name a k6 binary; flashcrowd never installs k6, which is AGPL-3.0)',
    );
  if (!vegeta && (doing('vegeta') || doing('search')))
    log(
      'vegeta not found: run `node scripts/setup.mjs --for-bench` (it builds vegeta into .tools/bin)',
    );
  if (!wrk && doing('wrk'))
    log("wrk not found: `node scripts/setup.mjs --for-bench` installs Debian's wrk");

  const rates: Measurement[] = [];
  const closed: Measurement[] = [];
  const searches: Search[] = [];
  let rssRun: Measurement | undefined;
  const get = await startServer('get', pin);
  const stub =
    doing('engine-livestream') || doing('search')
      ? await startServer('stub-checkout', pin)
      : undefined;
  try {
    for (const rate of RATES) {
      if (doing('engine-get')) {
        log(`engine-get at ${fmtInt(rate)}/s: ${WARMUP_S} s ramp + ${DURATION_S} s`);
        rates.push(
          await measure('engine-get', () =>
            runEngine('engine-get', 'rate', get, pin, rate, WARMUP_S, DURATION_S),
          ),
        );
      }
      if (doing('vegeta') && vegeta) {
        log(`vegeta at ${fmtInt(rate)}/s: ${WARMUP_S} s + ${DURATION_S} s`);
        rates.push(
          await measure('vegeta', () => runVegeta('rate', get, pin, rate, WARMUP_S, DURATION_S)),
        );
      }
      if (doing('k6') && k6) {
        log(`k6 at ${fmtInt(rate)}/s: ${WARMUP_S} s + ${DURATION_S} s`);
        rates.push(await measure('k6', () => runK6(k6, get, pin, rate, WARMUP_S, DURATION_S)));
      }
    }
    if (doing('engine-livestream') && stub)
      for (const rate of LS_RATES) {
        log(
          `engine-livestream at ${fmtInt(rate)} arrivals/s: ${WARMUP_S} s ramp + ${DURATION_S} s`,
        );
        rates.push(
          await measure('engine-livestream', () =>
            runEngine('engine-livestream', 'rate', stub, pin, rate, WARMUP_S, DURATION_S),
          ),
        );
      }
    if (doing('wrk') && wrk) {
      log(`wrk closed model, 64 connections: ${WARMUP_S + DURATION_S} s`);
      closed.push(await measure('wrk', () => runWrk(get, pin, 64)));
    }
    if (doing('search')) {
      searches.push(
        await search('engine-get', SEARCH_FROM, (r) =>
          runEngine('engine-get', 'search', get, pin, r, WARMUP_S, SEARCH_DURATION_S),
        ),
      );
      if (vegeta)
        searches.push(
          await search('vegeta', SEARCH_FROM, (r) =>
            runVegeta('search', get, pin, r, WARMUP_S, SEARCH_DURATION_S),
          ),
        );
      if (stub)
        searches.push(
          await search('engine-livestream', Math.round(SEARCH_FROM / 10), (r) =>
            runEngine('engine-livestream', 'search', stub, pin, r, WARMUP_S, SEARCH_DURATION_S),
          ),
        );
    }
    if (doing('rss')) {
      const best = searches.find((s) => s.generator === 'engine-get')?.best;
      const rate = RSS_RATE ?? Math.min(40_000, Math.round(((best ?? 8_000) * 0.95) / 100) * 100);
      const total = Math.max(...RSS_REQS);
      // A fifth longer than the requests need at the rate (arrivals dropped, requests still in
      // flight), and stopped as soon as the last mark is noted.
      const needed = Math.ceil((total * 1.2) / rate) + WARMUP_S;
      // What is left of the budget (the report takes a few seconds), two minutes at least.
      const seconds = Math.min(needed, Math.max(120, Math.floor(BUDGET_S - elapsedS() - 10)));
      log(
        `RSS: engine-get at ${fmtInt(rate)}/s for ${seconds} s (${fmtInt(Math.round(rate * (seconds - WARMUP_S)))} requests), RSS after ${RSS_REQS.map(fmtInt).join(' and ')}` +
          (seconds < needed
            ? ` (${fmtInt(total)} requests would take ${needed} s at this rate: cut to the --budget of ${BUDGET_S} s)`
            : ''),
      );
      await waitForQuiet(QUICK ? 10 : 30);
      rssRun = await runEngine(
        'engine-get',
        'rss',
        get,
        pin,
        rate,
        WARMUP_S,
        seconds - WARMUP_S,
        RSS_REQS,
        true,
      );
      log(`  ${describe(rssRun)}`);
      for (const r of rssRun.rss ?? [])
        log(
          `  RSS after ${fmtInt(r.reqs)} requests (${r.elapsedS.toFixed(0)} s): ${r.rssMb.toFixed(1)} MB`,
        );
    }
  } finally {
    await stopServer(get);
    if (stub) await stopServer(stub);
  }
  report(machine, pin, rates, closed, searches, rssRun);
}

function report(
  machine: Record<string, unknown>,
  pin: Pinning,
  rates: Measurement[],
  closed: Measurement[],
  searches: Search[],
  rssRun: Measurement | undefined,
) {
  const pct = (x?: number) => (x === undefined ? 'n/a' : `${(x * 100).toFixed(1)}%`);
  const rows = [...rates, ...closed].map((m) => [
    m.generator,
    m.rate !== undefined ? fmtInt(m.rate) : `closed, ${m.connections} conn.`,
    fmtInt(m.reqPerS),
    m.reqPerCpuS !== undefined ? fmtInt(m.reqPerCpuS) : 'n/a',
    m.latenessP50Ms !== undefined ? `${ms(m.latenessP50Ms)} / ${ms(m.latenessP99Ms)}` : 'n/a',
    `${ms(m.reqP50Ms)} / ${ms(m.reqP99Ms)}`,
    m.dropped !== undefined ? `${m.windowDropped ?? '-'} (${m.dropped})` : '-',
    pct(m.failedShare),
    `${cores(m.genCores)} / ${cores(m.serverCores)} / ${cores(m.otherCores)}${m.disturbed ? '!' : ''}`,
    m.limit ?? '',
  ]);
  const lines = [
    '',
    `flashcrowd bench:engine (${pin.note})`,
    '',
    `Constant arrival rates (engine: a ${WARMUP_S} s ramp from a tenth of the rate, then ${DURATION_S} s measured; vegeta and k6: the rate from the start,`,
    `the same window). The livestream rates are arrivals/s (each shopper sends about 2.5 requests). CPU: cores of the generator's whole`,
    'process / the server / everything else, over the window; "req/CPU-s" is requests per CPU-second of the generator.',
    '',
    table(
      [
        'generator',
        'rate /s',
        'req/s',
        'req/CPU-s',
        'lateness p50/p99 ms',
        'req p50/p99 ms',
        'dropped window (run)',
        'failed',
        'CPU gen/server/other',
        'limit',
      ],
      rows,
    ),
    '',
  ];
  if (searches.length) {
    lines.push(
      `Highest sustained rate (no drops in the window, >= ${SUSTAIN_SHARE * 100}% of the arrivals in the window, lateness p99 <= ${SUSTAIN_LATENESS_P99_MS} ms for the engine;`,
      `vegeta: >= ${SUSTAIN_SHARE * 100}% of the rate, 99.9% 2xx), ${SEARCH_DURATION_S} s windows:`,
      '',
      table(
        [
          'generator',
          'sustained /s',
          'not sustained /s',
          'limit there',
          'steps (rate: req/CPU-s, ok?)',
        ],
        searches.map((s) => [
          s.generator,
          s.best !== undefined
            ? fmtInt(s.best)
            : `< ${fmtInt(Math.min(...s.steps.map((x) => x.rate!)))}`,
          s.firstFailed !== undefined
            ? fmtInt(s.firstFailed)
            : `> ${fmtInt(Math.max(...s.steps.map((x) => x.rate!)))}`,
          s.limitAtFail ?? '',
          s.steps
            .map(
              (x) =>
                `${fmtInt(x.rate!)}: ${x.reqPerCpuS !== undefined ? fmtInt(x.reqPerCpuS) : 'n/a'} ${x.sustained ? 'ok' : 'no'}`,
            )
            .join('; '),
        ]),
      ),
      '',
    );
  }
  const rssMarks = rssRun?.rss ?? [];
  const rssLo = rssMarks[0];
  // The last mark reached; when the run was cut short before the last one, its last report.
  const reachedAll = rssMarks.length === RSS_REQS.length;
  const rssHi =
    reachedAll || !rssRun?.last
      ? rssMarks[rssMarks.length - 1]
      : {
          atReqs: rssRun.last.reqs,
          reqs: rssRun.last.reqs,
          rssMb: rssRun.last.rssMb,
          elapsedS: rssRun.last.elapsedS,
        };
  if (rssRun) {
    lines.push(
      `RSS of the engine's process (engine-get at ${fmtInt(rssRun.rate!)}/s): ` +
        rssMarks
          .map((r) => `${r.rssMb.toFixed(1)} MB after ${fmtInt(r.reqs)} requests`)
          .join(', ') +
        (reachedAll
          ? ''
          : `; cut short at ${fmtInt(rssRun.last?.reqs ?? 0)} requests (${rssRun.last?.rssMb.toFixed(1)} MB) by the budget`) +
        `; peak ${rssRun.peakRssMb?.toFixed(1)} MB; dropped ${rssRun.dropped}; ` +
        `${fmtInt(rssRun.reqPerCpuS ?? NaN)} req/CPU-s over the run`,
      '',
    );
  }

  // Goals.
  const eng = rates.filter((m) => m.generator === 'engine-get');
  const veg = rates.filter((m) => m.generator === 'vegeta');
  const engSearch = searches.find((s) => s.generator === 'engine-get');
  const vegSearch = searches.find((s) => s.generator === 'vegeta');
  // Per CPU-second at the highest rate each sustained (the figure a saturated generator gives).
  const atBest = (s?: Search) => s?.steps.find((x) => x.rate === s.best && x.sustained);
  const engBest = atBest(engSearch);
  const vegBest = atBest(vegSearch);
  const engMaxCpu = Math.max(0, ...eng.map((m) => m.reqPerCpuS ?? 0), engBest?.reqPerCpuS ?? 0);
  const vegMaxCpu = Math.max(0, ...veg.map((m) => m.reqPerCpuS ?? 0), vegBest?.reqPerCpuS ?? 0);
  const sameRate = eng
    .map((e) => ({ e, v: veg.find((v) => v.rate === e.rate) }))
    .filter((x) => x.v?.reqPerCpuS && x.e.reqPerCpuS);
  const at5k = eng.find((m) => m.rate === GOAL_LATENESS_RATE);
  const growth = rssLo && rssHi && rssLo !== rssHi ? rssHi.rssMb / rssLo.rssMb - 1 : undefined;
  const yes = (b: boolean | undefined) => (b === undefined ? 'n/a' : b ? 'met' : 'NOT met');
  const goals = [
    {
      goal: `engine requests per CPU-second >= ~${fmtInt(GOAL_REQ_PER_CPU_S)} (k6's figure on these machines was 11-16k)`,
      measured:
        `best ${fmtInt(engMaxCpu)} (` +
        [
          ...eng.map((m) => `${fmtInt(m.rate!)}/s: ${fmtInt(m.reqPerCpuS ?? NaN)}`),
          ...(engBest
            ? [
                `${fmtInt(engBest.rate!)}/s (highest sustained): ${fmtInt(engBest.reqPerCpuS ?? NaN)}`,
              ]
            : []),
        ].join('; ') +
        ')',
      met: eng.length || engBest ? engMaxCpu >= GOAL_REQ_PER_CPU_S : undefined,
    },
    {
      goal: `engine within 2x of the third-party ceiling (vegeta), per CPU-second`,
      measured:
        `best ${fmtInt(engMaxCpu)} vs ${fmtInt(vegMaxCpu)} = ${(engMaxCpu / vegMaxCpu).toFixed(2)}x` +
        (sameRate.length
          ? `; at the same rate: ${sameRate.map((x) => `${fmtInt(x.e.rate!)}/s ${(x.e.reqPerCpuS! / x.v!.reqPerCpuS!).toFixed(2)}`).join(', ')}`
          : ''),
      met: vegMaxCpu > 0 && engMaxCpu > 0 ? engMaxCpu / vegMaxCpu >= GOAL_OF_CEILING : undefined,
    },
    {
      goal: `arrival lateness p99 < ${GOAL_LATENESS_P99_MS} ms at ${fmtInt(GOAL_LATENESS_RATE)} arrivals/s`,
      measured: at5k
        ? `p50 ${ms(at5k.latenessP50Ms)}, p99 ${ms(at5k.latenessP99Ms)} ms`
        : 'not run',
      met: at5k ? (at5k.latenessP99Ms ?? Infinity) < GOAL_LATENESS_P99_MS : undefined,
    },
    {
      goal: `RSS after ${fmtInt(rssHi?.atReqs ?? 1e7)} requests within ${GOAL_RSS_GROWTH * 100}% of RSS after ${fmtInt(rssLo?.atReqs ?? 1e6)}`,
      measured:
        growth !== undefined
          ? `${rssLo!.rssMb.toFixed(1)} -> ${rssHi!.rssMb.toFixed(1)} MB (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)}%)`
          : 'not run',
      met: growth !== undefined ? growth <= GOAL_RSS_GROWTH : undefined,
    },
  ];
  lines.push(
    table(
      ['goal', 'measured', ''],
      goals.map((g) => [g.goal, g.measured, yes(g.met)]),
    ),
    '',
    `k6: ${machine.k6}`,
    `wall time ${elapsedS().toFixed(0)} s; ${redone.length} disturbed measurement(s) redone, ${quietWaitS.toFixed(0)} s waiting for other work`,
  );
  console.log(lines.join('\n'));
  const out = {
    generatedAt: new Date().toISOString(),
    command: `npm run bench:engine${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine,
    parameters: {
      quick: QUICK,
      rates: RATES,
      livestreamRates: LS_RATES,
      warmupS: WARMUP_S,
      durationS: DURATION_S,
      searchFrom: SEARCH_FROM,
      searchSteps: SEARCH_STEPS,
      searchDurationS: SEARCH_DURATION_S,
      rssReqs: RSS_REQS,
      sustain: { share: SUSTAIN_SHARE, latenessP99Ms: SUSTAIN_LATENESS_P99_MS },
      otherCoresLimit: OTHER_LIMIT,
      livestream: livestreamPreset
        ? {
            preset: livestreamPreset.name,
            timeScale: livestreamPreset.timeScale,
            loadScale: livestreamPreset.loadScale,
            seed: 1,
          }
        : undefined,
    },
    rates,
    closed,
    searches,
    rss: rssRun,
    goals,
    redone,
    quietWaitS,
    wallS: elapsedS(),
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
  log(`wrote ${relative(process.cwd(), OUT)}`);
}

main().catch((e: unknown) => {
  console.error(
    `[bench:engine] failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
  );
  killAll('SIGTERM');
  process.exitCode = 1;
});
