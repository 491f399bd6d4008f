// Stock and orders in Redis. Every change goes through one Lua script in
// ./lua (atomic, one round trip); every key of a SKU shares its hash tag
// {sku:ID}, so the scripts run unchanged on Redis Cluster. With stock buckets
// (checkout/buckets.ts) each bucket is such a key set under {sku:ID:b}, and an
// order's keys are those of the bucket it took its stock from.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import {
  bucketOrder,
  bucketTag,
  formatMeta,
  parseMeta,
  splitStock,
  type BucketMeta,
} from './buckets.ts';

/** The coupon calls the hardened checkout owes and retries: `<prefix>:coupon-releases`, `<prefix>:coupon-consumes`. */
export const COUPON_DEBTS = ['release', 'consume'] as const;
export type CouponDebt = (typeof COUPON_DEBTS)[number];
export type RedisClient = Redis | Cluster;
/** The consumer group of the payment-result stream: every checkout instance reads in it. */
export const PAYMENT_GROUP = 'checkout';

export const ORDER_STATES = [
  'pending_payment',
  'paying',
  'paid',
  'payment_failed',
  'expired',
  'cancelled',
  'refunded',
] as const;
export type OrderState = (typeof ORDER_STATES)[number];
/** States that still hold stock. */
export const OPEN_STATES: readonly OrderState[] = ['pending_payment', 'paying'];

export interface Order {
  id: string;
  sku: string;
  user: string;
  qty: number;
  amount: number;
  coupon: string;
  discount: number;
  channel: string;
  state: OrderState;
  reason: string;
  createdAt: number;
  updatedAt: number;
  deadline: number;
  attempts: number;
  payStartedAt?: number;
  /**
   * Until when the pay call that moved the order into paying may still answer
   * (epoch ms; absent once it answered). Held in Redis so that no checkout
   * instance's reconciler settles a call still live in another instance; a
   * killed instance's calls are settled once their lease ends.
   */
  payLeaseUntil?: number;
  paidAt?: number;
  paymentRef?: string;
  paidChannel?: string;
  lateCapture?: string;
  extraCapture?: string;
  lateFrom?: string;
  endedAt?: number;
  /** Until when the reconciler watches this ended order for a payment that may still land. */
  watchUntil?: number;
  /** The stock bucket the order took its units from (only when its SKU has several). */
  bucket?: number;
}

export interface Sku {
  id: string;
  name: string;
  price: number;
  initial: number;
  available: number;
  reserved: number;
  sold: number;
  limit: number;
}

export interface StockCounters {
  initial: number;
  available: number;
  reserved: number;
  sold: number;
}
export interface StockSnapshot extends StockCounters {
  sku: string;
  /** A bucketed SKU's counters per bucket (the SKU's are their sums). */
  buckets?: StockCounters[];
}

const SCRIPTS = [
  'reserve',
  'start_payment',
  'confirm',
  'release',
  'transition',
  'read_orders',
  'limit_ledger',
] as const;
const LUA_DIR = new URL('./lua/', import.meta.url);
const LUA: Record<(typeof SCRIPTS)[number], string> = Object.fromEntries(
  SCRIPTS.map((name) => [name, readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8')]),
) as Record<(typeof SCRIPTS)[number], string>;
/** The checkout's Lua scripts by SHA1 (how EVALSHA names them), for the Redis timings' `op` label. */
export const SCRIPT_NAMES: ReadonlyMap<string, string> = new Map(
  SCRIPTS.map((name) => [createHash('sha1').update(LUA[name]).digest('hex'), name]),
);
export const SKU_ID = /^[A-Za-z0-9_-]{1,32}$/;

type Reply = string[];
type Scripted = RedisClient &
  Record<
    Exclude<(typeof SCRIPTS)[number], 'read_orders'>,
    (...args: (string | number)[]) => Promise<Reply>
  > & {
    read_orders(n: number, ...keysThenFields: string[]): Promise<string>;
  };

/** Hash of an order request, stored with its idempotency key to tell a replay from another payload. */
export function payloadHash(payload: unknown): string {
  return createHash('sha256').update(JSON.stringify(payload)).digest('hex').slice(0, 32);
}

function num(v: string | undefined): number | undefined {
  return v === undefined || v === '' ? undefined : Number(v);
}

/**
 * How each field of an order hash reads, as parseOrder reads it: `text` ('' when
 * missing), `number` (NaN when missing), `count` (0 when missing), and
 * `optional…` (left out when missing or empty). Used by the batch read.
 */
const ORDER_FIELD_KINDS = {
  id: 'text',
  sku: 'text',
  user: 'text',
  qty: 'number',
  amount: 'number',
  coupon: 'text',
  discount: 'count',
  channel: 'text',
  state: 'text',
  reason: 'text',
  createdAt: 'number',
  updatedAt: 'number',
  deadline: 'number',
  attempts: 'count',
  payStartedAt: 'optionalNumber',
  payLeaseUntil: 'optionalNumber',
  paidAt: 'optionalNumber',
  endedAt: 'optionalNumber',
  watchUntil: 'optionalNumber',
  bucket: 'optionalNumber',
  paymentRef: 'optionalText',
  paidChannel: 'optionalText',
  lateCapture: 'optionalText',
  extraCapture: 'optionalText',
  lateFrom: 'optionalText',
} as const satisfies Record<keyof Order, string>;
export type OrderField = keyof typeof ORDER_FIELD_KINDS;
/** Every field of an order hash (`id` first). */
export const ORDER_FIELDS = Object.keys(ORDER_FIELD_KINDS) as OrderField[];

/** An order (or the given fields of one) from the values read for `fields`, as parseOrder reads it. */
export function orderFromRow<F extends OrderField>(
  fields: readonly F[],
  row: readonly (string | false | null)[],
): Pick<Order, F> {
  const o: Record<string, string | number> = {};
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = row[i] || '';
    switch (ORDER_FIELD_KINDS[f]) {
      case 'text':
        o[f] = v;
        break;
      case 'number':
        o[f] = v === '' ? NaN : Number(v);
        break;
      case 'count':
        o[f] = v === '' ? 0 : Number(v);
        break;
      case 'optionalNumber':
        if (v !== '') o[f] = Number(v);
        break;
      case 'optionalText':
        if (v !== '') o[f] = v;
        break;
    }
  }
  return o as Pick<Order, F>;
}

/**
 * An order from its hash: HGETALL's object, or a script's flat [field, value,
 * ...] reply. Written out as a literal for the request path, where it runs a
 * few times per order: the table-driven orderFromRow takes twice as long per
 * call (0.7 µs more). The two read alike: test/checkout-audit.test.ts compares
 * a batch read with single reads.
 */
export function parseOrder(flat: string[] | Record<string, string>): Order {
  const h: Record<string, string> = Array.isArray(flat) ? {} : flat;
  if (Array.isArray(flat)) for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  const o: Order = {
    id: h.id!,
    sku: h.sku!,
    user: h.user!,
    qty: Number(h.qty),
    amount: Number(h.amount),
    coupon: h.coupon ?? '',
    discount: Number(h.discount ?? 0),
    channel: h.channel ?? '',
    state: h.state as OrderState,
    reason: h.reason ?? '',
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
    deadline: Number(h.deadline),
    attempts: Number(h.attempts ?? 0),
  };
  for (const k of [
    'payStartedAt',
    'payLeaseUntil',
    'paidAt',
    'endedAt',
    'watchUntil',
    'bucket',
  ] as const) {
    const v = num(h[k]);
    if (v !== undefined) o[k] = v;
  }
  for (const k of ['paymentRef', 'paidChannel', 'lateCapture', 'extraCapture', 'lateFrom'] as const)
    if (h[k]) o[k] = h[k];
  return o;
}

// Random bytes for order ids, drawn 4 KiB at a time: one randomBytes() call per
// order was a getrandom() system call each (about 18 µs per order under load).
const RANDOM_POOL_BYTES = 4096;
let randomPool = Buffer.alloc(0);
let randomAt = 0;
function randomHex10(): string {
  if (randomAt + 5 > randomPool.length) {
    randomPool = randomBytes(RANDOM_POOL_BYTES);
    randomAt = 0;
  }
  randomAt += 5;
  return randomPool.toString('hex', randomAt - 5, randomAt);
}

/** The SKU an order id belongs to (ids are `<sku>.<random>`). */
export function skuOfOrder(orderId: string): string | undefined {
  const i = orderId.lastIndexOf('.');
  const sku = i > 0 ? orderId.slice(0, i) : undefined;
  return sku && SKU_ID.test(sku) ? sku : undefined;
}

export class Store {
  readonly redis: Scripted;
  /** Redis round trips made (scripts and reads), for the benchmark's per-order figure. */
  roundTrips = 0;

  /** Bucketed SKUs' meta as read from Redis, with until when it is trusted (see metaOf). */
  private readonly metas = new Map<string, { meta: BucketMeta; until: number }>();
  /** Bucket tags computed (SKU, bucket and count -> tag). */
  private readonly bucketTags = new Map<string, string>();
  /** Orders made here whose bucket is not the first they drew (found without probing). */
  private readonly homes = new Map<string, number>();

  /**
   * `stockBuckets`: how many buckets seedSale splits each SKU's stock over
   * (1: one key set per SKU, the layout without buckets). Every other
   * method reads a SKU's bucket count from Redis, whoever seeded it.
   */
  constructor(
    redis: RedisClient,
    readonly prefix = 'fc',
    readonly stockBuckets = 1,
  ) {
    for (const name of SCRIPTS) {
      if (typeof (redis as unknown as Record<string, unknown>)[name] === 'function') continue;
      redis.defineCommand(name, { lua: LUA[name] });
    }
    this.redis = redis as Scripted;
  }

  // ------------------------------------------------------------------ keys
  tag(sku: string): string {
    return `${this.prefix}:{sku:${sku}}`;
  }
  /** The keys of a SKU without buckets. */
  keys(sku: string): SkuKeys;
  /** The keys of bucket `bucket` of a SKU split over `buckets` buckets. */
  keys(sku: string, bucket: number, buckets: number): SkuKeys;
  keys(sku: string, bucket?: number, buckets = 1): SkuKeys {
    if (bucket === undefined) return new SkuKeys(this.tag(sku));
    const id = `${sku}#${bucket}/${buckets}`;
    let t = this.bucketTags.get(id);
    if (t === undefined) {
      t = `${this.prefix}:{${bucketTag(sku, bucket, buckets)}}`;
      this.bucketTags.set(id, t);
    }
    return new SkuKeys(t);
  }
  /** Bucketed SKUs: id -> "B,limit" (checkout/buckets.ts). */
  get bucketsKey(): string {
    return `${this.prefix}:sku-buckets`;
  }
  /** A shopper's units of a bucketed SKU across its buckets (limit_ledger.lua), on a slot of its own. */
  ledgerKey(sku: string, user: string): string {
    return `${this.prefix}:{sku:${sku}:user:${user}}:units`;
  }

  /**
   * How many buckets a SKU has and its limit. Read from Redis and trusted
   * for a second: the sale may be seeded again by another checkout instance.
   */
  async metaOf(sku: string): Promise<BucketMeta> {
    const now = Date.now();
    const hit = this.metas.get(sku);
    if (hit && hit.until > now) return hit.meta;
    this.roundTrips += 1;
    const meta = parseMeta(await this.redis.hget(this.bucketsKey, sku));
    this.metas.set(sku, { meta, until: now + META_TRUST_MS });
    return meta;
  }

  /** The key sets of a SKU: one, or one per bucket. */
  async keySets(sku: string): Promise<SkuKeys[]> {
    const { buckets } = await this.metaOf(sku);
    if (buckets === 1) return [this.keys(sku)];
    return Array.from({ length: buckets }, (_, b) => this.keys(sku, b, buckets));
  }

  /** `read` on each of a SKU's key sets, in parallel. */
  private async perBucket<T>(sku: string, read: (k: SkuKeys) => Promise<T>): Promise<T[]> {
    return Promise.all((await this.keySets(sku)).map(read));
  }

  /**
   * Run `op` on the key set of the order's bucket: the one it was seen in
   * here, else each bucket in the order's draw order until `op` finds the
   * order (an order that took its stock from a later bucket costs a probe
   * per bucket before it, only outside the process that made it).
   */
  private async atHome<R>(
    orderId: string,
    op: (k: SkuKeys) => Promise<R>,
    found: (r: R) => boolean,
  ): Promise<R | undefined> {
    const sku = skuOfOrder(orderId);
    if (!sku) return undefined;
    const { buckets } = await this.metaOf(sku);
    if (buckets === 1) return op(this.keys(sku));
    const known = this.homes.get(orderId);
    const order = bucketOrder(orderId, buckets);
    if (known !== undefined) order.unshift(known);
    let r: R | undefined;
    for (const b of new Set(order)) {
      r = await op(this.keys(sku, b, buckets));
      if (found(r)) return r;
    }
    return r;
  }

  private rememberHome(orderId: string, bucket: number) {
    this.homes.set(orderId, bucket);
    if (this.homes.size > HOMES_KEPT) this.homes.delete(this.homes.keys().next().value!);
  }
  get skusKey(): string {
    return `${this.prefix}:skus`;
  }
  /** The payment-result stream (wallet notifications), read by the consumer group PAYMENT_GROUP. */
  get paymentStreamKey(): string {
    return `${this.prefix}:payments`;
  }

  /**
   * Entries of the payment stream read by a consumer and not acknowledged
   * yet (0 without the stream or its group): after quiescence, none (a dead
   * consumer's are claimed by a live one).
   */
  async streamPending(): Promise<number> {
    try {
      const r = (await this.redis.xpending(this.paymentStreamKey, PAYMENT_GROUP)) as [
        number | string,
        ...unknown[],
      ];
      return Number(r?.[0] ?? 0);
    } catch (e) {
      if (/NOGROUP|no such key/i.test((e as Error).message)) return 0;
      throw e;
    }
  }
  /**
   * Coupon calls owed (coupon code -> order id and until when), retried by the
   * sweeper: releases that failed or whose lock may still land, and consumes
   * of paid orders that failed (the coupon would stay locked, never used).
   */
  couponDebtsKey(kind: CouponDebt): string {
    return `${this.prefix}:coupon-${kind}s`;
  }

  /**
   * Owe a coupon call for the sweeper to retry: until it goes through, or, for
   * a release the coupon service says the order holds no lock for, until
   * `untilMs` (a lock that timed out may still land before then).
   */
  async oweCoupon(kind: CouponDebt, code: string, orderId: string, untilMs = 0): Promise<void> {
    await this.redis.hset(this.couponDebtsKey(kind), code, `${orderId}|${untilMs}`);
  }
  async owedCoupons(
    kind: CouponDebt,
  ): Promise<{ code: string; orderId: string; untilMs: number }[]> {
    return Object.entries(await this.redis.hgetall(this.couponDebtsKey(kind))).map(([code, v]) => {
      const [orderId = '', until = '0'] = v.split('|');
      return { code, orderId, untilMs: Number(until) };
    });
  }
  /**
   * Coupon locks being taken for orders not created yet (order id -> code and
   * the time its request can no longer be running): written before the lock,
   * removed once the order exists or its creation failed. One left behind is
   * a process that died between the lock and the order (a killed instance);
   * the sweeper gives its coupon back (Checkout.settleCouponIntents).
   */
  couponIntentsKey(): string {
    return `${this.prefix}:coupon-intents`;
  }
  async intendCouponLock(orderId: string, code: string, staleAtMs: number): Promise<void> {
    await this.redis.hset(this.couponIntentsKey(), orderId, `${code}|${staleAtMs}`);
  }
  async dropCouponIntent(orderId: string): Promise<void> {
    await this.redis.hdel(this.couponIntentsKey(), orderId);
  }
  async couponIntents(): Promise<{ orderId: string; code: string; staleAtMs: number }[]> {
    return Object.entries(await this.redis.hgetall(this.couponIntentsKey())).map(([orderId, v]) => {
      const bar = v.lastIndexOf('|');
      return { orderId, code: v.slice(0, bar), staleAtMs: Number(v.slice(bar + 1)) };
    });
  }
  /** How many coupon calls are owed, of both kinds, and locks of orders not yet created (the harness waits for 0 before the audit). */
  async owedCouponCount(): Promise<number> {
    const lens = await Promise.all([
      ...COUPON_DEBTS.map((k) => this.redis.hlen(this.couponDebtsKey(k))),
      this.redis.hlen(this.couponIntentsKey()),
    ]);
    return lens.reduce((n, l) => n + l, 0);
  }
  async couponSettled(kind: CouponDebt, code: string, orderId: string): Promise<void> {
    // Only the call owed for this order: the coupon may be locked by another one since.
    const key = this.couponDebtsKey(kind);
    const v = await this.redis.hget(key, code);
    if (v?.split('|')[0] === orderId) await this.redis.hdel(key, code);
  }

  private async call(
    name: Exclude<(typeof SCRIPTS)[number], 'read_orders'>,
    ...args: (string | number)[]
  ): Promise<Reply> {
    this.roundTrips += 1;
    return this.redis[name](...args);
  }

  // ------------------------------------------------------------------ sale
  /**
   * Replace the sale: delete every key of the prefix's SKUs, then write the
   * new ones, each SKU's stock split over `stockBuckets` buckets as evenly as
   * possible.
   */
  async seedSale(
    skus: { id: string; name: string; price: number; stock: number; limit: number }[],
  ): Promise<void> {
    await this.clear();
    const buckets = this.stockBuckets;
    for (const s of skus) {
      const shares = splitStock(s.stock, buckets);
      for (let b = 0; b < buckets; b++)
        await this.redis.hset(
          (buckets === 1 ? this.keys(s.id) : this.keys(s.id, b, buckets)).stock,
          {
            name: s.name,
            price: s.price,
            initial: shares[b]!,
            available: shares[b]!,
            reserved: 0,
            sold: 0,
            limit: s.limit,
          },
        );
      if (buckets > 1)
        await this.redis.hset(this.bucketsKey, s.id, formatMeta({ buckets, limit: s.limit }));
      await this.redis.sadd(this.skusKey, s.id);
    }
  }

  /** Delete every key under this prefix (SCAN per node on a cluster). */
  async clear(): Promise<void> {
    this.metas.clear();
    this.homes.clear();
    const nodes = masterNodes(this.redis);
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', 1000);
        cursor = next;
        // One key at a time: keys of different slots cannot share a DEL on a cluster.
        for (const key of keys) await node.del(key);
      } while (cursor !== '0');
    }
  }

  async skuIds(): Promise<string[]> {
    return (await this.redis.smembers(this.skusKey)).sort();
  }

  async sku(id: string): Promise<Sku | undefined> {
    const hs = await this.perBucket(id, (k) => this.redis.hgetall(k.stock));
    const h = hs[0]!;
    if (!h.initial) return undefined;
    return {
      id,
      name: h.name ?? id,
      price: Number(h.price),
      ...sumStock(hs),
      limit: Number(h.limit),
    };
  }

  async catalogue(): Promise<Sku[]> {
    const out: Sku[] = [];
    for (const id of await this.skuIds()) {
      const s = await this.sku(id);
      if (s) out.push(s);
    }
    return out;
  }

  /**
   * One SKU's counters, summed over its buckets. Each bucket is read
   * atomically (one HMGET) and adds up on its own (every script changes one
   * bucket), so the sum adds up too, though the buckets are read one after
   * the other.
   */
  async snapshot(sku: string): Promise<StockSnapshot> {
    const parts = await this.bucketSnapshots(sku);
    const sums = { sku, ...sumStock(parts) };
    return parts.length === 1 ? sums : { ...sums, buckets: parts };
  }

  /** One SKU's counters per bucket (one bucket: the SKU's), each read atomically. */
  async bucketSnapshots(sku: string): Promise<StockCounters[]> {
    const fields = ['initial', 'available', 'reserved', 'sold'] as const;
    return this.perBucket(sku, async (k) => {
      const v = await this.redis.hmget(k.stock, ...fields);
      return {
        initial: Number(v[0]),
        available: Number(v[1]),
        reserved: Number(v[2]),
        sold: Number(v[3]),
      };
    });
  }

  async counters(sku: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const h of await this.perBucket(sku, (k) => this.redis.hgetall(k.counters)))
      for (const [k, v] of Object.entries(h)) out[k] = (out[k] ?? 0) + Number(v);
    return out;
  }

  /** Orders in a SKU's deadline queues (every bucket's). */
  async deadlineIds(sku: string): Promise<string[]> {
    return (await this.perBucket(sku, (k) => this.redis.zrange(k.deadlines, 0, -1))).flat();
  }

  /** Units each shopper holds of a SKU as its `bought` hashes count them, summed over buckets. */
  async boughtByUser(sku: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const h of await this.perBucket(sku, (k) => this.redis.hgetall(k.bought)))
      for (const [u, n] of Object.entries(h)) out.set(u, (out.get(u) ?? 0) + Number(n));
    return out;
  }

  /** Ended orders of a SKU the reconciler still watches (every bucket's). */
  async watchedCount(sku: string): Promise<number> {
    const n = await this.perBucket(sku, (k) => this.redis.zcard(k.watch));
    return n.reduce((a, b) => a + b, 0);
  }

  // ------------------------------------------------------------------ orders
  newOrderId(sku: string): string {
    return `${sku}.${Date.now().toString(36)}${randomHex10()}`;
  }

  /**
   * The id of an order requested under an Idempotency-Key: a function of the
   * key and of how many times it was claimed (a request that failed without
   * effect gives its key up, and a retry under it gets a new id, so a coupon lock or
   * a payment keyed by the old id is never replayed for it). The same
   * shoppers then make the same order ids run after run, and the mocks draw
   * their faults by order id (docs/CHAOS.md, Reproducibility).
   */
  async keyedOrderId(sku: string, key: string, ttlMs: number): Promise<string> {
    this.roundTrips += 1;
    const k = `${this.prefix}:idem-n:${key}`;
    const res = await this.redis.multi().incr(k).pexpire(k, ttlMs).exec();
    const n = Number(res?.[0]?.[1] ?? 1);
    const h = createHash('sha256').update(`${key}#${n}`).digest('hex').slice(0, 20);
    return `${sku}.k${h}`;
  }

  /**
   * Reserve stock for a new order. A bucketed SKU: the shopper's limit is
   * held first (limit_ledger.lua), then the buckets are tried in the order's
   * draw order until one has the units; "sold out" only once every bucket
   * said so. The ledger gets the units back when no bucket took them.
   */
  async reserve(a: ReserveArgs): Promise<Reserved> {
    const id = a.orderId ?? this.newOrderId(a.sku);
    const meta = await this.metaOf(a.sku);
    if (meta.buckets === 1) return this.reserveIn(this.keys(a.sku), a, id, '');
    const ledger = this.ledgerKey(a.sku, a.user);
    if (meta.limit > 0 && !(await this.ledger(ledger, a.qty, meta.limit)))
      return { status: 'limit_exceeded', orderId: '', amount: 0 };
    const order = this.bucketsToTry(id, meta.buckets);
    let r: Reserved | undefined;
    for (const b of order) {
      r = await this.reserveIn(this.keys(a.sku, b, meta.buckets), a, id, String(b));
      if (r.status === 'ok' && b !== order[0]) this.rememberHome(id, b);
      if (r.status !== 'sold_out') break;
    }
    if (r!.status !== 'ok' && meta.limit > 0) await this.ledger(ledger, -a.qty, meta.limit);
    return r!;
  }

  /** The buckets a new order tries, in order: every one, its drawn bucket first. */
  protected bucketsToTry(orderId: string, buckets: number): number[] {
    return bucketOrder(orderId, buckets);
  }

  /** Hold (qty > 0) or give back (qty < 0) a shopper's units of a bucketed SKU; false: over the limit. */
  private async ledger(key: string, qty: number, limit: number): Promise<boolean> {
    return Number(await this.call('limit_ledger', 1, key, qty, limit)) === 1;
  }

  private async reserveIn(
    k: SkuKeys,
    a: ReserveArgs,
    id: string,
    bucket: string,
  ): Promise<Reserved> {
    const hash = payloadHash(a.payload);
    const [status, orderId, amount, ...flat] = await this.call(
      'reserve',
      6,
      k.stock,
      k.bought,
      k.order(id),
      k.deadlines,
      k.user(a.user),
      k.idem(a.idempotencyKey ?? ''),
      id,
      a.sku,
      a.user,
      a.qty,
      a.now,
      a.deadline,
      a.idempotencyKey ? 1 : 0,
      a.idemTtlMs,
      hash,
      a.coupon ?? '',
      a.discount ?? 0,
      a.channel,
      a.checked ? 1 : 0,
      bucket,
    );
    const order = status === 'ok' ? parseOrder(flat) : undefined;
    return { status: status as never, orderId: orderId ?? '', amount: Number(amount || 0), order };
  }

  /**
   * The naive stock check, one round trip before the one that takes the stock:
   * what is available and what the shopper already bought. Between the two,
   * other orders take the same units (oversell) and the same shopper's other
   * clicks pass the limit (I4).
   */
  async stockCheck(
    sku: string,
    user: string,
  ): Promise<{ exists: boolean; available: number; limit: number; bought: number }> {
    const k = this.keys(sku);
    this.roundTrips += 1;
    const res = await this.redis
      .multi()
      .hmget(k.stock, 'available', 'limit')
      .hget(k.bought, user)
      .exec();
    const [available, limit] = (res?.[0]?.[1] ?? []) as (string | null)[];
    const bought = res?.[1]?.[1] as string | null;
    return {
      exists: available !== null && available !== undefined,
      available: Number(available ?? 0),
      limit: Number(limit ?? 0),
      bought: Number(bought ?? 0),
    };
  }

  // ------------------------------------------------------------------ idempotency keys
  // The SKU's `idem` key (written by reserve.lua) maps a key to its order. A key
  // is also claimed under its own name, outside every SKU's hash tag, before
  // anything happens, so another payload under it is refused whatever its SKU
  // and a duplicate that arrives while the first request is still locking a
  // coupon is told so instead of locking the coupon again.
  private idemClaimKey(key: string): string {
    return `${this.prefix}:idem:${key}`;
  }

  /**
   * Claim `key` for a request whose payload hashes to `hash`; else say what
   * holds it: the payload's hash, and the refusal the key answered if its
   * request was refused (rememberRefusal).
   */
  async claimIdempotencyKey(
    key: string,
    hash: string,
    ttlMs: number,
  ): Promise<{ claimed: true } | { claimed: false; hash: string; refusal?: KeptRefusal }> {
    const k = this.idemClaimKey(key);
    for (let i = 0; i < 3; i++) {
      this.roundTrips += 1;
      if ((await this.redis.set(k, hash, 'PX', ttlMs, 'NX')) === 'OK') return { claimed: true };
      this.roundTrips += 1;
      const held = await this.redis.get(k);
      if (held !== null) return { claimed: false, ...parseClaim(held) };
      // The holder gave the key up between the two calls: try again.
    }
    return { claimed: false, hash };
  }

  /** Keep a claimed key (its request made an order) for `ttlMs`. */
  async keepIdempotencyKey(key: string, ttlMs: number): Promise<void> {
    this.roundTrips += 1;
    await this.redis.pexpire(this.idemClaimKey(key), ttlMs);
  }

  /**
   * Keep a claimed key with the refusal its request got (sold out, limit, a
   * declined coupon) for `ttlMs`: an identical request under it is answered
   * the same refusal, never an order made later (I10, Stripe's rule).
   */
  async rememberRefusal(
    key: string,
    hash: string,
    refusal: KeptRefusal,
    ttlMs: number,
  ): Promise<void> {
    this.roundTrips += 1;
    await this.redis.set(
      this.idemClaimKey(key),
      `${hash}\n${refusal.status}\n${JSON.stringify(refusal.body)}`,
      'PX',
      ttlMs,
    );
  }

  /** Give a claimed key up (its request made no order and was not refused: a retry may run again). */
  async dropIdempotencyKey(key: string): Promise<void> {
    this.roundTrips += 1;
    await this.redis.del(this.idemClaimKey(key));
  }

  /** The order an idempotency key made for a SKU (in any of its buckets), if any. */
  async idempotentOrder(sku: string, key: string): Promise<string | undefined> {
    this.roundTrips += 1;
    const vs = await this.perBucket(sku, (k) => this.redis.get(k.idem(key)));
    const v = vs.find((x) => x !== null);
    return v ? v.slice(0, v.indexOf('|')) : undefined;
  }

  async get(orderId: string): Promise<Order | undefined> {
    const h = await this.atHome(
      orderId,
      (k) => {
        this.roundTrips += 1;
        return this.redis.hgetall(k.order(orderId));
      },
      (h) => Boolean(h.id),
    );
    return h?.id ? parseOrder(h) : undefined;
  }

  async listByUser(user: string): Promise<Order[]> {
    const out: Order[] = [];
    for (const sku of await this.skuIds()) {
      for (const ids of await this.perBucket(sku, (k) => this.redis.smembers(k.user(user))))
        for (const id of ids) {
          const o = await this.get(id);
          if (o) out.push(o);
        }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Move an order into paying. `leaseUntil`: until when the pay call starting
   * now may still answer (0: no lease), written on the order for every
   * instance's reconciler to respect.
   */
  async startPayment(
    orderId: string,
    channel: string,
    now: number,
    allowConcurrent: boolean,
    leaseUntil = 0,
  ) {
    const reply = await this.atHome(
      orderId,
      (k) =>
        this.call(
          'start_payment',
          2,
          k.order(orderId),
          k.paying,
          now,
          channel,
          allowConcurrent ? 1 : 0,
          leaseUntil,
        ),
      found,
    );
    const [status, ...flat] = reply ?? ['not_found'];
    if (status === 'not_found') return { status: 'not_found' as const };
    return { status: status as 'ok' | 'in_progress' | 'wrong_state', order: parseOrder(flat) };
  }

  async confirm(
    orderId: string,
    paymentRef: string,
    amount: number,
    now: number,
    allowReReserve: boolean,
    channel: string,
  ) {
    const sku = skuOfOrder(orderId);
    if (!sku) return { status: 'not_found' as const, state: '' };
    // A bucketed SKU's late payment re-reserves from its order's bucket; not
    // with a per-shopper limit, which the bucket alone cannot judge: refunded.
    const meta = await this.metaOf(sku);
    const reReserve = allowReReserve && (meta.buckets === 1 || meta.limit === 0);
    const reply = await this.atHome(
      orderId,
      (k) =>
        this.call(
          'confirm',
          6,
          k.stock,
          k.bought,
          k.order(orderId),
          k.deadlines,
          k.paying,
          k.counters,
          paymentRef,
          amount,
          now,
          reReserve ? 1 : 0,
          channel,
        ),
      found,
    );
    const [status, state, ...flat] = reply ?? ['not_found', ''];
    return {
      status: status as
        | 'paid'
        | 'duplicate'
        | 'double_capture'
        | 'double_capture_again'
        | 'late_rereserved'
        | 'late_refund'
        | 'late_refund_again'
        | 'amount_mismatch'
        | 'not_found',
      state: state ?? '',
      /** The order after the script (undefined when not found). */
      order: flat.length ? parseOrder(flat) : undefined,
    };
  }

  async release(
    orderId: string,
    to: 'expired' | 'payment_failed' | 'cancelled',
    reason: string,
    now: number,
    from: readonly OrderState[] = OPEN_STATES,
  ) {
    const sku = skuOfOrder(orderId);
    if (!sku) return { status: 'not_found' as const, state: '' };
    const reply = await this.atHome(
      orderId,
      (k) =>
        this.call(
          'release',
          5,
          k.stock,
          k.bought,
          k.order(orderId),
          k.deadlines,
          k.paying,
          to,
          reason,
          now,
          from.join(','),
        ),
      found,
    );
    const [status, state, user, qty] = reply ?? ['not_found', ''];
    const meta = await this.metaOf(sku);
    // The shopper's units of a bucketed SKU go back to the ledger too.
    if (status === 'released' && meta.buckets > 1 && meta.limit > 0)
      await this.ledger(this.ledgerKey(sku, user!), -Number(qty), meta.limit);
    return { status: status as 'released' | 'wrong_state' | 'not_found', state: state ?? '' };
  }

  /** `endLease`: the pay call holding the order's lease answered (its lease is dropped). */
  async transition(
    orderId: string,
    to: OrderState,
    reason: string,
    now: number,
    from: readonly OrderState[],
    endLease = false,
  ) {
    const reply = await this.atHome(
      orderId,
      (k) =>
        this.call(
          'transition',
          2,
          k.order(orderId),
          k.paying,
          to,
          reason,
          now,
          from.join(','),
          endLease ? 1 : 0,
        ),
      found,
    );
    const [status, state] = reply ?? ['not_found', ''];
    return { status: status as 'ok' | 'wrong_state' | 'not_found', state: state ?? '' };
  }

  /** Orders whose payment deadline has passed (up to `limit`). */
  async dueOrders(sku: string, now: number, limit = 200): Promise<string[]> {
    return this.dueIn(sku, 'deadlines', now, limit);
  }

  /** Entries of one of a SKU's queues (every bucket's) scored up to `upTo`, up to `limit` from each bucket. */
  private async dueIn(
    sku: string,
    queue: 'deadlines' | 'paying' | 'watch',
    upTo: number,
    limit: number,
  ): Promise<string[]> {
    const lists = await this.perBucket(sku, (k) =>
      this.redis.zrangebyscore(k[queue], '-inf', upTo, 'LIMIT', 0, limit),
    );
    return lists.flat();
  }

  /** Orders in paying since before `before` (up to `limit`). */
  async stalePaying(sku: string, before: number, limit = 200): Promise<string[]> {
    return this.dueIn(sku, 'paying', before, limit);
  }

  /**
   * Watch an ended order whose payment may still land at the gateway (the
   * checkout gave up on a call that may yet take effect): until `until`, the
   * reconciler asks the gateway again from `nextAt` on.
   */
  async watchLate(orderId: string, until: number, nextAt: number): Promise<void> {
    const k = await this.homeKeys(orderId);
    if (!k) return;
    this.roundTrips += 1;
    await this.redis
      .multi()
      .hset(k.order(orderId), 'watchUntil', until)
      .zadd(k.watch, nextAt, orderId)
      .exec();
  }

  /** The key set of the bucket holding an order (undefined: no such order, or no SKU). */
  private async homeKeys(orderId: string): Promise<SkuKeys | undefined> {
    const k = await this.atHome(
      orderId,
      async (k) => ((await this.redis.exists(k.order(orderId))) ? k : undefined),
      Boolean,
    );
    return k ?? undefined;
  }

  /** Watched orders due for a check (up to `limit`). */
  async dueWatched(sku: string, now: number, limit = 200): Promise<string[]> {
    return this.dueIn(sku, 'watch', now, limit);
  }

  async rewatch(orderId: string, nextAt: number): Promise<void> {
    const k = await this.homeKeys(orderId);
    if (k) await this.redis.zadd(k.watch, nextAt, orderId);
  }

  async unwatch(orderId: string): Promise<void> {
    const sku = skuOfOrder(orderId);
    if (sku) await this.perBucket(sku, (k) => this.redis.zrem(k.watch, orderId));
  }

  /** Every order of a SKU (SCAN; for audits and tests, not the hot path). */
  /** Every order of a SKU (the whole sale in memory: for tests and small sales; the audit streams orderBatches). */
  async allOrders(sku: string): Promise<Order[]> {
    const out: Order[] = [];
    for await (const batch of this.orderBatches(sku)) out.push(...batch);
    return out;
  }

  /**
   * The orders of a SKU one SCAN batch at a time (about `count` each), every
   * node of a cluster in turn: memory stays bounded by a batch. Each batch is
   * read by one script call (read_orders.lua), and the next batch is read
   * while the caller works on this one. With `fields`, only those fields are
   * read (faster for a big sale; the others are not set). An order that
   * changes meanwhile is read as it is when its batch is read; SCAN may
   * return a key twice, so a caller that must not count one twice keeps ids.
   */
  async *orderBatches<F extends OrderField = OrderField>(
    sku: string,
    opts: { count?: number; fields?: readonly F[] } = {},
  ): AsyncGenerator<Pick<Order, F | 'id'>[]> {
    const count = opts.count ?? 1000;
    const fields: readonly OrderField[] = opts.fields
      ? ['id', ...opts.fields.filter((f) => f !== 'id')]
      : ORDER_FIELDS;
    const patterns = (await this.keySets(sku)).map((k) => k.order('*'));
    const nodes = masterNodes(this.redis);
    const read = async (node: RedisClient | Redis, pattern: string, cursor: string) => {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      if (keys.length === 0) return { next, batch: [] };
      // Every key of a SKU (of a bucket) shares its hash tag: the script's keys are on one slot.
      const rows = JSON.parse(await this.redis.read_orders(keys.length, ...keys, ...fields)) as (
        string | false
      )[][];
      const batch: Pick<Order, F | 'id'>[] = [];
      for (const row of rows) {
        if (!row[0]) continue; // deleted since the SCAN
        batch.push(orderFromRow(fields, row) as Pick<Order, F | 'id'>);
      }
      return { next, batch };
    };
    // A caller that stops early leaves a read in flight: its failure is nobody's to handle.
    const ahead = (node: RedisClient | Redis, pattern: string, cursor: string) => {
      const p = read(node, pattern, cursor);
      p.catch(() => undefined);
      return p;
    };
    for (const node of nodes)
      for (const pattern of patterns) {
        let pending = ahead(node, pattern, '0');
        for (;;) {
          const { next, batch } = await pending;
          if (next !== '0') pending = ahead(node, pattern, next);
          if (batch.length > 0) yield batch;
          if (next === '0') break;
        }
      }
  }
}

/** What Store.reserve takes. */
export interface ReserveArgs {
  sku: string;
  user: string;
  qty: number;
  now: number;
  deadline: number;
  idempotencyKey?: string;
  payload: unknown;
  coupon?: string;
  discount?: number;
  channel: string;
  idemTtlMs: number;
  /** Use this id (e.g. one a coupon was already locked for); default a new one. */
  orderId?: string;
  /**
   * The caller checked stock and limit itself (stockCheck, an earlier round
   * trip): take the stock without looking again (the naive splitStockCheck).
   */
  checked?: boolean;
}

/** What Store.reserve answers. */
export interface Reserved {
  status: 'ok' | 'replay' | 'idem_mismatch' | 'unknown_sku' | 'sold_out' | 'limit_exceeded';
  orderId: string;
  amount: number;
  /** The new order (with ok). */
  order?: Order;
}

/** A refusal an idempotency key answered, replayed to identical requests under it. */
export interface KeptRefusal {
  status: number;
  body: Record<string, unknown>;
}

/** A claim key's value: the payload hash, then (when refused) the status and the JSON body, a line each. */
function parseClaim(held: string): { hash: string; refusal?: KeptRefusal } {
  const [hash = '', status, body] = held.split('\n');
  if (status === undefined || body === undefined) return { hash };
  return {
    hash,
    refusal: { status: Number(status), body: JSON.parse(body) as KeptRefusal['body'] },
  };
}

/** A script's reply names a missing order `not_found` first: its bucket is elsewhere. */
function found(reply: string[]): boolean {
  return reply[0] !== 'not_found';
}

/** How long a SKU's bucket count read from Redis is trusted (a sale seeded again elsewhere shows within it). */
const META_TRUST_MS = 1_000;
/** Orders whose bucket is remembered in process (the most recent; older ones are probed). */
const HOMES_KEPT = 10_000;

/** A SKU's counters summed over its buckets' snapshots. */
function sumStock(
  parts: readonly Record<
    'initial' | 'available' | 'reserved' | 'sold',
    string | number | undefined
  >[],
): StockCounters {
  const sum = (f: 'initial' | 'available' | 'reserved' | 'sold') =>
    parts.reduce((n, p) => n + Number(p[f]), 0);
  return {
    initial: sum('initial'),
    available: sum('available'),
    reserved: sum('reserved'),
    sold: sum('sold'),
  };
}

/** How soon ioredis tries again after losing Redis: 50 ms more each time, at most this (its default: 2 s). */
const RECONNECT_CAP_MS = 500;

/**
 * A Redis client. Commands sent while it reconnects wait in its offline
 * queue and fail after 2 reconnection attempts (a few hundred ms); the
 * checkout answers a shopper 503 at once while the client is not ready
 * (checkout/redis-health.ts). `commandTimeoutMs` (0: none) fails a command
 * that gets no answer (a paused Redis, a black-holed connection).
 */
export function connectRedis(
  url: string,
  cluster = false,
  opts: { commandTimeoutMs?: number } = {},
): RedisClient {
  const commandTimeout = opts.commandTimeoutMs ? { commandTimeout: opts.commandTimeoutMs } : {};
  const retryStrategy = (times: number) => Math.min(times * 50, RECONNECT_CAP_MS);
  if (cluster) {
    const u = new URL(url);
    return new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
      lazyConnect: false,
      redisOptions: { ...commandTimeout },
    });
  }
  return new Redis(url, {
    maxRetriesPerRequest: 2,
    enableAutoPipelining: true,
    retryStrategy,
    ...commandTimeout,
  });
}

/** The masters of a cluster (a key scan goes to each), or the one Redis. */
export function masterNodes(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** The Redis keys of one SKU; all share its hash tag, so one script may touch them on a cluster. */
export class SkuKeys {
  readonly stock: string;
  readonly bought: string;
  readonly deadlines: string;
  readonly paying: string;
  /** Ended orders whose payment may still land (zset orderId -> next check). */
  readonly watch: string;
  readonly counters: string;
  constructor(private readonly t: string) {
    this.stock = `${t}:stock`;
    this.bought = `${t}:bought`;
    this.deadlines = `${t}:deadlines`;
    this.paying = `${t}:paying`;
    this.watch = `${t}:watch`;
    this.counters = `${t}:counters`;
  }
  order(id: string): string {
    return `${this.t}:order:${id}`;
  }
  user(u: string): string {
    return `${this.t}:user:${u}`;
  }
  idem(k: string): string {
    return `${this.t}:idem:${k}`;
  }
}
