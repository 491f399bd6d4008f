// The invariant audit (I1-I11 of the brief): read the checkout's Redis (stock
// counters, orders, counters per SKU) and the mocks' ledgers (bank and wallet
// statements, the coupon statement; payment and trade queries for orders that
// may still be moving), and say for each invariant whether it holds, how many
// breaks there are and which orders show them. An invariant the data cannot
// decide is `ok: null` with a note, never a silent pass.
//
// Run `audit()` after quiescence (no traffic, the sweeper and the reconciler
// have run, the gateways have settled); `snapshotI1()` is cheap enough to run
// continuously while orders are in flight. The audit assumes the mocks'
// ledgers (since `since`) hold only this sale's payments: ledger entries for
// order ids of other SKUs are ignored and counted in a note.
import {
  OPEN_STATES,
  skuOfOrder,
  type Order,
  type OrderField,
  type OrderState,
  type StockSnapshot,
  type Store,
} from '../checkout/store.ts';

export const INVARIANT_IDS = [
  'I1',
  'I2',
  'I3',
  'I4',
  'I5',
  'I6',
  'I7',
  'I8',
  'I9',
  'I10',
  'I11',
] as const;
export type InvariantId = (typeof INVARIANT_IDS)[number];

export const INVARIANT_NAMES: Record<InvariantId, string> = {
  I1: 'sold + reserved + available = initial stock',
  I2: 'no oversell: available never below 0',
  I3: 'after quiescence every reservation is sold or released (no stock-lock leak)',
  I4: 'at most the per-user limit of paid units per (user, SKU)',
  I5: 'at most one capture per order; captured amount equals the order amount',
  I6: 'every capture maps to one paid order or a refund',
  I7: 'every paid order has exactly one capture',
  I8: 'a coupon is used at most once; a failed or expired order returns it',
  I9: 'a payment landing after its order ended never revives stock: refunded or re-reserved, and counted',
  I10: 'the same idempotency key replays the same answer; another payload under it is 422',
  I11: 'the statements and the orders reconcile: zero overage, zero shortage',
};

export interface InvariantResult {
  id: InvariantId;
  name: string;
  /** true: holds; false: broken (see count and examples); null: the data cannot decide (see note). */
  ok: boolean | null;
  /** Number of breaks (orders, captures, coupons or SKUs, as the note says). */
  count: number;
  /** Up to `maxExamples` order ids (SKU ids or descriptions for the stock counters). */
  examples: string[];
  note?: string;
}

export interface AuditTotals {
  /** Reservations (orders) still held by orders that are not open or past their deadline. */
  stockLeaks: number;
  /** Units those hold, plus reserved units no open order explains. */
  stockLeakUnits: number;
  /** LOCKED coupons whose order is not open (missing, paid, failed, expired, cancelled). */
  couponLeaks: number;
  /** Orders with more than one net capture (not fully refunded) across bank and wallet. */
  doubleCharges: number;
  /** Net captures that map to no paid order (the order is missing or not paid, or paid with another capture). */
  capturesWithoutPaidOrder: number;
  /** Paid orders without a net capture of their payment reference. */
  paidWithoutCapture: number;
  /** Captures that landed after their order ended, or re-reserved a gone order (observed in the ledgers). */
  latePayments: number;
  /** Late payments the checkout counted (its late_rereserved + late_refund counters). */
  latePaymentsCounted: number;
  latePaymentsRefunded: number;
  latePaymentsRereserved: number;
  /** Orders still in paying (after quiescence: stuck between the gateway and the checkout). */
  stuckProcessing: number;
  /** Orders whose gateway payment is still processing (the run is not quiescent while > 0). */
  pendingAtGateway: number;
  /** Captures that were refunded in full (extra, late or double captures repaired). */
  refundedCaptures: number;
  overage: number;
  overageAmount: number;
  shortage: number;
  shortageAmount: number;
  orders: number;
  paidOrders: number;
  captures: number;
}

export interface AuditReport {
  at: string;
  skus: string[];
  invariants: InvariantResult[];
  byId: Record<InvariantId, InvariantResult>;
  totals: AuditTotals;
  /** Ids of broken invariants. */
  violated: InvariantId[];
  /** Ids the data could not decide (ok: null). */
  unchecked: InvariantId[];
  /** No invariant is broken (the unchecked ones are listed in `unchecked`). */
  ok: boolean;
  /** False when a gateway still has a payment processing for an order of this sale. */
  quiescent: boolean;
  notes: string[];
}

export interface AuditOptions {
  store: Store;
  /** Base URLs of the mocks. */
  bank: string;
  wallet: string;
  coupon: string;
  /** SKUs to audit (default: every SKU of the store's sale). */
  skus?: string[];
  /** Time of the audit, ms since epoch (default now). */
  now?: number;
  /** Order ids per invariant (default 10). */
  maxExamples?: number;
  /** An open order is a leak only once its deadline is this far in the past (default 0). */
  graceMs?: number;
  /** Only ledger entries at or after this ISO time (statements' `since`). */
  since?: string;
  /** Coupon campaign of the sale (narrows the coupon statement). */
  campaignId?: string;
  /** Ask the bank and wallet about orders in paying and ended orders that tried to pay (default true). */
  probeGateways?: boolean;
  /** At most this many such queries (default 500); more are noted, not made. */
  probeLimit?: number;
  /** Attempts per HTTP read (default 5): the mocks may still be under chaos. */
  attempts?: number;
  /** Statement entries (and coupons) per page read, and the SCAN COUNT of the order reads (default 5000). */
  pageSize?: number;
}

export interface I1Snapshot {
  at: number;
  /** I1 and I2 hold for every SKU of the snapshot. */
  ok: boolean;
  skus: StockSnapshot[];
  /** SKUs breaking I1 (counters do not add up), described. */
  i1: string[];
  /** SKUs breaking I2 (a negative counter, or more sold than initial), described. */
  i2: string[];
}

const ENDED: readonly OrderState[] = ['payment_failed', 'expired', 'cancelled'];

/** The order fields the audit reads (the rest are not fetched). */
const AUDIT_FIELDS = [
  'sku',
  'user',
  'qty',
  'amount',
  'coupon',
  'state',
  'deadline',
  'attempts',
  'endedAt',
  'paymentRef',
  'lateFrom',
] as const satisfies readonly OrderField[];
type AuditedOrder = Pick<Order, (typeof AUDIT_FIELDS)[number] | 'id'>;

function describeCounters(s: StockSnapshot): string {
  return `${s.sku}: sold ${s.sold} + reserved ${s.reserved} + available ${s.available} = ${s.sold + s.reserved + s.available}, initial ${s.initial}`;
}

function i1Breaks(s: StockSnapshot): boolean {
  return (
    s.sold + s.reserved + s.available !== s.initial ||
    [s.initial, s.sold, s.reserved, s.available].some(Number.isNaN)
  );
}
function i2Breaks(s: StockSnapshot): boolean {
  return s.available < 0 || s.reserved < 0 || s.sold < 0 || s.sold > s.initial;
}

/** I1 (and I2) at one instant: each SKU's counters read atomically (one HMGET per SKU). */
export async function snapshotI1(store: Store, skus?: string[]): Promise<I1Snapshot> {
  const ids = skus ?? (await store.skuIds());
  const snaps = await Promise.all(ids.map((id) => store.snapshot(id)));
  const i1 = snaps.filter(i1Breaks).map(describeCounters);
  const i2 = snaps.filter(i2Breaks).map(describeCounters);
  return { at: Date.now(), ok: i1.length === 0 && i2.length === 0, skus: snaps, i1, i2 };
}

// ------------------------------------------------------------------ ledgers

interface LedgerEntry {
  type: 'capture' | 'refund';
  id: string;
  amount: number;
  at: string;
  paymentId?: string;
  orderId?: string;
  tradeNo?: string;
  outTradeNo?: string;
}
interface StatementPage {
  entries: LedgerEntry[];
  next?: number;
}
interface CouponHistory {
  type: string;
  at: string;
  orderId?: string;
}
interface CouponView {
  code: string;
  campaignId: string;
  state: 'ISSUED' | 'LOCKED' | 'USED';
  orderId?: string;
  history: CouponHistory[];
}
interface CouponPage {
  coupons: CouponView[];
  next?: number;
}
/** What the audit keeps of a coupon: its state, its holder and how often it was consumed. */
interface CouponFacts {
  code: string;
  state: CouponView['state'];
  orderId?: string;
  consumed: number;
}

const GATEWAYS = ['bank', 'wallet'] as const;
type Gateway = (typeof GATEWAYS)[number];

/** A column of numbers that grows as captures are added (a typed array, doubled when full). */
class Column<A extends Float64Array | Int32Array | Uint8Array> {
  data: A;
  constructor(private readonly make: (n: number) => A) {
    this.data = make(1024);
  }
  set(i: number, v: number) {
    if (i >= this.data.length) {
      const bigger = this.make(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[i] = v;
  }
}

/**
 * Every capture of the sale in the bank and wallet ledgers, column by column
 * (numbers in typed arrays, and two strings a capture), chained per order id,
 * with what was refunded of each. Built from statement pages; the orders are
 * then checked against it one SCAN batch at a time.
 */
class CaptureIndex {
  size = 0;
  private readonly gatewayCol = new Column((n) => new Uint8Array(n));
  readonly ref: string[] = [];
  readonly orderId: string[] = [];
  private readonly amountCol = new Column((n) => new Float64Array(n));
  private readonly refundedCol = new Column((n) => new Float64Array(n));
  private readonly atCol = new Column((n) => new Float64Array(n));
  /** The order's next (older) capture, -1 at the end of its chain. */
  private readonly nextCol = new Column((n) => new Int32Array(n));
  /** 1 once a paid order names this capture as its payment. */
  private readonly matchedCol = new Column((n) => new Uint8Array(n));
  /** 1 on the head capture once its order has been read (SCAN may return an order twice). */
  private readonly sightedCol = new Column((n) => new Uint8Array(n));
  /** Order id -> its newest capture (the head of its chain). */
  readonly head = new Map<string, number>();

  add(gateway: Gateway, ref: string, orderId: string, amount: number, at: number) {
    const i = this.size++;
    this.gatewayCol.set(i, GATEWAYS.indexOf(gateway));
    this.ref.push(ref);
    this.orderId.push(orderId);
    this.amountCol.set(i, amount);
    this.refundedCol.set(i, 0);
    this.atCol.set(i, at);
    this.matchedCol.set(i, 0);
    this.sightedCol.set(i, 0);
    this.nextCol.set(i, this.head.get(orderId) ?? -1);
    this.head.set(orderId, i);
  }
  /** Credit a refund to its capture (same gateway and reference); false when none is known. */
  refund(gateway: Gateway, ref: string, orderId: string, amount: number): boolean {
    for (const i of this.of(orderId))
      if (this.ref[i] === ref && GATEWAYS[this.gatewayCol.data[i]!] === gateway) {
        this.refundedCol.data[i]! += amount;
        return true;
      }
    return false;
  }
  /** What is left of a capture after its refunds. */
  left(i: number) {
    return this.amountCol.data[i]! - this.refundedCol.data[i]!;
  }
  /** Captured and not refunded in full. */
  net(i: number) {
    return this.left(i) > 0;
  }
  amount(i: number) {
    return this.amountCol.data[i]!;
  }
  at(i: number) {
    return this.atCol.data[i]!;
  }
  matched(i: number) {
    return this.matchedCol.data[i] === 1;
  }
  match(i: number) {
    this.matchedCol.data[i] = 1;
  }
  /**
   * Mark an order read: true the first time, false after; undefined when it
   * has no capture (the caller keeps those ids itself).
   */
  firstSight(orderId: string): boolean | undefined {
    const i = this.head.get(orderId);
    if (i === undefined) return undefined;
    if (this.sightedCol.data[i] === 1) return false;
    this.sightedCol.data[i] = 1;
    return true;
  }
  /** The captures of an order, newest first. */
  *of(orderId: string): Generator<number> {
    for (let i = this.head.get(orderId) ?? -1; i >= 0; i = this.nextCol.data[i]!) yield i;
  }
  key(i: number) {
    return `${GATEWAYS[this.gatewayCol.data[i]!]}:${this.ref[i]}`;
  }
}

async function getJson<T>(url: string, attempts: number): Promise<T> {
  let last = '';
  for (let i = 0; i < attempts; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      if (res.status === 200) return JSON.parse(text) as T;
      last = `HTTP ${res.status}: ${text.slice(0, 200)}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50 * (i + 1)));
  }
  throw new Error(`GET ${url} failed after ${attempts} attempts (${last})`);
}

/** Every page of a paged statement (`limit`, `cursor`, `next`), one at a time. */
async function* pages<P extends { next?: number }>(
  url: string,
  query: Record<string, string | undefined>,
  pageSize: number,
  attempts: number,
): AsyncGenerator<P> {
  let cursor: number | undefined = 0;
  while (cursor !== undefined) {
    const q = new URLSearchParams({ limit: String(pageSize), cursor: String(cursor) });
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, v);
    const page: P = await getJson<P>(`${url}?${q}`, attempts);
    if (page.next !== undefined && !(page.next > cursor))
      throw new Error(`GET ${url}: the page at cursor ${cursor} says next ${page.next}`);
    cursor = page.next;
    yield page;
  }
}

/** Run `fn` over `xs` with at most `n` at once. */
async function eachLimit<T>(xs: readonly T[], n: number, fn: (x: T) => Promise<void>) {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, xs.length) }, async () => {
      while (i < xs.length) await fn(xs[i++]!);
    }),
  );
}

class Breaks {
  private readonly ids: string[] = [];
  private readonly seen = new Set<string>();
  count = 0;
  constructor(private readonly max: number) {}
  /** Count one break under `key` (once per key); `example` is what to show (default the key). */
  add(key: string, example = key) {
    if (!this.seen.has(key)) {
      this.seen.add(key);
      this.count += 1;
    }
    if (this.ids.length < this.max && !this.ids.includes(example)) this.ids.push(example);
  }
  examples() {
    return [...this.ids];
  }
}

/**
 * An order as I4 keeps it: the index of its own capture (the capture index
 * holds its id already), or its id when it has none.
 */
type OrderRef = number | string;
/** Paid units per user of one SKU: a user's single paid unit, or the count and every order once there are more. */
type PaidUnits = Map<string, OrderRef | { qty: number; orders: OrderRef[] }>;

function addPaid(units: PaidUnits, o: AuditedOrder, ref: OrderRef) {
  const had = units.get(o.user);
  if (had === undefined && o.qty === 1) units.set(o.user, ref);
  else if (had === undefined) units.set(o.user, { qty: o.qty, orders: [ref] });
  else if (typeof had !== 'object') units.set(o.user, { qty: 1 + o.qty, orders: [had, ref] });
  else {
    had.qty += o.qty;
    had.orders.push(ref);
  }
}

/**
 * Audit invariants I1-I11 over the store's sale and the mocks' ledgers.
 *
 * Memory stays bounded for a sale of any size that fits its captures: the
 * statements are read a page at a time into a column index of captures, the
 * orders one SCAN batch at a time, and each order is checked and dropped;
 * what outlives an order is a mark that it was read (to skip SCAN's repeats:
 * a flag in the capture index, or its id when it has no capture), its user
 * while it is paid (I4, by capture index), and the capture flags I6 needs.
 */
export async function audit(opts: AuditOptions): Promise<AuditReport> {
  const { store } = opts;
  const now = opts.now ?? Date.now();
  const max = opts.maxExamples ?? 10;
  const grace = opts.graceMs ?? 0;
  const attempts = opts.attempts ?? 5;
  const pageSize = opts.pageSize ?? 5_000;
  const notes: string[] = [];
  const skus = opts.skus ?? (await store.skuIds());
  const inScope = new Set(skus);
  const inScopeOrder = (id: string | undefined) => {
    const sku = id ? skuOfOrder(id) : undefined;
    return sku !== undefined && inScope.has(sku);
  };

  // ---- Redis: counters per SKU
  const snaps = new Map<string, StockSnapshot>();
  const limits = new Map<string, number>();
  const counters: Record<string, number> = {};
  for (const sku of skus) {
    snaps.set(sku, await store.snapshot(sku));
    limits.set(sku, (await store.sku(sku))?.limit ?? 0);
    for (const [k, v] of Object.entries(await store.counters(sku)))
      counters[k] = (counters[k] ?? 0) + v;
  }

  // ---- ledgers, a page at a time
  const base = (u: string) => u.replace(/\/$/, '');
  let ledgerError: string | undefined;
  const cap = new CaptureIndex();
  let foreign = 0;
  try {
    for (const gateway of GATEWAYS) {
      const url = `${base(gateway === 'bank' ? opts.bank : opts.wallet)}/v1/statement`;
      for await (const page of pages<StatementPage>(
        url,
        { since: opts.since },
        pageSize,
        attempts,
      )) {
        for (const e of page.entries) {
          const orderId = (gateway === 'bank' ? e.orderId : e.outTradeNo) ?? '';
          if (!inScopeOrder(orderId)) {
            foreign += 1;
            continue;
          }
          const ref = (gateway === 'bank' ? e.paymentId : e.tradeNo) ?? e.id;
          if (e.type === 'capture') cap.add(gateway, ref, orderId, e.amount, Date.parse(e.at));
          else cap.refund(gateway, ref, orderId, e.amount);
        }
      }
    }
  } catch (e) {
    ledgerError = (e as Error).message;
    notes.push(`the bank or wallet statement could not be read: ${ledgerError}`);
  }
  if (foreign > 0)
    notes.push(`${foreign} ledger entries for orders outside the audited SKUs were ignored`);

  // ---- the coupon statement, a page at a time: the coupons of this sale's orders
  let coupons: Map<string, CouponFacts> | undefined = new Map();
  let couponError: string | undefined;
  try {
    for await (const page of pages<CouponPage>(
      `${base(opts.coupon)}/v1/statement`,
      { campaignId: opts.campaignId },
      pageSize,
      attempts,
    )) {
      for (const c of page.coupons) {
        if (!inScopeOrder(c.orderId) && !c.history.some((h) => inScopeOrder(h.orderId))) continue;
        coupons.set(c.code, {
          code: c.code,
          state: c.state,
          ...(c.orderId ? { orderId: c.orderId } : {}),
          consumed: c.history.filter((h) => h.type === 'consumed').length,
        });
      }
    }
  } catch (e) {
    coupons = undefined;
    couponError = (e as Error).message;
    notes.push(`the coupon statement could not be read: ${couponError}`);
  }
  /** The state of each order holding a coupon (absent: no such order). */
  const holders = new Map<string, OrderState | undefined>();
  for (const c of coupons?.values() ?? []) if (c.orderId) holders.set(c.orderId, undefined);

  // ---- the orders, one SCAN batch at a time
  const b = {} as Record<Exclude<InvariantId, 'I10'>, Breaks>;
  for (const id of INVARIANT_IDS) if (id !== 'I10') b[id] = new Breaks(max);
  /** Orders without a capture read so far (those with one are marked in the capture index). */
  const seenWithoutCapture = new Set<string>();
  const held = new Map(skus.map((sku) => [sku, { open: 0, sold: 0 }]));
  const paidUnits = new Map<string, PaidUnits>(skus.map((sku) => [sku, new Map()]));
  const probeLimit = opts.probeLimit ?? 500;
  const probeIds: string[] = [];
  let probeCandidates = 0;
  let orders = 0;
  let paidOrders = 0;
  let stockLeaks = 0;
  let stockLeakUnits = 0;
  let stuckProcessing = 0;
  let paidWithoutCapture = 0;
  let shortageAmount = 0;
  let late = 0;
  let lateRefunded = 0;
  let lateRereserved = 0;
  let missingCoupons = 0;
  const ledgers = ledgerError === undefined;
  for (const sku of skus) {
    for await (const batch of store.orderBatches(sku, { count: pageSize, fields: AUDIT_FIELDS })) {
      for (const o of batch) {
        const sighted = cap.firstSight(o.id);
        if (sighted === false) continue;
        if (sighted === undefined) {
          if (seenWithoutCapture.has(o.id)) continue;
          seenWithoutCapture.add(o.id);
        }
        orders += 1;
        const h = held.get(o.sku);
        if (OPEN_STATES.includes(o.state)) {
          if (h) h.open += o.qty;
          // I3: an open order past its deadline holds stock it should have given back.
          if (o.deadline + grace < now) {
            b.I3.add(o.id);
            stockLeaks += 1;
            stockLeakUnits += o.qty;
          }
        } else if (o.state === 'paid' || o.state === 'refunded') if (h) h.sold += o.qty;
        if (o.state === 'paying') stuckProcessing += 1;
        if (o.state === 'paid') paidOrders += 1;
        if (o.state === 'paying' || (ENDED.includes(o.state) && o.attempts > 0)) {
          probeCandidates += 1;
          if (probeIds.length < probeLimit) probeIds.push(o.id);
        }
        if (holders.has(o.id)) holders.set(o.id, o.state);

        let own = -1;
        if (ledgers) {
          let live = 0;
          let owned = 0;
          for (const i of cap.of(o.id)) {
            // I9: a capture that landed after its order ended, or that re-reserved it.
            const endedBefore =
              ENDED.includes(o.state) && o.endedAt !== undefined && cap.at(i) >= o.endedAt;
            const rereserved =
              o.state === 'paid' && o.lateFrom !== undefined && o.paymentRef === cap.ref[i];
            if (endedBefore || rereserved) {
              late += 1;
              if (rereserved) lateRereserved += 1;
              else if (!cap.net(i)) lateRefunded += 1;
              else b.I9.add(cap.key(i), o.id);
            }
            if (!cap.net(i)) continue;
            live += 1;
            // I5: a net capture of another amount than the order's.
            if (cap.left(i) !== o.amount) b.I5.add(o.id);
            if (cap.ref[i] === o.paymentRef) {
              owned += 1;
              own = i;
              if (o.state === 'paid') cap.match(i);
            }
          }
          // I7 and I11 (shortage): a paid order has exactly one net capture, its own.
          if (o.state === 'paid') {
            if (owned === 0) {
              paidWithoutCapture += 1;
              shortageAmount += o.amount;
              b.I11.add(`short:${o.id}`, o.id);
            }
            if (owned !== 1 || live !== 1) b.I7.add(o.id);
            else if (cap.left(own) !== o.amount) b.I11.add(`amount:${o.id}`, o.id);
          }
        }

        if (o.state === 'paid') {
          const units = paidUnits.get(o.sku);
          if (units) addPaid(units, o, own >= 0 ? own : o.id);
        }

        // I8, the order's side: a paid order used its coupon; an ended one gave it back.
        if (coupons && o.coupon) {
          const c = coupons.get(o.coupon);
          if (!c) missingCoupons += 1;
          else {
            if (o.state === 'paid' && !(c.state === 'USED' && c.orderId === o.id))
              b.I8.add(c.code, o.id);
            if (ENDED.includes(o.state) && c.orderId === o.id && c.state !== 'ISSUED')
              b.I8.add(c.code, o.id);
          }
        }
      }
    }
  }

  // ---- gateway probes: is anything still moving?
  let pendingAtGateway = 0;
  const pendingOrders: string[] = [];
  if (opts.probeGateways !== false) {
    if (probeCandidates > probeLimit)
      notes.push(
        `${probeCandidates - probeLimit} of ${probeCandidates} orders that tried to pay were not probed at the gateways (probeLimit ${probeLimit})`,
      );
    let probeErrors = 0;
    await eachLimit(probeIds, 16, async (id) => {
      try {
        const [p, t] = await Promise.all([
          getJson<{ data: { status: string }[] }>(
            `${base(opts.bank)}/v1/payments?orderId=${encodeURIComponent(id)}`,
            attempts,
          ),
          getJson<{ data: { status: string }[] }>(
            `${base(opts.wallet)}/v1/trades?outTradeNo=${encodeURIComponent(id)}`,
            attempts,
          ),
        ]);
        const pending =
          p.data.some((x) => x.status === 'processing') ||
          t.data.some((x) => x.status === 'USERPAYING');
        if (pending) {
          pendingAtGateway += 1;
          pendingOrders.push(id);
        }
      } catch {
        probeErrors += 1;
      }
    });
    if (probeErrors > 0)
      notes.push(`${probeErrors} gateway probes failed; pendingAtGateway may be undercounted`);
  } else notes.push('gateways not probed: quiescence not verified');
  const quiescent = pendingAtGateway === 0;
  if (!quiescent)
    notes.push(
      `not quiescent: ${pendingAtGateway} orders have a payment still processing at a gateway (${pendingOrders.slice(0, max).join(', ')})`,
    );

  const results = {} as Record<InvariantId, InvariantResult>;
  const put = (id: InvariantId, br: Breaks | null, note?: string, okOverride?: boolean | null) => {
    results[id] = {
      id,
      name: INVARIANT_NAMES[id],
      ok: okOverride !== undefined ? okOverride : br!.count === 0,
      count: br?.count ?? 0,
      examples: br?.examples() ?? [],
      ...(note ? { note } : {}),
    };
  };

  // ---- I1: counters add up, and agree with the orders; I2; I3's units no order explains
  const i1 = new Breaks(max);
  for (const sku of skus) {
    const s = snaps.get(sku)!;
    const { open, sold } = held.get(sku)!;
    if (i1Breaks(s)) i1.add(sku, describeCounters(s));
    if (open !== s.reserved)
      i1.add(sku, `${sku}: reserved ${s.reserved}, open orders hold ${open}`);
    if (sold !== s.sold) i1.add(sku, `${sku}: sold ${s.sold}, paid orders hold ${sold}`);
    if (i2Breaks(s)) b.I2.add(s.sku, describeCounters(s));
    if (s.reserved > open) {
      stockLeakUnits += s.reserved - open;
      b.I3.add(
        `${sku}:unexplained`,
        `${sku}: ${s.reserved - open} reserved units held by no open order`,
      );
    }
  }
  put(
    'I1',
    i1,
    'per SKU: the counters add up to the initial stock, reserved equals the units of open orders, sold the units of paid orders; examples describe SKUs',
  );
  put('I2', b.I2, 'per SKU; examples describe SKUs');
  put(
    'I3',
    b.I3,
    `open orders past their payment deadline${grace ? ` by more than ${grace} ms` : ''}, and reserved units no open order holds${quiescent ? '' : '; NOT quiescent (a gateway is still processing)'}`,
  );

  // ---- I4: per-user limit
  for (const [sku, units] of paidUnits) {
    const limit = limits.get(sku) ?? 0;
    for (const [user, u] of units)
      if (typeof u === 'object' && limit > 0 && u.qty > limit)
        for (const ref of u.orders)
          b.I4.add(`${sku}\u0000${user}`, typeof ref === 'number' ? cap.orderId[ref] : ref);
  }
  put('I4', b.I4, 'paid units per (user, SKU) against the SKU limit; count is (user, SKU) pairs');

  // ---- ledger-based invariants
  let doubleCharges = 0;
  let capturesWithoutPaidOrder = 0;
  let overageAmount = 0;
  let refundedCaptures = 0;
  const latePaymentsCounted = (counters.late_rereserved ?? 0) + (counters.late_refund ?? 0);
  if (!ledgers) {
    for (const id of ['I5', 'I6', 'I7', 'I9', 'I11'] as const)
      put(id, null, `statements unreadable: ${ledgerError}`, null);
  } else {
    // I5: one net capture per order (whether or not the order exists).
    for (const [orderId] of cap.head) {
      let live = 0;
      for (const i of cap.of(orderId)) if (cap.net(i)) live += 1;
      if (live > 1) {
        doubleCharges += 1;
        b.I5.add(orderId);
      }
    }
    // I6 and I11 (overage): each net capture is the payment of a paid order.
    for (let i = 0; i < cap.size; i++) {
      if (!cap.net(i)) {
        refundedCaptures += 1;
        continue;
      }
      if (cap.matched(i)) continue;
      capturesWithoutPaidOrder += 1;
      overageAmount += cap.left(i);
      b.I6.add(cap.key(i), cap.orderId[i]);
      b.I11.add(`over:${cap.key(i)}`, cap.orderId[i]);
    }
    put(
      'I5',
      b.I5,
      `orders with more than one net capture (not fully refunded) across bank and wallet, or a net capture of another amount; ${refundedCaptures} captures were refunded in full`,
    );
    put(
      'I6',
      b.I6,
      'net captures (bank and wallet) whose order is missing, not paid, or paid with another capture; count is captures',
    );
    put('I7', b.I7, 'paid orders without exactly one net capture, their own payment reference');
    put(
      'I11',
      b.I11,
      `overage: ${capturesWithoutPaidOrder} captures (${overageAmount}) without a paid order; shortage: ${paidWithoutCapture} paid orders (${shortageAmount}) without a capture`,
    );
    const uncounted = Math.max(0, late - latePaymentsCounted);
    if (uncounted > 0) b.I9.count += uncounted;
    put(
      'I9',
      b.I9,
      `${late} late payments in the ledgers (${lateRefunded} refunded, ${lateRereserved} re-reserved), ${latePaymentsCounted} counted by the checkout${uncounted ? `; ${uncounted} not counted` : ''}; count is late captures neither refunded nor re-reserved plus uncounted ones`,
    );
  }

  // ---- I8: coupons, the coupon's side
  let couponLeaks = 0;
  if (!coupons) put('I8', null, `coupon statement unreadable: ${couponError}`, null);
  else {
    const stateOf = (id: string | undefined) => (id ? holders.get(id) : undefined);
    for (const c of coupons.values()) {
      if (c.consumed > 1) b.I8.add(c.code, c.orderId);
      const holder = stateOf(c.orderId);
      if (c.state === 'LOCKED' && !(holder !== undefined && OPEN_STATES.includes(holder))) {
        couponLeaks += 1;
        b.I8.add(c.code, c.orderId ?? c.code);
      }
      if (c.state === 'USED' && holder !== 'paid') b.I8.add(c.code, c.orderId ?? c.code);
    }
    put(
      'I8',
      b.I8,
      `coupons consumed twice, LOCKED by an order that is not open (${couponLeaks} leaks), USED by an order that is not paid, or not USED by the paid order that applied them; count is coupons${missingCoupons ? `; ${missingCoupons} orders name a coupon the coupon service does not know` : ''}`,
    );
  }

  put(
    'I10',
    null,
    'not observable from Redis and the ledgers: idempotent replays, 422 on another payload and 409 while running are probed over HTTP (test/checkout-orders.test.ts)',
    null,
  );

  const invariants = INVARIANT_IDS.map((id) => results[id]);
  const violated = invariants.filter((r) => r.ok === false).map((r) => r.id);
  const unchecked = invariants.filter((r) => r.ok === null).map((r) => r.id);
  return {
    at: new Date(now).toISOString(),
    skus,
    invariants,
    byId: results,
    totals: {
      stockLeaks,
      stockLeakUnits,
      couponLeaks,
      doubleCharges,
      capturesWithoutPaidOrder,
      paidWithoutCapture,
      latePayments: late,
      latePaymentsCounted,
      latePaymentsRefunded: lateRefunded,
      latePaymentsRereserved: lateRereserved,
      stuckProcessing,
      pendingAtGateway,
      refundedCaptures,
      overage: capturesWithoutPaidOrder,
      overageAmount,
      shortage: paidWithoutCapture,
      shortageAmount,
      orders,
      paidOrders,
      captures: cap.size,
    },
    violated,
    unchecked,
    ok: violated.length === 0,
    quiescent,
    notes,
  };
}

/** A one-line summary per invariant, for logs and test failure messages. */
export function formatAudit(r: AuditReport): string {
  const lines = r.invariants.map(
    (i) =>
      `${i.id} ${i.ok === null ? 'n/a ' : i.ok ? 'ok  ' : 'FAIL'} ${i.count}${i.examples.length ? ` [${i.examples.join(', ')}]` : ''}${i.note && i.ok !== true ? ` (${i.note})` : ''}`,
  );
  return [...lines, `totals ${JSON.stringify(r.totals)}`, ...r.notes.map((n) => `note: ${n}`)].join(
    '\n',
  );
}
