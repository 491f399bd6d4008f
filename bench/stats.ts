// Small statistics helpers for the benchmark report.
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';

/** Percentile of sorted values with linear interpolation between ranks (as k6 computes it). */
export function percentileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

/** z for a two-sided interval of confidence `level` (0.999 gives 3.29). */
export function zFor(level: number): number {
  return normalQuantile(1 - (1 - level) / 2, 0, 1);
}

/**
 * Where the sample q-quantile of n draws falls, with the normal approximation
 * to the order statistic: the rank fraction lies in q +- z*sqrt(q(1-q)/n);
 * `quantile` maps rank fractions to values (the distribution's quantile function).
 */
export function quantileInterval(
  q: number,
  n: number,
  z: number,
  quantile: (p: number) => number,
): { qLo: number; qHi: number; lo: number; hi: number } {
  const half = z * Math.sqrt((q * (1 - q)) / n);
  const qLo = Math.max(1e-12, q - half);
  const qHi = Math.min(1 - 1e-12, q + half);
  return { qLo, qHi, lo: quantile(qLo), hi: quantile(qHi) };
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Signed percentage deviation of `observed` from `expected`. */
export function pctDev(observed: number, expected: number): number {
  return ((observed - expected) / expected) * 100;
}
