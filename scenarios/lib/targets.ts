// Which checkout instance a shopper talks to: several instances share one
// Redis and no load balancer sits in front of them, so each shopper sticks to
// one, drawn from the seed. A pure function of the seed and the shopper's
// index (not of arrival order, timing or engine): the same seed sends the same
// shopper to the same instance in every run, with either engine.
// No imports except sibling files (k6 loads this file by relative path).
import { mixSeed } from './rng.ts';

/** Salt of the instance draw, apart from every other draw made from the seed. */
const INSTANCE_SALT = 0x1b5ace;

/** The index (0..n-1) of the instance shopper `index` sticks to, for `n` instances. */
export function instanceFor(seed: number, index: number, n: number): number {
  if (n <= 1) return 0;
  return mixSeed(mixSeed(seed, INSTANCE_SALT), index) % n;
}

/** The targets as a list without trailing slashes (one URL or several). */
export function targetList(target: string | readonly string[]): string[] {
  const list = (typeof target === 'string' ? [target] : [...target]).map((u) =>
    u.replace(/\/+$/, ''),
  );
  if (list.length === 0 || list.some((u) => u === ''))
    throw new Error('the checkout target list is empty, or has an empty URL');
  return list;
}
