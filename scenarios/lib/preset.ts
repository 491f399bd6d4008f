// The preset as the k6 scenario needs it, the defaults, and the scaling
// (`resolve`). harness/preset.ts validates preset files with zod, using these
// defaults, and calls `resolve`; the k6 script calls `withDefaults` + `resolve`
// itself when run by hand without a resolved PRESET_FILE. One implementation
// of the arithmetic for both. No imports except sibling files (k6 loads this
// file by relative path).
import { expectedArrivals, scaleRate, scaleStages, totalDurationS, type Stage } from './shape.ts';

export const CHANNELS = ['card', 'alipay', 'wechat'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Shares are probabilities per arriving shopper, drawn from the seed. Times in seconds at time-scale 1. */
export interface Behaviour {
  browseOnly: number;
  useCoupon: number;
  channels: Partial<Record<Channel, number>>;
  reclickPay: number;
  maxReclicks: number;
  retryAfterFailure: number;
  retryPauseS: [number, number];
  maxRetries: number;
  switchChannel: number;
  allowFallback: number;
  abandon: number;
  payLater: number;
  payLaterS: [number, number];
  polls: number;
  pollPauseS: [number, number];
  requestTimeoutS: number;
}

export const BEHAVIOUR_DEFAULTS: Behaviour = {
  browseOnly: 0.3,
  useCoupon: 0,
  channels: { card: 1 },
  reclickPay: 0.1,
  maxReclicks: 2,
  retryAfterFailure: 0.5,
  retryPauseS: [2, 10],
  maxRetries: 2,
  switchChannel: 0.3,
  allowFallback: 0.5,
  abandon: 0.05,
  payLater: 0.05,
  payLaterS: [30, 300],
  polls: 3,
  pollPauseS: [1, 3],
  requestTimeoutS: 10,
};

export const TRAFFIC_DEFAULTS = { preAllocatedVUs: 50, maxVUs: 1_000 } as const;

export interface SaleSku {
  id: string;
  name?: string;
  price: number;
  stock: number;
  limit: number;
}

export interface SaleCoupon {
  campaignId: string;
  budget: number;
  discount: number;
}

/** The parts of a preset the scaling reads (defaults applied). */
export interface PresetCore {
  name: string;
  traffic: { startRate: number; stages: Stage[]; preAllocatedVUs: number; maxVUs: number };
  behaviour: Behaviour;
  sale: { skus: SaleSku[]; coupon?: SaleCoupon };
}

export interface ScaleOptions {
  seed: number;
  timeScale: number;
  loadScale: number;
  variant?: string;
}

/**
 * What the harness hands the k6 script (as a JSON file, `PRESET_FILE`): the
 * preset with scales applied, the seed, and the sale as seeded.
 */
export interface ResolvedPreset {
  name: string;
  variant?: string;
  seed: number;
  timeScale: number;
  loadScale: number;
  /** Stages with durations (whole seconds) and targets (whole arrivals/s) scaled, every one labelled. */
  traffic: {
    startRate: number;
    stages: Required<Stage>[];
    preAllocatedVUs: number;
    maxVUs: number;
  };
  /** Behaviour with pauses scaled (retryPauseS, payLaterS, pollPauseS in seconds of this run). */
  behaviour: Behaviour;
  sale: { skus: SaleSku[]; coupon?: SaleCoupon };
  /** Total seconds of traffic (sum of the scaled stages). */
  durationS: number;
}

/**
 * Apply the scales. Time-scale X: stage durations and human pauses (retry,
 * pay-later, polling) x X; `requestTimeoutS` is a network timeout and does not
 * scale. Load-scale Y: arrival rates and VUs x Y. Stock and coupon budgets x
 * X x Y (at least 1), so a sale sells out at the same point of the shape.
 */
export function resolve(p: PresetCore, o: ScaleOptions): ResolvedPreset {
  const ts = o.timeScale;
  const ls = o.loadScale;
  if (!(ts > 0) || !(ls > 0)) throw new Error('timeScale and loadScale must be above 0');
  const units = (n: number) => Math.max(1, Math.round(n * ts * ls));
  const vus = (n: number) => Math.max(1, Math.ceil(n * ls));
  const stages = scaleStages(p.traffic.stages, ts, ls);
  const b = p.behaviour;
  const scaleRange = ([a, c]: [number, number]): [number, number] => [a * ts, c * ts];
  const preAllocatedVUs = vus(p.traffic.preAllocatedVUs);
  return {
    name: p.name,
    ...(o.variant !== undefined ? { variant: o.variant } : {}),
    seed: o.seed,
    timeScale: ts,
    loadScale: ls,
    traffic: {
      startRate: scaleRate(p.traffic.startRate, ls),
      stages,
      preAllocatedVUs,
      maxVUs: Math.max(preAllocatedVUs, vus(p.traffic.maxVUs)),
    },
    behaviour: {
      ...b,
      channels: { ...b.channels },
      retryPauseS: scaleRange(b.retryPauseS),
      payLaterS: scaleRange(b.payLaterS),
      pollPauseS: scaleRange(b.pollPauseS),
    },
    sale: {
      skus: p.sale.skus.map((s) => ({ ...s, stock: units(s.stock) })),
      ...(p.sale.coupon
        ? { coupon: { ...p.sale.coupon, budget: units(p.sale.coupon.budget) } }
        : {}),
    },
    durationS: totalDurationS(stages),
  };
}

/** Raw preset JSON (as written in scenarios/presets/) to the core with defaults, without validation (k6 side). */
export function withDefaults(raw: unknown): PresetCore {
  const r = raw as {
    name: string;
    traffic: { startRate: number; stages: Stage[]; preAllocatedVUs?: number; maxVUs?: number };
    behaviour?: Partial<Behaviour>;
    sale: { skus: (Omit<SaleSku, 'limit'> & { limit?: number })[]; coupon?: SaleCoupon };
  };
  if (!r || typeof r !== 'object' || !r.traffic || !Array.isArray(r.traffic.stages) || !r.sale)
    throw new Error('not a preset: it needs traffic.stages and sale');
  return {
    name: r.name,
    traffic: { ...TRAFFIC_DEFAULTS, ...r.traffic },
    behaviour: { ...BEHAVIOUR_DEFAULTS, ...(r.behaviour ?? {}) },
    sale: {
      skus: r.sale.skus.map((s) => ({ ...s, limit: s.limit ?? 1 })),
      ...(r.sale.coupon ? { coupon: r.sale.coupon } : {}),
    },
  };
}

/** How many shoppers a run needs: the arrivals of the shape, plus 10% and 20 for the ramps' rounding. */
export function shopperCount(p: ResolvedPreset): number {
  return Math.ceil(expectedArrivals(p.traffic.startRate, p.traffic.stages) * 1.1) + 20;
}

/**
 * How long an engine lets running shoppers finish after the last stage (seconds):
 * the longest pauses a shopper can take after arriving (pay later, every
 * retry pause, every poll) plus one request timeout per pay click and two
 * more (order, catalogue), capped at 10 minutes. Shoppers still running then
 * are interrupted (flashcrowd's engine counts them as started; k6's
 * `iterations` counts completed ones only: harness/run/load.ts trafficCheck).
 */
export function gracefulStopS(p: ResolvedPreset): number {
  const b = p.behaviour;
  const clicks = 1 + b.maxRetries;
  const pauses =
    b.payLaterS[1] + b.maxRetries * b.retryPauseS[1] + clicks * b.polls * b.pollPauseS[1];
  return Math.min(600, Math.ceil(pauses + (clicks + 2) * b.requestTimeoutS) + 1);
}

/** Channels a shopper may pay with: those with a positive weight, in the fixed CHANNELS order. */
export function weightedChannels(b: Behaviour): Channel[] {
  return CHANNELS.filter((c) => (b.channels[c] ?? 0) > 0);
}
