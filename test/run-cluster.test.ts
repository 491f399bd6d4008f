// `flashcrowd run` on a Redis Cluster end to end: livestream-spike's hardened
// variant at half the CI time-scale with --redis-cluster (three redis-server
// masters made with `redis-cli --cluster create`, the checkout on a cluster
// client, each SKU's stock over three buckets: the hot-SKU layout) passes with
// every invariant decided, and its summary says where the sale lived: three
// masters, each SKU on all three. Then the audit's
// proof on a cluster: a clean sale audits clean through the harness's own
// connect function, and an oversold SKU and a leaked order planted on masters
// other than the one the client was given are each named. Needs redis-server
// and redis-cli (a missing one fails, with a message).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCheckout } from '../checkout/service.ts';
import { Store } from '../checkout/store.ts';
import { audit, formatAudit } from '../harness/audit.ts';
import { loadPreset } from '../harness/preset.ts';
import { startRedisCluster } from '../harness/redis-cluster.ts';
import { buildOf } from '../harness/run/preset.ts';
import { redisLayout } from '../harness/run/redis-layout.ts';
import { connectTargetRedis } from '../harness/run/target.ts';
import { runSummarySchema } from '../harness/summary.ts';
import {
  createOrder,
  payOrder,
  seedSale,
  startAllMocks,
  STEADY,
  waitForState,
} from './support/checkout.ts';
import { HALF_CI, runCli } from './support/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-run-cluster-'));
const PRESETS = join(import.meta.dirname, '..', 'scenarios', 'presets');

/**
 * livestream-spike with its `mask` renamed `serum`: `{sku:lipstick}` and
 * `{sku:mask}` hash to slots 3908 and 89, both on the first of three masters;
 * `{sku:serum}` to 9164, on the second.
 */
function spreadPreset(): string {
  const p = JSON.parse(readFileSync(join(PRESETS, 'livestream-spike.json'), 'utf8')) as {
    name: string;
    sale: { skus: { id: string }[] };
  };
  p.name = 'livestream-spike-cluster';
  for (const s of p.sale.skus) if (s.id === 'mask') s.id = 'serum';
  const file = join(tmp, 'livestream-spike-cluster.json');
  writeFileSync(file, JSON.stringify(p));
  return file;
}

describe("a run's Redis Cluster: how many masters", () => {
  it("none by default; 3 with --redis-cluster; the preset's checkout.redisCluster; --redis-masters over both", () => {
    const { preset } = loadPreset('livestream-spike');
    const hardened = preset.variants!.find((v) => v.name === 'hardened');
    const masters = (o: Parameters<typeof buildOf>[2], p = preset) =>
      buildOf(p, hardened, o).redisCluster;
    expect(masters({})).toBeUndefined();
    expect(masters({ redisCluster: true })).toBe(3);
    expect(masters({ redisMasters: 5 })).toBe(5);
    const four = { ...preset, checkout: { ...preset.checkout, redisCluster: 4 } };
    expect(masters({}, four)).toBe(4);
    expect(masters({ redisCluster: true }, four)).toBe(4);
    expect(masters({ redisMasters: 6 }, four)).toBe(6);
  });
});

describe('flashcrowd run --redis-cluster: what a cluster cannot do is refused (exit 2, naming the field) before anything starts', () => {
  const refused = async (args: string[], message: RegExp) => {
    const out = join(tmp, `refused-${args[1]!.replace(/\W/g, '')}`);
    const r = await runCli([...args, '--out', out], { timeoutMs: 30_000 });
    expect(r.code, r.log).toBe(2);
    expect(r.log).toMatch(message);
    expect(existsSync(out)).toBe(false);
  };

  it('a Redis restart, a toxic on the redis link, an append-only file, --redis-cluster with --target and no --redis', async () => {
    await refused(
      ['run', 'redis-restart', '--ci', '--redis-cluster'],
      /faults\.0\.target: restart of Redis on a Redis Cluster: not supported/,
    );
    await refused(
      ['run', 'redis-slow', '--ci', '--redis-cluster'],
      /faults\.0\.link: a toxic on the link to a Redis Cluster: not supported/,
    );
    const aof = join(tmp, 'aof.json');
    const p = JSON.parse(readFileSync(join(PRESETS, 'livestream-spike.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    writeFileSync(aof, JSON.stringify({ ...p, checkout: { redisPersistence: 'always' } }));
    await refused(
      ['run', aof, '--variant', 'hardened', '--ci', '--redis-cluster'],
      /checkout\.redisPersistence: always with a Redis Cluster: not supported/,
    );
    await refused(
      ['run', 'livestream-spike', '--target', 'http://127.0.0.1:9', '--redis-cluster'],
      /--redis-cluster with --target says the --redis URL is a node of a Redis Cluster: give --redis/,
    );
  }, 60_000);
});

describe('flashcrowd run on a Redis Cluster', () => {
  it('livestream-spike (hardened, 3 stock buckets a SKU) with --redis-cluster passes with every invariant decided; the summary shows 3 masters, each SKU on all three', async () => {
    const out = join(tmp, 'spike');
    const r = await runCli([
      'run',
      spreadPreset(),
      '--variant',
      'hardened',
      ...HALF_CI,
      '--seed',
      '7',
      '--redis-cluster',
      // Each SKU over three hash slots, one a master (checkout/buckets.ts): the hot-SKU layout, audited summed.
      '--set',
      'stockBuckets=3',
      '--out',
      out,
      '--progress',
      'none',
    ]);
    expect(r.code, r.log.slice(-6_000)).toBe(0);
    expect(r.log).toMatch(/starting a Redis Cluster \(3 masters\)/);
    const s = runSummarySchema.parse(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')));
    expect(s.verdict).toBe('pass');
    for (const b of s.budgets) expect(b.ok, `${b.expr}: ${b.value} ${b.note ?? ''}`).toBe(true);
    expect(s.invariants).toHaveLength(11);
    for (const i of s.invariants) expect(i.ok, `${i.id}: ${i.note ?? ''}`).toBe(true);
    expect(s.metrics['stock.sold']).toBeGreaterThan(0);
    // Where the sale lived: three masters, each holding keys, each SKU's buckets on all three.
    expect(s.redis?.cluster).toBe(true);
    expect(s.redis!.masters).toHaveLength(3);
    for (const m of s.redis!.masters) expect(m.keys, m.node).toBeGreaterThan(0);
    const holders = ['lipstick', 'serum'].map((sku) =>
      s.redis!.masters.filter((m) => m.skus.includes(sku)).map((m) => m.node),
    );
    for (const h of holders) expect(h).toHaveLength(3);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(
      /\| redis \| cluster of 3 masters: 127\.0\.0\.1:\d+ \(lipstick, serum; [\d,]+ keys\)/,
    );
    // One redis-server a master, each in the CPU shares (where /proc is readable).
    if (s.cpu?.shares.length)
      expect(s.cpu.shares.map((x) => x.name)).toEqual(
        expect.arrayContaining(['redis-0', 'redis-1', 'redis-2']),
      );
  }, 120_000);

  it("the run's audit reads every master: clean sale clean; an oversold SKU and a leaked order planted on the other masters are named", async () => {
    const cluster = await startRedisCluster();
    const mocks = await startAllMocks(13);
    const redis = connectTargetRedis({
      checkout: '',
      bank: '',
      wallet: '',
      coupon: '',
      redis: cluster.urls[0]!,
      redisCluster: true,
    });
    const store = new Store(redis, 'fcc');
    const co = await startCheckout({
      redisUrl: cluster.urls[0]!,
      cluster: true,
      ...mocks.urls,
      mode: 'hardened',
      set: ['keyPrefix=fcc', ...STEADY],
    });
    try {
      // One SKU a master, the masters in slot order (the first is the client's seed node).
      const candidates = Array.from({ length: 40 }, (_, i) => `sku${i}`);
      const layout = await redisLayout(store, candidates);
      const skus = cluster.ports.map(
        (p) => layout.masters.find((m) => m.node.endsWith(`:${p}`))!.skus[0]!,
      );
      expect(new Set(skus).size).toBe(3);
      // A --target whose --redis is this cluster, without --redis-cluster: refused before the reset.
      const plain = await runCli(
        [
          'run',
          'livestream-spike',
          '--variant',
          'hardened',
          ...['--target', co.url, '--redis', cluster.urls[1]!, '--out', join(tmp, 'plain')],
        ],
        { timeoutMs: 30_000 },
      );
      expect(plain.code, plain.log).toBe(2);
      expect(plain.log).toMatch(
        /is a node of a Redis Cluster \(cluster_enabled:1\): give --redis-cluster/,
      );
      await seedSale(
        co.url,
        skus.map((id) => ({ id, stock: 5 })),
      );
      const orders: string[] = [];
      for (const [i, sku] of skus.entries()) {
        const o = await createOrder(co.url, { user: `u${i}`, sku });
        expect(o.status, o.text).toBe(201);
        orders.push(o.body.id as string);
      }
      // Two paid; the third stays open, to be leaked below.
      for (const id of orders.slice(0, 2)) {
        const p = await payOrder(co.url, id);
        expect(p.status, p.text).toBe(200);
        await waitForState(co.url, id, ['paid']);
      }
      const audited = () => audit({ store, ...mocks.urls, skus, maxExamples: 10 });
      const clean = await audited();
      expect(clean.violated, formatAudit(clean)).toEqual([]);
      expect(clean.totals.orders, formatAudit(clean)).toBe(3);

      // Planted on the second master: two units sold beyond the counters (I1 names the SKU).
      await redis.hincrby(store.keys(skus[1]!).stock, 'sold', 2);
      // Planted on the third: its open order ended without giving its unit back (I3 names it).
      await redis.hset(store.keys(skus[2]!).order(orders[2]!), 'state', 'expired');
      const broken = await audited();
      expect(broken.violated, formatAudit(broken)).toEqual(expect.arrayContaining(['I1', 'I3']));
      expect(broken.byId.I1.examples.join(' ')).toContain(skus[1]);
      expect(broken.byId.I3.examples).toContain(orders[2]);
      expect(broken.totals.stockLeakUnits).toBe(1);
    } finally {
      await co.close();
      redis.disconnect();
      await mocks.close();
      await cluster.close();
    }
  }, 60_000);
});
