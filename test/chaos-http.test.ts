// The chaos engine seen through a real HTTP client on loopback, with the bank
// as the host service: each fault kind arrives as what it is, rates and
// latency quantiles match the profile, windows and timelines take effect,
// capacity limits hold, and the admin routes validate what they are given.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createBank } from '../mock-gateways/bank/service.ts';
import { latencyQuantile } from '../mock-gateways/chaos/latency.ts';
import { INJECTED_LATENCY_HEADER } from '../mock-gateways/chaos/middleware.ts';
import type { LatencySpec } from '../mock-gateways/chaos/profile.ts';
import type { RunningService } from '../mock-gateways/service.ts';
import { call, rawRequest, startMock } from './support/http.ts';
import { binomialInterval, pool, quantile, quantileRankInterval } from './support/stats.ts';

const running: RunningService[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});
async function bank(profile?: unknown, seed = 1) {
  const s = await startMock(createBank(), { profile, seed });
  running.push(s);
  return s;
}

let order = 0;
const payment = () => ({
  orderId: `o-${++order}`,
  amount: 1000,
  currency: 'CNY',
  card: { number: '4242424242424242' },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault kinds as a real client sees them', () => {
  it('http: the injected status with a JSON body that carries a reason code', async () => {
    const s = await bank({ errors: [{ rate: 1, kind: 'http', status: 502 }] });
    const r = await call(s.url, 'POST', '/v1/payments', payment());
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({
      error: 'injected_fault',
      reason: 'upstream_unavailable',
      status: 502,
    });
  });

  it('rate_limit: 429 with Retry-After', async () => {
    const s = await bank({ errors: [{ rate: 1, kind: 'rate_limit', retryAfterS: 7 }] });
    const r = await call(s.url, 'POST', '/v1/payments', payment());
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('7');
    expect(r.body.reason).toBe('rate_limited');
  });

  it('decline: the domain decline format (402, reason code) and a declined payment on record', async () => {
    const s = await bank({ errors: [{ rate: 1, kind: 'decline', reason: 'insufficient_funds' }] });
    const p = payment();
    const r = await call(s.url, 'POST', '/v1/payments', p);
    expect(r.status).toBe(402);
    expect(r.body).toMatchObject({
      status: 'declined',
      reason: 'insufficient_funds',
      orderId: p.orderId,
    });
    s.engine.clearProfile();
    const list = await call(s.url, 'GET', `/v1/payments?orderId=${p.orderId}`);
    expect(list.body.data.map((x: { status: string }) => x.status)).toEqual(['declined']);
  });

  it('reset: the connection is reset (ECONNRESET) and nothing is charged', async () => {
    const s = await bank({ errors: [{ rate: 1, kind: 'reset' }] });
    const r = await rawRequest(`${s.url}/v1/payments`, { body: payment() });
    expect(r.kind).toBe('reset');
    await s.engine.clearProfile();
    expect((await call(s.url, 'GET', '/v1/statement')).body.totals.captures).toBe(0);
  });

  it('empty: the connection closes with no reply', async () => {
    const s = await bank({ errors: [{ rate: 1, kind: 'empty' }] });
    expect((await rawRequest(`${s.url}/v1/payments`, { body: payment() })).kind).toBe('closed');
  });

  it('hang: no answer until the client gives up', async () => {
    const s = await bank({ errors: [{ rate: 1, kind: 'hang', hangMs: 60_000 }] });
    const r = await rawRequest(`${s.url}/v1/payments`, { body: payment(), timeoutMs: 300 });
    expect(r.kind).toBe('timeout');
  });

  it('hang: the server closes the connection after hangMs when the client waits longer', async () => {
    const s = await bank({ errors: [{ rate: 1, kind: 'hang', hangMs: 100 }] });
    const r = await rawRequest(`${s.url}/v1/payments`, { body: payment(), timeoutMs: 10_000 });
    expect(['closed', 'reset']).toContain(r.kind);
  });

  it('malformed: 200 with a body that is not valid JSON', async () => {
    const s = await bank({ errors: [{ rate: 1, kind: 'malformed' }] });
    const r = await rawRequest(`${s.url}/v1/payments`, { body: payment() });
    expect(r.kind).toBe('response');
    if (r.kind !== 'response') return;
    expect(r.status).toBe(200);
    expect(() => JSON.parse(r.body)).toThrow();
  });

  it('dribble: the real answer, arriving in small chunks spread over time', async () => {
    const s = await bank({
      errors: [{ rate: 1, kind: 'dribble', chunkBytes: 40, intervalMs: 30 }],
    });
    const r = await rawRequest(`${s.url}/v1/payments`, { body: payment() });
    expect(r.kind).toBe('response');
    if (r.kind !== 'response') return;
    const body = JSON.parse(r.body);
    expect(body.status).toBe('succeeded');
    const chunks = Math.ceil(Buffer.byteLength(r.body) / 40);
    // A lower bound only: the pauses between chunks cannot be shorter than intervalMs.
    expect(r.ms).toBeGreaterThanOrEqual((chunks - 1) * 30 * 0.9);
  });
});

describe('ambiguous outcomes', () => {
  for (const kind of ['http', 'reset', 'empty', 'hang'] as const) {
    it(`${kind}: the payment is captured although the caller sees a failure`, async () => {
      const s = await bank({
        errors: [{ rate: 1, kind, ambiguous: true, status: 504, hangMs: 60_000 }],
      });
      const p = payment();
      const r = await rawRequest(`${s.url}/v1/payments`, { body: p, timeoutMs: 500 });
      if (kind === 'http') expect(r).toMatchObject({ kind: 'response', status: 504 });
      else expect(r.kind).not.toBe('response');
      s.engine.clearProfile();
      const list = await call(s.url, 'GET', `/v1/payments?orderId=${p.orderId}`);
      expect(list.body.data).toHaveLength(1);
      expect(list.body.data[0]).toMatchObject({ status: 'succeeded', captured: true });
    });
  }
});

describe('rates and latency over many requests', () => {
  it('error rates over 4000 HTTP requests fall inside the binomial 99.9% interval', async () => {
    const n = 4_000;
    const s = await bank({
      errors: [
        { rate: 0.1, kind: 'http', status: 503 },
        { rate: 0.05, kind: 'rate_limit' },
        { rate: 0.03, kind: 'decline', reason: 'processing_error' },
      ],
      extra: { velocity: false },
    });
    const statuses = await pool(
      n,
      32,
      async () => (await call(s.url, 'POST', '/v1/payments', payment())).status,
    );
    const share = (st: number) => statuses.filter((x) => x === st).length / n;
    for (const [st, rate] of [
      [503, 0.1],
      [429, 0.05],
      [402, 0.03],
      [200, 0.82],
    ] as const) {
      const [lo, hi] = binomialInterval(rate, n);
      expect(share(st), `HTTP ${st}`).toBeGreaterThanOrEqual(lo);
      expect(share(st), `HTTP ${st}`).toBeLessThanOrEqual(hi);
    }
  });

  it('injected latencies over 2000 requests match a lognormal profile: p50 and p99 inside the 99.9% order-statistic interval', async () => {
    const n = 2_000;
    const spec: LatencySpec = { dist: 'lognormal', medianMs: 20, p99Ms: 120 };
    const s = await bank({ latency: spec });
    const injected = await pool(n, 50, async () => {
      const r = await rawRequest(`${s.url}/v1/payments/none`);
      if (r.kind !== 'response') throw new Error(`unexpected ${r.kind}`);
      return Number(r.headers[INJECTED_LATENCY_HEADER]);
    });
    for (const q of [0.5, 0.99]) {
      const [lo, hi] = quantileRankInterval(q, n);
      const got = quantile(injected, q);
      expect(got, `p${q * 100}`).toBeGreaterThanOrEqual(latencyQuantile(spec, lo));
      expect(got, `p${q * 100}`).toBeLessThanOrEqual(latencyQuantile(spec, hi));
    }
  });

  it('a client waits the injected latency, never less, and no more than the overhead a no-fault route shows at the same time', async () => {
    const spec: LatencySpec = { dist: 'lognormal', medianMs: 20, p99Ms: 120 };
    const s = await bank({ latency: spec });
    // Interleave delayed requests with /healthz (no chaos) so both see the same machine load.
    const results = await pool(1_200, 40, async (i) => {
      const r = await rawRequest(i % 2 === 0 ? `${s.url}/v1/payments/none` : `${s.url}/healthz`);
      if (r.kind !== 'response') throw new Error(`unexpected ${r.kind}`);
      return {
        delayed: i % 2 === 0,
        ms: r.ms,
        injected: Number(r.headers[INJECTED_LATENCY_HEADER] ?? 0),
      };
    });
    const delayed = results.filter((r) => r.delayed);
    const control = results.filter((r) => !r.delayed).map((r) => r.ms);
    // Timers never fire early (1 ms of rounding allowed).
    for (const r of delayed) expect(r.ms).toBeGreaterThanOrEqual(r.injected - 1);
    const excess = delayed.map((r) => r.ms - r.injected);
    expect(quantile(excess, 0.5)).toBeLessThanOrEqual(2 * quantile(control, 0.5) + 5);
  });

  it('same seed and same order ids give the same faults over HTTP; another seed does not', async () => {
    const profile = {
      errors: [
        { rate: 0.2, kind: 'http', status: 503 },
        { rate: 0.1, kind: 'rate_limit' },
        { rate: 0.1, kind: 'malformed' },
      ],
      extra: { velocity: false },
    };
    const sequence = async (seed: number) => {
      const s = await bank(profile, seed);
      const out: string[] = [];
      for (let i = 0; i < 200; i++) {
        const r = await rawRequest(`${s.url}/v1/payments`, {
          body: { ...payment(), orderId: `seq-${i}` },
        });
        out.push(
          r.kind === 'response'
            ? `${r.status}:${r.body.startsWith('{"status":"succeeded","amount":') && !r.body.endsWith('}') ? 'malformed' : 'ok'}`
            : r.kind,
        );
      }
      return out;
    };
    const a = await sequence(99);
    const b = await sequence(99);
    const c = await sequence(100);
    expect(a).toEqual(b);
    expect(new Set(a).size).toBeGreaterThanOrEqual(4);
    expect(c).not.toEqual(a);
  });
});

describe('outage windows and timelines on a live server', () => {
  it('down (reset) during the window, serving again after it', async () => {
    const s = await bank({ outages: [{ startMs: 0, durationMs: 400, mode: 'down' }] });
    expect((await rawRequest(`${s.url}/v1/payments`, { body: payment() })).kind).toBe('reset');
    while (s.engine.elapsedMs() < 450) await sleep(25);
    expect(await rawRequest(`${s.url}/v1/payments`, { body: payment() })).toMatchObject({
      kind: 'response',
      status: 200,
    });
  });

  it('down (refuse): connections are refused during the window, accepted after it', async () => {
    const s = await bank({
      outages: [{ startMs: 0, durationMs: 400, mode: 'down', how: 'refuse' }],
    });
    const r = await rawRequest(`${s.url}/healthz`);
    expect(r).toMatchObject({ kind: 'error', code: 'ECONNREFUSED' });
    while (s.engine.elapsedMs() < 500) await sleep(25);
    expect(await rawRequest(`${s.url}/healthz`)).toMatchObject({ kind: 'response', status: 200 });
  });

  it('down (refuse): the port is outside the ephemeral range, and one taken during the window is retried until the service listens again', async () => {
    const low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    const s = await bank({
      outages: [{ startMs: 0, durationMs: 300, mode: 'down', how: 'refuse' }],
    });
    const port = Number(new URL(s.url).port);
    expect(port).toBeLessThan(low); // an outgoing connection cannot take it as its source port
    // Plant the fault: another socket holds the port while the listener is closed.
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    while (s.engine.elapsedMs() < 500) await sleep(25);
    await new Promise<void>((r) => squatter.close(() => r()));
    let answer = await rawRequest(`${s.url}/healthz`);
    for (let i = 0; i < 40 && answer.kind !== 'response'; i++) {
      await sleep(50);
      answer = await rawRequest(`${s.url}/healthz`);
    }
    expect(answer).toMatchObject({ kind: 'response', status: 200 });
  });

  it('brownout raises the error rate for its window only', async () => {
    const s = await bank({
      outages: [{ startMs: 0, durationMs: 300, mode: 'brownout', errorRate: 1, status: 503 }],
    });
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(503);
    while (s.engine.elapsedMs() < 350) await sleep(25);
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(200);
  });

  it('a timeline step switches faults on at its offset', async () => {
    const s = await bank({
      timeline: [{ atMs: 300, profile: { errors: [{ rate: 1, kind: 'http', status: 500 }] } }],
    });
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(200);
    while (s.engine.elapsedMs() < 350) await sleep(25);
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(500);
  });

  it('faults aimed at one operation leave the others alone', async () => {
    const s = await bank({
      operations: { 'payments.create': { errors: [{ rate: 1, kind: 'http', status: 503 }] } },
    });
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(503);
    expect((await call(s.url, 'GET', '/v1/statement')).status).toBe(200);
  });
});

describe('capacity', () => {
  it('at most maxInFlight run, queue holds the next ones, the rest get 503 capacity_exceeded', async () => {
    const s = await bank({
      latency: { dist: 'fixed', ms: 300 },
      capacity: { maxInFlight: 2, queue: 1 },
    });
    const results = await Promise.all(
      Array.from({ length: 6 }, () => call(s.url, 'GET', '/v1/statement')),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 503, 503, 503]);
    const shed = results.find((r) => r.status === 503)!;
    expect(shed.body.reason).toBe('capacity_exceeded');
    expect(shed.headers.get('retry-after')).toBe('1');
  });
});

describe('per-request faults from headers', () => {
  it('x-fault-abort answers with that status; x-fault-delay-ms delays; x-fault-percentage 0 injects nothing', async () => {
    const s = await bank();
    expect(
      (await call(s.url, 'POST', '/v1/payments', payment(), { 'x-fault-abort': '504' })).status,
    ).toBe(504);
    const slow = await rawRequest(`${s.url}/v1/payments/none`, {
      headers: { 'x-fault-delay-ms': '200' },
    });
    expect(slow.ms).toBeGreaterThanOrEqual(195);
    expect(
      (
        await call(s.url, 'POST', '/v1/payments', payment(), {
          'x-fault-abort': '504',
          'x-fault-percentage': '0',
        })
      ).status,
    ).toBe(200);
  });

  it('x-fault-kind reset with x-fault-ambiguous charges, then resets', async () => {
    const s = await bank();
    const p = payment();
    const r = await rawRequest(`${s.url}/v1/payments`, {
      body: p,
      headers: { 'x-fault-kind': 'reset', 'x-fault-ambiguous': 'true' },
    });
    expect(r.kind).toBe('reset');
    expect(
      (await call(s.url, 'GET', `/v1/payments?orderId=${p.orderId}`)).body.data[0].captured,
    ).toBe(true);
  });

  it('a bad fault header is a 400 naming the header, and the next request is served', async () => {
    const s = await bank();
    for (const [h, v] of [
      ['x-fault-kind', 'teleport'],
      ['x-fault-abort', '200'],
      ['x-fault-delay-ms', '-5'],
      ['x-fault-percentage', '150'],
    ] as const) {
      const r = await call(s.url, 'POST', '/v1/payments', payment(), {
        [h]: v,
        ...(h === 'x-fault-percentage' ? { 'x-fault-abort': '503' } : {}),
      });
      expect(r.status, `${h}: ${v}`).toBe(400);
      expect(r.body.errors.map((e: { field: string }) => e.field)).toContain(h);
    }
    const d = await call(s.url, 'POST', '/v1/payments', payment(), { 'x-fault-kind': 'decline' });
    expect(d.body.errors[0].field).toBe('x-fault-reason');
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(200);
  });

  it('headerFaults: false ignores the headers', async () => {
    const s = await bank({ headerFaults: false });
    expect(
      (await call(s.url, 'POST', '/v1/payments', payment(), { 'x-fault-abort': '503' })).status,
    ).toBe(200);
  });
});

describe('runtime control: /__chaos', () => {
  it('PUT replaces, PATCH merges, GET shows, DELETE clears', async () => {
    const s = await bank();
    const put = await call(s.url, 'PUT', '/__chaos', {
      latency: { dist: 'fixed', ms: 1 },
      errors: [{ rate: 1, kind: 'http', status: 500 }],
    });
    expect(put.status).toBe(200);
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(500);
    const patch = await call(s.url, 'PATCH', '/__chaos', {
      errors: [{ rate: 1, kind: 'http', status: 503 }],
    });
    expect(patch.body.profile).toEqual({
      latency: { dist: 'fixed', ms: 1 },
      errors: [{ rate: 1, kind: 'http', status: 503 }],
    });
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(503);
    const get = await call(s.url, 'GET', '/__chaos');
    expect(get.body.effective['payments.create'].errors[0].status).toBe(503);
    await call(s.url, 'DELETE', '/__chaos');
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(200);
  });

  it('a bad profile is a 400 naming the field, and the old profile stays in force', async () => {
    const s = await bank({ errors: [{ rate: 1, kind: 'http', status: 502 }] });
    const r = await call(s.url, 'PUT', '/__chaos', { errors: [{ rate: 1.5, kind: 'http' }] });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_profile');
    expect(r.body.errors.map((e: { field: string }) => e.field)).toContain('errors.0.rate');
    const bad = await call(s.url, 'PUT', '/__chaos', '{"latency": ');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_json');
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(502);
  });

  it('PUT ?seed= reseeds, so a run can be replayed on a live service', async () => {
    const s = await bank();
    const profile = {
      errors: [{ rate: 0.5, kind: 'http', status: 503 }],
      extra: { velocity: false },
    };
    const seq = async () => {
      await call(s.url, 'PUT', '/__chaos?seed=77', profile);
      const out: number[] = [];
      // The same order ids each time: reseeding restarts their attempt counts too.
      for (let i = 0; i < 40; i++)
        out.push(
          (await call(s.url, 'POST', '/v1/payments', { ...payment(), orderId: `re-${i}` })).status,
        );
      return out;
    };
    const a = await seq();
    expect(await seq()).toEqual(a);
    expect(new Set(a)).toEqual(new Set([200, 503]));
    expect((await call(s.url, 'PUT', '/__chaos?seed=abc', {})).body.errors[0].field).toBe('seed');
  });

  it("PUT ?elapsedMs= sets the profile's clock: ahead, a window has not begun; behind, a later step is already in force; a bad value is a 400 that changes nothing", async () => {
    const s = await bank();
    const outage = {
      outages: [{ startMs: 0, durationMs: 60_000, mode: 'brownout', errorRate: 1, status: 503 }],
    };
    // The clock starts in a minute: the outage at offset 0 is not in force yet.
    const ahead = await call(s.url, 'PUT', '/__chaos?elapsedMs=-60000', outage);
    expect(ahead.status, JSON.stringify(ahead.body)).toBe(200);
    expect(ahead.body.elapsedMs).toBeLessThanOrEqual(-50_000);
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(200);
    // Without it, the same profile's outage is in force at once (the planted contrast).
    await call(s.url, 'PUT', '/__chaos', outage);
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(503);
    // The clock has run a minute: a step due at 30 s is in force now.
    const step = {
      timeline: [{ atMs: 30_000, profile: { errors: [{ rate: 1, kind: 'http', status: 500 }] } }],
    };
    const behind = await call(s.url, 'PUT', '/__chaos?elapsedMs=60000', step);
    expect(behind.body.elapsedMs).toBeGreaterThanOrEqual(60_000);
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(500);
    for (const bad of ['abc', '1e3', '1.5', '100000000', '-100000000']) {
      const r = await call(s.url, 'PUT', `/__chaos?elapsedMs=${bad}`, {});
      expect(r.status, bad).toBe(400);
      expect(r.body.errors[0].field, bad).toBe('elapsedMs');
    }
    expect((await call(s.url, 'POST', '/v1/payments', payment())).status).toBe(500);
  });
  it('with an admin token set, admin routes need it and other routes do not', async () => {
    const s = await startMock(createBank(), { adminToken: 's3cret' });
    running.push(s);
    expect((await call(s.url, 'GET', '/__chaos')).status).toBe(401);
    expect(
      (await call(s.url, 'GET', '/__chaos', undefined, { authorization: 'Bearer wrong' })).status,
    ).toBe(401);
    expect(
      (await call(s.url, 'GET', '/__chaos', undefined, { authorization: 'Bearer s3cret' })).status,
    ).toBe(200);
    expect(
      (await call(s.url, 'POST', '/__reset', undefined, { authorization: 'Bearer s3cret' })).status,
    ).toBe(200);
    expect((await call(s.url, 'GET', '/healthz')).status).toBe(200);
  });
});
