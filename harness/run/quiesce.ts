// `flashcrowd run`, quiescence and audit: after the traffic, wait for the
// system to settle (payment deadlines, sweeper, reconciler, late
// notifications), then audit the invariants from Redis and the mocks' ledgers.
import { setTimeout as sleep } from 'node:timers/promises';
import { Store } from '../../checkout/store.ts';
import { audit, type AuditReport } from '../audit.ts';
import { fromAnyInstance } from './http.ts';
import type { RunContext } from './preset.ts';
import type { Sale } from './sale.ts';
import { connectTargetRedis, type Target } from './target.ts';
import type { BudgetResult } from '../summary.ts';

export interface Settling {
  report: AuditReport | undefined;
  /** Why there is no audit at all (no Redis, or no mocks to read the ledgers from). */
  skipped?: string;
  settled: boolean;
  /** What was still moving at the last look (empty when settled), and how many things. */
  moving: string[];
  movingCount: number;
  /** Seconds waited, and the longest wait allowed. */
  quiescenceS: number;
  limitS: number;
}

/** The checkout's Redis for the audit (undefined, and a warning, when the target names none). */
export function openStore(ctx: RunContext, { urls }: Target, sale: Sale): Store | undefined {
  const store = urls.redis
    ? new Store(connectTargetRedis(urls), sale.config.keyPrefix ?? 'fc')
    : undefined;
  if (!store)
    ctx.warnings.push(
      'no Redis URL for the target (--redis): the audit was skipped, so every invariant is undecided (invariants.broken counts them)',
    );
  return store;
}

/**
 * Wait until settled or out of time, auditing on the way. Settled: no open
 * order holds stock, no ended order is watched for a late payment (the
 * reconciler refunds or re-reserves what lands), and no gateway has a payment
 * of this sale still processing (the audit's probe), and no coupon call is
 * owed (the hardened sweeper's retries). The audit that decides is
 * the one taken after the others held.
 */
export async function quiesce(
  ctx: RunContext,
  target: Target,
  sale: Sale,
  store: Store | undefined,
  interrupted = false,
): Promise<Settling> {
  const ttlS = (Number(sale.config.params.paymentTtlMs ?? 900_000) * ctx.r.timeScale) / 1000;
  // Interrupted: no wait, one audit of the state as it is.
  const limitS = interrupted ? 0 : (ctx.o.quiescenceS ?? Math.max(15, Math.ceil(ttlS * 2 + 10)));
  const qStart = Date.now();
  let report: AuditReport | undefined;
  let settled = false;
  ctx.print(
    interrupted
      ? 'interrupted: no settling; auditing the state as it is...'
      : `settling: waiting up to ${limitS} s for deadlines, sweeper, reconciler and notifications...`,
  );
  let moving: string[] = [];
  let movingCount = 0;
  // Reserved units that have not moved for STABLE_S: the audit is asked
  // whether they are all leaked (held by ended orders or by no order), which
  // no deadline, sweeper or reconciler will give back: then there is nothing
  // left to wait for (the leak is counted by leaks.stock and I3).
  let lastOpen = -1;
  let stableFrom = Date.now();
  let leakCheckedAt = 0;
  let auditedAt = 0;
  while (store && target.haveMocks) {
    const open = await openOrders(target.urls.checkouts ?? [target.urls.checkout]);
    let watched = 0;
    // Summed over a bucketed SKU's buckets (checkout.stockBuckets).
    for (const sku of sale.skuIds) watched += await store.watchedCount(sku);
    const owed = await store.owedCouponCount();
    // A dead consumer's entries wait CLAIM_MIN_IDLE_MS before a live one claims them.
    const streamed = await store.streamPending();
    const now = Date.now();
    const timeUp = (now - qStart) / 1000 >= limitS;
    if (open !== lastOpen) [lastOpen, stableFrom] = [open, now];
    const onlyLeaks =
      open > 0 &&
      watched === 0 &&
      owed === 0 &&
      streamed === 0 &&
      now - stableFrom >= STABLE_S * 1000 &&
      now - leakCheckedAt >= STABLE_S * 1000;
    [moving, movingCount] = movingParts(open, watched, owed + streamed, undefined);
    const still = watched + owed + streamed;
    // The counters are read every POLL_MS; the audit (every order, every ledger) at most every AUDIT_MS.
    const mayAudit = now - auditedAt >= AUDIT_MS;
    if ((((open === 0 && still === 0) || onlyLeaks) && mayAudit) || timeUp) {
      report = await auditSale(ctx, target, sale, store);
      leakCheckedAt = auditedAt = Date.now();
      [moving, movingCount] = movingParts(open, watched, owed + streamed, report);
      if (report?.quiescent && open === 0 && still === 0) {
        settled = true;
        break;
      }
      if (report?.quiescent && onlyLeaks && allLeaked(report, open)) {
        settled = true;
        ctx.print(`settled with ${open} reserved unit(s) leaked: nothing will give them back`);
        break;
      }
      if (timeUp) break;
    }
    await sleep(POLL_MS);
  }
  if (!settled && !interrupted && store && target.haveMocks)
    ctx.warnings.push(`not settled within ${limitS} s: still moving: ${moving.join('; ')}`);
  const skipped = !store
    ? 'no Redis URL for the target (--redis)'
    : !target.haveMocks
      ? 'no mock gateways for the target (--bank, --wallet, --coupon), so no ledgers to read'
      : undefined;
  return {
    report,
    ...(skipped ? { skipped } : {}),
    settled,
    moving,
    movingCount,
    quiescenceS: (Date.now() - qStart) / 1000,
    limitS,
  };
}

/** Seconds the reserved units must stay put before the audit is asked whether they are all leaks. */
const STABLE_S = 5;
/**
 * How often the settling reads what still moves (a few counters: cheap), so
 * the run ends within a quarter second of the last deadline, not a second.
 */
const POLL_MS = 250;
/** The least time between two audits while a gateway still processes a payment. */
const AUDIT_MS = 1_000;

/** Every reserved unit is held by an ended order or by no order: none by an open one (past its deadline or not). */
function allLeaked(report: AuditReport, reserved: number): boolean {
  const t = report.totals;
  return t.stockLeakOrdersOpen === 0 && t.stockLeakUnits >= reserved;
}

/** What keeps the system from being settled, one phrase each. */
function movingParts(
  open: number,
  watched: number,
  owed: number,
  report: AuditReport | undefined,
): [string[], number] {
  const parts: string[] = [];
  const pending = report && !report.quiescent ? Math.max(1, report.totals.pendingAtGateway) : 0;
  if (open) parts.push(`${open} unit(s) still reserved (by open orders, or leaked)`);
  if (watched) parts.push(`${watched} ended order(s) watched for a late payment`);
  if (pending) parts.push(`${pending} order(s) with a payment still processing at a gateway`);
  if (owed)
    parts.push(
      `${owed} coupon call(s) owed (retried by the sweeper) or payment-stream entries unacknowledged (claimed by a live consumer)`,
    );
  return [parts, open + watched + pending + owed];
}

/**
 * The check every run makes after the traffic: the system settled within
 * the quiescence bound, so the audit judged a final state (an interrupted run,
 * or one whose audit could not run, is judged elsewhere).
 */
export function quiescenceBudget(s: Settling, audited: boolean): BudgetResult | undefined {
  if (!audited) return undefined;
  const value = s.settled ? 0 : Math.max(1, s.movingCount);
  return {
    expr: 'quiescence.unsettled==0',
    metric: 'quiescence.unsettled',
    op: '==',
    threshold: 0,
    value,
    ok: s.settled,
    source: 'harness',
    note: s.settled
      ? `settled in ${s.quiescenceS.toFixed(1)} s (bound ${s.limitS} s)`
      : `not settled within ${s.limitS} s: ${s.moving.join('; ') || 'the audit did not run'}`,
  };
}

/**
 * The stream check every audited run makes: no payment-stream entry read and
 * never acknowledged (a dead consumer's entries claimed by a live one).
 */
export function streamBudget(report: AuditReport | undefined): BudgetResult | undefined {
  if (!report) return undefined;
  const value = report.totals.streamPending;
  return {
    expr: 'leaks.stream_pending==0',
    metric: 'leaks.stream_pending',
    op: '==',
    threshold: 0,
    value,
    ok: value === 0,
    source: 'harness',
    note:
      value === 0
        ? 'every payment-stream entry read was acknowledged'
        : `${value} payment-stream entries read and never acknowledged: a dead consumer's, not claimed (XAUTOCLAIM)`,
  };
}

/** The invariants audit of this sale (undefined, and a warning, when it fails). */
function auditSale(ctx: RunContext, { urls }: Target, sale: Sale, store: Store) {
  return audit({
    store,
    bank: urls.bank,
    wallet: urls.wallet,
    coupon: urls.coupon,
    skus: sale.skuIds,
    campaignId: ctx.resolved.sale.coupon?.campaignId,
    since: ctx.startedAt.toISOString(),
  }).catch((e: Error) => {
    ctx.warnings.push(`audit failed: ${e.message}`);
    return undefined;
  });
}

/** Orders still open (pending payment or paying), from the checkout's stock counters (any instance). */
async function openOrders(checkouts: readonly string[]): Promise<number> {
  const r = await fromAnyInstance<{ data: { reserved: number }[] }>(checkouts, '/admin/stock');
  return (r?.body.data ?? []).reduce((s, x) => s + (x.reserved ?? 0), 0);
}
