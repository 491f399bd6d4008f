// Keyed fault draws: every draw of a request with an identity (an order id,
// an out-trade number, an Idempotency-Key, an x-request-id) is a function of
// (seed, service, operation, identity, attempt), so the same requests get the
// same faults whatever order and concurrency they arrive in; another attempt,
// identity or seed draws independently; rates still match the profile; and a
// request with no identity falls back to the arrival-order streams.
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBank } from '../mock-gateways/bank/service.ts';
import { ChaosEngine, MAX_IDENTITY_LENGTH } from '../mock-gateways/chaos/engine.ts';
import { latencyQuantile } from '../mock-gateways/chaos/latency.ts';
import { INJECTED_LATENCY_HEADER } from '../mock-gateways/chaos/middleware.ts';
import type { LatencySpec } from '../mock-gateways/chaos/profile.ts';
import { Rng } from '../mock-gateways/chaos/rng.ts';
import { createCoupon } from '../mock-gateways/coupon/service.ts';
import type { RunningService } from '../mock-gateways/service.ts';
import { ACK_SUCCESS, startMerchant, type Merchant } from '../mock-gateways/wallet/merchant.ts';
import type { Notice } from '../mock-gateways/wallet/notify.ts';
import { createWallet } from '../mock-gateways/wallet/service.ts';
import { call, rawRequest, startMock, type RawOutcome } from './support/http.ts';
import { binomialInterval, pool, quantile, quantileRankInterval } from './support/stats.ts';

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});
async function started<T extends { close(): Promise<void> }>(p: Promise<T>): Promise<T> {
  const s = await p;
  opened.push(s);
  return s;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function engine(profile: unknown, seed = 1) {
  return new ChaosEngine({
    service: 'test',
    operations: ['op.a', 'op.b'],
    declineReasons: ['insufficient_funds'],
    extraSchema: z.object({}).strict(),
    seed,
    profile,
  });
}

/** A fixed permutation of 0..n-1 (Fisher-Yates from a seeded stream). */
function shuffled(n: number, seed: number): number[] {
  const rng = new Rng(seed, 'test-shuffle');
  const xs = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Per key, the sorted outcomes its requests got (copies of one key may race for attempt numbers). */
function byKey(rows: { key: string; outcome: string }[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of rows) (out[r.key] ??= []).push(r.outcome);
  for (const k of Object.keys(out)) out[k]!.sort();
  return out;
}

const PROFILE = {
  latency: { dist: 'lognormal', medianMs: 30, p99Ms: 300 },
  errors: [
    { rate: 0.2, kind: 'http', status: 503 },
    { rate: 0.1, kind: 'hang' },
  ],
};
const sig = (d: { fault?: { kind: string }; latencyMs: number }) =>
  `${d.fault?.kind ?? '-'}:${d.latencyMs.toFixed(9)}`;

describe('keyed draws in the engine', () => {
  it('the same (seed, operation, identity, attempt) gets the same fault and latency whatever order the requests are decided in, and whatever identity-less requests come between', () => {
    const n = 2_000;
    const ids = Array.from({ length: n }, (_, i) => `order:o-${i}`);
    const a = engine(PROFILE, 42);
    const inOrder = ids.flatMap((id) => [
      { key: `${id}#1`, outcome: sig(a.decide('op.a', {}, id)) },
      { key: `${id}#2`, outcome: sig(a.decide('op.a', {}, id)) },
    ]);
    const b = engine(PROFILE, 42);
    const other: { key: string; outcome: string }[] = [];
    // Reversed, the two attempts of one identity far apart, anonymous requests in between.
    for (const i of shuffled(n, 1)) {
      other.push({ key: `${ids[i]}#1`, outcome: sig(b.decide('op.a', {}, ids[i])) });
      b.decide('op.a');
    }
    for (const i of shuffled(n, 2))
      other.push({ key: `${ids[i]}#2`, outcome: sig(b.decide('op.a', {}, ids[i])) });
    expect(byKey(other)).toEqual(byKey(inOrder));
    expect(new Set(inOrder.map((r) => r.outcome.split(':')[0])).size).toBe(3);
  });

  it('another attempt, identity, operation or seed draws independently: both attempts fault at about rate squared', () => {
    const n = 50_000;
    const p = 0.3;
    const e = engine({ errors: [{ rate: p, kind: 'http', status: 503 }] }, 7);
    let both = 0;
    let same = 0;
    let crossOp = 0;
    for (let i = 0; i < n; i++) {
      const id = `order:o-${i}`;
      const f1 = e.decide('op.a', {}, id).fault !== undefined;
      const f2 = e.decide('op.a', {}, id).fault !== undefined;
      const fb = e.decide('op.b', {}, id).fault !== undefined;
      if (f1 && f2) both += 1;
      if (f1 && fb) crossOp += 1;
      // The neighbour identity (one character apart) and attempt 1 of this one agree by chance only.
      const next = e.decide('op.a', {}, `order:o-${i + 1}x`).fault !== undefined;
      if (next === f1) same += 1;
    }
    const [lo, hi] = binomialInterval(p * p, n);
    expect(both / n).toBeGreaterThanOrEqual(lo);
    expect(both / n).toBeLessThanOrEqual(hi);
    expect(crossOp / n).toBeGreaterThanOrEqual(lo);
    expect(crossOp / n).toBeLessThanOrEqual(hi);
    const agree = p * p + (1 - p) * (1 - p);
    const [alo, ahi] = binomialInterval(agree, n);
    expect(same / n).toBeGreaterThanOrEqual(alo);
    expect(same / n).toBeLessThanOrEqual(ahi);

    const seq = (seed: number) => {
      const x = engine(PROFILE, seed);
      return Array.from({ length: 1_000 }, (_, i) => sig(x.decide('op.a', {}, `order:o-${i}`)));
    };
    expect(seq(42)).toEqual(seq(42));
    const s42 = seq(42);
    const s43 = seq(43);
    expect(s42.filter((x, i) => x !== s43[i]).length).toBeGreaterThan(900);
  });

  it('over 100000 keys each error kind is chosen at its rate within the binomial 99.9% interval, at attempt 1 and at attempt 2', () => {
    const n = 100_000;
    const e = engine({
      errors: [
        { rate: 0.1, kind: 'http', status: 503 },
        { rate: 0.05, kind: 'rate_limit' },
        { rate: 0.01, kind: 'reset' },
      ],
    });
    for (const attempt of [1, 2]) {
      const counts: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        if (attempt === 2) e.decide('op.a', {}, `key:k-${i}`); // attempt 1 of this key, counted
        const k = e.decide('op.a', {}, `key:k-${i}`);
        if (attempt === 1)
          expect(k.key).toEqual({ operation: 'op.a', identity: `key:k-${i}`, attempt: 1 });
        const kind = k.fault?.kind ?? 'none';
        counts[kind] = (counts[kind] ?? 0) + 1;
      }
      for (const [kind, rate] of [
        ['http', 0.1],
        ['rate_limit', 0.05],
        ['reset', 0.01],
        ['none', 0.84],
      ] as const) {
        const [lo, hi] = binomialInterval(rate, n);
        expect((counts[kind] ?? 0) / n, `${kind} attempt ${attempt}`).toBeGreaterThanOrEqual(lo);
        expect((counts[kind] ?? 0) / n, `${kind} attempt ${attempt}`).toBeLessThanOrEqual(hi);
      }
      e.forgetAttempts();
    }
  });

  it('keyed latencies over 100000 keys match the lognormal profile: p50, p90 and p99 inside the 99.9% order-statistic interval', () => {
    const n = 100_000;
    const spec: LatencySpec = { dist: 'lognormal', medianMs: 30, p99Ms: 300 };
    const e = engine({ latency: spec }, 3);
    const xs = Array.from({ length: n }, (_, i) => e.decide('op.a', {}, `out:N-${i}`).latencyMs);
    for (const q of [0.5, 0.9, 0.99]) {
      const [lo, hi] = quantileRankInterval(q, n);
      expect(quantile(xs, q), `p${q * 100}`).toBeGreaterThanOrEqual(latencyQuantile(spec, lo));
      expect(quantile(xs, q), `p${q * 100}`).toBeLessThanOrEqual(latencyQuantile(spec, hi));
    }
  });

  it('the mock counts attempts per (operation, identity): the n-th request is attempt n; reseed and forgetAttempts start again at 1', () => {
    const e = engine({}, 5);
    const attempts = () => [
      e.decide('op.a', {}, 'order:o-1').key?.attempt,
      e.decide('op.a', {}, 'order:o-1').key?.attempt,
      e.decide('op.b', {}, 'order:o-1').key?.attempt,
      e.decide('op.a', {}, 'order:o-2').key?.attempt,
      e.decide('op.a', {}, 'order:o-1').key?.attempt,
    ];
    expect(attempts()).toEqual([1, 2, 1, 1, 3]);
    expect(e.trackedIdentities).toBe(3);
    e.reseed(5);
    expect(attempts()).toEqual([1, 2, 1, 1, 3]);
    e.forgetAttempts();
    expect(e.decide('op.a', {}, 'order:o-1').key?.attempt).toBe(1);
    expect(e.decide('op.a').key).toBeUndefined();
  });

  it('header faults draw per identity too: x-fault-percentage picks the same keys in any order', () => {
    const headers = { 'x-fault-abort': '503', 'x-fault-percentage': '40' };
    const n = 4_000;
    const pick = (e: ChaosEngine<unknown>, order: number[]) => {
      const out: Record<number, boolean> = {};
      for (const i of order) out[i] = e.decide('op.a', headers, `req:r-${i}`).fault !== undefined;
      return out;
    };
    const a = pick(engine({}, 9), [...Array(n).keys()]);
    const b = pick(engine({}, 9), shuffled(n, 4));
    expect(b).toEqual(a);
    const share = Object.values(a).filter(Boolean).length / n;
    const [lo, hi] = binomialInterval(0.4, n);
    expect(share).toBeGreaterThanOrEqual(lo);
    expect(share).toBeLessThanOrEqual(hi);
  });

  it("identityOf: the operation's own identity first, then Idempotency-Key, then x-request-id, else none; an over-long one is skipped", () => {
    const e = engine({});
    e.identify('op.a', (req) => {
      const id = (req.body as { orderId?: unknown } | undefined)?.orderId;
      return typeof id === 'string' ? `order:${id}` : undefined;
    });
    const headers = { 'idempotency-key': 'k1', 'x-request-id': 'r1' };
    expect(e.identityOf('op.a', { headers, body: { orderId: 'o-1' } })).toBe('order:o-1');
    expect(e.identityOf('op.a', { headers, body: {} })).toBe('key:k1');
    expect(e.identityOf('op.b', { headers: { 'x-request-id': 'r1' } })).toBe('req:r1');
    expect(e.identityOf('op.b', { headers: {} })).toBeUndefined();
    const long = 'x'.repeat(MAX_IDENTITY_LENGTH + 1);
    expect(e.identityOf('op.a', { headers, body: { orderId: long } })).toBe('key:k1');
    expect(() => e.identify('op.z', () => undefined)).toThrow(/no operation op.z/);
  });
});

/** What a client saw, compactly: status and reason (or the connection fault), and injected latency. */
function seen(r: RawOutcome): string {
  if (r.kind !== 'response') return r.kind === 'closed' ? 'reset' : r.kind;
  let what = '';
  try {
    const b = JSON.parse(r.body) as { status?: unknown; reason?: unknown };
    what = String(b.reason ?? b.status ?? '');
  } catch {
    what = 'malformed';
  }
  return `${r.status}/${what}/${r.headers[INJECTED_LATENCY_HEADER] ?? 0}`;
}

describe('keyed draws over HTTP', () => {
  it('bank: the same payments sent in order one at a time, or shuffled 32 at once with their retries racing, get the same faults, latencies and processing outcomes per order id', async () => {
    const profile = {
      latency: { dist: 'uniform', minMs: 0, maxMs: 3 },
      errors: [
        { rate: 0.15, kind: 'http', status: 503 },
        { rate: 0.1, kind: 'reset' },
        { rate: 0.1, kind: 'decline', reason: 'processing_error' },
      ],
      extra: {
        velocity: false,
        processing: { rate: 0.3, settleMs: { dist: 'fixed', ms: 5 } },
      },
    };
    const n = 300;
    const pay = (s: RunningService, i: number) =>
      rawRequest(`${s.url}/v1/payments`, {
        body: {
          orderId: `o-${i}`,
          amount: 1000,
          currency: 'CNY',
          card: { number: '4242424242424242' },
        },
      });
    const a = await started(startMock(createBank(), { seed: 11, profile }));
    const inOrder: { key: string; outcome: string }[] = [];
    for (let i = 0; i < n; i++)
      for (let k = 0; k < 2; k++) inOrder.push({ key: `o-${i}`, outcome: seen(await pay(a, i)) });

    const b = await started(startMock(createBank(), { seed: 11, profile }));
    const order = [...shuffled(n, 3), ...shuffled(n, 5)]; // both copies of an order, in two shuffled passes
    const racing = await pool(order.length, 32, async (j) => ({
      key: `o-${order[j]}`,
      outcome: seen(await pay(b, order[j]!)),
    }));
    expect(byKey(racing)).toEqual(byKey(inOrder));
    const kinds = new Set(inOrder.map((r) => r.outcome.split('/').slice(0, 2).join('/')));
    for (const k of ['200/succeeded', '202/processing', '503/upstream_unavailable', 'reset'])
      expect(kinds, k).toContain(k);

    // Another seed: other faults for the same orders.
    const c = await started(startMock(createBank(), { seed: 12, profile }));
    const other: { key: string; outcome: string }[] = [];
    for (let i = 0; i < n; i++)
      for (let k = 0; k < 2; k++) other.push({ key: `o-${i}`, outcome: seen(await pay(c, i)) });
    expect(byKey(other)).not.toEqual(byKey(inOrder));
  });

  it('bank: a request with no identity of its own is keyed by x-request-id when it sends one; with none at all it is still served, from the arrival-order streams', async () => {
    const profile = { errors: [{ rate: 0.4, kind: 'http', status: 503 }] };
    const n = 200;
    const statement = (s: RunningService, i?: number) =>
      rawRequest(`${s.url}/v1/statement`, {
        headers: i === undefined ? {} : { 'x-request-id': `audit-${i}` },
      });
    const a = await started(startMock(createBank(), { seed: 2, profile }));
    const b = await started(startMock(createBank(), { seed: 2, profile }));
    const fwd: Record<number, string> = {};
    for (let i = 0; i < n; i++) fwd[i] = seen(await statement(a, i));
    const back: Record<number, string> = {};
    for (const i of shuffled(n, 8)) back[i] = seen(await statement(b, i));
    expect(back).toEqual(fwd);

    // No identity: served (200 or the injected 503), the same sequence for the same arrival order.
    const anon = async (s: RunningService) => {
      const out: string[] = [];
      for (let i = 0; i < 100; i++) out.push(seen(await statement(s)));
      return out;
    };
    const x = await anon(await started(startMock(createBank(), { seed: 2, profile })));
    const y = await anon(await started(startMock(createBank(), { seed: 2, profile })));
    expect(y).toEqual(x);
    expect(new Set(x)).toEqual(new Set(['200//0', '503/upstream_unavailable/0']));
  });

  it('wallet: trades paid in another order and concurrency get the same pay faults and the same notification chaos per out-trade number', async () => {
    const profile = {
      operations: { 'trades.pay': { errors: [{ rate: 0.3, kind: 'http', status: 503 }] } },
      extra: {
        velocity: false,
        notify: {
          timeScale: 0.000002,
          lossRate: 0.4,
          duplicateRate: 0.3,
          notifyBeforeResponseRate: 0.5,
          delay: { dist: 'uniform', minMs: 0, maxMs: 5 },
        },
      },
    };
    const n = 30;
    const run = async (createOrder: number[], payOrder: number[], concurrency: number) => {
      const m: Merchant = await started(startMerchant(ACK_SUCCESS));
      const s = await started(startMock(createWallet({ secret: 's' }), { seed: 21, profile }));
      const tradeNo: Record<number, string> = {};
      for (const i of createOrder) {
        const t = await call(s.url, 'POST', '/v1/trades', {
          outTradeNo: `N-${i}`,
          amount: 1000 + i,
          notifyUrl: m.url,
          style: 'wechat',
        });
        expect(t.status, t.text).toBe(201);
        tradeNo[i] = t.body.tradeNo;
      }
      const paid: Record<string, number> = {};
      await pool(payOrder.length, concurrency, async (j) => {
        const i = payOrder[j]!;
        const p = await call(s.url, 'POST', `/v1/trades/${tradeNo[i]}/pay`, { buyerId: `b-${i}` });
        paid[`N-${i}`] = p.status;
      });
      const want = Object.values(paid).filter((st) => st === 200).length;
      let list: Notice[] = [];
      for (let k = 0; k < 3_000; k++) {
        list = (await call(s.url, 'GET', '/v1/notifications')).body.data;
        if (list.length === want && list.every((x) => x.state === 'acked' || x.state === 'gave_up'))
          break;
        await sleep(5);
      }
      const notices: Record<string, unknown> = {};
      for (const x of list)
        notices[x.outTradeNo] = {
          state: x.state,
          beforeResponse: x.beforeResponse,
          attempts: x.attempts.map((y) => [y.attempt, y.duplicate, y.result, y.gapMs]),
        };
      return { paid, notices };
    };
    const ids = [...Array(n).keys()];
    const a = await run(ids, ids, 1);
    const b = await run([...ids].reverse(), shuffled(n, 6), 8);
    expect(b).toEqual(a);
    expect(new Set(Object.values(a.paid))).toEqual(new Set([200, 503]));
    const results = Object.values(a.notices).flatMap((x) =>
      (x as { attempts: unknown[][] }).attempts.map((y) => y[2]),
    );
    expect(results).toContain('dropped');
    expect(results).toContain('duplicate');
  });

  it('coupon: coupons issued and locked in another order get the same faults per shopper and per order, though their codes differ', async () => {
    const profile = {
      operations: {
        'coupons.issue': { errors: [{ rate: 0.25, kind: 'http', status: 503 }] },
        'coupons.lock': { errors: [{ rate: 0.3, kind: 'http', status: 503 }] },
      },
    };
    const n = 40;
    const run = async (order: number[]) => {
      const s = await started(startMock(createCoupon(), { seed: 31, profile }));
      const c = await call(s.url, 'POST', '/v1/campaigns', {
        id: 'live',
        name: 'live',
        budget: 1_000,
        discount: { type: 'amount', value: 100 },
      });
      expect(c.status, c.text).toBe(201);
      const issued: Record<number, number> = {};
      const codes: Record<number, string> = {};
      for (const i of order) {
        const r = await call(s.url, 'POST', '/v1/coupons', {
          campaignId: 'live',
          userId: `u-${i}`,
        });
        issued[i] = r.status;
        if (r.status === 201) codes[i] = r.body.code;
      }
      const locked: Record<number, number> = {};
      for (const i of order)
        if (codes[i])
          locked[i] = (
            await call(s.url, 'POST', `/v1/coupons/${codes[i]}/lock`, {
              orderId: `o-${i}`,
              userId: `u-${i}`,
            })
          ).status;
      return { issued, locked, codes };
    };
    const ids = [...Array(n).keys()];
    const a = await run(ids);
    const b = await run(shuffled(n, 9));
    expect(b.issued).toEqual(a.issued);
    expect(b.locked).toEqual(a.locked);
    expect(b.codes).not.toEqual(a.codes);
    expect(new Set(Object.values(a.issued))).toEqual(new Set([201, 503]));
    expect(new Set(Object.values(a.locked))).toEqual(new Set([200, 503]));
  });
});
