// Live collection against real services: a real checkout on real Redis with
// the real mocks, a Collector ticking every 150-200 ms, traffic sent with
// plain HTTP (and, once, by the load engine). The series must add up to
// what was sent, the stock series must end where /admin/stock is, latency
// quantiles must lie inside the buckets that hold observations, a mock that
// goes away must give nulls and a warning (not a crash), and a restarted
// service must not give negative rates. The histogram arithmetic is checked
// on fixed buckets first.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Histogram, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCheckout } from '../checkout/service.ts';
import {
  classifyAnswer,
  Collector,
  counterIncrease,
  integrate,
  type CollectorOptions,
} from '../harness/collect.ts';
import { startMocks } from '../harness/mocks.ts';
import { readMetrics } from '../harness/prom.ts';
import {
  bucketIncrease,
  histogramQuantile,
  mergeBuckets,
  type Bucket,
} from '../harness/quantile.ts';
import { freePort, startRedis, type RedisHandle } from '../harness/redis.ts';
import { timeSeriesSchema, type TimeSeries } from '../harness/summary.ts';
import { EmbeddedEngine } from '../harness/engine/embedded.ts';
import {
  createOrder,
  payOrder,
  seedSale,
  sleep,
  startAllMocks,
  startStack,
  STEADY,
  waitFor,
  type Mocks,
  type Stack,
} from './support/checkout.ts';
import { call } from './support/http.ts';

const b = (pairs: [number, number][]): Bucket[] => pairs.map(([le, count]) => ({ le, count }));

describe('histogram arithmetic on fixed buckets', () => {
  // 10 observations <= 1, 20 in (1, 2], 10 in (2, 4], none above 4.
  const H = b([
    [1, 10],
    [2, 30],
    [4, 40],
    [Infinity, 40],
  ]);

  it('interpolates linearly inside the bucket that holds the rank, as Prometheus does', () => {
    expect(histogramQuantile(0.5, H)).toBeCloseTo(1.5, 12); // rank 20: halfway through (1, 2]
    expect(histogramQuantile(0.25, H)).toBeCloseTo(1, 12); // rank 10: the top of the first bucket
    expect(histogramQuantile(0.1, H)).toBeCloseTo(0.4, 12); // first bucket starts at 0
    expect(histogramQuantile(0.9, H)).toBeCloseTo(3.2, 12); // rank 36: 6/10 of (2, 4]
    expect(histogramQuantile(1, H)).toBeCloseTo(4, 12);
  });

  it('answers the highest finite bound for a rank in +Inf, null when empty, and sorts and smooths input', () => {
    const tail = b([
      [1, 10],
      [2, 30],
      [4, 40],
      [Infinity, 50],
    ]);
    expect(histogramQuantile(0.99, tail)).toBe(4);
    expect(
      histogramQuantile(
        0.5,
        b([
          [1, 0],
          [Infinity, 0],
        ]),
      ),
    ).toBeNull();
    expect(histogramQuantile(0.5, [...H].reverse())).toBeCloseTo(1.5, 12);
    // A cumulative count that dips (not monotonic) is raised to the one before it:
    // (1, 2] then holds nothing, and rank 15 lies halfway through (2, 4].
    const dip = b([
      [1, 10],
      [2, 8],
      [4, 20],
      [Infinity, 20],
    ]);
    expect(histogramQuantile(0.75, dip)).toBeCloseTo(3, 12);
    expect(histogramQuantile(0.5, dip)).toBeCloseTo(1, 12);
    // q = 0: the lower bound of the first bucket that holds anything.
    expect(
      histogramQuantile(
        0,
        b([
          [1, 0],
          [2, 5],
          [Infinity, 5],
        ]),
      ),
    ).toBe(1);
    expect(() => histogramQuantile(1.5, H)).toThrow('quantile must be between 0 and 1');
    expect(() => histogramQuantile(0.5, b([[1, 3]]))).toThrow('+Inf bucket');
  });

  it('takes increases between scrapes, treating a total that went down as a restart', () => {
    const prev = b([
      [1, 2],
      [2, 4],
      [Infinity, 4],
    ]);
    const cur = b([
      [1, 5],
      [2, 9],
      [Infinity, 10],
    ]);
    expect(bucketIncrease(cur, prev)).toEqual(
      b([
        [1, 3],
        [2, 5],
        [Infinity, 6],
      ]),
    );
    expect(bucketIncrease(prev, cur)).toEqual(prev); // went down: the restarted counts are the increase
    expect(bucketIncrease(cur)).toEqual(cur);
    expect(counterIncrease(10, 4)).toBe(6);
    expect(counterIncrease(3, 10)).toBe(3);
    expect(counterIncrease(7, undefined)).toBe(7);
    expect(mergeBuckets([prev, cur])).toEqual(
      b([
        [1, 7],
        [2, 13],
        [Infinity, 14],
      ]),
    );
  });

  it("reads a labelled histogram from prom-client's text per label set", async () => {
    const reg = new Registry();
    const h = new Histogram({
      name: 'x_seconds',
      help: 'x',
      labelNames: ['route'],
      buckets: [0.01, 0.1, 1],
      registers: [reg],
    });
    h.observe({ route: 'a' }, 0.005);
    h.observe({ route: 'a' }, 0.05);
    h.observe({ route: 'b' }, 5);
    const { histograms } = readMetrics(await reg.metrics());
    expect(histograms).toEqual([
      {
        name: 'x_seconds',
        labels: { route: 'a' },
        buckets: b([
          [0.01, 1],
          [0.1, 2],
          [1, 2],
          [Infinity, 2],
        ]),
      },
      {
        name: 'x_seconds',
        labels: { route: 'b' },
        buckets: b([
          [0.01, 0],
          [0.1, 0],
          [1, 0],
          [Infinity, 1],
        ]),
      },
    ]);
  });

  it('classifies answers: >= 400 fails unless it is an expected refusal', () => {
    expect(classifyAnswer(201, 'none')).toBe('ok');
    expect(classifyAnswer(202, 'payment_processing')).toBe('ok');
    expect(classifyAnswer(409, 'sold_out')).toBe('refused');
    expect(classifyAnswer(409, 'order_expired')).toBe('failure');
    expect(classifyAnswer(402, 'card_declined')).toBe('failure');
    expect(classifyAnswer(503, 'overloaded')).toBe('failure');
  });
});

// ------------------------------------------------------------- real services

const PREFIX = 'tco-collect';
let redis: RedisHandle;
let mocks: Mocks;
let stack: Stack;
let tmp: string;

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(21);
  stack = await startStack({
    redisUrl: redis.url,
    mocks,
    mode: 'hardened',
    prefix: PREFIX,
    set: [...STEADY, 'paymentTtlMs=12000000'],
  });
  tmp = mkdtempSync(join(tmpdir(), 'fc-collect-'));
});
afterAll(async () => {
  await stack?.close();
  await mocks?.close();
  await redis?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function collector(o: Partial<CollectorOptions> = {}) {
  return new Collector({
    intervalMs: 200,
    checkoutUrl: stack.url,
    mocks: mocks.urls,
    startedAtMs: Date.now(),
    ...o,
  });
}

/** Every series has one entry per t; t only grows. */
function expectWellFormed(ts: TimeSeries) {
  expect(timeSeriesSchema.parse(ts)).toEqual(ts);
  for (const [k, s] of Object.entries(ts.series)) expect(s.length, k).toBe(ts.t.length);
  for (let i = 1; i < ts.t.length; i++) expect(ts.t[i]!).toBeGreaterThan(ts.t[i - 1]!);
}

/** Lowest and highest bound (ms) of the buckets that hold observations. */
function observedBounds(buckets: Bucket[]): [number, number] {
  const sorted = [...buckets].sort((x, y) => x.le - y.le);
  let lo = Infinity;
  let hi = 0;
  for (let i = 0; i < sorted.length; i++) {
    const inBucket = sorted[i]!.count - (i ? sorted[i - 1]!.count : 0);
    if (inBucket <= 0) continue;
    lo = Math.min(lo, i ? sorted[i - 1]!.le : 0);
    hi = Math.max(hi, sorted[i]!.le === Infinity ? sorted[i - 1]!.le : sorted[i]!.le);
  }
  return [lo * 1000, hi * 1000];
}

describe('collecting from a running checkout and its mocks', () => {
  it('rates add up to the requests, failures and payments sent; stock ends at /admin/stock; quantiles lie in the observed buckets', async () => {
    await seedSale(stack.url, [{ id: 'cam', price: 12_900, stock: 50, limit: 1 }]);
    const c = collector();
    await c.start();

    const sent: Record<string, number> = {};
    const failures: Record<string, number> = {};
    const refused: Record<string, number> = {};
    let paid = 0;
    const count = (route: string, status: number, reason?: string) => {
      sent[route] = (sent[route] ?? 0) + 1;
      const cls = classifyAnswer(status, reason ?? 'none');
      const r = reason ?? `http_${status}`;
      if (cls === 'failure') failures[r] = (failures[r] ?? 0) + 1;
      if (cls === 'refused') refused[r] = (refused[r] ?? 0) + 1;
    };

    // Three waves a few ticks apart: browse, order, pay (and a few refusals).
    const orderIds: string[] = [];
    for (let wave = 0; wave < 3; wave++) {
      for (let i = 0; i < 4; i++) {
        const r = await call(stack.url, 'GET', '/v1/skus');
        count('skus', r.status);
      }
      for (let i = 0; i < 4; i++) {
        const r = await createOrder(stack.url, { user: `u${wave}-${i}`, sku: 'cam' });
        expect(r.status, r.text).toBe(201);
        count('orders.create', r.status);
        orderIds.push(r.body.id);
      }
      const dup = await createOrder(stack.url, { user: `u${wave}-0`, sku: 'cam' });
      count('orders.create', dup.status, dup.body.reason);
      expect(dup.body.reason).toBe('purchase_limit_exceeded');
      const unknown = await createOrder(stack.url, { user: `x${wave}`, sku: 'nope' });
      count('orders.create', unknown.status, unknown.body.reason);
      expect(unknown.status).toBe(404);
      for (const id of orderIds.splice(0, 3)) {
        const r = await payOrder(stack.url, id, { channel: 'card' });
        count('orders.pay', r.status, r.body.reason);
        if (r.status === 200 && r.body.state === 'paid') paid++;
      }
      await sleep(450);
    }
    // 12 orders, 9 paid: 38 available, 3 reserved, 9 sold (if every payment went through).
    const snap = c.snapshot();
    const ts = await c.stop();
    expectWellFormed(ts);
    expect(c.warnings()).toEqual([]);
    expect(ts.t.length).toBeGreaterThanOrEqual(8);
    expect(paid).toBe(9);

    // Rates integrated over t give the counts, and totals() agrees exactly.
    const totals = c.totals();
    for (const [route, n] of Object.entries(sent)) {
      expect(integrate(ts, `requests_per_s{route=${route}}`)).toBeCloseTo(n, 6);
      expect(totals[`requests{route=${route}}`]).toBe(n);
    }
    expect(integrate(ts, 'paid_per_s')).toBeCloseTo(paid, 6);
    expect(totals.paid).toBe(paid);
    for (const [reason, n] of Object.entries(failures)) {
      expect(integrate(ts, `failures_per_s{reason=${reason}}`)).toBeCloseTo(n, 6);
      expect(totals[`failures{reason=${reason}}`]).toBe(n);
    }
    expect(failures).toEqual({ unknown_sku: 3 });
    expect(refused).toEqual({ purchase_limit_exceeded: 3 });
    expect(integrate(ts, 'refused_per_s{reason=purchase_limit_exceeded}')).toBeCloseTo(3, 6);
    // Each card payment called the bank once, successfully.
    expect(totals['dep_calls{dependency=bank,outcome=ok}']).toBe(paid);
    expect(totals.shed).toBe(0);
    // The traffic is spread over several ticks, and the first tick is the baseline.
    const skus = ts.series['requests_per_s{route=skus}']!;
    expect(skus[0]).toBeNull();
    expect(skus.filter((v) => (v ?? 0) > 0).length).toBeGreaterThanOrEqual(2);

    // Stock: the series end where /admin/stock is.
    const stock = (await call(stack.url, 'GET', '/admin/stock')).body.data[0];
    expect(stock).toMatchObject({ sku: 'cam', available: 38, reserved: 3, sold: 9 });
    for (const f of ['available', 'reserved', 'sold'] as const)
      expect(ts.series[`stock_${f}{sku=cam}`]!.at(-1)).toBe(stock[f]);
    expect(ts.series['stock_available{sku=cam}']![0]).toBe(50); // the baseline reading has levels
    expect(snap.stock).toEqual({ available: 38, reserved: 3, sold: 9 });
    expect(snap.arrivalsPerS).toBeNull(); // no k6
    expect(snap.failureShare === null || (snap.failureShare >= 0 && snap.failureShare <= 1)).toBe(
      true,
    );

    // Latency: a quantile wherever a shopper request was answered, null elsewhere,
    // inside the bounds of the buckets that hold the observations, p50 <= p99.
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    const hist = mergeBuckets(
      readMetrics(text)
        .histograms.filter(
          (h) =>
            h.name === 'flashcrowd_checkout_request_duration_seconds' &&
            h.labels.route !== 'notify',
        )
        .map((h) => h.buckets),
    );
    const [lo, hi] = observedBounds(hist);
    const p50 = ts.series['latency_ms{q=0.5}']!;
    const p99 = ts.series['latency_ms{q=0.99}']!;
    const shopper = ts.t.map((_, i) =>
      ['skus', 'orders.create', 'orders.pay'].reduce(
        (sum, r) => sum + (ts.series[`requests_per_s{route=${r}}`]![i] ?? 0),
        0,
      ),
    );
    let withLatency = 0;
    for (let i = 1; i < ts.t.length; i++) {
      if (shopper[i]! > 0) {
        expect(p50[i], `t=${ts.t[i]}`).not.toBeNull();
        expect(p50[i]!).toBeGreaterThanOrEqual(lo);
        expect(p99[i]!).toBeLessThanOrEqual(hi);
        expect(p50[i]!).toBeLessThanOrEqual(p99[i]!);
        withLatency++;
      } else expect(p50[i], `t=${ts.t[i]}`).toBeNull();
    }
    expect(withLatency).toBeGreaterThanOrEqual(2);
    // The bank answered the payments: its own latency shows where payments were made.
    const bank = ts.series['dep_latency_ms{dependency=bank,q=0.99}']!;
    expect(bank.some((v) => v !== null && v > 0)).toBe(true);
  });

  it('a mock that stops mid-run gives nulls and counted warnings, not a crash; one restarted on its port gives no negative rate', async () => {
    const port = await freePort();
    let [bank] = await startMocks({ target: 'bank', seed: 3, port });
    const c = collector({ intervalMs: 150, mocks: { bank: bank!.url } });
    await c.start();
    try {
      for (let i = 0; i < 12; i++) {
        expect((await call(bank!.url, 'GET', '/v1/statement')).status).toBe(200);
        await sleep(40);
      }
      await bank!.close();
      const downFrom = c.snapshot().elapsedS;
      await sleep(900);
      const downTo = c.snapshot().elapsedS;
      [bank] = await startMocks({ target: 'bank', seed: 3, port });
      for (let i = 0; i < 3; i++)
        expect((await call(bank!.url, 'GET', '/v1/statement')).status).toBe(200);
      await sleep(500);
      const ts = await c.stop();
      expectWellFormed(ts);

      const key = 'dep_latency_ms{dependency=bank,q=0.5}';
      const lat = ts.series[key]!;
      // Before the stop: values; while down: null; the checkout's series kept going meanwhile.
      const before = ts.t.map((t, i) => (t < downFrom ? lat[i] : undefined));
      expect(before.some((v) => typeof v === 'number' && v >= 0)).toBe(true);
      const down = ts.t
        .map((t, i) => ({ t, i }))
        .filter(({ t }) => t > downFrom + 0.2 && t < downTo);
      expect(down.length).toBeGreaterThanOrEqual(2);
      for (const { i } of down) {
        expect(lat[i], `t=${ts.t[i]}`).toBeNull();
        expect(ts.series.paid_per_s![i], `t=${ts.t[i]}`).toBe(0);
      }
      // After the restart (its counts began again at 0): values again, never negative.
      const after = ts.t.map((t, i) => (t > downTo ? lat[i] : undefined));
      expect(after.some((v) => typeof v === 'number')).toBe(true);
      for (const s of Object.values(ts.series))
        for (const v of s) if (v !== null) expect(v).toBeGreaterThanOrEqual(0);

      // Only the bank's scrapes failed, each counted (a pooled connection may fail otherwise once).
      const w = c.warnings();
      for (const x of w) expect(x).toMatch(/^bank: GET \/metrics failed: .*; recorded as null/);
      const refused = w.find((x) => x.includes('ECONNREFUSED'));
      expect(refused, w.join('\n')).toBeDefined();
      const times = w.map((x) => Number(/\((\d+) times\)$/.exec(x)?.[1] ?? 1));
      expect(times.reduce((a, n) => a + n, 0)).toBeGreaterThanOrEqual(down.length);
    } finally {
      await bank?.close().catch(() => undefined);
    }
  });

  it('a restarted checkout resets the deltas (no negative rate, exact totals); the admin token reaches /admin/stock', async () => {
    const TOKEN = 'collect-secret';
    const port = await freePort();
    const opts = {
      redisUrl: redis.url,
      ...mocks.urls,
      mode: 'hardened' as const,
      set: [`keyPrefix=${PREFIX}-r`, ...STEADY],
      port,
      adminToken: TOKEN,
    };
    const auth = { authorization: `Bearer ${TOKEN}` };
    let co = await startCheckout(opts);
    try {
      const seeded = await call(
        co.url,
        'POST',
        '/admin/sale',
        { skus: [{ id: 'pen', price: 100, stock: 7 }] },
        auth,
      );
      expect(seeded.status, seeded.text).toBe(201);

      // A wrong token: stock reads fail with 401, named in a warning; nothing else breaks.
      const wrong = new Collector({
        intervalMs: 100,
        checkoutUrl: co.url,
        adminToken: 'nope',
        startedAtMs: Date.now(),
      });
      await wrong.start();
      await sleep(250);
      const wts = await wrong.stop();
      expect(Object.keys(wts.series).filter((k) => k.startsWith('stock_'))).toEqual([]);
      expect(wrong.warnings()).toEqual([
        expect.stringMatching(
          /^stock: GET \/admin\/stock failed: HTTP 401; recorded as null \(\d+ times\)$/,
        ),
      ]);

      const c = new Collector({
        intervalMs: 150,
        checkoutUrl: co.url,
        adminToken: TOKEN,
        startedAtMs: Date.now(),
      });
      await c.start();
      for (let i = 0; i < 6; i++) expect((await call(co.url, 'GET', '/v1/skus')).status).toBe(200);
      await sleep(400);
      await co.close();
      await sleep(350);
      co = await startCheckout(opts);
      for (let i = 0; i < 2; i++) expect((await call(co.url, 'GET', '/v1/skus')).status).toBe(200);
      await sleep(400);
      const ts = await c.stop();
      expectWellFormed(ts);

      expect(c.totals()['requests{route=skus}']).toBe(8);
      const skus = ts.series['requests_per_s{route=skus}']!;
      expect(skus.some((v) => v === null)).toBe(true); // while it was down
      for (const v of skus) if (v !== null) expect(v).toBeGreaterThanOrEqual(0);
      expect(ts.series['stock_available{sku=pen}']!.at(-1)).toBe(7);
      // (HTTP 401, not '401': the warning of the down checkout names its port, which may hold 401)
      expect(c.warnings().some((w) => w.includes('HTTP 401'))).toBe(false);
      expect(c.warnings().some((w) => w.startsWith('checkout: GET /metrics failed'))).toBe(true);
    } finally {
      await co.close();
    }
  });
});

describe('I1 and I2 at every collector tick', () => {
  const readings = (c: Collector) => c.stockWatch.readingCount;
  const ticksPast = (c: Collector, n: number) => {
    const want = readings(c) + n;
    return waitFor(`${n} more stock readings`, async () => readings(c) >= want, 20_000, 50);
  };

  it('stock counters that drift mid-run and are put right before the end break I1, from the first tick that saw it; a clean run held at every reading', async () => {
    await seedSale(stack.url, [{ id: 'drift', price: 9_900, stock: 10 }]);
    const key = stack.store.keys('drift').stock;

    const clean = collector();
    await clean.start();
    await ticksPast(clean, 3);
    await clean.stop();
    const ok = await stack.audit();
    clean.stockWatch.apply(ok);
    expect(ok.byId.I1.ok).toBe(true);
    expect(ok.byId.I1.note).toMatch(/held at every one of \d+ stock readings during the run/);

    const c = collector();
    await c.start();
    await ticksPast(c, 2);
    await stack.store.redis.hincrby(key, 'available', 1); // one unit out of nowhere...
    await ticksPast(c, 2);
    await stack.store.redis.hincrby(key, 'available', -1); // ...gone again before the end
    await ticksPast(c, 2);
    await c.stop();
    const r = await stack.audit();
    expect(r.byId.I1.ok, 'the end alone holds').toBe(true);
    c.stockWatch.apply(r);
    expect(r.byId.I1.ok).toBe(false);
    expect(r.violated).toContain('I1');
    expect(r.byId.I1.count).toBeGreaterThanOrEqual(2);
    expect(r.byId.I1.examples[0]).toMatch(
      /^t=[\d.]+ s drift: sold 0 \+ reserved 0 \+ available 11 = 11, initial 10$/,
    );
    expect(r.byId.I1.note).toMatch(
      /at the end it held; broken at \d+ of \d+ stock readings during the run \(\d+ ticks\), first at t=[\d.]+ s/,
    );
    expect(r.byId.I2.ok).toBe(true);
  }, 60_000);
});

describe('tick scheduling', () => {
  it('never overlaps ticks: a slow source makes the next ones skipped (counted), a timeout gives a warning', async () => {
    // A checkout stand-in whose /metrics answers after 250 ms, counting concurrent scrapes.
    let inFlight = 0;
    let maxInFlight = 0;
    const server = http.createServer((req, res) => {
      if (req.url === '/admin/stock') {
        res.setHeader('content-type', 'application/json');
        res.end('{"data":[]}');
        return;
      }
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.end('');
      }, 250);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const c = new Collector({ intervalMs: 100, checkoutUrl: url, startedAtMs: Date.now() });
      await c.start();
      await sleep(1_000);
      const ts = await c.stop();
      expectWellFormed(ts);
      expect(maxInFlight).toBe(1);
      for (let i = 1; i < ts.t.length; i++)
        expect(ts.t[i]! - ts.t[i - 1]!).toBeGreaterThanOrEqual(0.25);
      const w = c.warnings();
      expect(w).toHaveLength(1);
      const m =
        /^collector: a tick took longer than the 100 ms interval; the next one was skipped \((\d+) times\)$/.exec(
          w[0]!,
        );
      expect(m, w[0]).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(4);

      const impatient = new Collector({
        intervalMs: 100,
        checkoutUrl: url,
        startedAtMs: Date.now(),
        scrapeTimeoutMs: 50,
      });
      await impatient.start();
      await sleep(300);
      const its = await impatient.stop();
      expect(its.series.paid_per_s!.every((v) => v === null)).toBe(true);
      expect(impatient.warnings()).toEqual([
        expect.stringMatching(
          /^checkout: GET \/metrics failed: timed out; recorded as null \(\d+ times\)$/,
        ),
      ]);
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });
});

describe('collecting from the load engine', () => {
  it("arrivals_per_s adds up to the engine's started arrivals (constant arrival rate against GET /v1/skus)", async () => {
    const engine = new EmbeddedEngine({ workers: 1 });
    const c = collector({ load: () => engine.snapshot() });
    // The collector takes its baseline before the first arrival.
    await c.start();
    await engine.start({
      journey: { name: 'get', config: { url: `${stack.url}/v1/skus` } },
      shape: { startRate: 4, stages: [{ durationS: 4, target: 4 }] },
      preAllocatedVUs: 2,
      maxVUs: 4,
      gracefulStopS: 5,
    });
    const r = await engine.result();
    // One more tick reads the final report.
    await sleep(1_300);
    const snap = c.snapshot();
    const ts = await c.stop();
    expectWellFormed(ts);
    expect(r.scheduled).toBe(16);
    expect(r.started).toBe(16);
    expect(integrate(ts, 'arrivals_per_s')).toBeCloseTo(16, 6);
    expect(c.totals().arrivals).toBe(16);
    expect(c.totals().dropped).toBe(0);
    // Every arrival made one GET /v1/skus, which the checkout counted.
    expect(r.summary!.metrics.http_reqs!.values.count).toBe(16);
    expect(c.totals()['requests{route=skus}']).toBe(16);
    const vus = ts.series.vus!;
    expect(vus.some((v) => v !== null)).toBe(true);
    for (const v of vus) if (v !== null) expect(v).toBeGreaterThanOrEqual(0);
    expect(snap.vus === null || snap.vus >= 0).toBe(true);
    expect(c.warnings()).toEqual([]);
  });
});
