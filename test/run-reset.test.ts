// A run starts from a clean target: `flashcrowd run --target` resets the
// checkout (POST /admin/reset) and every mock it is given (POST /__reset,
// reseeded with the run's seed) and checks nothing is left. Two runs in a row
// on one running stack both pass (the second used to inherit the first's
// coupon campaign, limits and counters); a mock whose reset does nothing (a
// proxy that swallows /__reset in front of a bank holding a payment) is refused
// with exit 2 naming what is left, and --no-reset runs on it with a warning.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../harness/stack.ts';
import type { RunSummary } from '../harness/summary.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');
const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-reset-'));

function run(args: string[], timeoutMs = 200_000) {
  return new Promise<{ code: number | null; log: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const t = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    void once(child, 'exit').then(([code]) => {
      clearTimeout(t);
      resolve({ code: code as number | null, log });
    });
  });
}

const summaryOf = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;

/** A proxy in front of `upstream` that answers POST /__reset itself and forwards the rest. */
async function resetSwallower(upstream: string): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/__reset')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"reset"}');
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k))
        headers[k] = v;
    try {
      const r = await fetch(upstream + req.url, {
        method: req.method,
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
      });
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
      res.end(Buffer.from(await r.arrayBuffer()));
    } catch {
      res.writeHead(502).end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('flashcrowd run --target starts from a clean target', () => {
  let stack: Stack;
  beforeAll(async () => {
    // livestream-spike's --ci time-scale, so the checkout's deadlines match the run's.
    stack = await startStack({
      seed: 2,
      mode: 'hardened',
      set: ['timeScale=0.0166667'],
      logDir: tmp,
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const targetArgs = (bank: string) => [
    ...['--target', stack.urls.checkout, '--redis', stack.urls.redis, '--bank', bank],
    ...['--wallet', stack.urls.wallet, '--coupon', stack.urls.coupon],
  ];

  it('two runs in a row on one running stack both reset it, say so, and pass', async () => {
    for (const k of [1, 2]) {
      const out = join(tmp, `again-${k}`);
      const r = await run([
        ...['run', 'livestream-spike', '--ci', '--seed', '3', '--progress', 'none', '--out', out],
        ...targetArgs(stack.urls.bank),
      ]);
      expect(r.code, `run ${k}:\n${r.log.slice(-4_000)}`).toBe(0);
      expect(r.log).toMatch(
        /reset: checkout, bank, wallet, coupon \(mocks reseeded with 3, time-scale 0\.01666\d*\): clean/,
      );
      expect(summaryOf(out).warnings).toEqual([]);
    }
  }, 420_000);

  it('a mock whose reset does nothing is refused (exit 2) naming what is left; --no-reset runs on it with a warning', async () => {
    // Dirt the reset cannot remove: a captured payment in the bank, behind a proxy that swallows /__reset.
    const pay = await fetch(`${stack.urls.bank}/v1/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        orderId: 'left-over-1',
        amount: 990,
        currency: 'CNY',
        card: { number: '4242424242424242' },
      }),
    });
    expect(pay.status).toBe(200);
    const proxy = await resetSwallower(stack.urls.bank);
    try {
      const refused = await run([
        ...['run', 'livestream-spike', '--ci', '--progress', 'none', '--out', join(tmp, 'dirty')],
        ...targetArgs(proxy.url),
      ]);
      expect(refused.code, refused.log.slice(-3_000)).toBe(2);
      expect(refused.log).toMatch(
        /the target is not clean after its reset: .*bank: its ledger has entries/,
      );
      expect(refused.log).toMatch(/--no-reset/);
      expect(refused.log).not.toMatch(/traffic:/);

      const out = join(tmp, 'no-reset');
      const r = await run([
        ...['run', 'livestream-spike', '--ci', '--no-reset', '--progress', 'none', '--out', out],
        ...targetArgs(proxy.url),
      ]);
      expect(r.log).toMatch(/traffic:/);
      const s = summaryOf(out);
      expect(s.warnings.join('\n')).toMatch(
        /not reset \(--no-reset\) and not clean: .*bank: its ledger has entries.*include what came before/,
      );
    } finally {
      proxy.server.close();
    }
  }, 420_000);
});
