// `flashcrowd run`, where the sale's data lives, read after the audit: the
// target's Redis masters (one without a cluster), each one's keys (DBSIZE)
// and the SKUs whose hash slot it serves (CLUSTER KEYSLOT of the SKU's stock
// key, of each bucket's with stock buckets; CLUSTER SLOTS). summary.json `redis`: a hot SKU is one slot, so one
// master's core (docs/CHECKOUT.md, "On a Redis Cluster").
import { Cluster } from 'ioredis';
import { masterNodes, type Store } from '../../checkout/store.ts';
import { fmtRedis } from '../report/format.ts';
import type { RunSummary } from '../summary.ts';

export type RedisLayout = NonNullable<RunSummary['redis']>;

export async function redisLayout(store: Store, skuIds: readonly string[]): Promise<RedisLayout> {
  const { redis } = store;
  const nodes = masterNodes(redis);
  const name = (n: (typeof nodes)[number]) => `${n.options.host}:${n.options.port}`;
  const skusOf = new Map<string, string[]>(nodes.map((n) => [name(n), []]));
  if (redis instanceof Cluster) {
    const ranges = await redis.cluster('SLOTS');
    // A bucketed SKU (checkout.stockBuckets) is listed on every master one of its buckets is on.
    for (const sku of skuIds)
      for (const keys of await store.keySets(sku)) {
        const slot = Number(await redis.cluster('KEYSLOT', keys.stock));
        const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
        const on = r?.[2] ? skusOf.get(`${r[2][0]}:${r[2][1]}`) : undefined;
        if (on && !on.includes(sku)) on.push(sku);
      }
  } else skusOf.get(name(nodes[0]!))?.push(...skuIds);
  return {
    cluster: redis instanceof Cluster,
    masters: await Promise.all(
      nodes.map(async (n) => ({
        node: name(n),
        keys: await n.dbsize(),
        skus: skusOf.get(name(n)) ?? [],
      })),
    ),
  };
}

/** One line for the console: `redis: cluster of 3 masters: 127.0.0.1:7000 (lipstick; 812 keys), ...`. */
export const formatLayout = (l: RedisLayout) => `redis: ${fmtRedis(l)}`;
