// Statistics for tests: tolerances derived from the sample size.
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';

/** z such that a two-sided interval has coverage `conf` (0.999 -> 3.29). */
export function zFor(conf: number): number {
  return normalQuantile(1 - (1 - conf) / 2, 0, 1);
}

/** Two-sided normal-approximation interval for a binomial proportion. */
export function binomialInterval(p: number, n: number, conf = 0.999): [number, number] {
  const half = zFor(conf) * Math.sqrt((p * (1 - p)) / n);
  return [p - half, p + half];
}

/**
 * The range of probabilities within which the empirical q-quantile of n samples
 * falls with confidence `conf` (order-statistic interval, normal approximation).
 * Map the bounds through the distribution's quantile function to get value bounds.
 */
export function quantileRankInterval(q: number, n: number, conf = 0.999): [number, number] {
  const half = zFor(conf) * Math.sqrt((q * (1 - q)) / n);
  return [Math.max(1e-9, q - half), Math.min(1 - 1e-9, q + half)];
}

/** Empirical quantile (nearest rank) of a sorted copy of xs. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[idx]!;
}

/** Run `n` tasks with at most `concurrency` at once; results in task order. */
export async function pool<T>(
  n: number,
  concurrency: number,
  task: (i: number) => Promise<T>,
): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}
