// Two checkout processes on one Redis (harness/stack.ts, `instances: 2`): a pay
// call held at the bank in instance A is not settled by B's reconciler, though
// B finds the order stale after 83 ms (time-scale 0.0167): the call's lease in
// Redis says A may still answer. Once A is killed mid-call, B settles the order
// after the lease ends, and the audit is clean. A copy of the checkout without
// the lease check (a planted fault, test/support/mutant.ts) settles the live
// call in B: the test sees it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../checkout/store.ts';
import { formatAudit } from '../harness/audit.ts';
import type { Stack, StartStack } from './support/instances.ts';
import { startInstancesStack } from './support/instances.ts';
import { call } from './support/http.ts';
import { copyCheckout, type Copy } from './support/mutant.ts';
import { createOrder, sleep, waitFor } from './support/checkout.ts';

const SET = [
  'timeScale=0.0167',
  // Functional tests on a shared machine: no shedding, and bank calls that wait out the held call.
  'loadShedding=false',
  'minTimeoutMs=4000',
  'timeoutMs=4000',
];
/** How long the bank holds each payment (below the checkout's 4 s timeout, so the call stays live). */
const HOLD_MS = 1_500;

const NO_LEASE = {
  name: 'the reconciler ignores the pay-call lease',
  file: 'checkout/checkout.ts',
  find: 'if (o.payLeaseUntil !== undefined && o.payLeaseUntil > now) continue;',
  replace: '',
};

async function holdPayments(bank: string, ms: number) {
  const r = await call(bank, 'PUT', '/__chaos', {
    operations: { 'payments.create': { latency: { dist: 'fixed', ms } } },
  });
  expect(r.status, r.text).toBe(200);
}

/** The states an order went through while `ms` passed (read from Redis every 10 ms). */
async function statesDuring(store: Store, id: string, ms: number): Promise<Set<string>> {
  const seen = new Set<string>();
  const until = performance.now() + ms;
  while (performance.now() < until) {
    seen.add((await store.get(id))!.state);
    await sleep(10);
  }
  return seen;
}

/** An order on instance `url`, its pay call fired there (not awaited), once the order is paying. */
async function payHeld(s: Stack, url: string, user: string) {
  const o = await createOrder(url, { user, sku: 'lip', channel: 'card' });
  expect(o.status, o.text).toBe(201);
  const id = o.body.id as string;
  const answer = call(url, 'POST', `/v1/orders/${id}/pay`, {}).then(
    (r) => ({ ok: true as const, status: r.status, body: r.body }),
    (e: Error) => ({ ok: false as const, error: e }),
  );
  await waitFor(`order ${id} paying`, async () => (await s.store.get(id))?.state === 'paying');
  return { id, answer };
}

async function seed(url: string) {
  const r = await call(url, 'POST', '/admin/sale', {
    skus: [{ id: 'lip', price: 9_900, stock: 5, limit: 1 }],
  });
  expect(r.status, r.text).toBe(201);
}

describe('two checkout instances on one Redis', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startInstancesStack(undefined, { instances: 2, set: SET });
    await seed(s.stack.checkouts[0]!.url);
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it("B's reconciler does not settle a pay call still held at the bank in A; A's answer does", async () => {
    const [a, b] = s.stack.checkouts as [
      (typeof s.stack.checkouts)[0],
      (typeof s.stack.checkouts)[0],
    ];
    await holdPayments(s.stack.urls.bank, HOLD_MS);
    const { id, answer } = await payHeld(s, a.url, 'alice');
    const o = (await s.store.get(id))!;
    expect(o.payLeaseUntil, 'the pay call holds a lease in Redis').toBeGreaterThan(Date.now());
    // B's reconciler runs every 33 ms and finds the order stale after 83 ms.
    const states = await statesDuring(s.store, id, HOLD_MS - 500);
    expect([...states]).toEqual(['paying']);
    const r = await answer;
    expect(r.ok && r.status, JSON.stringify(r)).toBe(200);
    const paid = (await call(b.url, 'GET', `/v1/orders/${id}`)).body;
    expect(paid).toMatchObject({ state: 'paid' });
    expect((await s.store.get(id))!.lateFrom).toBeUndefined();
  });

  it("a killed instance's live call is settled by the survivor once its lease ends; audit clean", async () => {
    const [a, b] = s.stack.checkouts as [
      (typeof s.stack.checkouts)[0],
      (typeof s.stack.checkouts)[0],
    ];
    await holdPayments(s.stack.urls.bank, HOLD_MS);
    const { id, answer } = await payHeld(s, a.url, 'bob');
    const lease = (await s.store.get(id))!.payLeaseUntil!;
    await a.kill();
    expect(a.alive()).toBe(false);
    // The shopper's request dies with the process (connection reset).
    const r = await answer;
    expect(r.ok, 'the pay request of a killed instance fails as a shopper sees it').toBe(false);
    const settled = await waitFor(
      `order ${id} settled by instance ${b.index}`,
      async () => {
        const o = await s.store.get(id);
        return o && o.state !== 'paying' ? o : undefined;
      },
      30_000,
    );
    const at = settled.paidAt ?? settled.endedAt ?? 0;
    expect(at, `settled at ${at}, lease until ${lease}`).toBeGreaterThanOrEqual(lease);
    expect(['paid', 'payment_failed']).toContain(settled.state);
    await a.restart();
    expect(a.alive()).toBe(true);
    expect((await call(a.url, 'GET', '/healthz')).status).toBe(200);
    const report = await waitFor('a quiescent audit', async () => {
      await call(b.url, 'POST', '/admin/sweep');
      const rep = await s.audit();
      return rep.quiescent && rep.totals.stuckProcessing === 0 ? rep : undefined;
    });
    expect(report.violated, formatAudit(report)).toEqual([]);
  });
});

describe('the planted fault: a reconciler that ignores the lease', () => {
  let copy: Copy;
  let s: Stack;
  beforeAll(async () => {
    copy = copyCheckout(NO_LEASE);
    const { startStack } = await copy.importModule<{ startStack: StartStack }>('harness/stack.ts');
    s = await startInstancesStack(startStack, { instances: 2, set: SET });
    await seed(s.stack.checkouts[0]!.url);
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    copy?.remove();
  });

  it("settles A's live call in B: the order leaves paying while the bank still holds the payment", async () => {
    await holdPayments(s.stack.urls.bank, HOLD_MS);
    const { id, answer } = await payHeld(s, s.stack.checkouts[0]!.url, 'carol');
    const states = await statesDuring(s.store, id, HOLD_MS - 500);
    expect(states.has('payment_failed'), [...states].join(',')).toBe(true);
    await answer;
  });
});
