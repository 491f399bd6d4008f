// The arrival schedule of an open-model run: the preset's stages are a
// piecewise-linear arrival rate (k6's ramping-arrival-rate: `startRate`, then
// each stage ramps linearly to its `target` over `durationS`), and arrival i
// (0, 1, 2, ...) starts at the instant where the integral of the rate reaches
// i. Computed from the shape and nothing else, so every run of a preset at the
// same scales starts the same arrivals at the same offsets.
//
// Segments split the schedule between workers and runner processes: arrival i
// belongs to segment (i mod count), numbered 0..count-1 here (the CLI's
// `--segment k/N` is 1-based). A segment of a segment (a runner's workers) is
// again a residue class: segment s of N split W ways is segments s + N*w of
// N*W, w = 0..W-1, so the union is always the whole schedule, exactly once.
import type { Stage } from '../../scenarios/lib/shape.ts';

export interface Shape {
  startRate: number;
  stages: readonly Pick<Stage, 'durationS' | 'target'>[];
}

/** Arrivals over the whole shape: the integral of the rate. */
export function shapeIntegral(s: Shape): number {
  let from = s.startRate;
  let n = 0;
  for (const st of s.stages) {
    n += ((from + st.target) / 2) * st.durationS;
    from = st.target;
  }
  return n;
}

/** How many arrivals the schedule starts: the integers i with integral(t) = i for some t before the end. */
export function scheduledCount(s: Shape): number {
  return Math.max(0, Math.ceil(shapeIntegral(s) - 1e-9));
}

/**
 * Seconds into a stage where the integral since its start reaches `x`, for a
 * rate ramping from `a` to `b` over `d` seconds: solves a*t + (b-a)*t^2/(2d) = x
 * in the form that stays exact when a = 0 or a = b.
 */
export function timeInStage(a: number, b: number, d: number, x: number): number {
  if (x <= 0) return 0;
  const k = (b - a) / d;
  const disc = Math.max(0, a * a + 2 * k * x);
  return (2 * x) / (a + Math.sqrt(disc));
}

export interface Segment {
  /** 0-based. */
  index: number;
  count: number;
}

export const WHOLE: Segment = { index: 0, count: 1 };

/** The segments of `seg` split `ways` ways (a runner's workers). */
export function splitSegment(seg: Segment, ways: number): Segment[] {
  return Array.from({ length: ways }, (_, w) => ({
    index: seg.index + seg.count * w,
    count: seg.count * ways,
  }));
}

/** Whether arrival i belongs to the segment. */
export function inSegment(i: number, seg: Segment): boolean {
  return i % seg.count === seg.index;
}

/** How many of the schedule's `total` arrivals fall in the segment. */
export function segmentCount(total: number, seg: Segment): number {
  return total > seg.index ? Math.floor((total - 1 - seg.index) / seg.count) + 1 : 0;
}

/** A whole-number share of `n` for the segment (the shares of all segments add up to n). */
export function segmentShare(n: number, seg: Segment): number {
  return Math.floor((n * (seg.index + 1)) / seg.count) - Math.floor((n * seg.index) / seg.count);
}

export interface Arrival {
  /** Arrival number in the whole run. */
  i: number;
  /** Seconds from the start of traffic. */
  atS: number;
}

/**
 * The segment's arrivals in order, lazily (a 10M-arrival run holds none of
 * them in memory). Within a stage the k-th arrival is found from the stage's
 * own start, so rounding does not accumulate across stages.
 */
export function* arrivals(s: Shape, seg: Segment = WHOLE): Generator<Arrival> {
  const total = scheduledCount(s);
  let from = s.startRate;
  let t0 = 0;
  let c0 = 0; // integral at the stage's start
  let i = seg.index;
  for (const st of s.stages) {
    const area = ((from + st.target) / 2) * st.durationS;
    while (i < total && i < c0 + area) {
      yield {
        i,
        atS: t0 + Math.min(st.durationS, timeInStage(from, st.target, st.durationS, i - c0)),
      };
      i += seg.count;
    }
    t0 += st.durationS;
    c0 += area;
    from = st.target;
  }
}
