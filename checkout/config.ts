// Checkout configuration: one schema, a naive and a hardened preset, and
// KEY=VALUE overrides (`--set retries=none`). Every knob is documented in
// docs/CHECKOUT.md; keep the two in step.
import { z } from 'zod';
import { MAX_STOCK_BUCKETS } from './buckets.ts';
import { issuesToErrors } from '../mock-gateways/chaos/profile.ts';
import { ValidationError } from '../mock-gateways/errors.ts';

export const MODES = ['naive', 'hardened'] as const;
export type Mode = (typeof MODES)[number];

const ms = z.number().int().min(0).max(86_400_000);
const msAtLeast = (min: number) => z.number().int().min(min).max(86_400_000);
const pos = z.number().int().min(1);

export const featuresSchema = z
  .object({
    /** Timeouts on gateway calls, derived from the dependency's observed latency. */
    timeouts: z.boolean(),
    /** The incoming request's deadline bounds every gateway call it makes. */
    deadlines: z.boolean(),
    /** none | immediate (no backoff, the naive way) | jittered (full jitter, capped). */
    retries: z.enum(['none', 'immediate', 'jittered']),
    /** At most about `retryBudgetRatio` extra attempts per request, across the process. */
    retryBudget: z.boolean(),
    /** Send an Idempotency-Key to the gateways (derived from the order). */
    idempotencyKeys: z.boolean(),
    /** A circuit breaker per dependency and channel. */
    circuitBreaker: z.boolean(),
    /** A bulkhead (concurrency limit and queue) per dependency. */
    bulkhead: z.boolean(),
    /** Shed load with 503 + Retry-After before the event loop saturates. */
    loadShedding: z.boolean(),
    /** Release stock and coupon at once on a definite payment failure (else only at expiry). */
    immediateRelease: z.boolean(),
    /** Settle orders stuck in paying by querying the gateway; refund late and extra captures. */
    reconciler: z.boolean(),
    /** On a failure that the channel caused, try another channel the shopper allows. */
    failover: z.boolean(),
    // The seeds' own mistakes, each on its own (docs/CHECKOUT.md, "Naive behaviours").
    /** Check stock and the per-user limit with one read, take the stock in a second round trip (oversell under concurrency). */
    splitStockCheck: z.boolean(),
    /** A paying order waits for its callback forever: the sweeper never expires it (ghost stock when the callback is lost). */
    holdPaying: z.boolean(),
    /** The coupon goes back only when the shopper cancels: a failed or expired order keeps it locked. */
    couponReleaseOnCancelOnly: z.boolean(),
    /** A click on pay while a payment of the order is in flight starts a second payment. */
    reclickRepays: z.boolean(),
  })
  .strict();
export type Features = z.infer<typeof featuresSchema>;

/** The features that are the seeds' mistakes (on: the mistake), not resilience (docs/CHECKOUT.md, "Naive behaviours"). */
export const NAIVE_BEHAVIOURS: readonly (keyof Features)[] = [
  'splitStockCheck',
  'holdPaying',
  'couponReleaseOnCancelOnly',
  'reclickRepays',
];

export const paramsSchema = z
  .object({
    /** How long an unpaid order holds its stock (15 min, like the platforms in the seeds). */
    paymentTtlMs: msAtLeast(1),
    /**
     * Multiplies the checkout's durations that model the world (payment TTL,
     * sweeper, reconciler, staleness, breaker window and half-open wait) so a
     * short run tells the same story; request-level ones (timeouts, retry
     * backoff, request budget) follow real latency and are not scaled
     * (docs/CHECKOUT.md, "Time-scale").
     */
    timeScale: z.number().positive().max(1),
    /** Attempts per gateway call, the first included. */
    maxAttempts: pos.max(10),
    retryBaseMs: ms,
    retryCapMs: ms,
    /** Extra attempts allowed per first attempt (0.1: about 10%). */
    retryBudgetRatio: z.number().min(0).max(1),
    /** Timeout when the dependency has no latency history yet, and the clamp for derived ones. */
    timeoutMs: msAtLeast(1),
    minTimeoutMs: msAtLeast(1),
    /** Derived timeout = p99 of recent successful calls x this factor. */
    timeoutFactor: z.number().min(1).max(100),
    /** Budget of an incoming request when it names no deadline (x-request-deadline-ms). */
    requestBudgetMs: msAtLeast(1),
    breakerThreshold: z.number().min(0.01).max(1),
    breakerMinimumRps: z.number().min(0),
    breakerWindowMs: msAtLeast(100),
    breakerHalfOpenMs: msAtLeast(1),
    bulkheadLimit: pos,
    bulkheadQueue: z.number().int().min(0),
    /** Shed when more requests than this are in flight... */
    shedMaxInFlight: pos,
    /** ...or when the event loop's p99 delay over the last second exceeds this... */
    shedMaxLoopDelayMs: msAtLeast(1),
    /**
     * ...or when a request waited this long between its client's
     * `X-Request-Start` and its handler (new work; four times this for an
     * order's pay, status or cancel).
     */
    shedMaxQueueMs: msAtLeast(1),
    /**
     * ...or, for new work, when more than 1% of Redis commands in the last
     * second took longer than this (Redis queueing: the cascade's middle).
     */
    shedMaxRedisMs: msAtLeast(1),
    sweeperIntervalMs: msAtLeast(1),
    reconcilerIntervalMs: msAtLeast(1),
    /** An order in paying this long is queried at the gateway. */
    staleAfterMs: msAtLeast(1),
    /**
     * The product page and the order's stock check read a per-process copy of
     * each SKU's available count, refreshed every this many ms (0: no copy, read
     * Redis). A stale 0 answers "sold out" while stock remains (seed 001).
     */
    stockCacheMs: ms,
    /**
     * A Redis command that has no answer after this long fails (0: never): a
     * paused or unreachable Redis then gets the shopper a 503, not a hang.
     */
    redisTimeoutMs: ms,
    /**
     * Stock buckets per SKU (1: one key set per SKU): a sale seeded by this
     * checkout splits each SKU's stock over this many hash slots, so one hot
     * SKU spreads over the shards of a Redis Cluster (docs/CHECKOUT.md, "Stock buckets").
     */
    stockBuckets: z.number().int().min(1).max(MAX_STOCK_BUCKETS),
    /** Shared HMAC-SHA256 secret of wallet notifications. */
    walletSecret: z.string().min(1),
  })
  .strict();
export type Params = z.infer<typeof paramsSchema>;

export const configSchema = z
  .object({
    mode: z.enum(MODES),
    features: featuresSchema,
    params: paramsSchema,
    /** Prefix of every Redis key, so several runs can share one Redis. */
    keyPrefix: z.string().regex(/^[A-Za-z0-9:_-]{1,32}$/, 'letters, digits, :, _ and - (1-32)'),
  })
  .strict()
  .refine((c) => !(c.features.splitStockCheck && c.params.stockBuckets > 1), {
    // The naive two-step check reads one key set: it keeps one bucket.
    path: ['params', 'stockBuckets'],
    message: 'splitStockCheck reads one bucket: with it, stockBuckets must be 1',
  });
export type CheckoutConfig = z.infer<typeof configSchema>;

export const DEFAULT_PARAMS: Params = {
  paymentTtlMs: 15 * 60_000,
  timeScale: 1,
  maxAttempts: 3,
  retryBaseMs: 50,
  retryCapMs: 1_000,
  retryBudgetRatio: 0.1,
  timeoutMs: 2_000,
  minTimeoutMs: 50,
  timeoutFactor: 3,
  requestBudgetMs: 5_000,
  breakerThreshold: 0.5,
  breakerMinimumRps: 5,
  breakerWindowMs: 10_000,
  breakerHalfOpenMs: 5_000,
  bulkheadLimit: 64,
  bulkheadQueue: 256,
  shedMaxInFlight: 2_000,
  shedMaxLoopDelayMs: 200,
  shedMaxQueueMs: 250,
  shedMaxRedisMs: 500,
  sweeperIntervalMs: 1_000,
  reconcilerIntervalMs: 2_000,
  staleAfterMs: 5_000,
  stockCacheMs: 0,
  redisTimeoutMs: 2_000,
  stockBuckets: 1,
  walletSecret: process.env.FLASHCROWD_WALLET_SECRET ?? 'flashcrowd-wallet-dev-secret',
};

export const PRESETS: Record<Mode, Features> = {
  naive: {
    timeouts: false,
    deadlines: false,
    retries: 'immediate',
    retryBudget: false,
    idempotencyKeys: false,
    circuitBreaker: false,
    bulkhead: false,
    loadShedding: false,
    immediateRelease: false,
    reconciler: false,
    failover: false,
    splitStockCheck: false,
    holdPaying: false,
    couponReleaseOnCancelOnly: false,
    reclickRepays: true,
  },
  hardened: {
    timeouts: true,
    deadlines: true,
    retries: 'jittered',
    retryBudget: true,
    idempotencyKeys: true,
    circuitBreaker: true,
    bulkhead: true,
    loadShedding: true,
    immediateRelease: true,
    reconciler: true,
    failover: true,
    splitStockCheck: false,
    holdPaying: false,
    couponReleaseOnCancelOnly: false,
    reclickRepays: false,
  },
};

export function defaultConfig(mode: Mode = 'hardened'): CheckoutConfig {
  return { mode, features: { ...PRESETS[mode] }, params: { ...DEFAULT_PARAMS }, keyPrefix: 'fc' };
}

function coerce(raw: string): unknown {
  if (raw === 'true' || raw === 'on') return true;
  if (raw === 'false' || raw === 'off') return false;
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  return raw;
}

/**
 * Apply `KEY=VALUE` overrides. KEY is a feature (`retries`, `reconciler`...), a
 * parameter (`paymentTtlMs`...), `mode` (resets features to that preset first)
 * or `keyPrefix`. Throws ValidationError naming the key.
 */
export function applyOverrides(base: CheckoutConfig, sets: readonly string[]): CheckoutConfig {
  let cfg: CheckoutConfig = structuredClone(base);
  const errors: { field: string; reason: string }[] = [];
  // A mode given with --set applies first, so features set alongside it win.
  const modeSet = sets.find((s) => s.startsWith('mode='));
  if (modeSet) {
    const mode = modeSet.slice(5);
    if ((MODES as readonly string[]).includes(mode))
      cfg = { ...cfg, mode: mode as Mode, features: { ...PRESETS[mode as Mode] } };
    else errors.push({ field: 'mode', reason: `must be one of ${MODES.join(', ')}` });
  }
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) {
      errors.push({ field: s, reason: 'expected KEY=VALUE' });
      continue;
    }
    const key = s.slice(0, eq);
    const value = coerce(s.slice(eq + 1));
    if (key === 'mode') continue;
    if (key === 'keyPrefix') cfg.keyPrefix = String(value);
    else if (key in cfg.features) (cfg.features as Record<string, unknown>)[key] = value;
    else if (key in cfg.params)
      (cfg.params as Record<string, unknown>)[key] =
        key === 'walletSecret' ? String(s.slice(eq + 1)) : value;
    else
      errors.push({
        field: key,
        reason: `unknown setting; features: ${Object.keys(cfg.features).join(', ')}; params: ${Object.keys(cfg.params).join(', ')}`,
      });
  }
  try {
    cfg = validateConfig(cfg);
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    errors.push(...e.errors);
  }
  if (errors.length) throw new ValidationError(errors);
  return cfg;
}

export function validateConfig(raw: unknown): CheckoutConfig {
  const r = configSchema.safeParse(raw);
  if (!r.success)
    throw new ValidationError(
      // Name settings as --set takes them: `retries`, not `features.retries`.
      issuesToErrors(r.error.issues, '(config)').map((e) => ({
        ...e,
        field: e.field.replace(/^(features|params)\./, ''),
      })),
    );
  return r.data;
}

/** A duration of the checkout, scaled by timeScale. */
export function scaled(cfg: CheckoutConfig, ms: number): number {
  return Math.max(1, Math.round(ms * cfg.params.timeScale));
}
