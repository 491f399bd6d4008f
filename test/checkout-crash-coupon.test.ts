// A checkout process killed between a coupon's lock and its order (two
// instances on one Redis, harness/stack.ts): the coupon service took the lock,
// the order was never written, and nothing in the dead process's memory
// survives. The hardened checkout announces each lock in Redis before it takes
// it; the survivor's sweeper finds the announcement of an order that never
// came and gives the coupon back: I8 holds. A copy of the checkout without the
// announcement (a planted fault, test/support/mutant.ts) leaves the coupon
// locked by an order that does not exist, and the audit names it. Found by the
// checkout-crash preset (4 coupons locked at half its ci time-scale).
import { afterAll, describe, expect, it } from 'vitest';
import { formatAudit, type AuditReport } from '../harness/audit.ts';
import { call } from './support/http.ts';
import { issueCoupon, seedSale, sleep, waitFor } from './support/checkout.ts';
import { startInstancesStack, type StartStack, type Stack } from './support/instances.ts';
import { copyCheckout, type Copy } from './support/mutant.ts';

const SET = ['timeScale=0.01', 'loadShedding=false', 'minTimeoutMs=4000', 'timeoutMs=4000'];
/** How long the coupon service holds each lock call (it takes the lock after, client or not). */
const LOCK_MS = 1_500;
const CAMPAIGN = 'live-20';

const NO_INTENT = {
  name: 'the coupon lock is not announced',
  file: 'checkout/checkout.ts',
  find: 'const intent = input.coupon !== undefined && this.cfg.features.reconciler;',
  replace: 'const intent = false;',
};

/** Instance 0 dies while its coupon lock call is at the coupon service; the audit once it settles. */
async function killDuringLock(s: Stack): Promise<AuditReport> {
  const [a, b] = s.stack.checkouts as [
    (typeof s.stack.checkouts)[0],
    (typeof s.stack.checkouts)[0],
  ];
  await seedSale(a.url, [{ id: 'lip', stock: 10 }], {
    campaignId: CAMPAIGN,
    budget: 10,
    discount: 1_000,
  });
  const code = await issueCoupon(s.stack.urls.coupon, CAMPAIGN, 'dora');
  const chaos = await call(s.stack.urls.coupon, 'PUT', '/__chaos', {
    operations: { 'coupons.lock': { latency: { dist: 'fixed', ms: LOCK_MS } } },
  });
  expect(chaos.status, chaos.text).toBe(200);
  const order = call(a.url, 'POST', '/v1/orders', { user: 'dora', sku: 'lip', coupon: code }).catch(
    (e: Error) => e,
  );
  await sleep(LOCK_MS / 3);
  await a.kill('SIGKILL');
  expect(await order).toBeInstanceOf(Error); // the shopper saw the connection go
  // The lock lands at the coupon service after the kill.
  await sleep(LOCK_MS);
  return waitFor(
    'the survivor to settle and the audit to be quiescent',
    async () => {
      await call(b.url, 'POST', '/admin/sweep');
      const r = await s.audit();
      return r.quiescent && (await s.store.owedCouponCount()) === 0 ? r : undefined;
    },
    30_000,
  );
}

describe('a checkout killed between a coupon lock and its order', () => {
  let s: Stack | undefined;
  afterAll(async () => s?.close());

  it("hardened: the survivor's sweeper gives the coupon back (I8 holds, audit clean)", async () => {
    s = await startInstancesStack(undefined, { instances: 2, set: SET });
    const report = await killDuringLock(s);
    expect(report.violated, formatAudit(report)).toEqual([]);
    expect(report.totals.couponLeaks, formatAudit(report)).toBe(0);
  }, 90_000);
});

describe('the planted fault: the lock is not announced', () => {
  let copy: Copy | undefined;
  let s: Stack | undefined;
  afterAll(async () => {
    await s?.close();
    copy?.remove();
  });

  it('the coupon stays locked by an order that does not exist, and the audit names I8', async () => {
    copy = copyCheckout(NO_INTENT);
    const { startStack } = await copy.importModule<{ startStack: StartStack }>('harness/stack.ts');
    s = await startInstancesStack(startStack, { instances: 2, set: SET });
    const report = await killDuringLock(s);
    expect(report.violated, formatAudit(report)).toContain('I8');
  }, 90_000);
});
