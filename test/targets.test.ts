// Shoppers spread over checkout instances (scenarios/lib/targets.ts): each
// sticks to one instance, a pure function of the seed and the shopper's index
// (the same in every run and either engine), every instance gets a share near
// 1/N, and the livestream journey sends all of a shopper's requests there.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { JourneyStep } from '../scenarios/lib/journey.ts';
import { livestreamJourney } from '../scenarios/lib/livestream-journey.ts';
import { resolve, withDefaults } from '../scenarios/lib/preset.ts';
import { instanceFor, targetList } from '../scenarios/lib/targets.ts';

const SHOPPERS = 6_000;

describe('instanceFor', () => {
  it('is a function of the seed and the shopper index: the same draw in any order, another seed another draw', () => {
    const forward = Array.from({ length: 500 }, (_, i) => instanceFor(7, i, 3));
    const backward = Array.from({ length: 500 }, (_, k) => instanceFor(7, 499 - k, 3)).reverse();
    expect(backward).toEqual(forward);
    const other = Array.from({ length: 500 }, (_, i) => instanceFor(8, i, 3));
    expect(other).not.toEqual(forward);
    expect(instanceFor(7, 123, 1)).toBe(0);
  });

  it.each([2, 3, 5, 16])('gives each of %i instances a share near 1/N', (n) => {
    for (const seed of [1, 2, 99]) {
      const counts = new Array<number>(n).fill(0);
      for (let i = 0; i < SHOPPERS; i++) counts[instanceFor(seed, i, n)]! += 1;
      // Binomial(SHOPPERS, 1/n): 5 standard deviations either way.
      const mean = SHOPPERS / n;
      const tolerance = 5 * Math.sqrt(SHOPPERS * (1 / n) * (1 - 1 / n));
      for (const c of counts)
        expect(Math.abs(c - mean), `seed ${seed}: ${counts}`).toBeLessThan(tolerance);
    }
  });

  it('reads one URL or a list, without trailing slashes; an empty list is an error', () => {
    expect(targetList('http://a:1/')).toEqual(['http://a:1']);
    expect(targetList(['http://a:1', 'http://b:2//'])).toEqual(['http://a:1', 'http://b:2']);
    expect(() => targetList([])).toThrow('empty');
  });
});

describe('the livestream journey over several instances', () => {
  it("sends a shopper's requests to the instance drawn for it", () => {
    const raw = JSON.parse(
      readFileSync(new URL('../scenarios/presets/livestream-spike.json', import.meta.url), 'utf8'),
    ) as unknown;
    const preset = resolve(withDefaults(raw), { seed: 5, timeScale: 0.0167, loadScale: 0.1 });
    const targets = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'];
    const metrics = { add: () => undefined };
    for (let index = 0; index < 60; index++) {
      const j = livestreamJourney(
        { preset, target: targets },
        { index, elapsedS: () => 0, metrics },
      );
      const first = j.next().value as JourneyStep;
      expect(first.kind).toBe('http');
      const url = (first as Extract<JourneyStep, { kind: 'http' }>).requests[0]!.url;
      expect(url.startsWith(`${targets[instanceFor(5, index, 3)]}/`), url).toBe(true);
    }
  });
});
