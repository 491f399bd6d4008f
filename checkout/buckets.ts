// Stock buckets: one SKU's stock split over B buckets, each a full copy of
// the SKU's key set under its own hash tag {sku:ID:b}, so a hot SKU spreads
// over B cluster slots (docs/CHECKOUT.md, "Stock buckets"). An order lives in
// the bucket its stock came from; every script touches that bucket's keys only.

/** The most buckets a SKU may have. */
export const MAX_STOCK_BUCKETS = 64;

/** FNV-1a (32 bit) of a string: a stable, seedless hash, so a run's draws repeat run after run. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The bucket an order tries first: drawn from its id. */
export function firstBucket(orderId: string, buckets: number): number {
  return buckets <= 1 ? 0 : fnv1a(orderId) % buckets;
}

/** The buckets in the order an order tries them: its first, then the next ones, wrapping round. */
export function bucketOrder(orderId: string, buckets: number): number[] {
  const first = firstBucket(orderId, buckets);
  return Array.from({ length: buckets }, (_, i) => (first + i) % buckets);
}

/** `total` units over `buckets` as evenly as possible (the first ones get the remainder). */
export function splitStock(total: number, buckets: number): number[] {
  const base = Math.floor(total / buckets);
  const extra = total % buckets;
  return Array.from({ length: buckets }, (_, i) => base + (i < extra ? 1 : 0));
}

/** What the store keeps of a bucketed SKU (`<prefix>:sku-buckets`, id -> "B,limit"): unknown SKUs have one bucket. */
export interface BucketMeta {
  buckets: number;
  /** The SKU's per-shopper limit (0: none), held across buckets by a ledger per shopper. */
  limit: number;
}
export const ONE_BUCKET: BucketMeta = { buckets: 1, limit: 0 };

export function formatMeta(m: BucketMeta): string {
  return `${m.buckets},${m.limit}`;
}
export function parseMeta(v: string | null | undefined): BucketMeta {
  if (!v) return ONE_BUCKET;
  const [b = '1', l = '0'] = v.split(',');
  return { buckets: Number(b), limit: Number(l) };
}
