// The chaos profiles and request body the mock-gateway benchmark uses, in one
// place so the servers, the runner and the report agree on them.

/** What every server in the benchmark is asked: one card payment, the bank's test Visa card. */
export const BENCH_CARD = '4242424242424242';
export const BENCH_AMOUNT = 1999;
export const BENCH_CURRENCY = 'CNY';

/** Seed for the bank's chaos engine (the latency replica uses the same one). */
export const BENCH_SEED = 1;

/**
 * Faultless bank: no chaos at all. Velocity risk control is off because the
 * load generator pays with the same card every time.
 */
export const PROFILE_NONE = { extra: { velocity: false } } as const;

/** The throughput phase's latency + errors profile (about 7% of answers are faults). */
export const PROFILE_CHAOS = {
  latency: { dist: 'lognormal', medianMs: 5, p99Ms: 40 },
  errors: [
    { rate: 0.05, kind: 'http', status: 503 },
    { rate: 0.02, kind: 'rate_limit' },
  ],
  extra: { velocity: false },
} as const;

/** The latency phase's profile: injected latency only, no errors. */
export const PROFILE_LATENCY = {
  latency: { dist: 'lognormal', medianMs: 50, p99Ms: 400 },
  extra: { velocity: false },
} as const;

export const SERVER_KINDS = ['node-http', 'express', 'bank', 'bank-chaos', 'bank-latency'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

export const BANK_PROFILES: Partial<Record<ServerKind, unknown>> = {
  bank: PROFILE_NONE,
  'bank-chaos': PROFILE_CHAOS,
  'bank-latency': PROFILE_LATENCY,
};
