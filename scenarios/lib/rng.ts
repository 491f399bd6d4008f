// A small seeded PRNG shared by the k6 scenario and the Node harness (no
// imports: k6 loads this file by relative path). mulberry32 for the stream,
// a murmur3-style finaliser to derive independent seeds (one per shopper).
// Never Math.random: the same seed must give the same shoppers and pauses.

/** Mix two integers into one 32-bit seed (murmur3 fmix32 over a combination of both). */
export function mixSeed(a: number, b: number): number {
  let h = (Math.imul(a | 0, 0x9e3779b1) ^ Math.imul((b | 0) + 0x7f4a7c15, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: 32 bits of state, period 2^32, good enough for behaviour draws. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** True with probability p (one draw whatever p is, so later draws do not shift). */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Uniform in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** One of `items` with probability proportional to its weight (weights > 0 only). */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    const total = items.reduce((s, [, w]) => s + (w > 0 ? w : 0), 0);
    let u = this.next() * total;
    let last: T | undefined;
    for (const [item, w] of items) {
      if (w <= 0) continue;
      last = item;
      if (u < w) return item;
      u -= w;
    }
    if (last === undefined) throw new Error('weighted(): no item has a positive weight');
    return last;
  }
}
