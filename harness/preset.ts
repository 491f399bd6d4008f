// Scenario presets: one JSON file per preset in scenarios/presets/ (traffic
// shape + shopper behaviour + sale + checkout build + chaos + budgets). This is
// the one place a preset is validated; the k6 script (scenarios/livestream.ts)
// reads the resolved form the harness writes (`ResolvedPreset`).
//
// Scaling: a preset is written at full length and full load (time-scale 1,
// load-scale 1: a 20-minute promotion). `--time-scale X` multiplies every
// duration (stages, chaos offsets, the checkout's payment deadline, human
// pauses, wallet notification schedules); `--load-scale Y` multiplies every
// arrival rate. Stock and coupon budgets scale with X * Y, so a sale sells out
// at the same point of the shape whatever the scale.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { issuesToErrors } from '../mock-gateways/chaos/profile.ts';
import { UsageError } from './errors.ts';
import { PROJECT_ROOT } from './tools.ts';

export const PRESETS_DIR = join(PROJECT_ROOT, 'scenarios', 'presets');

const share = z.number().min(0).max(1);
const seconds = z.number().min(0).max(86_400);
const range = z
  .tuple([seconds, seconds])
  .refine(([a, b]) => a <= b, 'the first number must not exceed the second');

/** One stage of the arrival rate: ramp linearly to `target` shoppers/s over `durationS`. */
export const stageSchema = z
  .object({
    durationS: z.number().positive().max(86_400),
    target: z.number().min(0).max(1_000_000),
    /** Shown on charts and usable in budgets (`stage:<label>`). */
    label: z
      .string()
      .regex(/^[a-z0-9_-]+$/, 'lower-case letters, digits, - and _')
      .optional(),
  })
  .strict();

export const trafficSchema = z
  .object({
    /** Arrivals per second at the start (open model: k6 ramping-arrival-rate). */
    startRate: z.number().min(0).max(1_000_000),
    stages: z.array(stageSchema).min(1),
    /** k6 VUs allocated up front / at most, at load-scale 1 (scaled with the load). */
    preAllocatedVUs: z.number().int().min(1).max(100_000).default(50),
    maxVUs: z.number().int().min(1).max(100_000).default(1_000),
  })
  .strict();

const channelWeights = z
  .object({ card: share, alipay: share, wechat: share })
  .partial()
  .strict()
  .refine((w) => Object.values(w).some((v) => (v ?? 0) > 0), 'at least one channel needs a weight');

/** What a shopper does, as shares of arriving shoppers (each drawn per shopper from the seed). */
export const behaviourSchema = z
  .object({
    /** Look at the catalogue and leave. */
    browseOnly: share.default(0.3),
    /** Order with a coupon from the sale's campaign (when it has one). */
    useCoupon: share.default(0),
    /** Payment channel weights. */
    channels: channelWeights.default({ card: 1 }),
    /** Click pay again while the first click is still waiting. */
    reclickPay: share.default(0.1),
    /** Extra clicks when re-clicking: 1 to this many. */
    maxReclicks: z.number().int().min(1).max(10).default(2),
    /** After a failed payment, try again after a human pause. */
    retryAfterFailure: share.default(0.5),
    /** The pause before that retry, seconds at time-scale 1. */
    retryPauseS: range.default([2, 10]),
    /** On retrying, switch to another channel. */
    switchChannel: share.default(0.3),
    /** Offer the other channels as fallbacks (the hardened checkout fails over). */
    allowFallback: share.default(0.5),
    /** Order, then never pay. */
    abandon: share.default(0.05),
    /** Order, leave, come back later to pay. */
    payLater: share.default(0.05),
    /** How much later, seconds at time-scale 1. */
    payLaterS: range.default([30, 300]),
  })
  .strict();

export const saleSchema = z
  .object({
    skus: z
      .array(
        z
          .object({
            id: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, '1-40 letters, digits, - and _'),
            name: z.string().max(80).optional(),
            /** Price in minor units (fen). */
            price: z.number().int().min(1),
            /** Units at full scale (scaled by time-scale x load-scale, at least 1). */
            stock: z.number().int().min(1),
            /** Per-user purchase limit. */
            limit: z.number().int().min(1).default(1),
          })
          .strict(),
      )
      .min(1),
    coupon: z
      .object({
        campaignId: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/),
        /** Coupons at full scale (scaled like stock). */
        budget: z.number().int().min(1),
        /** Discount in minor units. */
        discount: z.number().int().min(1),
      })
      .strict()
      .optional(),
  })
  .strict();

export const checkoutBuildSchema = z
  .object({
    mode: z.enum(['naive', 'hardened']).default('hardened'),
    /** Feature and parameter overrides, as `--set KEY=VALUE` takes them. */
    set: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .strict();

/**
 * Chaos per mock service: a chaos profile (docs/CHAOS.md), validated by the
 * service's engine when the harness applies it. Time offsets in it (`atMs`,
 * `startMs`, `durationMs`, `periodMs`) are at time-scale 1 and scaled.
 */
export const chaosSchema = z
  .object({
    bank: z.record(z.string(), z.unknown()).optional(),
    wallet: z.record(z.string(), z.unknown()).optional(),
    coupon: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

/** A variant runs the same preset with another checkout build and its own budgets and expectation. */
export const variantSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9-]+$/),
    description: z.string().optional(),
    checkout: checkoutBuildSchema.optional(),
    /** Replace the preset's budgets for this variant. */
    budgets: z.array(z.string()).optional(),
    /** What the variant is expected to do against its budgets (documentation and tests). */
    expect: z.enum(['pass', 'fail']).default('pass'),
  })
  .strict();

export const presetSchema = z
  .object({
    $schema: z.string().optional(),
    name: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and -'),
    description: z.string().min(1),
    /** Suggested scales for a short run (CI, the demo); `--ci` uses them. */
    ci: z
      .object({ timeScale: z.number().positive().max(1), loadScale: z.number().positive() })
      .strict()
      .default({ timeScale: 1 / 60, loadScale: 0.1 }),
    traffic: trafficSchema,
    behaviour: behaviourSchema.default(behaviourSchema.parse({})),
    sale: saleSchema,
    checkout: checkoutBuildSchema.default({ mode: 'hardened', set: {} }),
    chaos: chaosSchema.default({}),
    budgets: z.array(z.string()).default([]),
    variants: z.array(variantSchema).optional(),
  })
  .strict();

export type Preset = z.infer<typeof presetSchema>;
export type Stage = z.infer<typeof stageSchema>;
export type Behaviour = z.infer<typeof behaviourSchema>;
export type Variant = z.infer<typeof variantSchema>;

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
  /** Stages with durations and targets scaled. */
  traffic: { startRate: number; stages: Stage[]; preAllocatedVUs: number; maxVUs: number };
  /** Behaviour with pauses scaled (retryPauseS, payLaterS in seconds of this run). */
  behaviour: Behaviour;
  sale: {
    skus: { id: string; name?: string; price: number; stock: number; limit: number }[];
    coupon?: { campaignId: string; budget: number; discount: number };
  };
  /** Total seconds of traffic (sum of the scaled stages). */
  durationS: number;
}

/** Parse a preset; errors name the field (`traffic.stages.2.target: ...`). */
export function parsePreset(raw: unknown, source: string): Preset {
  const r = presetSchema.safeParse(raw);
  if (!r.success) {
    const errs = issuesToErrors(r.error.issues, '(preset)');
    throw new UsageError(
      `invalid preset ${source}:\n${errs.map((e) => `  ${e.field}: ${e.reason}`).join('\n')}`,
    );
  }
  return r.data;
}

/** A preset by name (scenarios/presets/NAME.json) or by file path. */
export function loadPreset(nameOrFile: string): { preset: Preset; file: string } {
  const file =
    nameOrFile.endsWith('.json') || nameOrFile.includes('/')
      ? nameOrFile
      : join(PRESETS_DIR, `${nameOrFile}.json`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    const known = listPresetNames();
    throw new UsageError(
      `no preset "${nameOrFile}" (looked for ${file}); known presets: ${known.join(', ') || '(none)'}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`preset ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return { preset: parsePreset(raw, file), file };
}

export function listPresetNames(): string[] {
  try {
    return readdirSync(PRESETS_DIR)
      .filter((f) => f.endsWith('.json') && !f.endsWith('.schema.json'))
      .map((f) => basename(f, '.json'))
      .sort();
  } catch {
    return [];
  }
}

/** Apply scales and the seed: what the k6 script runs. */
export function resolvePreset(
  p: Preset,
  o: { seed: number; timeScale: number; loadScale: number; variant?: string },
): ResolvedPreset {
  const ts = o.timeScale;
  const ls = o.loadScale;
  const units = (n: number) => Math.max(1, Math.round(n * ts * ls));
  const stages = p.traffic.stages.map((s) => ({
    ...s,
    durationS: Math.max(1, Math.round(s.durationS * ts)),
    target: s.target * ls,
  }));
  const vus = (n: number) => Math.max(1, Math.ceil(n * ls));
  const b = p.behaviour;
  const scaleRange = ([a, c]: [number, number]): [number, number] => [a * ts, c * ts];
  return {
    name: p.name,
    variant: o.variant,
    seed: o.seed,
    timeScale: ts,
    loadScale: ls,
    traffic: {
      startRate: p.traffic.startRate * ls,
      stages,
      preAllocatedVUs: vus(p.traffic.preAllocatedVUs),
      maxVUs: vus(p.traffic.maxVUs),
    },
    behaviour: { ...b, retryPauseS: scaleRange(b.retryPauseS), payLaterS: scaleRange(b.payLaterS) },
    sale: {
      skus: p.sale.skus.map((s) => ({ ...s, stock: units(s.stock) })),
      ...(p.sale.coupon
        ? { coupon: { ...p.sale.coupon, budget: units(p.sale.coupon.budget) } }
        : {}),
    },
    durationS: stages.reduce((a, s) => a + s.durationS, 0),
  };
}

/** Scale the time offsets of a chaos profile (and of its timeline steps) by `ts`. */
export function scaleChaosProfile(profile: unknown, ts: number): unknown {
  const TIME_KEYS = new Set(['atMs', 'startMs', 'durationMs', 'periodMs']);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v))
        out[k] = TIME_KEYS.has(k) && typeof x === 'number' ? Math.round(x * ts) : walk(x);
      return out;
    }
    return v;
  };
  return walk(profile);
}

/** Read a preset file without validating (for `list` to show broken ones too). */
export function readPresetRaw(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}
