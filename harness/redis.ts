// A Redis for runs and tests: REDIS_URL if set; else a local redis-server on a
// free loopback port (no persistence), stopped with the run; else a
// container through testcontainers where a Docker engine answers. When none
// of these can start, the error says what to install.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from './errors.ts';
import { findTool, PROJECT_ROOT } from './tools.ts';

const GUARD = join(PROJECT_ROOT, 'harness', 'guard.mjs');

export interface RedisHandle {
  url: string;
  kind: 'env' | 'local' | 'container';
  /** Port of a local server (undefined for env). */
  port?: number;
  /** The local server's process (its guard with `apart`), for CPU accounting. */
  pid?: number;
  close(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the OS picks it; a race with another process is possible but rare). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Wait until something answers PING on host:port with +PONG. */
export async function waitForRedis(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = net.connect(port, host);
        s.setTimeout(1_000, () => s.destroy(new Error('timeout')));
        s.once('connect', () => s.write('PING\r\n'));
        s.once('data', (d) => {
          resolve(d.toString());
          s.destroy();
        });
        s.once('error', reject);
      });
      if (reply.startsWith('+PONG')) return;
      last = reply.trim();
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis on ${host}:${port} did not answer PING within ${timeoutMs} ms (${last})`);
}

export interface LocalRedisOptions {
  port?: number;
  /**
   * In a process group of its own, under harness/guard.mjs (which stops it when
   * this process ends, even killed): a Ctrl-C or SIGTERM to this process's
   * group does not take Redis away before the run has audited it.
   */
  apart?: boolean;
  /** Extra redis-server arguments, e.g. ['--cluster-enabled', 'yes']. */
  args?: string[];
  /**
   * Persist every write to an append-only file (`appendonly yes`) with this
   * fsync policy, so restart() comes back with what was acknowledged
   * (docs/CHECKOUT.md, "Across a crash"). Default: no persistence.
   */
  aof?: 'everysec' | 'always';
}

export type LocalRedis = RedisHandle & {
  readonly process: ChildProcess;
  /**
   * Stop this Redis (`kill`: SIGKILL to redis-server, a crash; `shutdown`:
   * SHUTDOWN, which flushes the append-only file), wait `downMs`, and start it
   * again on the same port and data folder; resolves once it answers PING
   * (its data loaded). Without `aof` it comes back empty.
   */
  restart(how: 'kill' | 'shutdown', downMs?: number): Promise<void>;
};

/** Start redis-server from .tools/bin or PATH on a loopback port (no persistence unless `aof`). */
export async function startLocalRedis(opts: LocalRedisOptions = {}): Promise<LocalRedis> {
  const bin = findTool('redis-server');
  if (!bin) throw new UsageError(noRedisMessage());
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-redis-'));
  const redisArgs = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    ...(opts.aof ? ['--appendonly', 'yes', '--appendfsync', opts.aof] : ['--appendonly', 'no']),
    '--dir',
    dir,
    '--loglevel',
    'warning',
    ...(opts.args ?? []),
  ];
  let server: { child: ChildProcess; exited: Promise<unknown> };
  try {
    server = await spawnRedis(bin, redisArgs, port, opts.apart === true);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const stopServer = async (signal: NodeJS.Signals) => {
    const { child, exited } = server;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await exited;
    }
  };
  const handle: LocalRedis = {
    url: `redis://127.0.0.1:${port}`,
    kind: 'local',
    port,
    get process() {
      return server.child;
    },
    get pid() {
      return server.child.pid;
    },
    async restart(how, downMs = 0) {
      await stopRedisProcess(port, how, server);
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      server = await spawnRedis(bin, redisArgs, port, opts.apart === true);
    },
    async close() {
      await stopServer('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/** redis-server (under the guard when `apart`), once it answers PING. */
async function spawnRedis(
  bin: string,
  redisArgs: string[],
  port: number,
  apart: boolean,
): Promise<{ child: ChildProcess; exited: Promise<unknown> }> {
  const child = apart
    ? spawn(process.execPath, [GUARD, bin, ...redisArgs], {
        stdio: ['pipe', 'ignore', 'pipe'],
        detached: true,
      })
    : spawn(bin, redisArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  try {
    await Promise.race([
      waitForRedis(port, '127.0.0.1', 30_000),
      exited.then(([code]) => {
        throw new Error(`redis-server exited with ${code} before answering: ${stderr.trim()}`);
      }),
    ]);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return { child, exited };
}

/**
 * Stop redis-server itself (under the guard its pid is not the child's: it is
 * asked with INFO), by SIGKILL or SHUTDOWN, and wait for its process to end.
 */
async function stopRedisProcess(
  port: number,
  how: 'kill' | 'shutdown',
  server: { child: ChildProcess; exited: Promise<unknown> },
): Promise<void> {
  const info = await redisCommand(port, 'INFO server');
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  if (!Number.isInteger(pid) || pid <= 0)
    throw new Error(`no process_id in INFO of redis on ${port}`);
  if (how === 'kill') process.kill(pid, 'SIGKILL');
  else await redisCommand(port, 'SHUTDOWN').catch(() => undefined); // the connection closes
  await server.exited;
}

/** One inline command on a fresh connection; the raw reply (an error reply rejects). */
function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let reply = '';
    s.setTimeout(5_000, () => s.destroy(new Error(`redis on ${port}: ${command} timed out`)));
    s.once('connect', () => s.write(`${command}\r\n`));
    s.on('data', (d) => {
      reply += d.toString();
      if (reply.startsWith('-')) s.destroy(new Error(reply.trim()));
      // A bulk reply ($len) is whole once its length is read; a simple one at its line end.
      const m = /^\$(\d+)\r\n/.exec(reply);
      if ((m && reply.length >= m[0].length + Number(m[1]) + 2) || (!m && reply.endsWith('\r\n'))) {
        s.end();
        resolve(reply);
      }
    });
    s.once('close', () => resolve(reply));
    s.once('error', reject);
  });
}

function dockerAnswers(): boolean {
  if (!findTool('docker')) return false;
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
    encoding: 'utf8',
    timeout: 5_000,
  });
  return r.status === 0 && r.stdout.trim().length > 0;
}

export function noRedisMessage(): string {
  return (
    'no Redis available: set REDIS_URL to a Redis you run, or install redis-server ' +
    '(`node scripts/setup.mjs` does it with apt-get; `sudo apt-get install redis-server` or `brew install redis` by hand), ' +
    'or start a Docker engine (flashcrowd then runs redis:7 through testcontainers)'
  );
}

/** REDIS_URL, else a local redis-server, else a testcontainers Redis, else a UsageError saying what to install. */
export async function startRedis(
  opts: Pick<LocalRedisOptions, 'apart' | 'aof'> = {},
): Promise<RedisHandle | LocalRedis> {
  const env = process.env.REDIS_URL;
  if (env) return { url: env, kind: 'env', close: async () => undefined };
  if (findTool('redis-server')) return startLocalRedis(opts);
  if (dockerAnswers()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const c = await new GenericContainer('redis:7-alpine')
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
      .start();
    return {
      url: `redis://${c.getHost()}:${c.getMappedPort(6379)}`,
      kind: 'container',
      close: async () => {
        await c.stop();
      },
    };
  }
  throw new UsageError(noRedisMessage());
}
