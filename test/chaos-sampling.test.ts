// The chaos engine's random draws, without HTTP: distributions match their
// profiles within order-statistic intervals, error selection matches the
// rates within binomial intervals, and a seed fixes the whole sequence.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ChaosEngine } from '../mock-gateways/chaos/engine.ts';
import { latencyQuantile, sampleLatency } from '../mock-gateways/chaos/latency.ts';
import type { LatencySpec } from '../mock-gateways/chaos/profile.ts';
import { Rng } from '../mock-gateways/chaos/rng.ts';
import { binomialInterval, quantile, quantileRankInterval } from './support/stats.ts';

const N = 100_000;

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

describe('latency samplers', () => {
  const specs: LatencySpec[] = [
    { dist: 'fixed', ms: 12 },
    { dist: 'uniform', minMs: 10, maxMs: 30 },
    { dist: 'normal', meanMs: 100, stdDevMs: 15 },
    { dist: 'lognormal', medianMs: 50, p99Ms: 400 },
    { dist: 'pareto', scaleMs: 5, alpha: 2 },
  ];
  for (const spec of specs) {
    it(`${spec.dist}: empirical p50, p90 and p99 of ${N} draws fall inside the 99.9% order-statistic interval`, () => {
      const rng = new Rng(7, 'latency');
      const xs = Array.from({ length: N }, () => sampleLatency(spec, rng));
      for (const q of [0.5, 0.9, 0.99]) {
        const [lo, hi] = quantileRankInterval(q, N);
        const got = quantile(xs, q);
        expect(got, `${spec.dist} q=${q}`).toBeGreaterThanOrEqual(latencyQuantile(spec, lo) - 1e-9);
        expect(got, `${spec.dist} q=${q}`).toBeLessThanOrEqual(latencyQuantile(spec, hi) + 1e-9);
      }
    });
  }

  it('lognormal given median and p99 hits both: the p99 of draws is within its interval of the requested p99', () => {
    const spec: LatencySpec = { dist: 'lognormal', medianMs: 20, p99Ms: 250 };
    const rng = new Rng(3, 'latency');
    const xs = Array.from({ length: N }, () => sampleLatency(spec, rng));
    const [lo, hi] = quantileRankInterval(0.99, N);
    expect(latencyQuantile(spec, 0.99)).toBeCloseTo(250, 6);
    expect(quantile(xs, 0.99)).toBeGreaterThan(latencyQuantile(spec, lo));
    expect(quantile(xs, 0.99)).toBeLessThan(latencyQuantile(spec, hi));
  });

  it('a heavy tail mixed in with probability p moves exactly about p of the draws above the body', () => {
    const p = 0.02;
    const spec: LatencySpec = {
      dist: 'fixed',
      ms: 10,
      tail: { probability: p, dist: 'pareto', scaleMs: 500, alpha: 1.5 },
    };
    const rng = new Rng(11, 'latency');
    const xs = Array.from({ length: N }, () => sampleLatency(spec, rng));
    const share = xs.filter((x) => x >= 500).length / N;
    const [lo, hi] = binomialInterval(p, N);
    expect(share).toBeGreaterThanOrEqual(lo);
    expect(share).toBeLessThanOrEqual(hi);
    expect(xs.filter((x) => x !== 10 && x < 500)).toHaveLength(0);
  });
});

describe('error selection', () => {
  it('each error kind is chosen at its rate within the binomial 99.9% interval', () => {
    const e = engine({
      errors: [
        { rate: 0.1, kind: 'http', status: 503 },
        { rate: 0.05, kind: 'rate_limit' },
        { rate: 0.01, kind: 'reset' },
      ],
    });
    const counts: Record<string, number> = {};
    for (let i = 0; i < N; i++) {
      const k = e.decide('op.a').fault?.kind ?? 'none';
      counts[k] = (counts[k] ?? 0) + 1;
    }
    for (const [kind, rate] of [
      ['http', 0.1],
      ['rate_limit', 0.05],
      ['reset', 0.01],
      ['none', 0.84],
    ] as const) {
      const [lo, hi] = binomialInterval(rate, N);
      expect((counts[kind] ?? 0) / N, kind).toBeGreaterThanOrEqual(lo);
      expect((counts[kind] ?? 0) / N, kind).toBeLessThanOrEqual(hi);
    }
  });

  it('operation settings override the service-wide ones for that operation only', () => {
    const e = engine({
      errors: [{ rate: 1, kind: 'http', status: 500 }],
      operations: { 'op.b': { errors: [] } },
    });
    expect(e.decide('op.a').fault?.status).toBe(500);
    expect(e.decide('op.b').fault).toBeUndefined();
  });

  it('a brownout adds its error rate on top of the profile, scaling the others down', () => {
    const e = engine({
      errors: [{ rate: 0.5, kind: 'rate_limit' }],
      outages: [
        { startMs: 0, durationMs: 60_000, mode: 'brownout', errorRate: 0.4, latencyFactor: 2 },
      ],
      latency: { dist: 'fixed', ms: 10 },
    });
    const eff = e.effective('op.a');
    expect(eff.errors.map((x) => [x.kind, x.rate])).toEqual([
      ['http', 0.4],
      ['rate_limit', 0.3],
    ]);
    expect(e.decide('op.a').latencyMs).toBe(20);
  });
});

describe('seeded determinism', () => {
  const profile = {
    latency: { dist: 'lognormal', medianMs: 30, p99Ms: 300 },
    errors: [
      { rate: 0.2, kind: 'http', status: 503 },
      { rate: 0.1, kind: 'hang' },
    ],
  };
  const run = (seed: number) => {
    const e = engine(profile, seed);
    return Array.from({ length: 2_000 }, (_, i) => {
      const d = e.decide(i % 3 === 0 ? 'op.b' : 'op.a');
      return `${d.fault?.kind ?? '-'}:${d.latencyMs.toFixed(6)}`;
    });
  };

  it('the same seed and the same request order give the same faults and latencies', () => {
    expect(run(42)).toEqual(run(42));
  });

  it('another seed gives another sequence', () => {
    const a = run(42);
    const b = run(43);
    expect(a.filter((x, i) => x !== b[i]).length).toBeGreaterThan(1_000);
  });

  it('reseeding restarts the sequence', () => {
    const e = engine(profile, 5);
    const first = Array.from({ length: 50 }, () => e.decide('op.a').latencyMs);
    e.reseed(5);
    expect(Array.from({ length: 50 }, () => e.decide('op.a').latencyMs)).toEqual(first);
  });
});

describe('timeline and outage windows against a clock', () => {
  function clocked(profile: unknown) {
    let t = 0;
    const e = new ChaosEngine({
      service: 'test',
      operations: ['op.a', 'op.b'],
      declineReasons: [],
      extraSchema: z.object({}).strict(),
      seed: 1,
      profile,
      now: () => t,
    });
    return { e, at: (ms: number) => (t = ms) };
  }

  it('timeline steps change the profile at their offsets; merge patches, replace starts over', () => {
    const { e, at } = clocked({
      latency: { dist: 'fixed', ms: 5 },
      timeline: [
        { atMs: 1_000, profile: { errors: [{ rate: 1, kind: 'http', status: 502 }] } },
        { atMs: 2_000, mode: 'replace', profile: { latency: { dist: 'fixed', ms: 50 } } },
      ],
    });
    at(999);
    expect(e.decide('op.a')).toMatchObject({ latencyMs: 5 });
    expect(e.decide('op.a').fault).toBeUndefined();
    at(1_000);
    expect(e.decide('op.a')).toMatchObject({ latencyMs: 5, fault: { kind: 'http', status: 502 } });
    at(2_500);
    expect(e.decide('op.a')).toMatchObject({ latencyMs: 50 });
    expect(e.decide('op.a').fault).toBeUndefined();
  });

  it('a down window on one operation resets it and leaves the others alone, then ends', () => {
    const { e, at } = clocked({
      outages: [{ startMs: 100, durationMs: 200, mode: 'down', operations: ['op.a'] }],
    });
    at(50);
    expect(e.decide('op.a').fault).toBeUndefined();
    at(150);
    expect(e.decide('op.a').fault).toMatchObject({ kind: 'reset', source: 'outage' });
    expect(e.decide('op.b').fault).toBeUndefined();
    at(300);
    expect(e.decide('op.a').fault).toBeUndefined();
  });

  it('flapping is down for downFraction of each period, starting down', () => {
    const { e, at } = clocked({
      outages: [
        { startMs: 0, durationMs: 1_000, mode: 'flapping', periodMs: 100, downFraction: 0.3 },
      ],
    });
    const pattern = [10, 40, 110, 140, 290, 310].map((t) => {
      at(t);
      return e.decide('op.a').fault ? 'down' : 'up';
    });
    expect(pattern).toEqual(['down', 'up', 'down', 'up', 'up', 'down']);
  });

  it('refusing() is true only inside a whole-service refuse window, and nextBoundaryMs points at its edges', () => {
    const { e, at } = clocked({
      outages: [{ startMs: 100, durationMs: 200, mode: 'down', how: 'refuse' }],
    });
    at(0);
    expect(e.refusing()).toBe(false);
    expect(e.nextBoundaryMs()).toBe(100);
    at(150);
    expect(e.refusing()).toBe(true);
    expect(e.nextBoundaryMs()).toBe(150);
    at(300);
    expect(e.refusing()).toBe(false);
  });
});

describe('profile validation', () => {
  it('names the field and the reason for each mistake', () => {
    const e = engine(undefined);
    const bad = [
      [{ latency: { dist: 'lognormal', medianMs: 50, p99Ms: 10 } }, 'latency.p99Ms'],
      [
        {
          errors: [
            { rate: 0.7, kind: 'http' },
            { rate: 0.7, kind: 'reset' },
          ],
        },
        'errors',
      ],
      [{ errors: [{ rate: 0.1, kind: 'decline', reason: 'nope' }] }, 'errors.0.reason'],
      [{ errors: [{ rate: 0.1, kind: 'teleport' }] }, 'errors.0.kind'],
      [{ errors: [{ rate: 0.1, kind: 'rate_limit', ambiguous: true }] }, 'errors.0.ambiguous'],
      [{ operations: { 'op.z': {} } }, 'operations.op.z'],
      [
        { timeline: [{ atMs: 1, profile: { operations: { 'op.y': {} } } }] },
        'timeline.0.profile.operations.op.y',
      ],
      [{ outages: [{ startMs: 0, durationMs: 10, mode: 'flapping' }] }, 'outages.0.periodMs'],
      [
        { outages: [{ startMs: 0, durationMs: 10, mode: 'down', operations: ['op.q'] }] },
        'outages.0.operations.0',
      ],
      [{ timeline: [{ atMs: -1, profile: {} }] }, 'timeline.0.atMs'],
      [{ capacity: { maxInFlight: 0 } }, 'capacity.maxInFlight'],
      [{ surprise: 1 }, 'surprise'],
      ['not an object', '(profile)'],
    ] as const;
    for (const [profile, field] of bad) {
      let caught: unknown;
      try {
        e.parse(profile);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(profile)).toBeDefined();
      const errors = (caught as { errors: { field: string; reason: string }[] }).errors;
      expect(
        errors.map((x) => x.field),
        JSON.stringify(profile),
      ).toContain(field);
      for (const x of errors) expect(x.reason.length).toBeGreaterThan(3);
    }
  });
});
