// Network faults through a real Toxiproxy (toxiproxy-server, built by
// `node scripts/setup.mjs`), in front of a real redis-server and real loopback
// HTTP and TCP servers: each toxic acts as docs/CHAOS.md says, the seed fixes
// the toxicity draws, bad toxics and bad API calls are clear errors, and the
// server never outlives the process that started it. A missing
// toxiproxy-server or redis-server fails the test with the message saying how
// to get it.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../harness/errors.ts';
import {
  describeToxic,
  parseToxic,
  startToxiproxy,
  ToxiproxyError,
  type ToxiproxyServer,
} from '../harness/faults/toxiproxy.ts';
import { startLocalRedis, type RedisHandle } from '../harness/redis.ts';
import { rawRequest } from './support/http.ts';
import { binomialInterval } from './support/stats.ts';

let toxi: ToxiproxyServer;
let redis: RedisHandle;
let web: http.Server;
let webHits = 0;
/** Loopback TCP servers that write PAYLOAD (or 'hello-world') and close. */
let bulk: net.Server;
let hello: net.Server;
const PAYLOAD = Buffer.from(Array.from({ length: 5_000 }, (_, i) => 97 + (i % 26)));

async function listen<S extends net.Server>(server: S): Promise<S> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}
const addr = (s: net.Server) => `127.0.0.1:${(s.address() as net.AddressInfo).port}`;
const portOf = (listen: string) => Number(listen.split(':')[1]);

beforeAll(async () => {
  toxi = await startToxiproxy({ seed: 1 });
  redis = await startLocalRedis();
  web = await listen(
    http.createServer((_req, res) => {
      webHits += 1;
      res.end('ok');
    }),
  );
  bulk = await listen(net.createServer((s) => s.end(PAYLOAD)));
  hello = await listen(net.createServer((s) => s.end('hello-world')));
});

afterAll(async () => {
  await toxi?.close();
  await redis?.close();
  for (const s of [web, bulk, hello]) s?.close();
});

/** One connection to `listen`: every byte it gives and when, from before the connect. */
function readAll(listen: string): Promise<{ data: Buffer; chunks: number; endMs: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const s = net.connect(portOf(listen), '127.0.0.1');
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('error', reject);
    s.on('close', () =>
      resolve({
        data: Buffer.concat(parts),
        chunks: parts.length,
        endMs: performance.now() - started,
      }),
    );
  });
}

/** PING on `client`, and how long the answer took. */
async function timedPing(client: Redis): Promise<number> {
  const t = performance.now();
  expect(await client.ping()).toBe('PONG');
  return performance.now() - t;
}

/** Connect to `listen` and say how that went: 'connected', or the error code. */
function connectOutcome(listen: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(portOf(listen), '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe('a Redis link through Toxiproxy', () => {
  it('a 200 ms downstream latency toxic delays every PING on an open connection by at least 200 ms, and removing it restores fast PINGs', async () => {
    const p = await toxi.proxy('redis-latency', `127.0.0.1:${redis.port}`);
    const client = new Redis({ port: portOf(p.listen), host: '127.0.0.1', lazyConnect: true });
    try {
      await client.connect();
      await timedPing(client);
      const name = await toxi.addToxic(p, { type: 'latency', attributes: { latency: 200 } });
      // The toxic meets the connection already open (the checkout's Redis pool is one).
      for (let i = 0; i < 3; i++) expect(await timedPing(client)).toBeGreaterThanOrEqual(199);
      await toxi.removeToxic(p, name);
      // The fastest of five, so one scheduling hiccup of a busy machine cannot fail it;
      // with the toxic in place every one of them would take 200 ms or more.
      const after = [];
      for (let i = 0; i < 5; i++) after.push(await timedPing(client));
      expect(Math.min(...after)).toBeLessThan(200);
    } finally {
      client.disconnect();
    }
  });

  it('a disabled proxy refuses new connections and closes open ones; enabled again, the same address answers', async () => {
    const p = await toxi.proxy('redis-down', `127.0.0.1:${redis.port}`);
    const client = new Redis({
      port: portOf(p.listen),
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => null,
    });
    try {
      await client.connect();
      await timedPing(client);
      const closed = once(client, 'close');
      await toxi.setEnabled(p, false);
      await Promise.race([
        closed,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('the open connection outlived the disable')), 10_000),
        ),
      ]);
      expect(['ECONNREFUSED', 'ECONNRESET']).toContain(await connectOutcome(p.listen));
      await toxi.setEnabled(p, true);
      const again = new Redis({ port: portOf(p.listen), host: '127.0.0.1', lazyConnect: true });
      try {
        await again.connect();
        await timedPing(again);
      } finally {
        again.disconnect();
      }
    } finally {
      client.disconnect();
    }
  });
});

describe('each toxic on a loopback HTTP or TCP link', () => {
  it('timeout 0 upstream is a black hole: the request never reaches the server and no answer comes, until the client gives up (not a refusal); removed, requests are answered', async () => {
    const p = await toxi.proxy('web-hole-up', addr(web));
    const url = `http://${p.listen}/`;
    expect((await rawRequest(url)).kind).toBe('response');
    const name = await toxi.addToxic(p, {
      type: 'timeout',
      stream: 'upstream',
      attributes: { timeout: 0 },
    });
    const hits = webHits;
    const r = await rawRequest(url, { timeoutMs: 600 });
    expect(r.kind).toBe('timeout'); // not 'error' (ECONNREFUSED), not 'reset' or 'closed'
    expect(r.ms).toBeGreaterThanOrEqual(600 - 1);
    expect(webHits).toBe(hits);
    await toxi.removeToxic(p, name);
    const healed = await rawRequest(url);
    expect(healed.kind === 'response' && healed.status).toBe(200);
  });

  it('timeout 0 downstream swallows the answer: the server acts on the request, the client waits until it gives up', async () => {
    const p = await toxi.proxy('web-hole-down', addr(web));
    await toxi.addToxic(p, { type: 'timeout', attributes: { timeout: 0 } });
    const hits = webHits;
    // Keep-alive: a server that closes after answering ends the wait early (its close passes).
    const r = await rawRequest(`http://${p.listen}/`, {
      timeoutMs: 600,
      headers: { connection: 'keep-alive' },
    });
    expect(r.kind).toBe('timeout');
    expect(webHits).toBe(hits + 1);
  });

  it('reset_peer resets the connection (ECONNRESET) instead of answering', async () => {
    const p = await toxi.proxy('web-reset', addr(web));
    const url = `http://${p.listen}/`;
    const name = await toxi.addToxic(p, { type: 'reset_peer', attributes: { timeout: 0 } });
    const r = await rawRequest(url);
    expect(r.kind).toBe('reset');
    await toxi.removeToxic(p, name);
    expect((await rawRequest(url)).kind).toBe('response');
  });

  it('limit_data closes the link after exactly `bytes` bytes', async () => {
    const p = await toxi.proxy('tcp-limit', addr(bulk));
    expect((await readAll(p.listen)).data.equals(PAYLOAD)).toBe(true);
    await toxi.addToxic(p, { type: 'limit_data', attributes: { bytes: 100 } });
    const cut = await readAll(p.listen);
    expect(cut.data.equals(PAYLOAD.subarray(0, 100))).toBe(true);
  });

  it('slicer delivers the data intact, in pieces `delay` apart: at least (size / average_size - 1) delays in all', async () => {
    const p = await toxi.proxy('tcp-slicer', addr(bulk));
    // 5000 bytes in pieces of at most 500 are at least 10 pieces, 50 ms apart.
    await toxi.addToxic(p, {
      type: 'slicer',
      attributes: { average_size: 400, size_variation: 100, delay: 50_000 },
    });
    const r = await readAll(p.listen);
    expect(r.data.equals(PAYLOAD)).toBe(true);
    expect(r.endMs).toBeGreaterThanOrEqual(9 * 50);
  });

  it('bandwidth holds a link to `rate` KB/s: 5000 bytes at 10 KB/s take at least 500 ms', async () => {
    const p = await toxi.proxy('tcp-bandwidth', addr(bulk));
    await toxi.addToxic(p, { type: 'bandwidth', attributes: { rate: 10 } });
    const r = await readAll(p.listen);
    expect(r.data.equals(PAYLOAD)).toBe(true);
    expect(r.endMs).toBeGreaterThanOrEqual(500);
  });

  it('slow_close holds the close back `delay` ms after the server has closed', async () => {
    const p = await toxi.proxy('tcp-slow-close', addr(hello));
    await toxi.addToxic(p, { type: 'slow_close', attributes: { delay: 500 } });
    const r = await readAll(p.listen);
    expect(r.data.toString()).toBe('hello-world');
    expect(r.endMs).toBeGreaterThanOrEqual(500);
  });
});

describe('the seed', () => {
  const N = 200;
  /** Toxicity 0.5 on N connections one after another: '1' where the toxic acted. */
  async function pattern(seed: number): Promise<string> {
    const t = await startToxiproxy({ seed });
    try {
      expect(t.seeded).toBe(true);
      const p = await t.proxy('draws', addr(hello));
      await t.addToxic(p, { type: 'limit_data', toxicity: 0.5, attributes: { bytes: 1 } });
      let out = '';
      for (let i = 0; i < N; i++) out += (await readAll(p.listen)).data.length === 1 ? '1' : '0';
      return out;
    } finally {
      await t.close();
    }
  }

  it('fixes which connections a toxic of toxicity 0.5 acts on, about half of them, and another seed picks others', async () => {
    const [a, b, c] = [await pattern(7), await pattern(7), await pattern(8)];
    expect(b).toBe(a);
    const share = [...a].filter((x) => x === '1').length / N;
    const [lo, hi] = binomialInterval(0.5, N);
    expect(share).toBeGreaterThanOrEqual(lo);
    expect(share).toBeLessThanOrEqual(hi);
    // 200 independent fair draws agree by chance with probability 2^-200.
    expect(c).not.toBe(a);
  });
});

describe('errors', () => {
  it('a bad toxic is refused before Toxiproxy sees it, naming the field', async () => {
    const bad: [unknown, RegExp][] = [
      [
        { type: 'jitter', attributes: {} },
        /type: unknown toxic type "jitter"; known types: latency, bandwidth, slow_close, timeout, slicer, reset_peer, limit_data/,
      ],
      [{ type: 'latency', attributes: { latency: -5 } }, /attributes\.latency: /],
      [
        { type: 'latency', attributes: { latency: 10, jiter: 5 } },
        /attributes\.jiter: unknown field/,
      ],
      [{ type: 'bandwidth', attributes: { rate: '10' } }, /attributes\.rate: .*expected number/],
      [{ type: 'latency', toxicity: 2, attributes: { latency: 10 } }, /toxicity: .*<=1/],
      [{ type: 'timeout', stream: 'sideways', attributes: { timeout: 0 } }, /stream: /],
    ];
    const p = await toxi.proxy('validation', addr(hello));
    for (const [toxic, message] of bad) {
      expect(() => parseToxic(toxic)).toThrow(message);
      await expect(toxi.addToxic(p, toxic as never)).rejects.toThrow(UsageError);
    }
    const listed = (await (await fetch(`${toxi.apiUrl}/proxies/validation/toxics`)).json()) as [];
    expect(listed).toEqual([]);
  });

  it("Toxiproxy's own errors name the proxy, the toxic and quote Toxiproxy", async () => {
    await expect(
      toxi.addToxic('no-such-proxy', { type: 'latency', attributes: { latency: 10 } }),
    ).rejects.toThrow(/proxy "no-such-proxy".*proxy not found \(HTTP 404\)/);
    const p = await toxi.proxy('api-errors', addr(hello));
    const err = await toxi.removeToxic(p, 'latency_upstream_99').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToxiproxyError);
    expect((err as ToxiproxyError).message).toMatch(
      /remove toxic "latency_upstream_99" from proxy "api-errors": toxic not found \(HTTP 404\)/,
    );
    await expect(toxi.proxy('api-errors', addr(hello))).rejects.toThrow(/proxy already exists/);
  });

  it('resetAll removes every toxic and enables every proxy', async () => {
    const p = await toxi.proxy('reset-all', addr(bulk));
    await toxi.addToxic(p, { type: 'limit_data', attributes: { bytes: 10 } });
    const q = await toxi.proxy('reset-all-down', addr(hello));
    await toxi.setEnabled(q, false);
    expect((await readAll(p.listen)).data.length).toBe(10);
    await toxi.resetAll();
    expect((await readAll(p.listen)).data.equals(PAYLOAD)).toBe(true);
    expect((await readAll(q.listen)).data.toString()).toBe('hello-world');
  });

  it('a missing toxiproxy-server is a usage error saying how to get it', async () => {
    const err = await startToxiproxy({ seed: 1, toolDirs: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/toxiproxy-server not found.*npm run setup.*v2\.12\.0/);
  });

  it('a toxiproxy-server of another version is a usage error naming both versions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-fake-toxiproxy-'));
    try {
      const fake = join(dir, 'toxiproxy-server');
      writeFileSync(fake, '#!/bin/sh\necho "toxiproxy-server version 2.9.0"\n');
      chmodSync(fake, 0o755);
      await expect(startToxiproxy({ seed: 1, toolDirs: [dir] })).rejects.toThrow(
        /toxiproxy-server 2\.9\.0; flashcrowd is pinned to v2\.12\.0/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the process', () => {
  /** Poll `url` until it refuses (true), for at most `ms`. */
  async function refusesWithin(url: string, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      try {
        await fetch(url);
      } catch {
        return true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  it('close() stops the server', async () => {
    const t = await startToxiproxy({ seed: 1 });
    expect((await fetch(`${t.apiUrl}/version`)).status).toBe(200);
    await t.close();
    expect(await refusesWithin(`${t.apiUrl}/version`, 5_000)).toBe(true);
  });

  it('does not outlive the process that started it, even killed with SIGKILL', async () => {
    const script = [
      "import { startToxiproxy } from './harness/faults/toxiproxy.ts';",
      'const t = await startToxiproxy({ seed: 1 });',
      'console.log(t.apiUrl);',
      'setTimeout(() => process.exit(0), 60_000);',
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-toxi-child-'));
    const file = join(dir, 'child.mts');
    writeFileSync(file, script.replace('./harness', join(import.meta.dirname, '..', 'harness')));
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, '..', 'bin', 'run-ts.js'), file],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const apiUrl = await Promise.race([
        once(child.stdout!, 'data').then(([line]) => String(line).trim()),
        once(child, 'exit').then(([code]) => {
          throw new Error(`the child exited (${String(code)}) before starting toxiproxy`);
        }),
      ]);
      expect((await fetch(`${apiUrl}/version`)).status).toBe(200);
      child.kill('SIGKILL');
      await once(child, 'exit');
      // The guard sees its stdin close and stops toxiproxy-server.
      expect(await refusesWithin(`${apiUrl}/version`, 10_000)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('describeToxic', () => {
  it('labels a toxic for a report band, both streams of one fault as one', () => {
    expect(describeToxic({ type: 'latency', attributes: { latency: 50, jitter: 20 } })).toBe(
      'latency 50±20 ms down',
    );
    expect(
      describeToxic([
        { type: 'timeout', stream: 'upstream', attributes: { timeout: 0 } },
        { type: 'timeout', stream: 'downstream', attributes: { timeout: 0 } },
      ]),
    ).toBe('black hole up+down');
    expect(
      describeToxic({ type: 'reset_peer', stream: 'upstream', toxicity: 0.3, attributes: {} }),
    ).toBe('reset at once up (30% of connections)');
    expect(describeToxic({ type: 'bandwidth', attributes: { rate: 100 } })).toBe(
      'bandwidth 100 KB/s down',
    );
    expect(describeToxic({ type: 'limit_data', attributes: { bytes: 1000 } })).toBe(
      'cut after 1000 B down',
    );
  });
});
