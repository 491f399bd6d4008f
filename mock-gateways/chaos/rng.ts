// Seeded random streams. Each service owns independent named streams (faults,
// latency, domain, notify, ...) so that drawing from one never shifts another:
// the same seed and the same request order always give the same faults.
import { createHash } from 'node:crypto';
import { xoroshiro128plus, type RandomGenerator } from 'pure-rand';

export class Rng {
  private readonly gen: RandomGenerator;

  constructor(seed: number, stream: string) {
    // Derive a 32-bit seed for this stream from (seed, stream name).
    const h = createHash('sha256').update(`${seed}/${stream}`).digest();
    this.gen = xoroshiro128plus(h.readInt32LE(0));
  }

  /** A double uniform on [0, 1) with 53 bits of randomness. */
  next(): number {
    const hi = (this.gen.unsafeNext() >>> 0) >>> 5; // 27 bits
    const lo = (this.gen.unsafeNext() >>> 0) >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** An integer uniform on [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** A standard normal deviate (Box-Muller; uses two uniforms). */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

/** Named streams for one service, all derived from one seed. */
export class RngStreams {
  private readonly streams = new Map<string, Rng>();
  constructor(readonly seed: number) {}

  get(name: string): Rng {
    let r = this.streams.get(name);
    if (!r) {
      r = new Rng(this.seed, name);
      this.streams.set(name, r);
    }
    return r;
  }
}
