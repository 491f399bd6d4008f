// The chaos profile: one schema, shared by the bank, wallet and coupon services.
// Every knob is documented in docs/CHAOS.md; keep the two in step.
import { z } from 'zod';

const ms = z.number().finite().min(0);
const prob = z.number().finite().min(0).max(1);

/** With this probability a draw comes from the heavy tail instead of the body. */
export const tailSchema = z
  .object({
    probability: prob,
    dist: z.literal('pareto'),
    scaleMs: z.number().finite().positive(),
    alpha: z.number().finite().positive(),
    maxMs: ms.optional(),
  })
  .strict();

const tail = tailSchema.optional();
export const latencySchema = z.discriminatedUnion('dist', [
  z.object({ dist: z.literal('fixed'), ms, tail }).strict(),
  z
    .object({ dist: z.literal('uniform'), minMs: ms, maxMs: ms, tail })
    .strict()
    .refine((l) => l.maxMs >= l.minMs, { message: 'maxMs must be >= minMs', path: ['maxMs'] }),
  z.object({ dist: z.literal('normal'), meanMs: ms, stdDevMs: ms, tail }).strict(),
  z
    .object({
      dist: z.literal('lognormal'),
      medianMs: z.number().finite().positive(),
      p99Ms: z.number().finite().positive(),
      tail,
    })
    .strict()
    .refine((l) => l.p99Ms >= l.medianMs, {
      message: 'p99Ms must be >= medianMs',
      path: ['p99Ms'],
    }),
  z
    .object({
      dist: z.literal('pareto'),
      scaleMs: z.number().finite().positive(),
      alpha: z.number().finite().positive(),
      maxMs: ms.optional(),
      tail,
    })
    .strict(),
]);
export type LatencySpec = z.infer<typeof latencySchema>;

export const ERROR_KINDS = [
  'http',
  'decline',
  'rate_limit',
  'hang',
  'reset',
  'empty',
  'malformed',
  'dribble',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Kinds that may be used for an ambiguous outcome (the operation takes effect first). */
export const AMBIGUOUS_KINDS: readonly ErrorKind[] = [
  'http',
  'hang',
  'reset',
  'empty',
  'malformed',
];

export const errorSchema = z
  .object({
    rate: prob,
    kind: z.enum(ERROR_KINDS),
    /** http: the status to answer with (default 503). */
    status: z.number().int().min(400).max(599).optional(),
    /** decline: the domain reason code (checked against the service's list). */
    reason: z.string().min(1).max(64).optional(),
    /** rate_limit: Retry-After seconds (default 1). */
    retryAfterS: z.number().int().min(0).max(86_400).optional(),
    /** hang: how long to hold the request before closing it (default 120 s). */
    hangMs: z.number().int().min(1).max(3_600_000).optional(),
    /** dribble: bytes per chunk and the pause between chunks. */
    chunkBytes: z.number().int().min(1).max(65_536).optional(),
    intervalMs: z.number().int().min(1).max(60_000).optional(),
    /** The operation takes effect first, then the caller gets this fault. */
    ambiguous: z.boolean().optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    if (e.kind === 'decline' && !e.reason)
      ctx.addIssue({ code: 'custom', path: ['reason'], message: 'a decline needs a reason code' });
    if (e.ambiguous && !AMBIGUOUS_KINDS.includes(e.kind))
      ctx.addIssue({
        code: 'custom',
        path: ['ambiguous'],
        message: `ambiguous outcomes apply to ${AMBIGUOUS_KINDS.join(', ')}; not to ${e.kind}`,
      });
  });
export type ErrorSpec = z.infer<typeof errorSchema>;

export const capacitySchema = z
  .object({
    maxInFlight: z.number().int().min(1),
    /** Requests beyond maxInFlight wait in a bounded queue (default 0); beyond that, 503. */
    queue: z.number().int().min(0).optional(),
  })
  .strict();

const faultFields = {
  latency: latencySchema.optional(),
  errors: z.array(errorSchema).max(32).optional(),
  capacity: capacitySchema.optional(),
};
const ratesAddUp = (f: { errors?: { rate: number }[] | undefined }, ctx: z.RefinementCtx) => {
  const total = (f.errors ?? []).reduce((s, e) => s + e.rate, 0);
  if (total > 1 + 1e-9)
    ctx.addIssue({
      code: 'custom',
      path: ['errors'],
      message: `error rates add up to ${total.toFixed(4)}; they must add up to at most 1`,
    });
};

/** Faults for a whole service or one operation. */
export const faultSpecSchema = z.object(faultFields).strict().superRefine(ratesAddUp);
export type FaultSpec = z.infer<typeof faultSpecSchema>;

export const outageSchema = z
  .object({
    /** Offset from the moment the profile was applied. */
    startMs: ms,
    durationMs: z.number().finite().positive(),
    mode: z.enum(['down', 'brownout', 'flapping']),
    /** Limit the window to these operations (default: the whole service). */
    operations: z.array(z.string()).optional(),
    /** down/flapping: refuse new connections (whole service only) or reset each request (default). */
    how: z.enum(['reset', 'refuse']).optional(),
    /** brownout: extra error rate (503) and latency multiplier. */
    errorRate: prob.optional(),
    status: z.number().int().min(500).max(599).optional(),
    latencyFactor: z.number().finite().min(1).max(1000).optional(),
    /** flapping: full period and the fraction of it spent down, starting down. */
    periodMs: z.number().finite().positive().optional(),
    downFraction: prob.optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.mode === 'flapping' && o.periodMs === undefined)
      ctx.addIssue({ code: 'custom', path: ['periodMs'], message: 'flapping needs periodMs' });
    if (o.how === 'refuse' && o.operations)
      ctx.addIssue({
        code: 'custom',
        path: ['how'],
        message: 'refuse applies to the whole service, not to operations',
      });
  });
export type OutageWindow = z.infer<typeof outageSchema>;

/**
 * Build the profile schema for one service: the shared chaos fields plus the
 * service's own `extra` object (validated by `extraSchema`) and its operation names.
 */
export function makeProfileSchema<E extends z.ZodTypeAny>(opts: {
  operations: readonly string[];
  declineReasons: readonly string[];
  extraSchema: E;
}) {
  const checkReasons = (
    spec: FaultSpec | undefined,
    ctx: z.RefinementCtx,
    base: (string | number)[],
  ) => {
    spec?.errors?.forEach((e, i) => {
      if (e.kind === 'decline' && e.reason && !opts.declineReasons.includes(e.reason))
        ctx.addIssue({
          code: 'custom',
          path: [...base, 'errors', i, 'reason'],
          message: `unknown reason "${e.reason}"; this service declines with: ${opts.declineReasons.join(', ')}`,
        });
    });
  };
  // Operation names are checked in superRefine, so the message can list the valid ones.
  const operations = z.record(z.string(), faultSpecSchema).optional();
  const checkOps = (
    ops: Record<string, unknown> | undefined,
    ctx: z.RefinementCtx,
    base: (string | number)[],
  ) => {
    for (const op of Object.keys(ops ?? {}))
      if (!opts.operations.includes(op))
        ctx.addIssue({
          code: 'custom',
          path: [...base, 'operations', op],
          message: `unknown operation "${op}"; this service has: ${opts.operations.join(', ')}`,
        });
  };
  const layer = z
    .object({ ...faultFields, operations, extra: opts.extraSchema.optional() })
    .strict()
    .superRefine(ratesAddUp);
  const step = z
    .object({
      atMs: ms,
      /** merge: patch the running profile; replace: start from this layer. */
      mode: z.enum(['merge', 'replace']).default('merge'),
      profile: layer,
    })
    .strict();
  return z
    .object({
      ...faultFields,
      operations,
      outages: z.array(outageSchema).max(64).optional(),
      timeline: z.array(step).max(256).optional(),
      /** Service-specific knobs; see the service's section in docs/CHAOS.md. */
      extra: opts.extraSchema.optional(),
      /** Accept per-request x-fault-* headers (default true). */
      headerFaults: z.boolean().optional(),
    })
    .strict()
    .superRefine((p, ctx) => {
      ratesAddUp(p, ctx);
      checkOps(p.operations, ctx, []);
      checkReasons(p, ctx, []);
      for (const [op, spec] of Object.entries(p.operations ?? {}))
        checkReasons(spec, ctx, ['operations', op]);
      p.outages?.forEach((o, i) =>
        o.operations?.forEach((op, j) => {
          if (!opts.operations.includes(op))
            ctx.addIssue({
              code: 'custom',
              path: ['outages', i, 'operations', j],
              message: `unknown operation "${op}"; this service has: ${opts.operations.join(', ')}`,
            });
        }),
      );
      p.timeline?.forEach((s, i) => {
        checkReasons(s.profile, ctx, ['timeline', i, 'profile']);
        checkOps(s.profile.operations, ctx, ['timeline', i, 'profile']);
        for (const [op, spec] of Object.entries(s.profile.operations ?? {}))
          checkReasons(spec, ctx, ['timeline', i, 'profile', 'operations', op]);
      });
    });
}

export type Profile<E = unknown> = {
  latency?: LatencySpec;
  errors?: ErrorSpec[];
  capacity?: z.infer<typeof capacitySchema>;
  operations?: Record<string, FaultSpec>;
  outages?: OutageWindow[];
  timeline?: { atMs: number; mode: 'merge' | 'replace'; profile: ProfileLayer<E> }[];
  extra?: E;
  headerFaults?: boolean;
};
export type ProfileLayer<E = unknown> = FaultSpec & {
  operations?: Record<string, FaultSpec>;
  extra?: E;
};

/**
 * Format zod issues as `{field, reason}` pairs, the shape every 4xx body uses.
 * Unknown fields are named one by one; errors about the whole object are
 * named `where` ('(body)', '(query)', '(path)', '(profile)').
 */
export function issuesToErrors(
  issues: readonly z.core.$ZodIssue[],
  where = '(body)',
): { field: string; reason: string }[] {
  // A key that is the empty string is named `""`, so every error names a field.
  const name = (parts: string[]) => parts.map((p) => (p === '' ? '""' : p)).join('.');
  return issues.flatMap((i) => {
    const path = i.path.map(String);
    if (i.code === 'unrecognized_keys')
      return i.keys.map((k) => ({ field: name([...path, k]), reason: 'unknown field' }));
    return [{ field: name(path) || where, reason: i.message }];
  });
}
