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
interface Statement {
  entries: LedgerEntry[];
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

/** One capture in a bank or wallet ledger, with what was refunded of it. */
interface Capture {
  gateway: 'bank' | 'wallet';
  ref: string;
  orderId: string;
  amount: number;
  at: number;
  refunded: number;
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

/** Audit invariants I1-I11 over the store's sale and the mocks' ledgers. */
export async function audit(opts: AuditOptions): Promise<AuditReport> {
  const { store } = opts;
  const now = opts.now ?? Date.now();
  const max = opts.maxExamples ?? 10;
  const grace = opts.graceMs ?? 0;
  const attempts = opts.attempts ?? 5;
  const notes: string[] = [];
  const skus = opts.skus ?? (await store.skuIds());
  const inScope = new Set(skus);

  // ---- Redis
  const snaps = new Map<string, StockSnapshot>();
  const limits = new Map<string, number>();
  const orders = new Map<string, Order>();
  const counters: Record<string, number> = {};
  for (const sku of skus) {
    snaps.set(sku, await store.snapshot(sku));
    limits.set(sku, (await store.sku(sku))?.limit ?? 0);
    for (const o of await store.allOrders(sku)) orders.set(o.id, o);
    for (const [k, v] of Object.entries(await store.counters(sku)))
      counters[k] = (counters[k] ?? 0) + v;
  }
  const allOrders = [...orders.values()];

  // ---- ledgers
  const q = opts.since ? `?since=${encodeURIComponent(opts.since)}` : '';
  const base = (u: string) => u.replace(/\/$/, '');
  let ledgerError: string | undefined;
  let captures: Capture[] = [];
  let foreign = 0;
  try {
    const [bank, wallet] = await Promise.all([
      getJson<Statement>(`${base(opts.bank)}/v1/statement${q}`, attempts),
      getJson<Statement>(`${base(opts.wallet)}/v1/statement${q}`, attempts),
    ]);
    const byRef = new Map<string, Capture>();
    const refunds: { gateway: 'bank' | 'wallet'; ref: string; amount: number }[] = [];
    for (const [gateway, st] of [
      ['bank', bank],
      ['wallet', wallet],
    ] as const) {
      for (const e of st.entries) {
        const orderId = (gateway === 'bank' ? e.orderId : e.outTradeNo) ?? '';
        const ref = (gateway === 'bank' ? e.paymentId : e.tradeNo) ?? e.id;
        const sku = skuOfOrder(orderId);
        if (!sku || !inScope.has(sku)) {
          foreign += 1;
          continue;
        }
        if (e.type === 'capture')
          byRef.set(`${gateway}:${ref}`, {
            gateway,
            ref,
            orderId,
            amount: e.amount,
            at: Date.parse(e.at),
            refunded: 0,
          });
        else refunds.push({ gateway, ref, amount: e.amount });
      }
    }
    for (const r of refunds) {
      const c = byRef.get(`${r.gateway}:${r.ref}`);
      if (c) c.refunded += r.amount;
    }
    captures = [...byRef.values()];
  } catch (e) {
    ledgerError = (e as Error).message;
    notes.push(`the bank or wallet statement could not be read: ${ledgerError}`);
  }
  if (foreign > 0)
    notes.push(`${foreign} ledger entries for orders outside the audited SKUs were ignored`);

  let coupons: CouponView[] | undefined;
  let couponError: string | undefined;
  try {
    const cq = opts.campaignId ? `?campaignId=${encodeURIComponent(opts.campaignId)}` : '';
    coupons = (
      await getJson<{ coupons: CouponView[] }>(`${base(opts.coupon)}/v1/statement${cq}`, attempts)
    ).coupons;
  } catch (e) {
    couponError = (e as Error).message;
    notes.push(`the coupon statement could not be read: ${couponError}`);
  }

  // ---- gateway probes: is anything still moving?
  let pendingAtGateway = 0;
  const pendingOrders: string[] = [];
  if (opts.probeGateways !== false) {
    const candidates = allOrders.filter(
      (o) => o.state === 'paying' || (ENDED.includes(o.state) && o.attempts > 0),
    );
    const limit = opts.probeLimit ?? 500;
    if (candidates.length > limit)
      notes.push(
        `${candidates.length - limit} of ${candidates.length} orders that tried to pay were not probed at the gateways (probeLimit ${limit})`,
      );
    let probeErrors = 0;
    await eachLimit(candidates.slice(0, limit), 16, async (o) => {
      try {
        const [p, t] = await Promise.all([
          getJson<{ data: { status: string }[] }>(
            `${base(opts.bank)}/v1/payments?orderId=${encodeURIComponent(o.id)}`,
            attempts,
          ),
          getJson<{ data: { status: string }[] }>(
            `${base(opts.wallet)}/v1/trades?outTradeNo=${encodeURIComponent(o.id)}`,
            attempts,
          ),
        ]);
        const pending =
          p.data.some((x) => x.status === 'processing') ||
          t.data.some((x) => x.status === 'USERPAYING');
        if (pending) {
          pendingAtGateway += 1;
          pendingOrders.push(o.id);
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

  // ---- per-order capture index
  const net = (c: Capture) => c.amount - c.refunded > 0;
  const capturesOf = new Map<string, Capture[]>();
  for (const c of captures) {
    const list = capturesOf.get(c.orderId) ?? [];
    list.push(c);
    capturesOf.set(c.orderId, list);
  }
  const netOf = (id: string) => (capturesOf.get(id) ?? []).filter(net);

  const results = {} as Record<InvariantId, InvariantResult>;
  const put = (id: InvariantId, b: Breaks | null, note?: string, okOverride?: boolean | null) => {
    results[id] = {
      id,
      name: INVARIANT_NAMES[id],
      ok: okOverride !== undefined ? okOverride : b!.count === 0,
      count: b?.count ?? 0,
      examples: b?.examples() ?? [],
      ...(note ? { note } : {}),
    };
  };

  // ---- I1: counters add up, and agree with the orders
  {
    const b = new Breaks(max);
    for (const sku of skus) {
      const s = snaps.get(sku)!;
      if (i1Breaks(s)) b.add(sku, describeCounters(s));
      const mine = allOrders.filter((o) => o.sku === sku);
      const open = mine.filter((o) => OPEN_STATES.includes(o.state)).reduce((n, o) => n + o.qty, 0);
      const sold = mine
        .filter((o) => o.state === 'paid' || o.state === 'refunded')
        .reduce((n, o) => n + o.qty, 0);
      if (open !== s.reserved)
        b.add(sku, `${sku}: reserved ${s.reserved}, open orders hold ${open}`);
      if (sold !== s.sold) b.add(sku, `${sku}: sold ${s.sold}, paid orders hold ${sold}`);
    }
    put(
      'I1',
      b,
      'per SKU: the counters add up to the initial stock, reserved equals the units of open orders, sold the units of paid orders; examples describe SKUs',
    );
  }

  // ---- I2
  {
    const b = new Breaks(max);
    for (const s of snaps.values()) if (i2Breaks(s)) b.add(s.sku, describeCounters(s));
    put('I2', b, 'per SKU; examples describe SKUs');
  }

  // ---- I3: stock-lock leaks
  let stockLeaks = 0;
  let stockLeakUnits = 0;
  let stuckProcessing = 0;
  {
    const b = new Breaks(max);
    for (const o of allOrders) {
      if (o.state === 'paying') stuckProcessing += 1;
      if (OPEN_STATES.includes(o.state) && o.deadline + grace < now) {
        b.add(o.id);
        stockLeaks += 1;
        stockLeakUnits += o.qty;
      }
    }
    for (const sku of skus) {
      const s = snaps.get(sku)!;
      const open = allOrders
        .filter((o) => o.sku === sku && OPEN_STATES.includes(o.state))
        .reduce((n, o) => n + o.qty, 0);
      if (s.reserved > open) {
        stockLeakUnits += s.reserved - open;
        b.add(
          `${sku}:unexplained`,
          `${sku}: ${s.reserved - open} reserved units held by no open order`,
        );
      }
    }
    put(
      'I3',
      b,
      `open orders past their payment deadline${grace ? ` by more than ${grace} ms` : ''}, and reserved units no open order holds${quiescent ? '' : '; NOT quiescent (a gateway is still processing)'}`,
    );
  }

  // ---- I4: per-user limit
  {
    const b = new Breaks(max);
    const held = new Map<string, { qty: number; ids: string[] }>();
    for (const o of allOrders) {
      if (o.state !== 'paid') continue;
      const k = `${o.sku}\u0000${o.user}`;
      const h = held.get(k) ?? { qty: 0, ids: [] };
      h.qty += o.qty;
      h.ids.push(o.id);
      held.set(k, h);
    }
    for (const [k, h] of held) {
      const sku = k.split('\u0000')[0]!;
      const limit = limits.get(sku) ?? 0;
      if (limit > 0 && h.qty > limit) for (const id of h.ids) b.add(k, id);
    }
    put('I4', b, 'paid units per (user, SKU) against the SKU limit; count is (user, SKU) pairs');
  }

  // ---- ledger-based invariants
  const ledgerNote = ledgerError ? `statements unreadable: ${ledgerError}` : undefined;
  let doubleCharges = 0;
  let capturesWithoutPaidOrder = 0;
  let paidWithoutCapture = 0;
  let overageAmount = 0;
  let shortageAmount = 0;
  let overage = 0;
  let late = 0;
  let lateRefunded = 0;
  let lateRereserved = 0;
  const latePaymentsCounted = (counters.late_rereserved ?? 0) + (counters.late_refund ?? 0);
  if (ledgerError) {
    for (const id of ['I5', 'I6', 'I7', 'I9', 'I11'] as const) put(id, null, ledgerNote, null);
  } else {
    // I5: one net capture per order, of the order's amount.
    {
      const b = new Breaks(max);
      for (const [orderId, list] of capturesOf) {
        const live = list.filter(net);
        if (live.length > 1) {
          doubleCharges += 1;
          b.add(orderId);
        }
        const o = orders.get(orderId);
        for (const c of live) if (o && c.amount - c.refunded !== o.amount) b.add(orderId);
      }
      put(
        'I5',
        b,
        `orders with more than one net capture (not fully refunded) across bank and wallet, or a net capture of another amount; ${captures.length - captures.filter(net).length} captures were refunded in full`,
      );
    }
    // I6 and I11 (overage): each net capture is the payment of a paid order.
    const b6 = new Breaks(max);
    const b11 = new Breaks(max);
    for (const c of captures) {
      if (!net(c)) continue;
      const o = orders.get(c.orderId);
      if (!o || o.state !== 'paid' || o.paymentRef !== c.ref) {
        capturesWithoutPaidOrder += 1;
        overage += 1;
        overageAmount += c.amount - c.refunded;
        b6.add(`${c.gateway}:${c.ref}`, c.orderId);
        b11.add(`over:${c.gateway}:${c.ref}`, c.orderId);
      }
    }
    put(
      'I6',
      b6,
      'net captures (bank and wallet) whose order is missing, not paid, or paid with another capture; count is captures',
    );
    // I7 and I11 (shortage): each paid order has exactly one net capture, its own.
    const b7 = new Breaks(max);
    for (const o of allOrders) {
      if (o.state !== 'paid') continue;
      const live = netOf(o.id);
      const own = live.filter((c) => c.ref === o.paymentRef);
      if (own.length === 0) {
        paidWithoutCapture += 1;
        shortageAmount += o.amount;
        b11.add(`short:${o.id}`, o.id);
      }
      if (own.length !== 1 || live.length !== 1) b7.add(o.id);
      else if (own[0]!.amount - own[0]!.refunded !== o.amount) b11.add(`amount:${o.id}`, o.id);
    }
    put('I7', b7, 'paid orders without exactly one net capture, their own payment reference');
    put(
      'I11',
      b11,
      `overage: ${overage} captures (${overageAmount}) without a paid order; shortage: ${paidWithoutCapture} paid orders (${shortageAmount}) without a capture`,
    );
    // I9: captures that landed after their order ended.
    const b9 = new Breaks(max);
    for (const c of captures) {
      const o = orders.get(c.orderId);
      if (!o) continue;
      const endedBefore = ENDED.includes(o.state) && o.endedAt !== undefined && c.at >= o.endedAt;
      const rereserved = o.state === 'paid' && o.lateFrom !== undefined && o.paymentRef === c.ref;
      if (!endedBefore && !rereserved) continue;
      late += 1;
      if (rereserved) lateRereserved += 1;
      else if (!net(c)) lateRefunded += 1;
      else b9.add(`${c.gateway}:${c.ref}`, o.id);
    }
    const uncounted = Math.max(0, late - latePaymentsCounted);
    if (uncounted > 0) b9.count += uncounted;
    put(
      'I9',
      b9,
      `${late} late payments in the ledgers (${lateRefunded} refunded, ${lateRereserved} re-reserved), ${latePaymentsCounted} counted by the checkout${uncounted ? `; ${uncounted} not counted` : ''}; count is late captures neither refunded nor re-reserved plus uncounted ones`,
    );
  }

  // ---- I8: coupons
  let couponLeaks = 0;
  if (!coupons) put('I8', null, `coupon statement unreadable: ${couponError}`, null);
  else {
    const b = new Breaks(max);
    const byCode = new Map(coupons.map((c) => [c.code, c]));
    const isOpen = (id: string | undefined) => {
      const o = id ? orders.get(id) : undefined;
      return o !== undefined && OPEN_STATES.includes(o.state);
    };
    const touches = (c: CouponView) =>
      [c.orderId, ...c.history.map((h) => h.orderId)].some((id) => {
        const sku = id ? skuOfOrder(id) : undefined;
        return sku !== undefined && inScope.has(sku);
      });
    for (const c of coupons) {
      if (!touches(c)) continue;
      if (c.history.filter((h) => h.type === 'consumed').length > 1) b.add(c.code, c.orderId);
      if (c.state === 'LOCKED' && !isOpen(c.orderId)) {
        couponLeaks += 1;
        b.add(c.code, c.orderId ?? c.code);
      }
      if (c.state === 'USED' && orders.get(c.orderId ?? '')?.state !== 'paid')
        b.add(c.code, c.orderId ?? c.code);
    }
    let missing = 0;
    for (const o of allOrders) {
      if (!o.coupon) continue;
      const c = byCode.get(o.coupon);
      if (!c) {
        missing += 1;
        continue;
      }
      // A paid order used its coupon; an ended one gave it back (or another order holds it now).
      if (o.state === 'paid' && !(c.state === 'USED' && c.orderId === o.id)) b.add(c.code, o.id);
      if (ENDED.includes(o.state) && c.orderId === o.id && c.state !== 'ISSUED')
        b.add(c.code, o.id);
    }
    put(
      'I8',
      b,
      `coupons consumed twice, LOCKED by an order that is not open (${couponLeaks} leaks), USED by an order that is not paid, or not USED by the paid order that applied them; count is coupons${missing ? `; ${missing} orders name a coupon the coupon service does not know` : ''}`,
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
      refundedCaptures: captures.filter((c) => !net(c)).length,
      overage,
      overageAmount,
      shortage: paidWithoutCapture,
      shortageAmount,
      orders: allOrders.length,
      paidOrders: allOrders.filter((o) => o.state === 'paid').length,
      captures: captures.length,
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
