// The livestream shoppers against a real stack: real Redis, the real mocks and
// checkout on loopback, flashcrowd's engine running the livestream journey
// (scenarios/lib/livestream-journey.ts, the one scenarios/livestream.ts drives
// in k6: test/k6.test.ts runs that where the user has k6) on livestream-spike
// resolved at a tiny scale (10 s, a few dozen arrivals/s).
// Also the shopper file (harness/shoppers.ts) and the pure helpers the script
// and the harness share (scenarios/lib/).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../harness/engine/embedded.ts';
import type { SummaryMetric } from '../harness/engine/metrics.ts';
import type { LoadPlan } from '../harness/engine/types.ts';
import { loadPreset, resolvePreset, type ResolvedPreset } from '../harness/preset.ts';
import { counterRows, scrape, type Row } from '../harness/prom.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { makeShoppers, writeShoppers, type ShoppersFile } from '../harness/shoppers.ts';
import { gracefulStopS, shopperCount } from '../scenarios/lib/preset.ts';
import { Rng, mixSeed } from '../scenarios/lib/rng.ts';
import {
  bestOutcome,
  drawShopper,
  nextStep,
  orderFailed,
  orderOutcome,
  payFailed,
  payOutcome,
} from '../scenarios/lib/shopper.ts';
import {
  expectAuditOk,
  quiesce,
  seedSale,
  startAllMocks,
  startStack,
  STEADY,
  type Mocks,
  type Stack,
} from './support/checkout.ts';
import { call } from './support/http.ts';
import { binomialInterval } from './support/stats.ts';

const SEED = 4242;

/** livestream-spike at a tiny scale, with more re-clickers so duplicates surely happen. */
function tinyPreset(): ResolvedPreset {
  const { preset } = loadPreset('livestream-spike');
  const p = { ...preset, behaviour: { ...preset.behaviour, reclickPay: 0.4 } };
  return resolvePreset(p, { seed: SEED, timeScale: 1 / 120, loadScale: 0.03 });
}

/** The livestream journey as `flashcrowd run` hands it to the engine. */
function livestreamPlan(preset: ResolvedPreset, target: string, couponUrl: string): LoadPlan {
  return {
    journey: { name: 'livestream', config: { preset, target, couponUrl } },
    shape: preset.traffic,
    preAllocatedVUs: preset.traffic.preAllocatedVUs,
    maxVUs: preset.traffic.maxVUs,
    gracefulStopS: gracefulStopS(preset),
  };
}

async function runEngine(plan: LoadPlan) {
  const engine = new EmbeddedEngine({ workers: 2 });
  await engine.start(plan);
  return engine.result();
}

describe('livestream scenario on a real stack', () => {
  let redis: RedisHandle;
  let mocks: Mocks;
  let stack: Stack;
  let dir: string;
  let preset: ResolvedPreset;
  let metrics: Record<string, SummaryMetric>;
  let checkoutRows: Row[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fc-livestream-'));
    redis = await startRedis();
    mocks = await startAllMocks(SEED);
    stack = await startStack({
      redisUrl: redis.url,
      mocks,
      mode: 'hardened',
      prefix: 'lsk6',
      set: STEADY,
    });
    preset = tinyPreset();
    await seedSale(stack.url, preset.sale.skus, preset.sale.coupon);
    // Slow gateways, so a re-click arrives while the first click is still at the bank or wallet.
    for (const m of [mocks.bank, mocks.wallet])
      expect(
        (await call(m.url, 'PUT', '/__chaos', { latency: { dist: 'fixed', ms: 80 } })).status,
      ).toBe(200);
    const r = await runEngine(livestreamPlan(preset, stack.url, mocks.urls.coupon));
    expect(r.warnings).toEqual([]);
    expect(r.started).toBe(r.scheduled);
    metrics = r.summary!.metrics;
    checkoutRows = counterRows(await scrape(stack.url), 'flashcrowd_checkout_');
  }, 90_000);

  afterAll(async () => {
    await stack?.close();
    await mocks?.close();
    await redis?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const count = (name: string) => metrics[name]?.values.count ?? 0;
  const sumRows = (name: string, labels: Record<string, string> = {}) =>
    checkoutRows
      .filter((r) => r.name === name && Object.entries(labels).every(([k, v]) => r.labels[k] === v))
      .reduce((s, r) => s + r.value, 0);

  it('runs every stage and writes the custom metrics and per-stage submetrics to the summary', () => {
    for (const m of ['fc_shoppers', 'fc_orders', 'fc_pay', 'fc_order_failed', 'fc_pay_failed'])
      expect(metrics[m], m).toBeDefined();
    expect(count('fc_shoppers')).toBeGreaterThan(50);
    expect(count('fc_orders{outcome:created}')).toBeGreaterThan(20);
    for (const s of preset.traffic.stages) {
      for (const m of ['fc_order_failed', 'fc_pay_failed', 'fc_order_ms', 'fc_pay_ms'])
        expect(metrics[`${m}{stage:${s.label}}`], `${m}{stage:${s.label}}`).toBeDefined();
    }
    expect(metrics['http_req_duration{service:checkout}']?.values['p(99)']).toBeGreaterThan(0);
    expect(metrics['http_req_failed{service:checkout}']?.values.rate).toBe(0);
    // A healthy stack: no order or payment failed.
    expect(metrics.fc_order_failed?.values.rate).toBe(0);
    expect(metrics.fc_pay_failed?.values.rate).toBe(0);
  });

  it('sent what the summary counts: the checkout saw the same requests, orders and payments', async () => {
    expect(sumRows('flashcrowd_checkout_requests_total', { route: 'skus' })).toBe(
      count('fc_shoppers'),
    );
    // Re-clickers double-submit their orders: every copy is answered on a healthy
    // stack, so the copies beyond the first are fc_idem_replays, and none mismatched.
    expect(count('fc_idem_replays')).toBeGreaterThan(0);
    expect(count('fc_idem_mismatch')).toBe(0);
    expect(sumRows('flashcrowd_checkout_requests_total', { route: 'orders.create' })).toBe(
      count('fc_orders') + count('fc_idem_replays'),
    );
    expect(sumRows('flashcrowd_checkout_requests_total', { route: 'orders.pay' })).toBe(
      count('fc_pay'),
    );
    expect(
      sumRows('flashcrowd_checkout_requests_total', { route: 'orders.pay', status: '200' }),
    ).toBe(count('fc_pay{outcome:paid}'));
    expect(
      sumRows('flashcrowd_checkout_requests_total', { route: 'orders.pay', status: '202' }),
    ).toBe(count('fc_pay{outcome:paying}'));
    const created = sumRows('flashcrowd_checkout_order_events_total', { event: 'created' });
    expect(created).toBe(count('fc_orders{outcome:created}'));
    const released = ['payment_failed', 'expired', 'cancelled'].reduce(
      (s, event) => s + sumRows('flashcrowd_checkout_order_events_total', { event }),
      0,
    );
    const stock = (await call(stack.url, 'GET', '/admin/stock')).body.data as {
      sold: number;
      reserved: number;
    }[];
    const sold = stock.reduce((s, r) => s + r.sold, 0);
    const reserved = stock.reduce((s, r) => s + r.reserved, 0);
    expect(sold + reserved).toBe(created - released);
    expect(sold).toBe(sumRows('flashcrowd_checkout_order_events_total', { event: 'paid' }));
    expect(count('fc_orders{outcome:sold_out}') + count('fc_orders{outcome:created}')).toBe(
      count('fc_orders'),
    );
  });

  it("arrival n is shopper n of the shoppers file (the seed's draws), with its id, SKU, channel and coupon", async () => {
    expect(count('dropped_iterations')).toBe(0);
    const n = count('fc_shoppers');
    const shoppers = makeShoppers({ seed: SEED, preset, count: n });
    expect(count('fc_shoppers{kind:browse}')).toBe(shoppers.filter((s) => s.browseOnly).length);
    // Mask is never sold out at this scale: every mask buyer has an order as drawn.
    const mask = shoppers.filter((s) => !s.browseOnly && s.sku === 'mask');
    expect(mask.length).toBeGreaterThan(5);
    for (const s of mask) {
      const orders = (await call(stack.url, 'GET', `/v1/orders?user=${s.id}`)).body.data as {
        sku: string;
        channel: string;
        coupon?: string;
      }[];
      expect(orders.length, s.id).toBe(1);
      expect(orders[0]!.sku).toBe('mask');
      expect(orders[0]!.channel).toBe(s.channel);
      expect(orders[0]!.coupon !== undefined, `${s.id} coupon`).toBe(s.useCoupon);
    }
  });

  it('sent re-clicks as duplicate pay requests at the same time, and none charged twice', async () => {
    expect(count('fc_pay{click:reclick}')).toBeGreaterThan(0);
    // The duplicates reached the checkout while the first click was still paying.
    expect(
      sumRows('flashcrowd_checkout_requests_total', {
        route: 'orders.pay',
        reason: 'payment_in_progress',
      }),
    ).toBeGreaterThan(0);
    const report = await quiesce(stack);
    expectAuditOk(report);
    expect(report.totals.doubleCharges).toBe(0);
    const bank = (await call(mocks.urls.bank, 'GET', '/v1/statement')).body.entries as {
      type: string;
      orderId: string;
    }[];
    const wallet = (await call(mocks.urls.wallet, 'GET', '/v1/statement')).body.entries as {
      type: string;
      outTradeNo: string;
    }[];
    const captured = [
      ...bank.filter((e) => e.type === 'capture').map((e) => e.orderId),
      ...wallet.filter((e) => e.type === 'capture').map((e) => e.outTradeNo),
    ];
    expect(new Set(captured).size).toBe(captured.length);
    expect(captured.length).toBe(
      sumRows('flashcrowd_checkout_order_events_total', { event: 'paid' }),
    );
  });
  it('seed 0 is a seed like any other: its shoppers are the ones drawn from it', async () => {
    const seed = 0;
    const { preset: raw } = loadPreset('livestream-spike');
    const same = resolvePreset(raw, { seed, timeScale: 1 / 240, loadScale: 0.02 });
    const r = await runEngine(livestreamPlan(same, stack.url, mocks.urls.coupon));
    const m = r.summary!.metrics;
    for (const st of same.traffic.stages)
      expect(m[`fc_shoppers{stage:${st.label}}`], st.label).toBeDefined();
    const n = m.fc_shoppers?.values.count ?? 0;
    expect(n).toBeGreaterThan(10);
    expect(n).toBe(r.started);
    expect(m['fc_shoppers{kind:browse}']?.values.count ?? 0).toBe(
      Array.from({ length: n }, (_, i) => drawShopper(seed, i, same)).filter((x) => x.browseOnly)
        .length,
    );
  }, 60_000);
});

describe('shoppers (harness/shoppers.ts, scenarios/lib/shopper.ts)', () => {
  const preset = tinyPreset();

  it('writes the same file byte for byte for the same seed, and another for another seed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-shoppers-'));
    try {
      const files = [join(dir, 'a.json'), join(dir, 'b.json'), join(dir, 'c.json')];
      await writeShoppers(files[0]!, { seed: 9, count: 300, preset });
      await writeShoppers(files[1]!, { seed: 9, count: 300, preset });
      await writeShoppers(files[2]!, { seed: 10, count: 300, preset });
      const [a, b, c] = files.map((f) => readFileSync(f, 'utf8'));
      expect(a).toBe(b);
      expect(c).not.toBe(a);
      const parsed = JSON.parse(a!) as ShoppersFile;
      expect(parsed).toMatchObject({ seed: 9, preset: 'livestream-spike', count: 300 });
      expect(parsed.shoppers).toHaveLength(300);
      expect(new Set(parsed.shoppers.map((s) => s.id)).size).toBe(300);
      expect(parsed.shoppers[12]!.id).toBe('u-9-12');
      // zh_CN names and cities from faker; decisions from the shared draw.
      for (const s of parsed.shoppers.slice(0, 20)) {
        expect(s.name).toMatch(/^\p{Script=Han}{2,4}$/u);
        expect(s.city).toMatch(/\p{Script=Han}/u);
        expect(s.phone).toMatch(/\d{3}/);
      }
      parsed.shoppers.slice(0, 50).forEach((s, n) => {
        const { name: _n, phone: _p, city: _c, ...decisions } = s;
        expect(decisions).toEqual(drawShopper(9, n, preset));
      });
      // makeShoppers (in memory) gives the same shoppers.
      expect(makeShoppers({ seed: 9, count: 300, preset })).toEqual(parsed.shoppers);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sizes the file from the shape by default and refuses a bad count or seed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-shoppers-'));
    try {
      const head = await writeShoppers(join(dir, 's.json'), { seed: 1, preset });
      expect(head.count).toBe(shopperCount(preset));
      const total = preset.traffic.stages.reduce(
        (acc, s, i, all) =>
          acc +
          ((s.target + (i ? all[i - 1]!.target : preset.traffic.startRate)) / 2) * s.durationS,
        0,
      );
      expect(head.count).toBeGreaterThan(total);
      await expect(
        writeShoppers(join(dir, 'x.json'), { seed: 1, count: 0, preset }),
      ).rejects.toThrow(/count: must be an integer from 1/);
      await expect(
        writeShoppers(join(dir, 'x.json'), { seed: 1.5, count: 5, preset }),
      ).rejects.toThrow(/seed: must be an integer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('draws each decision with the share the preset gives it (99.9% binomial intervals)', () => {
    const n = 20_000;
    const b = {
      ...preset.behaviour,
      browseOnly: 0.3,
      useCoupon: 0.4,
      channels: { card: 2, alipay: 1, wechat: 1 },
      reclickPay: 0.2,
      maxReclicks: 3,
      abandon: 0.1,
      payLater: 0.15,
      allowFallback: 0.5,
      switchChannel: 0.3,
      retryAfterFailure: 0.6,
    };
    const p = { ...preset, behaviour: b };
    const all = Array.from({ length: n }, (_, i) => drawShopper(3, i, p));
    const share = (f: (s: (typeof all)[number]) => boolean) => all.filter(f).length / n;
    const within = (x: number, expected: number, what: string) => {
      const [lo, hi] = binomialInterval(expected, n);
      expect(x, `${what}: ${x} outside [${lo}, ${hi}]`).toBeGreaterThanOrEqual(lo);
      expect(x, what).toBeLessThanOrEqual(hi);
    };
    within(
      share((s) => s.browseOnly),
      0.3,
      'browseOnly',
    );
    within(
      share((s) => s.useCoupon),
      0.4,
      'useCoupon',
    );
    within(
      share((s) => s.channel === 'card'),
      0.5,
      'card',
    );
    within(
      share((s) => s.channel === 'wechat'),
      0.25,
      'wechat',
    );
    within(
      share((s) => s.reclicks > 0),
      0.2,
      'reclickPay',
    );
    within(
      share((s) => s.abandon),
      0.1,
      'abandon',
    );
    within(
      share((s) => s.payLater),
      0.15,
      'payLater',
    );
    within(
      share((s) => s.allowFallback),
      0.5,
      'allowFallback',
    );
    within(
      share((s) => s.switchChannel),
      0.3,
      'switchChannel',
    );
    within(
      share((s) => s.retryAfterFailure),
      0.6,
      'retryAfterFailure',
    );
    within(
      share((s) => s.sku === 'lipstick'),
      0.5,
      'sku',
    );
    expect(all.some((s) => s.abandon && s.payLater)).toBe(false);
    expect(all.every((s) => s.reclicks >= 0 && s.reclicks <= 3)).toBe(true);
    expect(all.every((s) => s.switchTo !== s.channel && s.switchTo !== undefined)).toBe(true);
    // Without a coupon campaign nobody uses a coupon, and no other decision moves.
    const noCoupon = { ...p, sale: { skus: p.sale.skus } };
    const again = Array.from({ length: 200 }, (_, i) => drawShopper(3, i, noCoupon));
    expect(again.every((s) => !s.useCoupon)).toBe(true);
    expect(again.map((s) => s.pauseSeed)).toEqual(all.slice(0, 200).map((s) => s.pauseSeed));
    // One channel: nobody can switch.
    const cardOnly = { ...p, behaviour: { ...b, channels: { card: 1 } } };
    expect(drawShopper(3, 1, cardOnly)).toMatchObject({ channel: 'card', switchChannel: false });
    expect(drawShopper(3, 1, cardOnly).switchTo).toBeUndefined();
  });

  it('gives independent, reproducible streams per seed (mulberry32, mixed seeds)', () => {
    const a = new Rng(mixSeed(1, 2));
    const b = new Rng(mixSeed(1, 2));
    const xs = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(mixSeed(1, 2)).not.toBe(mixSeed(2, 1));
    expect(mixSeed(1, 2)).not.toBe(mixSeed(1, 3));
    const r = new Rng(5);
    for (let i = 0; i < 1000; i += 1) {
      const v = r.int(2, 4);
      expect(v === 2 || v === 3 || v === 4).toBe(true);
      const u = r.between(0.5, 1.5);
      expect(u >= 0.5 && u <= 1.5).toBe(true);
    }
    expect(() => new Rng(1).weighted([['a', 0]])).toThrow(/no item has a positive weight/);
  });
});

describe('how a shopper reads answers (scenarios/lib/shopper.ts)', () => {
  it('classifies order answers into fc_orders outcomes and fc_order_failed', () => {
    const cases: [number, string | undefined, string, boolean][] = [
      [201, undefined, 'created', false],
      [200, undefined, 'created', false],
      [409, 'sold_out', 'sold_out', false],
      [409, 'purchase_limit_exceeded', 'limit', false],
      [402, 'coupon_budget_exhausted', 'coupon_refused', false],
      [409, 'coupon_already_used', 'coupon_refused', false],
      [503, 'coupon_upstream_unavailable', 'failed', true],
      [503, 'overloaded', 'failed', true],
      [429, undefined, 'failed', true],
      [0, undefined, 'failed', true],
      [409, 'idempotency_key_in_use', 'failed', true],
      [404, 'unknown_sku', 'failed', true],
    ];
    for (const [status, reason, outcome, failed] of cases) {
      expect(orderOutcome(status, reason), `${status} ${reason}`).toBe(outcome);
      expect(orderFailed(status, reason), `${status} ${reason}`).toBe(failed);
    }
  });

  it('classifies pay answers, picks the best of a click and its re-clicks, and decides the next step', () => {
    expect(payOutcome(200, 'paid')).toBe('paid');
    expect(payOutcome(202, 'paying')).toBe('paying');
    expect(payOutcome(402, 'payment_failed')).toBe('declined');
    expect(payOutcome(503, 'payment_failed')).toBe('failed');
    expect(payOutcome(409, 'expired')).toBe('failed');
    expect(payOutcome(0, undefined)).toBe('failed');
    expect(payFailed('paid')).toBe(false);
    expect(payFailed('paying')).toBe(false); // no state seen after it
    expect(payFailed('paying', 'paid')).toBe(false);
    expect(payFailed('paying', 'paying')).toBe(false);
    expect(payFailed('paying', 'payment_failed')).toBe(true); // a 202 that ended failed
    expect(payFailed('paying', 'pending_payment')).toBe(true);
    expect(payFailed('paying', 'expired')).toBe(true);
    expect(payFailed('declined')).toBe(true);
    expect(payFailed('failed')).toBe(true);
    expect(bestOutcome(['failed', 'paying', 'paid'])).toBe(2);
    expect(bestOutcome(['failed', 'paying'])).toBe(1);
    expect(bestOutcome(['declined', 'failed'])).toBe(0);
    expect(nextStep('paid')).toBe('done');
    expect(nextStep('paying')).toBe('wait');
    expect(nextStep('pending_payment')).toBe('pay');
    expect(nextStep('payment_failed')).toBe('reorder');
    expect(nextStep('expired')).toBe('reorder');
    expect(nextStep(undefined)).toBe('look');
  });
});
