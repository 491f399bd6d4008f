// Latency samplers for the distributions a profile can name. Each draw uses the
// same number of uniforms whatever the branch, so a change of distribution never
// desynchronises later draws of the same stream.
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';
import type { LatencySpec } from './profile.ts';
import type { Draws } from './rng.ts';

/** z for the 99th percentile of the standard normal distribution. */
export const Z99 = 2.3263478740408408;

function pareto(u01: number, scaleMs: number, alpha: number, maxMs?: number): number {
  const u = 1 - u01; // (0, 1]
  const v = scaleMs / Math.pow(u, 1 / alpha);
  return maxMs !== undefined ? Math.min(v, maxMs) : v;
}

function body(spec: LatencySpec, rng: Draws): number {
  switch (spec.dist) {
    case 'fixed':
      rng.next();
      rng.next();
      return spec.ms;
    case 'uniform':
      rng.next();
      return spec.minMs + rng.next() * (spec.maxMs - spec.minMs);
    case 'normal':
      return Math.max(0, spec.meanMs + spec.stdDevMs * rng.normal());
    case 'lognormal': {
      const sigma = Math.log(spec.p99Ms / spec.medianMs) / Z99;
      return spec.medianMs * Math.exp(sigma * rng.normal());
    }
    case 'pareto':
      rng.next();
      return pareto(rng.next(), spec.scaleMs, spec.alpha, spec.maxMs);
  }
}

/** Draw one latency in milliseconds. */
export function sampleLatency(spec: LatencySpec, rng: Draws): number {
  const tailDraw = rng.next();
  const b = body(spec, rng);
  const tailU = rng.next();
  if (spec.tail && tailDraw < spec.tail.probability) {
    return pareto(tailU, spec.tail.scaleMs, spec.tail.alpha, spec.tail.maxMs);
  }
  return b;
}

/** The distribution's theoretical quantile q (0..1), ignoring any tail mixture. */
export function latencyQuantile(spec: LatencySpec, q: number): number {
  const inverseNormal = (p: number) => normalQuantile(p, 0, 1);
  switch (spec.dist) {
    case 'fixed':
      return spec.ms;
    case 'uniform':
      return spec.minMs + q * (spec.maxMs - spec.minMs);
    case 'normal':
      return Math.max(0, spec.meanMs + spec.stdDevMs * inverseNormal(q));
    case 'lognormal':
      return (
        spec.medianMs * Math.exp((Math.log(spec.p99Ms / spec.medianMs) / Z99) * inverseNormal(q))
      );
    case 'pareto': {
      const v = spec.scaleMs / Math.pow(1 - q, 1 / spec.alpha);
      return spec.maxMs !== undefined ? Math.min(v, spec.maxMs) : v;
    }
  }
}
