// What the audit reads, in the order it reads it: the sale's counters in Redis
// (stock, limits, checkout counters per SKU), the bank and wallet statements a
// page at a time into the capture index, the coupon statement a page at a time,
// and then the orders one SCAN batch at a time (the store reads the next batch
// while this one is checked), each order handed on once.
import {
  skuOfOrder,
  type Order,
  type OrderField,
  type OrderState,
  type StockSnapshot,
  type Store,
} from '../../checkout/store.ts';
import { CaptureIndex, GATEWAYS, type Gateway } from './capture-index.ts';
import { baseUrl, pages } from './http.ts';
import type { AuditOptions } from './report.ts';

/** States of an order that ended without being paid. */
export const ENDED: readonly OrderState[] = ['payment_failed', 'expired', 'cancelled'];

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
export type AuditedOrder = Pick<Order, (typeof AUDIT_FIELDS)[number] | 'id'>;

/** The options with their defaults, the audited SKUs, and the notes the audit collects. */
export interface AuditContext {
  opts: AuditOptions;
  store: Store;
  now: number;
  /** Examples per invariant. */
  max: number;
  grace: number;
  attempts: number;
  pageSize: number;
  probeLimit: number;
  skus: string[];
  /** The order id belongs to an audited SKU. */
  inScopeOrder: (id: string | undefined) => boolean;
  notes: string[];
}

export async function auditContext(opts: AuditOptions): Promise<AuditContext> {
  const skus = opts.skus ?? (await opts.store.skuIds());
  const inScope = new Set(skus);
  return {
    opts,
    store: opts.store,
    now: opts.now ?? Date.now(),
    max: opts.maxExamples ?? 10,
    grace: opts.graceMs ?? 0,
    attempts: opts.attempts ?? 5,
    pageSize: opts.pageSize ?? 5_000,
    probeLimit: opts.probeLimit ?? 500,
    skus,
    inScopeOrder: (id) => {
      const sku = id ? skuOfOrder(id) : undefined;
      return sku !== undefined && inScope.has(sku);
    },
    notes: [],
  };
}

// ------------------------------------------------------------------ Redis counters

/** Per SKU: its stock counters, its per-user limit; and the checkout's counters summed over SKUs. */
export interface SaleCounters {
  snaps: Map<string, StockSnapshot>;
  limits: Map<string, number>;
  counters: Record<string, number>;
}

export async function readSaleCounters({ store, skus }: AuditContext): Promise<SaleCounters> {
  const snaps = new Map<string, StockSnapshot>();
  const limits = new Map<string, number>();
  const counters: Record<string, number> = {};
  for (const sku of skus) {
    snaps.set(sku, await store.snapshot(sku));
    limits.set(sku, (await store.sku(sku))?.limit ?? 0);
    for (const [k, v] of Object.entries(await store.counters(sku)))
      counters[k] = (counters[k] ?? 0) + v;
  }
  return { snaps, limits, counters };
}

// ------------------------------------------------------------------ bank and wallet statements

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

/** The captures read; `error` when a statement could not be read in full (the index holds what was). */
export interface Ledgers {
  cap: CaptureIndex;
  error?: string;
}

export async function readLedgers(ctx: AuditContext): Promise<Ledgers> {
  const { opts, notes } = ctx;
  const cap = new CaptureIndex();
  let foreign = 0;
  let error: string | undefined;
  try {
    for (const gateway of GATEWAYS) {
      const url = `${baseUrl(gateway === 'bank' ? opts.bank : opts.wallet)}/v1/statement`;
      const query = { since: opts.since };
      for await (const page of pages<StatementPage>(url, query, ctx.pageSize, ctx.attempts))
        for (const e of page.entries) if (!addEntry(ctx, cap, gateway, e)) foreign += 1;
    }
  } catch (e) {
    error = (e as Error).message;
    notes.push(`the bank or wallet statement could not be read: ${error}`);
  }
  if (foreign > 0)
    notes.push(`${foreign} ledger entries for orders outside the audited SKUs were ignored`);
  return error === undefined ? { cap } : { cap, error };
}

/** Add a capture or credit a refund; false when the entry is for an order outside the audit. */
function addEntry(ctx: AuditContext, cap: CaptureIndex, gateway: Gateway, e: LedgerEntry) {
  const orderId = (gateway === 'bank' ? e.orderId : e.outTradeNo) ?? '';
  if (!ctx.inScopeOrder(orderId)) return false;
  const ref = (gateway === 'bank' ? e.paymentId : e.tradeNo) ?? e.id;
  if (e.type === 'capture') cap.add(gateway, ref, orderId, e.amount, Date.parse(e.at));
  else cap.refund(gateway, ref, orderId, e.amount);
  return true;
}

// ------------------------------------------------------------------ coupon statement

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
export interface CouponFacts {
  code: string;
  state: CouponView['state'];
  orderId?: string;
  consumed: number;
}

/** The coupons of this sale's orders by code; no map (and `error`) when the statement could not be read. */
export interface Coupons {
  coupons?: Map<string, CouponFacts>;
  error?: string;
}

export async function readCoupons(ctx: AuditContext): Promise<Coupons> {
  const { opts, inScopeOrder } = ctx;
  const coupons = new Map<string, CouponFacts>();
  const url = `${baseUrl(opts.coupon)}/v1/statement`;
  const query = { campaignId: opts.campaignId };
  try {
    for await (const page of pages<CouponPage>(url, query, ctx.pageSize, ctx.attempts)) {
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
    const error = (e as Error).message;
    ctx.notes.push(`the coupon statement could not be read: ${error}`);
    return { error };
  }
  return { coupons };
}

// ------------------------------------------------------------------ orders

/**
 * Hand every order of the audited SKUs to `check` once, one SCAN batch at a
 * time. SCAN may return an order twice: an order with a capture is marked read
 * in the capture index, one without keeps its id in a set.
 */
export async function forEachOrder(
  { store, skus, pageSize }: AuditContext,
  cap: CaptureIndex,
  check: (o: AuditedOrder) => void,
) {
  const seenWithoutCapture = new Set<string>();
  const firstRead = (id: string) => {
    const sighted = cap.firstSight(id);
    if (sighted !== undefined) return sighted;
    if (seenWithoutCapture.has(id)) return false;
    seenWithoutCapture.add(id);
    return true;
  };
  for (const sku of skus)
    for await (const batch of store.orderBatches(sku, { count: pageSize, fields: AUDIT_FIELDS }))
      for (const o of batch) if (firstRead(o.id)) check(o);
}
