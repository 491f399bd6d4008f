// Stock buckets on a real three-master Redis Cluster: one SKU's stock over
// B = 4 key sets on several masters, reserved by the checkout's own Store and
// Lua scripts. Concurrent reserves never oversell and sell out exactly; an
// order whose drawn bucket is empty takes a unit from another; a release gives
// the unit back to its order's bucket; the per-shopper limit holds across
// buckets; B = 1 keeps the layout without buckets. Planted faults: a store that
// tries only the drawn bucket (false sold-out) and an oversold bucket (the audit).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketOrder, firstBucket } from '../checkout/buckets.ts';
import { applyOverrides, defaultConfig } from '../checkout/config.ts';
import { connectRedis, Store, type Reserved } from '../checkout/store.ts';
import { audit, snapshotI1 } from '../harness/audit.ts';
import { checkoutBuildSchema } from '../harness/preset.ts';
import { startRedisCluster, type RedisClusterHandle } from '../harness/redis-cluster.ts';
import { ValidationError } from '../mock-gateways/errors.ts';
import { startAllMocks, type Mocks } from './support/checkout.ts';

const B = 4;
const PRICE = 1_000;
let cluster: RedisClusterHandle;
let redis: Cluster;
let store: Store;
let mocks: Mocks;

/** A store that tries only an order's drawn bucket (the planted fault: sold out while stock remains). */
class FirstBucketOnly extends Store {
  protected override bucketsToTry(orderId: string, buckets: number): number[] {
    return bucketOrder(orderId, buckets).slice(0, 1);
  }
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  redis = connectRedis(cluster.urls[0]!, true) as Cluster;
  store = new Store(redis, 'fcb', B);
  mocks = await startAllMocks(5);
}, 30_000);

afterAll(async () => {
  redis?.disconnect();
  await mocks?.close();
  await cluster?.close();
});

async function seed(stock: number, limit = 0, s: Store = store) {
  await s.seedSale([{ id: 'lip', name: 'lip', price: PRICE, stock, limit }]);
}

function reserve(user: string, orderId?: string, s: Store = store): Promise<Reserved> {
  const now = Date.now();
  return s.reserve({
    sku: 'lip',
    user,
    qty: 1,
    now,
    deadline: now + 60_000,
    payload: { user, orderId },
    channel: 'card',
    idemTtlMs: 60_000,
    ...(orderId ? { orderId } : {}),
  });
}

/** An order id (of `lip`) whose drawn bucket is `b`. */
function idDrawnTo(b: number, tag: string): string {
  for (let i = 0; ; i++) if (firstBucket(`lip.${tag}${i}`, B) === b) return `lip.${tag}${i}`;
}

async function availableByBucket(): Promise<number[]> {
  return (await store.bucketSnapshots('lip')).map((b) => b.available);
}

const slotOf = async (key: string) => Number(await redis.cluster('KEYSLOT', key));
async function masterOf(slot: number): Promise<number> {
  const r = (await redis.cluster('SLOTS')).find(([lo, hi]) => slot >= lo && slot <= hi);
  return r![2]![1];
}

describe('stock buckets on a Redis Cluster', () => {
  it("puts a SKU's buckets in B equal slot ranges, so on every master, each bucket's keys on one slot", async () => {
    await seed(40);
    const slots: number[] = [];
    for (let b = 0; b < B; b++) {
      const k = store.keys('lip', b, B);
      const own = new Set(
        await Promise.all([k.stock, k.bought, k.deadlines, k.paying, k.order('x')].map(slotOf)),
      );
      expect(own.size).toBe(1);
      slots.push([...own][0]!);
    }
    // Bucket b's slot in the b-th quarter of the slots (Redis's own KEYSLOT agrees with our CRC16).
    expect(slots.map((x) => Math.floor(x / (16_384 / B)))).toEqual([0, 1, 2, 3]);
    const masters = new Set(await Promise.all(slots.map(masterOf)));
    expect(masters.size).toBe(3);
    // Three buckets on three masters: one each.
    const three = await Promise.all([0, 1, 2].map((b) => slotOf(store.keys('lip', b, 3).stock)));
    expect(new Set(await Promise.all(three.map(masterOf))).size).toBe(3);
    expect(await availableByBucket()).toEqual([10, 10, 10, 10]);
    expect(await redis.exists(store.keys('lip').stock)).toBe(0);
  });

  it('keeps the layout without buckets at B = 1', async () => {
    const one = new Store(redis, 'fcb1');
    await seed(7, 0, one);
    expect(await redis.hget(one.keys('lip').stock, 'available')).toBe('7');
    expect(await redis.exists(one.bucketsKey)).toBe(0);
    const r = await reserve('ann', undefined, one);
    expect(r.status).toBe('ok');
    expect(r.order!.bucket).toBeUndefined();
    expect(await redis.exists(one.keys('lip').order(r.orderId))).toBe(1);
  });

  it('never oversells under concurrent reserves and sells out exactly: every unit sold, then sold_out', async () => {
    const STOCK = 37; // 10, 9, 9, 9
    await seed(STOCK);
    const rs = await Promise.all(Array.from({ length: 60 }, (_, i) => reserve(`u${i}`)));
    const ok = rs.filter((r) => r.status === 'ok');
    expect(ok).toHaveLength(STOCK);
    expect(rs.filter((r) => r.status === 'sold_out')).toHaveLength(60 - STOCK);
    expect(await availableByBucket()).toEqual([0, 0, 0, 0]);
    for (const r of ok)
      expect(
        (await store.confirm(r.orderId, `pay-${r.orderId}`, PRICE, Date.now(), false, 'card'))
          .status,
      ).toBe('paid');
    expect(await store.snapshot('lip')).toMatchObject({
      initial: STOCK,
      available: 0,
      reserved: 0,
      sold: STOCK,
    });
    for (const b of await store.bucketSnapshots('lip')) expect(b.sold).toBe(b.initial);
    expect((await reserve('late')).status).toBe('sold_out');
    expect((await snapshotI1(store)).ok).toBe(true);
  });

  it('takes a unit from another bucket when the drawn one is empty, and a release gives it back there', async () => {
    await seed(B); // one unit a bucket
    const first = await reserve('ann', idDrawnTo(2, 'a'));
    expect(first.order!.bucket).toBe(2);
    const moved = await reserve('bob', idDrawnTo(2, 'b'));
    expect(moved.status).toBe('ok');
    expect(moved.order!.bucket).toBe(3); // the next bucket after the drawn one
    expect(await availableByBucket()).toEqual([1, 1, 0, 0]);
    // Another process (no memory of where it went) finds the order by probing.
    const elsewhere = new Store(redis, 'fcb', B);
    expect((await elsewhere.get(moved.orderId))?.bucket).toBe(3);
    const released = await elsewhere.release(moved.orderId, 'cancelled', 'test', Date.now());
    expect(released.status).toBe('released');
    expect(await availableByBucket()).toEqual([1, 1, 0, 1]);
    expect((await snapshotI1(store)).ok).toBe(true);
  });

  it('planted fault: a store trying only the drawn bucket answers sold_out while stock remains', async () => {
    await seed(B);
    await reserve('ann', idDrawnTo(1, 'a'));
    const id = idDrawnTo(1, 'c');
    const mutant = await reserve('bob', id, new FirstBucketOnly(redis, 'fcb', B));
    expect(mutant.status).toBe('sold_out');
    expect((await store.snapshot('lip')).available).toBe(3);
    expect((await reserve('bob', id)).status).toBe('ok');
  });

  it("holds the per-shopper limit across buckets, and a release gives the shopper's unit back", async () => {
    await seed(40, 1);
    const a = await reserve('ann', idDrawnTo(0, 'a'));
    expect(a.status).toBe('ok');
    // Drawn to another bucket, whose own `bought` knows nothing of ann's first unit.
    expect((await reserve('ann', idDrawnTo(3, 'b'))).status).toBe('limit_exceeded');
    await store.release(a.orderId, 'expired', 'payment_timeout', Date.now());
    expect((await reserve('ann', idDrawnTo(3, 'c'))).status).toBe('ok');
    expect((await reserve('ann', idDrawnTo(1, 'd'))).status).toBe('limit_exceeded');
  });

  it('audit: an oversold bucket is reported by SKU and bucket, though the SKU still has units', async () => {
    await mocks.reset();
    await seed(40);
    await reserve('ann', idDrawnTo(0, 'a'));
    expect((await audit({ store, ...mocks.urls })).byId.I2.ok).toBe(true);
    // Bucket 2 sold a unit it did not have: the SKU's sums still add up, with 28 available.
    await redis.hset(store.keys('lip', 2, B).stock, 'available', -1, 'sold', 11);
    const snap = await snapshotI1(store);
    expect(snap.i2).toEqual([
      expect.stringMatching(
        /^lip: .*; bucket 2: sold 11 \+ reserved 0 \+ available -1 = 10, initial 10$/,
      ),
    ]);
    const r = await audit({ store, ...mocks.urls });
    expect(r.byId.I2.ok).toBe(false);
    expect(r.byId.I2.examples.join('\n')).toMatch(/lip: .*bucket 2: .*available -1/);
  });
});

describe('the stockBuckets setting', () => {
  it("is a checkout parameter, the preset's checkout.stockBuckets, and refused with splitStockCheck", () => {
    expect(applyOverrides(defaultConfig(), ['stockBuckets=8']).params.stockBuckets).toBe(8);
    expect(checkoutBuildSchema.parse({ stockBuckets: 4 }).set).toEqual({ stockBuckets: 4 });
    let err: unknown;
    try {
      applyOverrides(defaultConfig('naive'), ['splitStockCheck=true', 'stockBuckets=4']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).errors).toEqual([
      { field: 'stockBuckets', reason: expect.stringContaining('splitStockCheck') },
    ]);
  });

  it('checkout --stock-buckets out of range exits 2 naming the option', () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');
    const r = spawnSync(process.execPath, [bin, 'checkout', '--stock-buckets', '0'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--stock-buckets/);
  });
});
