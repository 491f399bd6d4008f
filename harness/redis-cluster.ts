// A local Redis Cluster for tests and runs: three masters (no replicas) of
// redis-server on free loopback ports, joined with `redis-cli --cluster
// create`, ready when every node says cluster_state:ok. No persistence; the
// node config files live in a temp folder removed by close().
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { UsageError } from './errors.ts';
import { freePort, startLocalRedis, type RedisHandle } from './redis.ts';
import { findTool } from './tools.ts';

export interface RedisClusterHandle {
  /** redis://127.0.0.1:PORT of every master, in slot order (the first holds slot 0). */
  urls: string[];
  ports: number[];
  /** Each master's process (its guard with `apart`), in the order of `ports`, for CPU accounting. */
  pids: (number | undefined)[];
  close(): Promise<void>;
}

/** Masters of a local cluster unless told (the fewest redis-cli accepts). */
export const DEFAULT_MASTERS = 3;

export interface RedisClusterOptions {
  /** Masters (default DEFAULT_MASTERS). */
  masters?: number;
  /** How long to wait for cluster_state:ok on every node (default 20 s). */
  timeoutMs?: number;
  /** Each master in a process group of its own, under the guard (harness/redis.ts `apart`). */
  apart?: boolean;
}

function missing(tool: string): UsageError {
  return new UsageError(
    `${tool} not found in .tools/bin or on PATH: a local Redis Cluster needs redis-server and redis-cli ` +
      '(`node scripts/setup.mjs` installs them with apt-get; `sudo apt-get install redis-server` or `brew install redis` by hand)',
  );
}

function run(
  bin: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 1, out });
    });
  });
}

/** CLUSTER INFO of one node as a map (cluster_state, cluster_slots_assigned, ...). */
export async function clusterInfo(
  port: number,
  host = '127.0.0.1',
): Promise<Record<string, string>> {
  const r = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await r.connect();
    const text = (await r.call('CLUSTER', 'INFO')) as string;
    return Object.fromEntries(
      text
        .split(/\r?\n/)
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
    );
  } finally {
    r.disconnect();
  }
}

/** Start a three-master Redis Cluster on loopback; close() stops every node and removes its files. */
export async function startRedisCluster(
  opts: RedisClusterOptions = {},
): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? DEFAULT_MASTERS;
  if (masters < 3) throw new UsageError('a Redis Cluster needs at least 3 masters');
  if (!findTool('redis-server')) throw missing('redis-server');
  const cli = findTool('redis-cli');
  if (!cli) throw missing('redis-cli');

  const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-cluster-'));
  const nodes: RedisHandle[] = [];
  const close = async () => {
    await Promise.all(nodes.map((n) => n.close().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const taken = new Set<number>();
    const pick = async () => {
      for (;;) {
        const p = await freePort();
        if (!taken.has(p)) {
          taken.add(p);
          return p;
        }
      }
    };
    for (let i = 0; i < masters; i++) {
      const port = await pick();
      // The bus port is chosen too: the default port+10000 may be taken or above 65535.
      const busPort = await pick();
      nodes.push(
        await startLocalRedis({
          port,
          apart: opts.apart === true,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--cluster-port',
            String(busPort),
            '--cluster-node-timeout',
            '5000',
          ],
        }),
      );
    }
    const ports = nodes.map((n) => n.port!);
    const created = await run(
      cli,
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      30_000,
    );
    if (created.code !== 0)
      throw new Error(
        `redis-cli --cluster create failed (exit ${created.code}):\n${created.out.trim()}`,
      );

    const timeoutMs = opts.timeoutMs ?? 20_000;
    const until = Date.now() + timeoutMs;
    let states: string[] = [];
    for (;;) {
      states = await Promise.all(
        ports.map((p) =>
          clusterInfo(p).then(
            (i) => `${i.cluster_state}/${i.cluster_known_nodes}`,
            (e: Error) => e.message,
          ),
        ),
      );
      if (states.every((s) => s === `ok/${masters}`)) break;
      if (Date.now() > until)
        throw new Error(
          `the Redis Cluster on ${ports.join(', ')} was not ok within ${timeoutMs} ms (state/known nodes: ${states.join(', ')})`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      urls: ports.map((p) => `redis://127.0.0.1:${p}`),
      ports,
      pids: nodes.map((n) => n.pid),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
