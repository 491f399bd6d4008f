// Scenario presets: one JSON file per preset in scenarios/presets/ (traffic
// shape + shopper behaviour + sale + checkout build + chaos + budgets). This is
// the one place a preset is validated; the k6 script (scenarios/livestream.ts)
// reads the resolved form the harness writes (`ResolvedPreset`).
// docs/SCENARIOS.md documents every field.
//
// Scaling: a preset is written at full length and full load (time-scale 1,
// load-scale 1: a 20-minute promotion). `--time-scale X` multiplies every
// duration (stages, chaos offsets, the checkout's payment deadline, human
// pauses, wallet notification schedules); `--load-scale Y` multiplies every
// arrival rate. Stock and coupon budgets scale with X * Y, so a sale sells out
// at the same point of the shape whatever the scale. The arithmetic lives in
// scenarios/lib/ (shared with the k6 script, which scales presets itself when
// run by hand).
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { MAX_STOCK_BUCKETS } from '../checkout/buckets.ts';
import { applyOverrides, defaultConfig } from '../checkout/config.ts';
import { SKU_ID } from '../checkout/store.ts';
import { issuesToErrors, makeProfileSchema } from '../mock-gateways/chaos/profile.ts';
import { faultProblems, faultsSchema } from './faults/schema.ts';
import { ValidationError } from '../mock-gateways/errors.ts';
import { SERVICE_CATALOG, SERVICE_NAMES } from '../mock-gateways/catalog.ts';
import {
  BEHAVIOUR_DEFAULTS,
  TRAFFIC_DEFAULTS,
  resolve,
  type ResolvedPreset as ScaledPreset,
} from '../scenarios/lib/preset.ts';
import { stageLabels, totalDurationS } from '../scenarios/lib/shape.ts';
import { INVARIANT_IDS } from './audit/report.ts';
import { parseBudget } from './budgets.ts';
import { UsageError } from './errors.ts';
import { PROJECT_ROOT } from './tools.ts';

export const PRESETS_DIR = join(PROJECT_ROOT, 'scenarios', 'presets');

const share = z.number().min(0).max(1);
const seconds = z.number().min(0).max(86_400);
const range = z
  .tuple([seconds, seconds])
  .refine(([a, b]) => a <= b, 'the first number must not exceed the second');
const LABEL = /^[a-z0-9_-]+$/;

/** One stage of the arrival rate: ramp linearly to `target` shoppers/s over `durationS`. */
export const stageSchema = z
  .object({
    durationS: z.number().positive().max(86_400),
    target: z.number().min(0).max(1_000_000),
    /** Shown on charts and usable in budgets (`{stage=<label>}`); default `stage<i+1>`. */
    label: z.string().regex(LABEL, 'lower-case letters, digits, - and _').max(40).optional(),
  })
  .strict();

export const trafficSchema = z
  .object({
    /** Arrivals per second at the start (open model: k6 ramping-arrival-rate). */
    startRate: z.number().min(0).max(1_000_000),
    stages: z.array(stageSchema).min(1).max(100),
    /** k6 VUs allocated up front / at most, at load-scale 1 (scaled with the load). */
    preAllocatedVUs: z.number().int().min(1).max(100_000).default(TRAFFIC_DEFAULTS.preAllocatedVUs),
    maxVUs: z.number().int().min(1).max(100_000).default(TRAFFIC_DEFAULTS.maxVUs),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.maxVUs < t.preAllocatedVUs)
      ctx.addIssue({
        code: 'custom',
        path: ['maxVUs'],
        message: `must be at least preAllocatedVUs (${t.preAllocatedVUs})`,
      });
    const seen = new Map<string, number>();
    stageLabels(t.stages).forEach((l, i) => {
      if (seen.has(l))
        ctx.addIssue({
          code: 'custom',
          path: ['stages', i, 'label'],
          message: `duplicate stage label "${l}" (stage ${seen.get(l)! + 1} has it; unlabelled stages are stage<n>)`,
        });
      else seen.set(l, i);
    });
    if (t.startRate === 0 && t.stages.every((s) => s.target === 0))
      ctx.addIssue({ code: 'custom', path: ['stages'], message: 'no arrivals: every rate is 0' });
  });

const channelWeights = z
  .object({ card: share, alipay: share, wechat: share })
  .partial()
  .strict()
  .refine((w) => Object.values(w).some((v) => (v ?? 0) > 0), 'at least one channel needs a weight');

const D = BEHAVIOUR_DEFAULTS;
/** What a shopper does, as shares of arriving shoppers (each drawn per shopper from the seed). */
export const behaviourSchema = z
  .object({
    /** Look at the catalogue and leave. */
    browseOnly: share.default(D.browseOnly),
    /** Order with a coupon from the sale's campaign (when it has one). */
    useCoupon: share.default(D.useCoupon),
    /** Payment channel weights (relative; need not add up to 1). */
    channels: channelWeights.default(D.channels),
    /** Click pay again while the first click is still waiting. */
    reclickPay: share.default(D.reclickPay),
    /** Extra clicks when re-clicking: 1 to this many. */
    maxReclicks: z.number().int().min(1).max(10).default(D.maxReclicks),
    /** After a failed payment, try again after a human pause. */
    retryAfterFailure: share.default(D.retryAfterFailure),
    /** The pause before that retry, seconds at time-scale 1. */
    retryPauseS: range.default(D.retryPauseS),
    /** Retries after the first click, at most. */
    maxRetries: z.number().int().min(0).max(5).default(D.maxRetries),
    /** On retrying, switch to another channel. */
    switchChannel: share.default(D.switchChannel),
    /** Offer the other channels as fallbacks (the hardened checkout fails over). */
    allowFallback: share.default(D.allowFallback),
    /** Order, then never pay. */
    abandon: share.default(D.abandon),
    /** Order, leave, come back later to pay. */
    payLater: share.default(D.payLater),
    /** How much later, seconds at time-scale 1. */
    payLaterS: range.default(D.payLaterS),
    /** Looks at a paying order (202) at most this many times before leaving. */
    polls: z.number().int().min(0).max(20).default(D.polls),
    /** The pause before each look, seconds at time-scale 1. */
    pollPauseS: range.default(D.pollPauseS),
    /** How long a shopper's request waits for an answer, seconds (a network timeout: not scaled). */
    requestTimeoutS: z.number().min(0.1).max(600).default(D.requestTimeoutS),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.abandon + b.payLater > 1 + 1e-9)
      ctx.addIssue({
        code: 'custom',
        path: ['payLater'],
        message: `abandon + payLater must be at most 1 (they exclude each other); they add up to ${b.abandon + b.payLater}`,
      });
  });

const campaignId = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, '1-64 letters, digits, _ . : and -');

export const saleSchema = z
  .object({
    skus: z
      .array(
        z
          .object({
            id: z.string().regex(SKU_ID, '1-32 letters, digits, - and _'),
            name: z.string().min(1).max(128).optional(),
            /** Price in minor units (fen). */
            price: z.number().int().min(1).max(100_000_000),
            /** Units at full scale (scaled by time-scale x load-scale, at least 1). */
            stock: z.number().int().min(1).max(100_000_000),
            /** Units one shopper may hold (reserved or bought); 0: no limit. */
            limit: z.number().int().min(0).max(1000).default(1),
          })
          .strict(),
      )
      .min(1)
      .max(1000)
      .superRefine((skus, ctx) => {
        const seen = new Set<string>();
        skus.forEach((k, i) => {
          if (seen.has(k.id))
            ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate SKU id ${k.id}` });
          seen.add(k.id);
        });
      }),
    coupon: z
      .object({
        campaignId,
        /** Coupons at full scale (scaled like stock). */
        budget: z.number().int().min(1).max(10_000_000),
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
    /** Feature and parameter overrides, as `--set KEY=VALUE` takes them (docs/CHECKOUT.md). */
    set: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
    /**
     * Checkout processes on the one Redis and set of mocks (1-16; default 1);
     * each shopper sticks to one, drawn from the seed. A variant's own
     * `checkout.instances` wins, `run --instances` over both.
     */
    instances: z.number().int().min(1).max(16).optional(),
    /**
     * The Redis the harness starts for this build: its append-only file's
     * fsync policy, or `none` (no persistence: a restart comes back empty).
     * Default: `everysec` when the preset's faults restart Redis, else none.
     */
    redisPersistence: z.enum(['everysec', 'always', 'none']).optional(),
    /**
     * The harness starts a local Redis Cluster of this many masters (3-16)
     * instead of one redis-server, and the checkout and the audit use cluster
     * clients (docs/CHECKOUT.md, "On a Redis Cluster"); `run --redis-cluster`
     * wins. Default: one Redis.
     */
    redisCluster: z.number().int().min(3).max(16).optional(),
    /**
     * Stock buckets per SKU (docs/CHECKOUT.md, "Stock buckets"): the same as
     * `set.stockBuckets`, which it becomes (and overrides).
     */
    stockBuckets: z.number().int().min(1).max(MAX_STOCK_BUCKETS).optional(),
  })
  .strict()
  .transform(({ stockBuckets, ...b }) =>
    stockBuckets === undefined ? b : { ...b, set: { ...b.set, stockBuckets } },
  );

/**
 * Chaos per mock service: a chaos profile (docs/CHAOS.md), validated here with
 * the service's own profile schema. Time offsets in it (`atMs`, `startMs`,
 * `durationMs`, `periodMs`) are at time-scale 1 and scaled.
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
    name: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and -'),
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
      .object({ timeScale: z.number().positive().max(1), loadScale: z.number().positive().max(1) })
      .strict()
      .default({ timeScale: 1 / 60, loadScale: 0.1 }),
    traffic: trafficSchema,
    behaviour: behaviourSchema.default(behaviourSchema.parse({})),
    sale: saleSchema,
    checkout: checkoutBuildSchema.default({ mode: 'hardened', set: {} }),
    chaos: chaosSchema.default({}),
    /** Faults beyond the mocks: network toxics, killed checkouts, Redis restarts (harness/faults/schema.ts). */
    faults: faultsSchema,
    budgets: z.array(z.string()).default([]),
    /**
     * Invariants this preset accepts undecided: they do not count in
     * invariants.broken (an undecided invariant does, by default).
     */
    allowUndecided: z.array(z.enum(INVARIANT_IDS)).default([]),
    variants: z.array(variantSchema).min(1).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const names = new Set<string>();
    p.variants?.forEach((v, i) => {
      if (names.has(v.name))
        ctx.addIssue({
          code: 'custom',
          path: ['variants', i, 'name'],
          message: `duplicate variant name ${v.name}`,
        });
      names.add(v.name);
    });
  });

export type Preset = z.infer<typeof presetSchema>;
export type Stage = z.infer<typeof stageSchema>;
export type Behaviour = z.infer<typeof behaviourSchema>;
export type Variant = z.infer<typeof variantSchema>;

/**
 * What the harness hands the k6 script (as a JSON file, `PRESET_FILE`): the
 * preset with scales applied, the seed, and the sale as seeded. Defined in
 * scenarios/lib/preset.ts, which the script imports too.
 */
export type ResolvedPreset = ScaledPreset;

type FieldErrors = { field: string; reason: string }[];

/** The checks zod cannot make alone: chaos profiles, checkout settings, budgets. */
function deepChecks(p: Preset): FieldErrors {
  const errors: FieldErrors = [];
  for (const service of SERVICE_NAMES) {
    const profile = p.chaos[service];
    if (profile === undefined) continue;
    const r = makeProfileSchema(SERVICE_CATALOG[service]).safeParse(profile);
    if (!r.success)
      errors.push(
        ...issuesToErrors(r.error.issues, '').map((e) => ({
          field: ['chaos', service, e.field].filter(Boolean).join('.'),
          reason: e.reason,
        })),
      );
  }
  const builds: [string, Preset['checkout']][] = [
    ['checkout', p.checkout],
    ...(p.variants ?? []).flatMap((v, i) =>
      v.checkout ? [[`variants.${i}.checkout`, v.checkout] as [string, typeof p.checkout]] : [],
    ),
  ];
  for (const [where, b] of builds) {
    errors.push(...clusterBuildProblems(b, where));
    try {
      applyOverrides(
        defaultConfig(b.mode),
        Object.entries(b.set).map(([k, v]) => `${k}=${String(v)}`),
      );
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      errors.push(...e.errors.map((x) => ({ field: `${where}.set.${x.field}`, reason: x.reason })));
    }
  }
  const stages = stageLabels(p.traffic.stages);
  const budgetLists: [string, string[], 'preset' | 'variant'][] = [
    ['budgets', p.budgets, 'preset'],
    ...(p.variants ?? []).flatMap((v, i) =>
      v.budgets
        ? [[`variants.${i}.budgets`, v.budgets, 'variant'] as [string, string[], 'variant']]
        : [],
    ),
  ];
  for (const [where, list, source] of budgetLists)
    list.forEach((expr, i) => {
      try {
        parseBudget(expr, source, { stages });
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        errors.push({ field: `${where}.${i}`, reason: e.message.split('\n')[0]! });
      }
    });
  errors.push(...faultChecks(p));
  return errors;
}

/**
 * What a build asks of the Redis the harness starts that a Redis Cluster
 * cannot give: an append-only file (its masters run without persistence).
 */
export function clusterBuildProblems(
  b: Pick<Preset['checkout'], 'redisCluster' | 'redisPersistence'>,
  where: string,
): FieldErrors {
  if (b.redisCluster === undefined || !b.redisPersistence || b.redisPersistence === 'none')
    return [];
  return [
    {
      field: `${where}.redisPersistence`,
      reason: `${b.redisPersistence} with a Redis Cluster: not supported (the cluster's masters run without persistence); drop it, or run on one Redis`,
    },
  ];
}

/**
 * The faults' own checks, for the harness that starts everything (a run's
 * --target or REDIS_URL is checked when it starts: harness/run/faults.ts).
 */
function faultChecks(p: Preset): FieldErrors {
  const instances = Math.max(
    p.checkout.instances ?? 1,
    ...(p.variants ?? []).map((v) => v.checkout?.instances ?? 1),
  );
  return faultProblems(p.faults, {
    startsCheckout: true,
    instances,
    startsRedis: true,
    reachesRedis: true,
    redisCluster: [p.checkout, ...(p.variants ?? []).map((v) => v.checkout)].some(
      (b) => b?.redisCluster !== undefined,
    ),
    trafficMs: totalDurationS(p.traffic.stages) * 1000,
  }).map((line) => {
    const colon = line.indexOf(': ');
    return { field: line.slice(0, colon), reason: line.slice(colon + 2) };
  });
}

/** Parse a preset; errors name the field (`traffic.stages.2.target: ...`). */
export function parsePreset(raw: unknown, source: string): Preset {
  const r = presetSchema.safeParse(raw);
  const errs = r.success ? deepChecks(r.data) : issuesToErrors(r.error.issues, '(preset)');
  if (errs.length)
    throw new UsageError(
      `invalid preset ${source}:\n${errs.map((e) => `  ${e.field}: ${e.reason}`).join('\n')}`,
    );
  return r.data!;
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

/** Apply scales and the seed: what the k6 script runs (scenarios/lib/preset.ts `resolve`). */
export function resolvePreset(
  p: Preset,
  o: { seed: number; timeScale: number; loadScale: number; variant?: string },
): ResolvedPreset {
  return resolve(p, o);
}

/**
 * Scale the time offsets of a chaos profile (and of its timeline steps) by `ts`:
 * `atMs` and `startMs` to the nearest millisecond, `durationMs` and `periodMs`
 * too but at least 1 ms (the engine refuses 0). Latencies, hang times and
 * notification delays are real times and stay as written.
 */
export function scaleChaosProfile(profile: unknown, ts: number): unknown {
  const OFFSETS = new Set(['atMs', 'startMs']);
  const SPANS = new Set(['durationMs', 'periodMs']);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (typeof x === 'number' && OFFSETS.has(k)) out[k] = Math.round(x * ts);
        else if (typeof x === 'number' && SPANS.has(k)) out[k] = Math.max(1, Math.round(x * ts));
        else out[k] = walk(x);
      }
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
