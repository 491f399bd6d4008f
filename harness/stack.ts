// The embedded stack of `flashcrowd run` and `flashcrowd up`: Redis
// (REDIS_URL, else a local redis-server, else testcontainers), the three mock
// gateways in one child process and the checkout in another, all on free
// loopback ports. Children get `--exit-with-stdin`: their stdin is a pipe from
// this process, so they stop when it exits, however it exits (Ctrl-C, a crash,
// kill -9). `stop()` ends them politely first.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { UsageError } from './errors.ts';
import { startRedis, type RedisHandle } from './redis.ts';
import { PROJECT_ROOT } from './tools.ts';

export interface StackUrls {
  checkout: string;
  bank: string;
  wallet: string;
  coupon: string;
  redis: string;
}

export interface Stack {
  urls: StackUrls;
  /** How Redis was found: env (REDIS_URL), local (redis-server started here), container. */
  redisKind: string;
  /** The processes this stack started, for CPU accounting (a Redis not started here is absent). */
  processes: { name: string; pid: number }[];
  stop(): Promise<void>;
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
}

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
  let redis: RedisHandle | undefined;
  const stop = async () => {
    for (const c of children.reverse()) await stopChild(c);
    children.length = 0;
    await redis?.close();
    redis = undefined;
  };
  try {
    log('starting Redis...');
    redis = await startRedis({ apart: true });
    log(`  redis    ${redis.url} (${redis.kind})`);
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
    log(`starting the checkout (${o.mode})...`);
    const co = await startChild(
      'checkout',
      [
        'checkout',
        '--port',
        '0',
        '--redis',
        redis.url,
        '--bank',
        bank,
        '--wallet',
        wallet,
        '--coupon',
        coupon,
        '--mode',
        o.mode,
        ...o.set.flatMap((s) => ['--set', s]),
      ],
      o.logDir,
    );
    children.push(co.child);
    const checkout = co.urls.checkout;
    if (!checkout) throw new Error(`the checkout printed ${JSON.stringify(co.urls)}`);
    log(`  checkout ${checkout}`);
    const processes = [
      ...children.flatMap((c) => (c.proc.pid ? [{ name: c.name, pid: c.proc.pid }] : [])),
      ...(redis.pid ? [{ name: 'redis', pid: redis.pid }] : []),
    ];
    return {
      urls: { checkout, bank, wallet, coupon, redis: redis.url },
      redisKind: redis.kind,
      processes,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
