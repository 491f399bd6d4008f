// `flashcrowd run`, quiescence and audit: after the traffic, wait for the
// system to settle (payment deadlines, sweeper, reconciler, late
// notifications), then audit the invariants from Redis and the mocks' ledgers.
import { setTimeout as sleep } from 'node:timers/promises';
import { connectRedis, Store } from '../../checkout/store.ts';
import { audit, type AuditReport } from '../audit.ts';
import { http } from './http.ts';
import type { RunContext } from './preset.ts';
import type { Sale } from './sale.ts';
import type { Target } from './target.ts';

export interface Settling {
  report: AuditReport | undefined;
  settled: boolean;
  /** Seconds waited, and the longest wait allowed. */
  quiescenceS: number;
  limitS: number;
}

/** The checkout's Redis for the audit (undefined, and a warning, when the target names none). */
export function openStore(ctx: RunContext, { urls }: Target, sale: Sale): Store | undefined {
  const store = urls.redis
    ? new Store(connectRedis(urls.redis), sale.config.keyPrefix ?? 'fc')
    : undefined;
  if (!store) ctx.warnings.push('no Redis URL for the target (--redis): the audit was skipped');
  return store;
}

/**
 * Wait until settled or out of time, auditing on the way. Settled: no open
 * order holds stock, no ended order is watched for a late payment (the
 * reconciler refunds or re-reserves what lands), and no gateway has a payment
 * of this sale still processing (the audit's probe). The audit that decides is
 * the one taken after the first two held.
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
  while (store && target.haveMocks) {
    const open = await openOrders(target.urls.checkout);
    let watched = 0;
    for (const sku of sale.skuIds) watched += await store.redis.zcard(store.keys(sku).watch);
    const timeUp = (Date.now() - qStart) / 1000 >= limitS;
    if ((open === 0 && watched === 0) || timeUp) {
      report = await auditSale(ctx, target, sale, store);
      if (report?.quiescent && open === 0 && watched === 0) {
        settled = true;
        break;
      }
      if (timeUp) break;
    }
    await sleep(1_000);
  }
  return { report, settled, quiescenceS: (Date.now() - qStart) / 1000, limitS };
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

/** Orders still open (pending payment or paying), from the checkout's stock counters. */
async function openOrders(checkoutUrl: string): Promise<number> {
  const r = await http<{ data: { reserved: number }[] }>(`${checkoutUrl}/admin/stock`).catch(
    () => undefined,
  );
  return (r?.body.data ?? []).reduce((s, x) => s + (x.reserved ?? 0), 0);
}
