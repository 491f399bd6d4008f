// Histogram arithmetic on Prometheus-style cumulative buckets: the increase
// between two scrapes (counter resets included), the sum of several
// histograms, and histogram_quantile() as Prometheus computes it (linear
// interpolation inside the bucket that holds the rank).

/** One cumulative bucket: `count` observations were <= `le` (the last bucket is le = +Inf). */
export interface Bucket {
  le: number;
  count: number;
}

/** Sort by bound and make cumulative counts non-decreasing (Prometheus does the same). */
function normalise(buckets: readonly Bucket[]): Bucket[] {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  let max = 0;
  return sorted.map((b) => {
    max = Math.max(max, b.count);
    return { le: b.le, count: max };
  });
}

/**
 * The q-quantile (0 <= q <= 1) of the observations in cumulative `buckets`,
 * in the unit of the bounds; null when the histogram holds no observation.
 *
 * As Prometheus's histogram_quantile(): the rank q x total falls in the first
 * bucket whose cumulative count reaches it; the answer is interpolated
 * linearly between that bucket's lower bound (the previous bound, or 0 for
 * the first bucket) and its upper bound. A rank in the +Inf bucket answers the
 * highest finite bound. Without a +Inf bucket the total is unknown: an error.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be between 0 and 1, got ${q}`);
  const b = normalise(buckets);
  if (b.length === 0 || b[b.length - 1]!.le !== Infinity)
    throw new RangeError('a histogram needs a +Inf bucket (the total count)');
  const total = b[b.length - 1]!.count;
  if (total <= 0) return null;
  if (b.length === 1) return null; // only +Inf: observations, but no bound to place them
  const rank = q * total;
  // q = 0: the first bucket that holds anything (leading empty buckets skipped).
  const i = b.findIndex((x) => (rank === 0 ? x.count > 0 : x.count >= rank));
  if (i === b.length - 1) return b[b.length - 2]!.le;
  const upper = b[i]!.le;
  if (i === 0 && upper <= 0) return upper;
  const lower = i === 0 ? 0 : b[i - 1]!.le;
  const below = i === 0 ? 0 : b[i - 1]!.count;
  const inBucket = b[i]!.count - below;
  if (inBucket <= 0) return upper;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}

/**
 * The observations made between two scrapes of one histogram: `cur - prev`
 * per bucket. A total that went down means the process restarted (its
 * counters began again at zero): the increase is then `cur` itself, as
 * Prometheus's rate() assumes. `prev` undefined (the histogram is new): `cur`.
 */
export function bucketIncrease(cur: readonly Bucket[], prev?: readonly Bucket[]): Bucket[] {
  const c = normalise(cur);
  if (!prev) return c;
  const p = normalise(prev);
  const total = (x: Bucket[]) => (x.length ? x[x.length - 1]!.count : 0);
  if (total(c) < total(p)) return c;
  const before = new Map(p.map((x) => [x.le, x.count]));
  return normalise(
    c.map((x) => ({ le: x.le, count: Math.max(0, x.count - (before.get(x.le) ?? 0)) })),
  );
}

/**
 * Several histograms as one (e.g. every route's). With the same bounds this
 * is the sum per bucket; with different ones, each histogram contributes at a
 * bound the count of its own highest bound not above it (a lower bound).
 */
export function mergeBuckets(histograms: readonly (readonly Bucket[])[]): Bucket[] {
  const hs = histograms.map(normalise).filter((h) => h.length > 0);
  const bounds = [...new Set(hs.flatMap((h) => h.map((x) => x.le)))].sort((a, b) => a - b);
  return bounds.map((le) => ({
    le,
    count: hs.reduce((sum, h) => {
      let c = 0;
      for (const x of h) if (x.le <= le) c = x.count;
      return sum + c;
    }, 0),
  }));
}

/** Observations in a histogram (its +Inf bucket); 0 when empty. */
export function bucketTotal(buckets: readonly Bucket[]): number {
  return buckets.reduce((m, b) => (b.le === Infinity ? Math.max(m, b.count) : m), 0);
}
