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

/** Redis Cluster's hash slots. */
export const CLUSTER_SLOTS = 16_384;

/** CRC16-XMODEM, as Redis Cluster hashes a key's tag (`CLUSTER KEYSLOT`). */
function crc16(s: string): number {
  let crc = 0;
  for (const byte of Buffer.from(s, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The cluster slot of a hash tag's text (what is between the braces). */
export function slotOfTag(tag: string): number {
  return crc16(tag) % CLUSTER_SLOTS;
}

/**
 * The hash tag of bucket `b` of `buckets`: `sku:ID:b`, followed by `.k`
 * with the smallest k that puts its slot in the b-th of `buckets` equal
 * slot ranges. A cluster made by `redis-cli --cluster create` gives each
 * master one contiguous range, so the buckets spread over the masters as
 * evenly as B allows (B = 3 on three masters: one each), where plain
 * `sku:ID:b` would land where CRC16 happens to put it.
 */
export function bucketTag(sku: string, b: number, buckets: number): string {
  const lo = Math.ceil((b * CLUSTER_SLOTS) / buckets);
  const hi = Math.ceil(((b + 1) * CLUSTER_SLOTS) / buckets);
  for (let k = 0; ; k++) {
    const tag = `sku:${sku}:${b}.${k}`;
    const slot = slotOfTag(tag);
    if (slot >= lo && slot < hi) return tag;
  }
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
