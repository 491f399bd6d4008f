// The cascade timeline (harness/cascade.ts) on synthetic time series: onsets
// in time order with their lags and the story; a flat run has none; a lone
// second above the threshold is not an onset; the baseline comes from the
// baseline stage; the retry amplification by layer. Pure: no servers.
import { describe, expect, it } from 'vitest';
import { baselineWindow, cascadeOf, CASCADE_RULE } from '../harness/cascade.ts';
import { runSummarySchema, seriesKey, type TimeSeries } from '../harness/summary.ts';
import { baseSummary } from './support/report-fixtures.ts';

const N = 30;
const t = Array.from({ length: N }, (_, i) => i);

/** `base` before second `from`, `after` from it on (a lone spike: `until` = from + 1). */
const step = (base: number, after: number, from = N, until = N) =>
  t.map((i) => (i >= from && i < until ? after : base));

interface Rises {
  p99At?: number;
  retriesAt?: number;
  shedAt?: number;
  stockAt?: number;
  bulkheadAt?: number;
  queueAt?: number;
  loopAt?: number;
  couponsAt?: number;
  notifyAt?: number;
  redisAt?: number;
  /** The last second (exclusive) of the p99 rise: a short spike. */
  p99Until?: number;
}

/** A hardened run's series: bank p99 40 ms, 1 retry/s, no shedding, 30 units held, until each rises. */
function run(r: Rises = {}, bands = [{ fromS: 9 }]): TimeSeries {
  const s: Record<string, (number | null)[]> = {};
  const put = (name: string, labels: Record<string, string>, v: (number | null)[]) =>
    (s[seriesKey(name, labels)] = v);
  put('dep_latency_ms', { dependency: 'bank', q: '0.99' }, step(40, 168, r.p99At, r.p99Until));
  put('dep_calls_per_s', { dependency: 'bank', outcome: 'ok' }, step(10, 10));
  put('retries_per_s', { dependency: 'bank' }, step(1, 6, r.retriesAt));
  put('breaker_state', { dependency: 'bank', key: 'card' }, step(0, 0));
  put('shed_per_s', {}, step(0, 5, r.shedAt));
  put('latency_ms', { q: '0.99' }, step(80, 80));
  put('failures_per_s', { reason: 'upstream_timeout' }, step(0, 0));
  put('requests_per_s', { route: 'orders.pay' }, step(20, 20));
  put('requests_per_s', { route: 'orders.create' }, step(20, 20));
  put('stock_reserved', { sku: 'a' }, step(20, 50, r.stockAt));
  put('stock_reserved', { sku: 'b' }, step(10, 20, r.stockAt));
  put('bulkhead_queued', { dependency: 'bank' }, step(0, 40, r.bulkheadAt));
  put('queue_latency_ms', { q: '0.99' }, step(5, 900, r.queueAt));
  put('loop_delay_ms', {}, step(12, 300, r.loopAt));
  put('coupons_locked', {}, step(20, 60, r.couponsAt));
  put('notify_backlog', {}, step(3, 80, r.notifyAt));
  put('redis_latency_ms', { q: '0.99' }, step(2, 120, r.redisAt));
  return {
    schemaVersion: 1,
    startedAtMs: 0,
    intervalS: 1,
    t,
    series: s,
    bands: bands.map((b) => ({ service: 'bank', label: 'brownout', fromS: b.fromS, toS: 20 })),
    stages: [
      { label: 'baseline', fromS: 0, toS: 8 },
      { label: 'spike', fromS: 8, toS: N },
    ],
  };
}

const ALL_SIGNALS = [
  'dep.p99_ms{dependency=bank}',
  'dep.error_rate{dependency=bank}',
  'dep.retries_per_s{dependency=bank}',
  'dep.breaker_open{dependency=bank}',
  'dep.bulkhead_queued{dependency=bank}',
  'redis.p99_ms',
  'checkout.queue_ms',
  'checkout.p99_ms',
  'checkout.loop_delay_ms',
  'checkout.failure_rate',
  'checkout.shed_per_s',
  'stock.held',
  'coupons.locked',
  'notify.backlog',
];

const brief = (ts: TimeSeries) =>
  cascadeOf(ts, {}).onsets.map((o) => [o.signal, o.atS, o.lagS] as const);

describe('cascadeOf', () => {
  it('orders the onsets in time, with their lags from the first fault band, baselines, thresholds and peaks', () => {
    const c = cascadeOf(run({ p99At: 10, retriesAt: 12, shedAt: 14, stockAt: 15 }), {});
    expect(c.firstFaultS).toBe(9);
    expect(c.onsets).toEqual([
      {
        signal: 'dep.p99_ms',
        dependency: 'bank',
        atS: 10,
        lagS: 1,
        baseline: 40,
        threshold: 90,
        peak: 168,
      },
      {
        signal: 'dep.retries_per_s',
        dependency: 'bank',
        atS: 12,
        lagS: 3,
        baseline: 1,
        threshold: 3,
        peak: 6,
      },
      { signal: 'checkout.shed_per_s', atS: 14, lagS: 5, baseline: 0, threshold: 0, peak: 5 },
      { signal: 'stock.held', atS: 15, lagS: 6, baseline: 30, threshold: 45, peak: 70 },
    ]);
    expect(c.story).toBe(
      'bank p99 x4.2 at 10 s -> bank retries x6 at 12 s -> checkout shed at 14 s -> stock held +40 at 15 s',
    );
    expect(c.none).toEqual([
      'dep.error_rate{dependency=bank}',
      'dep.breaker_open{dependency=bank}',
      'dep.bulkhead_queued{dependency=bank}',
      'redis.p99_ms',
      'checkout.queue_ms',
      'checkout.p99_ms',
      'checkout.loop_delay_ms',
      'checkout.failure_rate',
      'coupons.locked',
      'notify.backlog',
    ]);
    expect(c.rule).toEqual(CASCADE_RULE);
    // summary.json accepts it
    expect(runSummarySchema.parse({ ...baseSummary(), cascade: c }).cascade).toEqual(c);
  });

  it('follows the data: a later p99 rise moves its onset and its place in the story', () => {
    const ts = run({ p99At: 16, retriesAt: 12, shedAt: 14, stockAt: 15 });
    expect(brief(ts)).toEqual([
      ['dep.retries_per_s', 12, 3],
      ['checkout.shed_per_s', 14, 5],
      ['stock.held', 15, 6],
      ['dep.p99_ms', 16, 7],
    ]);
    expect(cascadeOf(ts, {}).story).toMatch(/stock held \+40 at 15 s -> bank p99 x4\.2 at 16 s$/);
  });

  it("names the bulkhead's queue, the checkout's queue time and event-loop delay, coupons locked and the wallet's notification backlog", () => {
    const ts = run({ bulkheadAt: 11, queueAt: 12, loopAt: 13, couponsAt: 15, notifyAt: 17 });
    expect(brief(ts)).toEqual([
      ['dep.bulkhead_queued', 11, 2],
      ['checkout.queue_ms', 12, 3],
      ['checkout.loop_delay_ms', 13, 4],
      ['coupons.locked', 15, 6],
      ['notify.backlog', 17, 8],
    ]);
    expect(cascadeOf(ts, {}).story).toBe(
      'bank bulkhead queue 40 at 11 s -> checkout queue time x180 at 12 s -> checkout event-loop delay x25 at 13 s -> coupons locked +40 at 15 s -> notifications waiting 80 at 17 s',
    );
  });

  it("names the checkout's Redis latency (redis_latency_ms p99) between the gateways' signals and the checkout's", () => {
    const ts = run({ retriesAt: 12, redisAt: 12, queueAt: 14 });
    expect(brief(ts)).toEqual([
      ['dep.retries_per_s', 12, 3],
      ['redis.p99_ms', 12, 3],
      ['checkout.queue_ms', 14, 5],
    ]);
    const o = cascadeOf(ts, {}).onsets.find((x) => x.signal === 'redis.p99_ms')!;
    // threshold max(2 x 2, 2 + 25): the floor, not the factor, rules a fast Redis.
    expect(o).toMatchObject({ baseline: 2, threshold: 27, peak: 120 });
    expect(cascadeOf(ts, {}).story).toContain('Redis p99 x60 at 12 s');
    // Below the floor (2 ms -> 20 ms) is no onset.
    const small = run({});
    small.series[seriesKey('redis_latency_ms', { q: '0.99' })] = step(2, 20, 12);
    expect(cascadeOf(small, {}).none).toContain('redis.p99_ms');
  });

  it('a flat run has no onset: every signal is listed as such', () => {
    const c = cascadeOf(run({}, []), {});
    expect(c.onsets).toEqual([]);
    expect(c.none).toEqual(ALL_SIGNALS);
    expect(c.story).toBe('no onset');
    expect(c.firstFaultS).toBeNull();
  });

  it('one second above the threshold is not an onset; two in a row are', () => {
    expect(brief(run({ p99At: 10, p99Until: 11 }))).toEqual([]);
    expect(brief(run({ p99At: 10, p99Until: 12 }))).toEqual([['dep.p99_ms', 10, 1]]);
    // a gap (no sample) breaks the run of seconds
    const gap = run({ p99At: 10 });
    gap.series['dep_latency_ms{dependency=bank,q=0.99}']![11] = null;
    expect(brief(gap)).toEqual([['dep.p99_ms', 12, 3]]);
  });

  it('a breaker counts from its first open second, on any key; half-open does not', () => {
    const ts = run();
    ts.series['breaker_state{dependency=bank,key=wechat}'] = step(0, 2, 5, 9);
    expect(brief(ts)).toEqual([]);
    ts.series['breaker_state{dependency=bank,key=card}'] = step(0, 1, 11, 12);
    expect(brief(ts)).toEqual([['dep.breaker_open', 11, 2]]);
  });

  it('error rates are non-ok calls over all calls of the second, shopper failures over shopper requests', () => {
    const ts = run();
    ts.series['dep_calls_per_s{dependency=bank,outcome=upstream_timeout}'] = step(0, 5, 13);
    ts.series['failures_per_s{reason=upstream_timeout}'] = step(0.4, 4, 13); // 1% then 10% of 40/s
    const c = cascadeOf(ts, {});
    expect(c.onsets).toMatchObject([
      { signal: 'dep.error_rate', atS: 13, baseline: 0, peak: 5 / 15 },
      { signal: 'checkout.failure_rate', atS: 13 },
    ]);
    const f = c.onsets[1]!;
    expect([f.baseline, f.threshold, f.peak].map((x) => x.toFixed(4))).toEqual([
      '0.0100',
      '0.0600',
      '0.1000',
    ]);
    expect(c.story).toBe('bank errors 33.3% at 13 s -> shopper failures 10% at 13 s');
  });
});

describe('the baseline', () => {
  it('is the baseline stage, else the first 20% of the run, and at least 3 samples', () => {
    const ts = run();
    expect(baselineWindow(ts)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(baselineWindow({ ...ts, stages: [{ label: 'peak', fromS: 0, toS: N }] })).toEqual([
      0, 1, 2, 3, 4, 5,
    ]);
    expect(baselineWindow({ ...ts, stages: [{ label: 'baseline', fromS: 0, toS: 1 }] })).toEqual([
      0, 1, 2,
    ]);
  });

  it('is taken over the baseline stage: a longer stage takes in the rise and sees no onset', () => {
    // bank p99 40 ms, 168 ms from second 8 (where the spike stage starts)
    const ts = run({ p99At: 8 });
    expect(brief(ts)).toEqual([['dep.p99_ms', 8, -1]]);
    const long = { ...ts, stages: [{ label: 'baseline', fromS: 0, toS: 20 }] };
    expect(brief(long)).toEqual([]);
    expect(cascadeOf(long, {}).none).toContain('dep.p99_ms{dependency=bank}');
  });
});

describe('amplification', () => {
  it('divides the gateway calls by the pay clicks, by layer', () => {
    const ts = run();
    ts.series['requests_per_s{route=orders.pay}'] = step(5, 5); // 29 s x 5 = 145 pay requests
    const a = cascadeOf(ts, {
      'pay.attempted': 100,
      'dep.calls{dependency=bank}': 240,
      'dep.calls{dependency=wallet}': 60,
      'dep.calls{dependency=coupon}': 50,
    }).amplification;
    expect(a).toMatchObject({ payClicks: 100, payRequests: 145, paymentCalls: 300 });
    expect(a.reclickX).toBeCloseTo(1.45);
    expect(a.checkoutX).toBeCloseTo(300 / 145);
    expect(a.endToEndX).toBeCloseTo(3);
    expect(a.dependencies.map((d) => d.dependency)).toEqual(['bank', 'coupon', 'wallet']);
    const [bank, coupon, wallet] = a.dependencies;
    expect(bank).toMatchObject({ calls: 240, retries: 29, perPayClick: 2.4 }); // 1 retry/s
    expect(bank!.retryX).toBeCloseTo(240 / 211);
    expect(coupon!.perPayClick).toBeNull(); // called when ordering, not paying
    expect(wallet).toMatchObject({ retries: 0, retryX: 1, perPayClick: 0.6 }); // no retries series
  });

  it('is null where the metrics are missing', () => {
    const a = cascadeOf(run(), {}).amplification;
    expect(a).toMatchObject({
      payClicks: null,
      reclickX: null,
      paymentCalls: null,
      endToEndX: null,
    });
    expect(a.dependencies).toEqual([]);
  });
});
