// Faults beyond the mocks, on real parts (docs/CHAOS.md "Faults beyond the
// mocks", docs/CHECKOUT.md "Across a crash"): a Redis killed under a running
// checkout comes back from its append-only file with every order the
// checkout acknowledged (and, planted, without the file it does not); a
// latency toxic on the checkout's link to Redis shows in the checkout's own
// Redis timings; a preset whose faults cannot be played is refused before
// anything starts. (A killed instance's orders settled by the survivors: the
// checkout-crash row of test/phenomena.test.ts, and test/checkout-instances.test.ts.)
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startToxiproxy, type ToxiproxyServer } from '../harness/faults/toxiproxy.ts';
import { findTool } from '../harness/tools.ts';
import { readMetrics } from '../harness/prom.ts';
import { call } from './support/http.ts';
import { seedSale, sleep, waitFor } from './support/checkout.ts';
import { startInstancesStack, type Stack } from './support/instances.ts';
import { runCli } from './support/cli.ts';
import { copyCheckout } from './support/mutant.ts';

function needRedis() {
  if (!findTool('redis-server'))
    throw new Error(
      'these tests start, kill and restart a redis-server of their own: install it (node scripts/setup.mjs)',
    );
}

/**
 * Orders placed 8 at a time, `n` in all; Redis is killed and restarted once
 * `killAfter` were acknowledged. The ids acknowledged (201), and those of
 * them the checkout no longer knows once Redis is back.
 */
async function ordersAcrossAKill(s: Stack, n: number, killAfter: number) {
  const url = s.stack.urls.checkout;
  // The test's own connection is cut too; it reconnects by itself.
  s.store.redis.on('error', () => undefined);
  await seedSale(url, [{ id: 'lip', stock: n }]);
  const acked: string[] = [];
  let next = 0;
  let restarted: Promise<void> | undefined;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const r = await call(url, 'POST', '/v1/orders', { user: `u${i}`, sku: 'lip' }).catch(
        () => undefined,
      );
      if (r?.status === 201) acked.push(r.body.id as string);
      if (acked.length >= killAfter && !restarted) restarted = s.stack.restartRedis!('kill', 200);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  expect(restarted, 'Redis was never killed: too few orders acknowledged').toBeDefined();
  await restarted;
  // The checkout serves again once its client has reconnected.
  await waitFor('the checkout to answer after the restart', async () => {
    const r = await call(url, 'GET', '/v1/skus').catch(() => undefined);
    return r?.status === 200;
  });
  const lost: string[] = [];
  for (const id of acked) {
    const r = await call(url, 'GET', `/v1/orders/${id}`);
    if (r.status === 404) lost.push(id);
    else expect(r.status, r.text).toBe(200);
  }
  return { acked, lost };
}

describe('a Redis crash under a running checkout', () => {
  it('with its append-only file (everysec), SIGKILL and restart lose no acknowledged order; the audit is clean', async () => {
    needRedis();
    const s = await startInstancesStack(undefined, { redisAof: 'everysec' });
    try {
      const { acked, lost } = await ordersAcrossAKill(s, 300, 100);
      expect(acked.length).toBeGreaterThanOrEqual(100);
      expect(lost, `acknowledged orders lost across the crash: ${lost.join(', ')}`).toEqual([]);
      const report = await s.audit();
      expect(report.violated).toEqual([]);
    } finally {
      await s.close();
    }
  }, 120_000);

  it('planted: without the append-only file the same crash loses acknowledged orders, and the check names them', async () => {
    needRedis();
    const s = await startInstancesStack();
    try {
      const { lost } = await ordersAcrossAKill(s, 200, 50);
      expect(lost.length).toBeGreaterThanOrEqual(50);
    } finally {
      await s.close();
    }
  }, 120_000);
});

/** The checkout's Redis timings: observations per histogram bucket upper bound, summed over ops. */
async function redisBuckets(checkout: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${checkout}/metrics`)).text();
  const out = new Map<number, number>();
  for (const h of readMetrics(text, 'flashcrowd_checkout_redis_duration_seconds').histograms)
    for (const b of h.buckets) out.set(b.le, (out.get(b.le) ?? 0) + b.count);
  return out;
}
const delta = (a: Map<number, number>, b: Map<number, number>, le: number) =>
  (b.get(le) ?? 0) - (a.get(le) ?? 0);

describe('a latency toxic on the link from the checkout to Redis', () => {
  it("shows in the checkout's Redis timings: every command during it takes at least the toxic's latency", async () => {
    needRedis();
    let toxi: ToxiproxyServer | undefined;
    let listen = '';
    const s = await startInstancesStack(undefined, {
      beforeCheckout: async (real) => {
        toxi = await startToxiproxy({ seed: 1 });
        const u = new URL(real.redis);
        listen = (await toxi.proxy('redis', `${u.hostname}:${u.port}`)).listen;
        return { redis: `redis://${listen}` };
      },
    });
    try {
      const url = s.stack.urls.checkout;
      await seedSale(url, [{ id: 'lip', stock: 1_000 }]);
      const place = async (from: number) => {
        for (let i = from; i < from + 10; i++)
          expect(
            (await call(url, 'POST', '/v1/orders', { user: `u${i}`, sku: 'lip' })).status,
          ).toBe(201);
      };
      const t0 = await redisBuckets(url);
      await place(0);
      const t1 = await redisBuckets(url);
      // Without the toxic, commands on loopback answer well under 250 ms:
      // the check below would fail here.
      expect(delta(t0, t1, 0.25)).toBeGreaterThan(0);
      await toxi!.addToxic('redis', { type: 'latency', attributes: { latency: 300 } });
      // Commands already on the wire when it came may have waited less.
      await sleep(1_000);
      const t2 = await redisBuckets(url);
      await place(10);
      const t3 = await redisBuckets(url);
      expect(delta(t2, t3, Infinity), 'commands timed during the toxic').toBeGreaterThanOrEqual(10);
      expect(delta(t2, t3, 0.25), 'commands faster than the toxic allows').toBe(0);
    } finally {
      await s.close();
      await toxi?.close();
    }
  }, 120_000);
});

describe('faults that cannot be played are refused before anything starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-faults-'));
  const preset = (name: string, faults: unknown[], extra: Record<string, unknown> = {}) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        name,
        description: 'a preset with faults, for the refusal tests',
        traffic: { startRate: 5, stages: [{ durationS: 60, target: 5 }] },
        sale: { skus: [{ id: 'lip', price: 100, stock: 10, limit: 1 }] },
        faults,
        ...extra,
      }),
    );
    return file;
  };
  const refused = async (args: string[], message: RegExp, env?: NodeJS.ProcessEnv) => {
    const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
    const { code, log } = await runCli([...args, '--out', out, '--progress', 'none'], {
      timeoutMs: 60_000,
      ...(env ? { env: { ...process.env, ...env } } : {}),
    });
    expect(code, log).toBe(2);
    expect(log).toMatch(message);
    // Nothing started, nothing written.
    expect(log).not.toMatch(/starting Redis/);
    expect(existsSync(out)).toBe(false);
  };

  it.each([
    [
      'a toxic Toxiproxy does not have',
      [{ action: 'toxic', atMs: 0, link: 'redis', toxic: { type: 'jitter', attributes: {} } }],
      /faults\.0\.toxic\.type: unknown toxic type "jitter"; known types: latency, bandwidth/,
    ],
    [
      'an attribute its toxic does not take',
      [
        {
          action: 'toxic',
          atMs: 0,
          link: 'bank',
          toxic: { type: 'latency', attributes: { delay: 5 } },
        },
      ],
      /faults\.0\.toxic\.attributes/,
    ],
    ['an unknown link', [{ action: 'down', atMs: 0, link: 'kafka' }], /faults\.0\.link/],
    [
      'a kill of an instance the run does not start',
      [{ action: 'kill', atMs: 1_000, target: 'checkout', instance: 2 }],
      /faults\.0\.instance: 2, but the harness starts 1 checkout instance/,
    ],
    ['an unknown target', [{ action: 'kill', atMs: 1_000, target: 'mocks' }], /faults\.0\.target/],
    [
      'a step after the traffic',
      [{ action: 'pause', atMs: 60_000, durationMs: 1_000, target: 'redis' }],
      /faults\.0\.atMs: 60000 is not before the end of the traffic/,
    ],
  ])('%s', async (_what, faults, message) => {
    await refused(
      ['run', preset(`bad-${faults.length}-${String(message).length}`, faults)],
      message,
    );
  });

  it('a kill of a checkout the harness did not start (--target)', async () => {
    const file = preset('kill-target', [{ action: 'kill', atMs: 1_000, target: 'checkout' }]);
    await refused(
      ['run', file, '--target', 'http://127.0.0.1:9'],
      /faults\.0\.target: kill of a checkout the harness did not start/,
    );
  });

  it('network faults where no toxiproxy-server can be found (a copy of the tree without .tools/bin, none on PATH)', async () => {
    const copy = copyCheckout();
    try {
      const file = preset('no-toxiproxy', [{ action: 'down', atMs: 1_000, link: 'bank' }]);
      const out = join(dir, 'out-no-toxiproxy');
      const path = (process.env.PATH ?? '')
        .split(':')
        .filter((d) => !existsSync(join(d, 'toxiproxy-server')))
        .join(':');
      const { code, log } = await runCli(['run', file, '--out', out, '--progress', 'none'], {
        bin: join(copy.dir, 'bin', 'flashcrowd.js'),
        env: { ...process.env, PATH: path },
        timeoutMs: 60_000,
      });
      expect(code, log).toBe(2);
      expect(log).toMatch(/toxiproxy-server not found in \.tools\/bin or on PATH .*npm run setup/);
      expect(log).not.toMatch(/starting Redis/);
      expect(existsSync(out)).toBe(false);
    } finally {
      copy.remove();
    }
  });

  it('a restart of a Redis the harness did not start (REDIS_URL)', async () => {
    const file = preset('restart-env', [{ action: 'restart', atMs: 1_000, target: 'redis' }]);
    await refused(
      ['run', file],
      /faults\.0\.target: restart of a Redis the harness did not start/,
      {
        REDIS_URL: 'redis://127.0.0.1:9',
      },
    );
  });
});
