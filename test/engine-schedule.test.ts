// The engine's arrival schedule (harness/engine/schedule.ts) against the
// integral of the rate, for every stage shape, 1-second jumps and the
// preset scales; the segment split (segments partition the schedule exactly,
// the same union for 1, 2, 3 and 7 segments, and a runner's workers split its
// segment again); the metric store's merge (the merge of per-segment
// histograms is the histogram of all the samples).
import { describe, expect, it } from 'vitest';
import { loadPreset, resolvePreset } from '../harness/preset.ts';
import {
  arrivals,
  inSegment,
  scheduledCount,
  segmentCount,
  segmentShare,
  shapeIntegral,
  splitSegment,
  timeInStage,
  WHOLE,
  type Shape,
} from '../harness/engine/schedule.ts';
import { MetricStore, mergeSnapshots, summarize } from '../harness/engine/metrics.ts';
import { Rng } from '../scenarios/lib/rng.ts';
import { expectedArrivals } from '../scenarios/lib/shape.ts';

/** The integral of the rate from 0 to t (the definition, stage by stage). */
function integralAt(s: Shape, t: number): number {
  let from = s.startRate;
  let t0 = 0;
  let n = 0;
  for (const st of s.stages) {
    const d = Math.min(st.durationS, Math.max(0, t - t0));
    n += from * d + ((st.target - from) * d * d) / (2 * st.durationS);
    t0 += st.durationS;
    from = st.target;
  }
  return n;
}

const SHAPES: Record<string, Shape> = {
  constant: { startRate: 50, stages: [{ durationS: 10, target: 50 }] },
  'ramp up from 0': { startRate: 0, stages: [{ durationS: 10, target: 200 }] },
  'ramp down to 0': { startRate: 200, stages: [{ durationS: 10, target: 0 }] },
  'a 1 s jump, a hold, a 1 s drop': {
    startRate: 5,
    stages: [
      { durationS: 1, target: 500 },
      { durationS: 3, target: 500 },
      { durationS: 1, target: 2 },
    ],
  },
  'zero stage in between': {
    startRate: 10,
    stages: [
      { durationS: 2, target: 0 },
      { durationS: 2, target: 0 },
      { durationS: 2, target: 30 },
    ],
  },
  'fractional rates': { startRate: 0.3, stages: [{ durationS: 7, target: 2.7 }] },
};

describe('the arrival schedule', () => {
  for (const [name, shape] of Object.entries(SHAPES))
    it(`${name}: arrival i starts where the integral of the rate reaches i, in order, before the end`, () => {
      const all = [...arrivals(shape)];
      const total = shapeIntegral(shape);
      expect(all.length).toBe(scheduledCount(shape));
      expect(all.length).toBe(Math.ceil(total - 1e-9));
      const end = shape.stages.reduce((s, st) => s + st.durationS, 0);
      all.forEach((a, k) => {
        expect(a.i).toBe(k);
        expect(Math.abs(integralAt(shape, a.atS) - a.i)).toBeLessThan(1e-6);
        expect(a.atS).toBeGreaterThanOrEqual(k === 0 ? 0 : all[k - 1]!.atS);
        expect(a.atS).toBeLessThanOrEqual(end);
      });
    });

  it('solves a ramp exactly where the rate starts at 0, stays flat, or falls', () => {
    expect(timeInStage(0, 10, 10, 5)).toBeCloseTo(Math.sqrt(10), 12); // 0.5 t^2 = 5
    expect(timeInStage(4, 4, 10, 6)).toBeCloseTo(1.5, 12);
    // 10 t - 0.5 t^2 = 18 -> t = 10 - sqrt(64) = 2
    expect(timeInStage(10, 0, 10, 18)).toBeCloseTo(2, 12);
    expect(timeInStage(3, 7, 2, 0)).toBe(0);
  });

  it('a preset at its time and load scales schedules what the shape integrates to, the same every time', () => {
    const { preset } = loadPreset('livestream-spike');
    for (const [timeScale, loadScale] of [
      [1, 1],
      [preset.ci.timeScale, preset.ci.loadScale],
      [0.1, 3],
    ] as const) {
      const r = resolvePreset(preset, { seed: 1, timeScale, loadScale });
      const shape = r.traffic;
      expect(shapeIntegral(shape)).toBeCloseTo(expectedArrivals(shape.startRate, shape.stages), 9);
      const a = [...arrivals(shape)].map((x) => x.atS);
      const b = [...arrivals(shape)].map((x) => x.atS);
      expect(a).toEqual(b);
      expect(a.length).toBe(scheduledCount(shape));
      expect(a.at(-1)!).toBeLessThanOrEqual(r.durationS);
    }
  });
});

describe('segments', () => {
  const shape = SHAPES['a 1 s jump, a hold, a 1 s drop']!;
  const whole = [...arrivals(shape)];

  for (const n of [1, 2, 3, 7])
    it(`${n} segment(s) partition the schedule exactly: every arrival once, at its own instant`, () => {
      const seen = new Map<number, number>();
      for (let k = 0; k < n; k += 1) {
        const seg = { index: k, count: n };
        const part = [...arrivals(shape, seg)];
        expect(part.length).toBe(segmentCount(whole.length, seg));
        for (const a of part) {
          expect(inSegment(a.i, seg)).toBe(true);
          expect(seen.has(a.i)).toBe(false);
          seen.set(a.i, a.atS);
        }
      }
      expect(seen.size).toBe(whole.length);
      for (const a of whole) expect(seen.get(a.i)).toBe(a.atS);
    });

  it("a runner's workers split its segment into the same arrivals; VU shares add up to the whole", () => {
    const seg = { index: 1, count: 3 };
    const direct = [...arrivals(shape, seg)].map((a) => a.i);
    const viaWorkers = splitSegment(seg, 4)
      .flatMap((s) => [...arrivals(shape, s)].map((a) => a.i))
      .sort((x, y) => x - y);
    expect(viaWorkers).toEqual(direct);
    expect(splitSegment(WHOLE, 5).map((s) => s.index)).toEqual([0, 1, 2, 3, 4]);
    for (const [vus, n] of [
      [1000, 7],
      [5, 3],
      [3, 8],
    ] as const) {
      const shares = Array.from({ length: n }, (_, i) => segmentShare(vus, { index: i, count: n }));
      expect(shares.reduce((a, b) => a + b, 0)).toBe(vus);
      expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
    }
  });
});

describe('the metric store', () => {
  it('merged per-segment snapshots give the quantiles, counts and rates of one store of every sample', () => {
    const rng = new Rng(42);
    const defs = [
      { name: 'lat', type: 'trend', time: true },
      { name: 'ok', type: 'rate' },
      { name: 'n', type: 'counter' },
    ] as const;
    const one = new MetricStore(defs);
    const parts = [0, 1, 2].map(() => new MetricStore(defs));
    for (let i = 0; i < 30_000; i += 1) {
      // A long-tailed latency in ms with µs detail, tagged by stage.
      const v = Math.exp(rng.next() * 8) * (1 + rng.next() / 1000);
      const tags = { stage: i % 4 === 0 ? 'spike' : 'steady' };
      const ok = rng.next() < 0.9;
      for (const s of [one, parts[i % 3]!]) {
        s.add('lat', v, tags);
        s.add('ok', ok, tags);
        s.add('n', 2, tags);
      }
    }
    const time = new Set(['lat']);
    const a = summarize(one.snapshot(), 10, time).metrics;
    const b = summarize(mergeSnapshots(parts.map((p) => p.snapshot())), 10, time).metrics;
    for (const name of ['lat', 'lat{stage:spike}', 'lat{stage:steady}']) {
      // Exact, but for the float sum behind avg (added in another order).
      const { avg, ...rest } = b[name]!.values;
      const { avg: avgOne, ...restOne } = a[name]!.values;
      expect(rest).toEqual(restOne);
      expect(avg).toBeCloseTo(avgOne!, 9);
      expect(b[name]!.values.count).toBeGreaterThan(5_000);
    }
    expect(b['ok{stage:spike}']).toEqual(a['ok{stage:spike}']);
    expect(b.n!.values.count).toBe(60_000);
    expect(b['n{stage:spike}']!.values.count).toBe(15_000);
    // The HDR quantiles are within their 3 significant digits of the exact ones.
    const all: number[] = [];
    const r2 = new Rng(42);
    for (let i = 0; i < 30_000; i += 1) {
      all.push(Math.exp(r2.next() * 8) * (1 + r2.next() / 1000));
      r2.next();
    }
    all.sort((x, y) => x - y);
    const exact99 = all[Math.ceil(0.99 * all.length) - 1]!;
    expect(Math.abs(a.lat!.values['p(99)']! - exact99) / exact99).toBeLessThan(2e-3);
    expect(a.lat!.values.max).toBe(all.at(-1));
    expect(a.lat!.values.min).toBe(all[0]);
    for (const s of [one, ...parts]) s.destroy();
  });

  it('refuses a metric it does not know, and keeps no series for a metric with no samples', () => {
    const s = new MetricStore([{ name: 'x', type: 'counter' }]);
    expect(() => s.add('y', 1, {})).toThrow(/metric y is not declared/);
    const m = summarize(s.snapshot(), 1, new Set()).metrics;
    expect(m.x).toBeUndefined();
    expect(m.http_reqs).toBeUndefined();
  });
});
