// A checkout stack for tests: the real mocks (seeded), the real checkout on
// loopback, and a Store on its own Redis connection for snapshots and audits.
// Redis comes from startRedis() (REDIS_URL, else a local redis-server, else
// testcontainers); when none is available the caller's beforeAll fails with
// that function's message.
import { expect } from 'vitest';
import { startCheckout, type RunningCheckout } from '../../checkout/service.ts';
import { connectRedis, Store, type RedisClient } from '../../checkout/store.ts';
import type { Mode } from '../../checkout/config.ts';
import {
  audit,
  formatAudit,
  snapshotI1,
  type AuditOptions,
  type AuditReport,
  type I1Snapshot,
} from '../../harness/audit.ts';
import { startMocks } from '../../harness/mocks.ts';
import type { RunningService, ServiceName } from '../../mock-gateways/service.ts';
import { call, type JsonResponse } from './http.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Settings for tests of the hardened build's functions rather than of its load
 * behaviour: no load shedding, and timeouts derived from observed latency no
 * shorter than 1 s. On a busy 2-core machine the event loop of the test
 * process (checkout and mocks together) stalls now and then; the hardened
 * preset would then shed requests or time out calls that are merely slow,
 * which the chaos test exercises on purpose and these tests do not.
 */
export const STEADY = ['loadShedding=false', 'minTimeoutMs=1000'];

export interface Mocks {
  services: RunningService[];
  bank: RunningService;
  wallet: RunningService;
  coupon: RunningService;
  urls: Record<ServiceName, string>;
  /** Forget every payment, trade and coupon and every chaos profile; reseed. */
  reset(seed?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startAllMocks(seed: number): Promise<Mocks> {
  const services = await startMocks({ target: 'all', seed });
  const by = (n: ServiceName) => services.find((s) => s.name === n)!;
  const urls = { bank: by('bank').url, wallet: by('wallet').url, coupon: by('coupon').url };
  return {
    services,
    bank: by('bank'),
    wallet: by('wallet'),
    coupon: by('coupon'),
    urls,
    async reset(s = seed) {
      for (const m of services) {
        expect((await call(m.url, 'DELETE', '/__chaos')).status).toBe(200);
        expect((await call(m.url, 'POST', `/__reset?seed=${s}`)).status).toBe(200);
      }
    },
    async close() {
      await Promise.all(services.map((m) => m.close()));
    },
  };
}

export interface Stack {
  co: RunningCheckout;
  url: string;
  /** The audit's own view of the checkout's Redis keys (a separate connection). */
  store: Store;
  mocks: Mocks;
  /** The audit over this stack's store and mocks. */
  audit(opts?: Partial<AuditOptions>): Promise<AuditReport>;
  close(): Promise<void>;
}

/** Start a checkout (mode, --set overrides, key prefix) on the given Redis and mocks. */
export async function startStack(o: {
  redisUrl: string;
  mocks: Mocks;
  mode: Mode;
  prefix: string;
  set?: string[];
}): Promise<Stack> {
  const co = await startCheckout({
    redisUrl: o.redisUrl,
    ...o.mocks.urls,
    mode: o.mode,
    set: [`keyPrefix=${o.prefix}`, ...(o.set ?? [])],
  });
  const client: RedisClient = connectRedis(o.redisUrl);
  const store = new Store(client, o.prefix);
  return {
    co,
    url: co.url,
    store,
    mocks: o.mocks,
    audit: (opts = {}) => audit({ store, ...o.mocks.urls, ...opts }),
    async close() {
      await co.close();
      client.disconnect();
    },
  };
}

/** Expect the audit to find no broken invariant (I10 is unchecked by design). */
export function expectAuditOk(r: AuditReport) {
  expect(r.violated, formatAudit(r)).toEqual([]);
  expect(r.unchecked, formatAudit(r)).toEqual(['I10']);
  expect(r.quiescent, formatAudit(r)).toBe(true);
}

export interface SaleSku {
  id: string;
  price?: number;
  stock: number;
  limit?: number;
}

export async function seedSale(
  url: string,
  skus: SaleSku[],
  coupon?: { campaignId: string; budget: number; discount: number },
) {
  const r = await call(url, 'POST', '/admin/sale', {
    skus: skus.map((s) => ({ price: 9_900, limit: 1, ...s })),
    ...(coupon ? { coupon } : {}),
  });
  expect(r.status, r.text).toBe(201);
  return r.body;
}

export async function issueCoupon(couponUrl: string, campaignId: string, userId: string) {
  const r = await call(couponUrl, 'POST', '/v1/coupons', { campaignId, userId });
  expect(r.status, r.text).toBe(201);
  return r.body.code as string;
}

export const createOrder = (
  url: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<JsonResponse> => call(url, 'POST', '/v1/orders', body, headers);

export const payOrder = (
  url: string,
  id: string,
  body: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<JsonResponse> => call(url, 'POST', `/v1/orders/${id}/pay`, body, headers);

export const getOrder = async (url: string, id: string) =>
  (await call(url, 'GET', `/v1/orders/${id}`)).body;

/** Poll `fn` until it returns a truthy value; fail with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  everyMs = 20,
): Promise<T> {
  const until = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await fn();
    if (v) return v;
    last = v;
    if (performance.now() > until)
      throw new Error(`timed out waiting for ${what} (${String(last)})`);
    await sleep(everyMs);
  }
}

/** Wait until an order reaches one of `states`; returns the order. */
export function waitForState(url: string, id: string, states: string[], timeoutMs = 20_000) {
  return waitFor(
    `order ${id} to reach ${states.join('|')}`,
    async () => {
      const o = await getOrder(url, id);
      return states.includes(o.state) ? o : undefined;
    },
    timeoutMs,
  );
}

interface LedgerEntry {
  type: 'capture' | 'refund';
  amount: number;
  orderId?: string;
  outTradeNo?: string;
  paymentId?: string;
  tradeNo?: string;
}

/** Ledger entries (bank and wallet) for one order. */
export async function ledgerOf(mocks: Mocks, orderId: string) {
  const bank = (await call(mocks.urls.bank, 'GET', '/v1/statement')).body.entries as LedgerEntry[];
  const wallet = (await call(mocks.urls.wallet, 'GET', '/v1/statement')).body
    .entries as LedgerEntry[];
  const mine = [
    ...bank.filter((e) => e.orderId === orderId),
    ...wallet.filter((e) => e.outTradeNo === orderId),
  ];
  return {
    captures: mine.filter((e) => e.type === 'capture'),
    refunds: mine.filter((e) => e.type === 'refund'),
  };
}

/** Run sweep and reconcileStale until an audit finds nothing still moving. */
export async function quiesce(s: Stack, timeoutMs = 30_000): Promise<AuditReport> {
  let last: AuditReport | undefined;
  await waitFor(
    'quiescence (no payment processing at a gateway, no order in paying)',
    async () => {
      const r = await call(s.url, 'POST', '/admin/sweep');
      expect(r.status, r.text).toBe(200);
      last = await s.audit();
      return last.quiescent && last.totals.stuckProcessing === 0;
    },
    timeoutMs,
    50,
  );
  return last!;
}

/**
 * Take I1 snapshots back to back (on the audit's own connection) until
 * stopped. A failing read ends the loop and is rethrown by stop(), never left
 * unhandled (e.g. when a failed test's afterAll closes the connection).
 */
export function pollSnapshots(store: Store, skus: string[], pauseMs = 0) {
  const snaps: I1Snapshot[] = [];
  let done = false;
  let failure: unknown;
  const loop = (async () => {
    while (!done) {
      try {
        snaps.push(await snapshotI1(store, skus));
      } catch (e) {
        failure = e;
        return;
      }
      if (pauseMs) await sleep(pauseMs);
    }
  })();
  return {
    snaps,
    async stop(): Promise<I1Snapshot[]> {
      done = true;
      await loop;
      if (failure) throw failure;
      return snaps;
    },
  };
}
