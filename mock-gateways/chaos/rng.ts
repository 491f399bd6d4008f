// Seeded random draws. Two kinds:
//
// - Streams (Rng, RngStreams): each service owns independent named streams
//   (faults, latency, domain, notify, ...) so that drawing from one never
//   shifts another; the n-th draw of a stream depends on the seed and on how
//   many draws came before it, that is on the request order. The engine uses
//   them only for requests that carry no identity (docs/CHAOS.md, Reproducibility).
// - Keyed draws (hashKey, KeyedDraws): a pure function of (seed, service,
//   operation, identity, attempt, stream): the key names one request, so the
//   same request draws the same values whenever it arrives.
import { createHash } from 'node:crypto';
import { xoroshiro128plus, type RandomGenerator } from 'pure-rand';

/** A source of uniforms on [0, 1), and what is built on them. */
export abstract class Draws {
  /** A double uniform on [0, 1) with 53 bits of randomness. */
  abstract next(): number;

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

/** One named stream: its n-th draw depends on the seed, the name and n. */
export class Rng extends Draws {
  private readonly gen: RandomGenerator;

  constructor(seed: number, stream: string) {
    super();
    // Derive a 32-bit seed for this stream from (seed, stream name).
    const h = createHash('sha256').update(`${seed}/${stream}`).digest();
    this.gen = xoroshiro128plus(h.readInt32LE(0));
  }

  next(): number {
    const hi = (this.gen.unsafeNext() >>> 0) >>> 5; // 27 bits
    const lo = (this.gen.unsafeNext() >>> 0) >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
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

/** 128 bits of seed state, as four 32-bit words. */
export type SeedState = readonly [number, number, number, number];

/** A seed state derived from `text` with SHA-256 (computed once per operation or stream, then cached). */
export function seedState(text: string): SeedState {
  const h = createHash('sha256').update(text).digest();
  return [h.readInt32LE(0), h.readInt32LE(4), h.readInt32LE(8), h.readInt32LE(12)];
}

/** The 128-bit hash of one request's key (see hashKey). */
export interface KeyHash {
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
}

/**
 * Hash (identity, attempt) from `base`, the seed state of (seed, service,
 * operation): cyrb128's mixing, started from `base` instead of constants, over
 * the identity's UTF-16 code units, then its length and the attempt. One pass
 * over the identity, no allocation besides the result.
 */
export function hashKey(base: SeedState, identity: string, attempt: number): KeyHash {
  let h1 = base[0];
  let h2 = base[1];
  let h3 = base[2];
  let h4 = base[3];
  const n = identity.length;
  for (let i = 0; i <= n + 1; i++) {
    // The identity's code units, then its length, then the attempt: no two keys share a message.
    const k = i < n ? identity.charCodeAt(i) : i === n ? n : attempt;
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return { a: h1 | 0, b: h2 | 0, c: h3 | 0, d: h4 | 0 };
}

/**
 * Draws that are a pure function of a key hash and a stream: an sfc32
 * generator whose state is the key's hash XOR the stream's seed state, warmed
 * up for 12 rounds (so the streams of one key are unrelated). The same (key,
 * stream) gives the same sequence, another key or stream an independent one.
 */
export class KeyedDraws extends Draws {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(key: KeyHash, stream: SeedState) {
    super();
    let a = key.a ^ stream[0];
    let b = key.b ^ stream[1];
    let c = key.c ^ stream[2];
    let d = key.d ^ stream[3];
    // 12 rounds of sfc32 (word() below) on locals: the fields are written once.
    for (let i = 0; i < 12; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /** sfc32: one 32-bit output (unsigned). */
  private word(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    const hi = this.word() >>> 5; // 27 bits
    const lo = this.word() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}
