// The embedded stack of `flashcrowd run` and `flashcrowd up`: Redis
// (REDIS_URL, else a local redis-server, else testcontainers; or a local Redis
// Cluster of N masters, harness/redis-cluster.ts), the three mock
// gateways in one child process and the checkout in another (or N checkout
// instances, a process each, on the same Redis and mocks), all on free
// loopback ports. Children get `--exit-with-stdin`: their stdin is a pipe from
// this process, so they stop when it exits, however it exits (Ctrl-C, a crash,
// kill -9). `stop()` ends them politely first.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { UsageError } from './errors.ts';
import { startRedis, type LocalRedis } from './redis.ts';
import { startRedisCluster } from './redis-cluster.ts';
import { PROJECT_ROOT } from './tools.ts';

export interface StackUrls {
  /** The first checkout instance (`checkouts[0]`). */
  checkout: string;
  /** Every checkout instance, in index order (one with a single instance; absent for a --target). */
  checkouts?: string[];
  bank: string;
  wallet: string;
  coupon: string;
  /** Redis (with `redisCluster`, one node of the cluster: clients find the others from it). */
  redis: string;
  /** The Redis is a Redis Cluster: every client of it is a cluster client (checkout `--cluster`). */
  redisCluster?: boolean;
}

export interface Stack {
  urls: StackUrls;
  /** How Redis was found: env (REDIS_URL), local (redis-server started here), container, cluster (started here). */
  redisKind: string;
  /** The processes this stack started, for CPU accounting (a Redis not started here is absent). */
  processes: { name: string; pid: number }[];
  /** The checkout instances, by index. */
  checkouts: CheckoutInstance[];
  /**
   * Restart the Redis this stack started (a local redis-server; undefined for
   * REDIS_URL or a container): SIGKILL or SHUTDOWN, down for `downMs`, back on
   * the same port from its append-only file (`redisAof`).
   */
  restartRedis?: (how: 'kill' | 'shutdown', downMs: number) => Promise<void>;
  stop(): Promise<void>;
}

/** One checkout process of the stack. */
export interface CheckoutInstance {
  index: number;
  url: string;
  port: number;
  /** The process id of its current process (undefined while none runs). */
  pid(): number | undefined;
  alive(): boolean;
  /** Send `signal` (default SIGKILL) and wait for the process to exit; its in-flight requests are reset. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port with the same arguments (killing it first if it still runs). */
  restart(): Promise<void>;
}

/** The URLs the checkout instances are started with (the hook of StackOptions may replace them). */
export interface CheckoutDeps {
  redis: string;
  bank: string;
  wallet: string;
  coupon: string;
}

export interface StackOptions {
  seed: number;
  mode: 'naive' | 'hardened';
  /** `--set KEY=VALUE` overrides of the checkout. */
  set: string[];
  /** The mocks' time-scale (`mock all --time-scale`); default theirs, 1. A run's /__reset may set it too. */
  timeScale?: number;
  /** Where the children's output goes (a file per child); none: discarded. */
  logDir?: string;
  /** Called with a line of progress for a person ("starting the checkout..."). */
  log?: (line: string) => void;
  /** How many checkout processes share the Redis and the mocks (1-16, default 1). */
  instances?: number;
  /**
   * Called once Redis and the mocks run, before any checkout starts: URLs
   * returned here are what the checkout instances use instead of the real
   * ones (e.g. proxies in front of them). The harness's audit, scrapes and
   * chaos keep the real URLs (`urls`).
   */
  beforeCheckout?: (real: CheckoutDeps) => Promise<Partial<CheckoutDeps>>;
  /** A local Redis persists every write with this fsync policy (harness/redis.ts `aof`). */
  redisAof?: 'everysec' | 'always';
  /**
   * Start a local Redis Cluster of this many masters (3 or more) instead of
   * one Redis; REDIS_URL is not used then. No persistence and no restart.
   */
  redisCluster?: number;
  /** Address the mocks and checkout bind (default 127.0.0.1; `up --host`, with FLASHCROWD_ADMIN_TOKEN). */
  host?: string;
}

export const MAX_INSTANCES = 16;

const CLI = join(PROJECT_ROOT, 'bin', 'flashcrowd.js');
const START_TIMEOUT_MS = 60_000;

interface Child {
  proc: ChildProcess;
  name: string;
  log?: WriteStream;
}

/** Start a `flashcrowd` sub-command and wait for its one JSON line of URLs. */
async function startChild(
  name: string,
  args: string[],
  logDir: string | undefined,
): Promise<{ child: Child; urls: Record<string, string> }> {
  const proc = spawn(process.execPath, [CLI, ...args, '--json', '--exit-with-stdin'], {
    cwd: PROJECT_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    // A process group of its own: a Ctrl-C or SIGTERM meant for the run reaches the run only,
    // which stops the load and still audits and reports; the child ends when its stdin closes.
    detached: true,
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  const log = logDir ? createWriteStream(join(logDir, `${name}.log`)) : undefined;
  const child: Child = { proc, name, log };
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 20_000) stderr += d.toString();
    log?.write(d);
  });
  const lines = createInterface({ input: proc.stdout! });
  try {
    const urls = await new Promise<Record<string, string>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} did not start within ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS,
      );
      let got = false;
      lines.on('line', (line) => {
        log?.write(`${line}\n`);
        if (got) return;
        try {
          const v = JSON.parse(line) as Record<string, string>;
          got = true;
          clearTimeout(timer);
          resolve(v);
        } catch {
          /* a line of text before the JSON: logged */
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        if (!got)
          reject(
            new UsageError(
              `${name} exited with code ${code} before it was ready:\n${stderr.trim().slice(-4_000)}`,
            ),
          );
      });
      proc.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    return { child, urls };
  } catch (e) {
    await stopChild(child);
    throw e;
  }
}

async function stopChild(c: Child): Promise<void> {
  const { proc } = c;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.stdin?.end(); // --exit-with-stdin: stops cleanly
    const t = setTimeout(() => proc.kill('SIGTERM'), 5_000);
    const k = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
    clearTimeout(k);
  }
  await new Promise<void>((r) => (c.log ? c.log.end(r) : r()));
}

/** Start Redis, the mocks and the checkout; stop whatever started if a later part fails. */
export async function startStack(o: StackOptions): Promise<Stack> {
  const log = o.log ?? (() => undefined);
  const children: Child[] = [];
  const instances: RunningInstance[] = [];
  let redis: StackRedis | undefined;
  const stop = async () => {
    for (const x of instances.splice(0).reverse()) await x.stop();
    for (const c of children.reverse()) await stopChild(c);
    children.length = 0;
    await redis?.close();
    redis = undefined;
  };
  try {
    redis = await startStackRedis(o, log);
    log('starting the mock gateways...');
    const mocks = await startChild(
      'mocks',
      [
        'mock',
        'all',
        '--port',
        '0',
        '--seed',
        String(o.seed),
        ...(o.timeScale !== undefined ? ['--time-scale', String(o.timeScale)] : []),
        ...(o.host ? ['--host', o.host, '--admin-remote', '--allow-remote-notify'] : []),
      ],
      o.logDir,
    );
    children.push(mocks.child);
    const { bank, wallet, coupon } = mocks.urls as Record<'bank' | 'wallet' | 'coupon', string>;
    if (!bank || !wallet || !coupon)
      throw new Error(
        `the mocks printed ${JSON.stringify(mocks.urls)}, expected bank, wallet, coupon`,
      );
    for (const [k, v] of Object.entries({ bank, wallet, coupon })) log(`  ${k.padEnd(8)} ${v}`);
    const real: CheckoutDeps = { redis: redis.url, bank, wallet, coupon };
    const deps: CheckoutDeps = { ...real, ...((await o.beforeCheckout?.(real)) ?? {}) };
    const n = instancesOf(o.instances);
    log(`starting the checkout (${o.mode}${n > 1 ? `, ${n} instances` : ''})...`);
    const args = (port: number) => [
      'checkout',
      '--port',
      String(port),
      '--redis',
      deps.redis,
      ...(o.redisCluster ? ['--cluster'] : []),
      '--bank',
      deps.bank,
      '--wallet',
      deps.wallet,
      '--coupon',
      deps.coupon,
      '--mode',
      o.mode,
      ...o.set.flatMap((s) => ['--set', s]),
      ...(o.host ? ['--host', o.host, '--admin-remote'] : []),
    ];
    for (let i = 0; i < n; i++) {
      const inst = await startCheckoutInstance(i, n, args, o.logDir);
      instances.push(inst);
      log(`  checkout ${inst.url}${n > 1 ? ` (instance ${i})` : ''}`);
    }
    const checkouts = instances.map((x) => x.url);
    const processes = [
      ...children.flatMap((c) => (c.proc.pid ? [{ name: c.name, pid: c.proc.pid }] : [])),
      ...instances.flatMap((x) => {
        const pid = x.pid();
        return pid ? [{ name: x.name, pid }] : [];
      }),
      ...redis.processes,
    ];
    return {
      urls: {
        checkout: checkouts[0]!,
        checkouts,
        bank,
        wallet,
        coupon,
        redis: redis.url,
        ...(o.redisCluster ? { redisCluster: true } : {}),
      },
      redisKind: redis.kind,
      processes,
      checkouts: instances.map((x) => x.api),
      ...(redis.restart ? { restartRedis: redis.restart } : {}),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The stack's Redis, whichever kind: its URL, processes (for CPU accounting), restart when it can. */
interface StackRedis {
  url: string;
  kind: string;
  processes: { name: string; pid: number }[];
  restart?: LocalRedis['restart'];
  close(): Promise<void>;
}

/** One Redis (harness/redis.ts), or a local cluster of `redisCluster` masters: a process each, `redis-0`... */
async function startStackRedis(
  o: Pick<StackOptions, 'redisAof' | 'redisCluster'>,
  log: (line: string) => void,
): Promise<StackRedis> {
  if (o.redisCluster) {
    log(`starting a Redis Cluster (${o.redisCluster} masters)...`);
    const c = await startRedisCluster({ masters: o.redisCluster, apart: true });
    log(`  redis    ${c.urls.join(', ')} (cluster)`);
    const processes = c.pids.flatMap((pid, i) => (pid ? [{ name: `redis-${i}`, pid }] : []));
    return { url: c.urls[0]!, kind: 'cluster', processes, close: c.close };
  }
  log('starting Redis...');
  const r = await startRedis({ apart: true, ...(o.redisAof ? { aof: o.redisAof } : {}) });
  log(`  redis    ${r.url} (${r.kind})`);
  return {
    url: r.url,
    kind: r.kind,
    processes: r.pid ? [{ name: 'redis', pid: r.pid }] : [],
    ...('restart' in r ? { restart: (r as LocalRedis).restart } : {}),
    close: () => r.close(),
  };
}

/** `instances` checked: an integer from 1 to MAX_INSTANCES (default 1). */
export function instancesOf(n: number | undefined): number {
  const v = n ?? 1;
  if (!Number.isInteger(v) || v < 1 || v > MAX_INSTANCES)
    throw new UsageError(`instances must be an integer from 1 to ${MAX_INSTANCES}, got ${v}`);
  return v;
}

export interface RunningInstance {
  name: string;
  url: string;
  pid(): number | undefined;
  api: CheckoutInstance;
  stop(): Promise<void>;
}

/**
 * Checkout instance `index` of `n` as a child process (`flashcrowd <args(port)>`,
 * first on `firstPort`, 0: a free one), killable and restartable on its port.
 */
export async function startCheckoutInstance(
  index: number,
  n: number,
  args: (port: number) => string[],
  logDir: string | undefined,
  firstPort = 0,
): Promise<RunningInstance> {
  const name = n > 1 ? `checkout-${index}` : 'checkout';
  let starts = 0;
  const launch = async (port: number) => {
    starts += 1;
    // A restarted instance logs to a file of its own: the first one's log stays whole.
    const logName = starts > 1 ? `${name}.restart-${starts - 1}` : name;
    const { child, urls } = await startChild(logName, args(port), logDir);
    if (!urls.checkout) {
      await stopChild(child);
      throw new Error(`${name} printed ${JSON.stringify(urls)}`);
    }
    return { child, url: urls.checkout };
  };
  const first = await launch(firstPort);
  let child: Child = first.child;
  const url = first.url;
  const port = Number(new URL(url).port);
  const alive = () => child.proc.exitCode === null && child.proc.signalCode === null;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (!alive()) return;
    const exited = new Promise<void>((r) => child.proc.once('exit', () => r()));
    child.proc.kill(signal);
    await exited;
    await new Promise<void>((r) => (child.log ? child.log.end(r) : r()));
  };
  const api: CheckoutInstance = {
    index,
    url,
    port,
    pid: () => (alive() ? child.proc.pid : undefined),
    alive,
    kill,
    async restart() {
      await kill('SIGKILL');
      child = (await launch(port)).child;
    },
  };
  return { name, url, pid: api.pid, api, stop: () => stopChild(child) };
}
