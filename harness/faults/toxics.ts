// The network faults Toxiproxy applies to a proxied link ("toxics"), as a
// preset or the harness writes them: zod schema, defaults and a one-line
// label for report bands. Attribute names are Toxiproxy's own (its REST API
// takes them as they are); docs/CHAOS.md "Network faults (Toxiproxy)" says
// what a client sees under each.
import { z } from 'zod';
import { issuesToErrors } from '../../mock-gateways/chaos/profile.ts';
import { UsageError } from '../errors.ts';

/** A count or a duration: a non-negative whole number. */
const whole = z.number().int().min(0);

/** Per type: the attributes, strict (an unknown name is an error naming it). */
const ATTRIBUTES = {
  /** Every chunk is delayed `latency` ms, plus a uniform draw in [-jitter, +jitter) ms. */
  latency: z.strictObject({ latency: whole, jitter: whole.default(0) }),
  /** At most `rate` KB/s (1 KB = 1000 bytes). */
  bandwidth: z.strictObject({ rate: whole.min(1) }),
  /** The close of the link is held back `delay` ms. */
  slow_close: z.strictObject({ delay: whole }),
  /** No data passes (it is dropped); the link is closed after `timeout` ms, never if 0. */
  timeout: z.strictObject({ timeout: whole }),
  /** Data is cut into pieces of about `average_size` bytes, `delay` µs apart. */
  slicer: z
    .strictObject({
      average_size: whole.min(1),
      size_variation: whole.default(0),
      delay: whole.default(0),
    })
    .refine((a) => a.size_variation < a.average_size, {
      path: ['size_variation'],
      message: 'must be smaller than average_size',
    }),
  /** The link is reset (TCP RST) `timeout` ms after the first data arrives (0: at once). */
  reset_peer: z.strictObject({ timeout: whole.default(0) }),
  /** The link is closed once `bytes` bytes have passed. */
  limit_data: z.strictObject({ bytes: whole }),
} as const;

export type ToxicType = keyof typeof ATTRIBUTES;
export const TOXIC_TYPES = Object.keys(ATTRIBUTES) as ToxicType[];

const common = {
  /** downstream: server to client; upstream: client to server. */
  stream: z.enum(['upstream', 'downstream']).default('downstream'),
  /** The share of connections the toxic acts on, each drawn when the toxic meets it. */
  toxicity: z.number().min(0).max(1).default(1),
};

/** One type's toxic: the fields every toxic has, and that type's attributes. */
function variant<T extends ToxicType>(type: T) {
  return z.strictObject({ type: z.literal(type), ...common, attributes: ATTRIBUTES[type] });
}

/**
 * The schema of one toxic (strict), for the preset schema: `type` one of
 * TOXIC_TYPES (anything else is an error on `type` listing them), `stream`
 * (default downstream), `toxicity` 0-1 (default 1), `attributes` per type.
 */
export const toxicSchema = z.discriminatedUnion(
  'type',
  [
    variant('latency'),
    variant('bandwidth'),
    variant('slow_close'),
    variant('timeout'),
    variant('slicer'),
    variant('reset_peer'),
    variant('limit_data'),
  ],
  {
    error: (iss) => {
      if (iss.code !== 'invalid_union') return undefined;
      const type = (iss.input as { type?: unknown } | undefined)?.type;
      const known = `known types: ${TOXIC_TYPES.join(', ')}`;
      return type === undefined
        ? `missing; ${known}`
        : `unknown toxic type ${JSON.stringify(type)}; ${known}`;
    },
  },
);

/** A toxic as validated: defaults applied. */
export type Toxic = z.output<typeof toxicSchema>;
/** A toxic as written (stream, toxicity and some attributes optional). */
export type ToxicInput = z.input<typeof toxicSchema>;

/** Validate a toxic; a bad one is a UsageError naming each bad field (`attributes.latency: ...`). */
export function parseToxic(raw: unknown, where = 'toxic'): Toxic {
  const r = toxicSchema.safeParse(raw);
  if (r.success) return r.data;
  const errs = issuesToErrors(r.error.issues, '(toxic)');
  throw new UsageError(
    `invalid ${where}:\n${errs.map((e) => `  ${e.field}: ${e.reason}`).join('\n')}`,
  );
}

const ARROW = { upstream: 'up', downstream: 'down' } as const;

/** The label of a toxic without its stream and toxicity: "latency 50±20 ms", "black hole". */
function effect(t: Toxic): string {
  switch (t.type) {
    case 'latency':
      return `latency ${t.attributes.latency}${t.attributes.jitter ? `±${t.attributes.jitter}` : ''} ms`;
    case 'bandwidth':
      return `bandwidth ${t.attributes.rate} KB/s`;
    case 'slow_close':
      return `slow close ${t.attributes.delay} ms`;
    case 'timeout':
      return t.attributes.timeout === 0
        ? 'black hole'
        : `black hole, closed after ${t.attributes.timeout} ms`;
    case 'slicer': {
      const a = t.attributes;
      return `sliced ${a.average_size}${a.size_variation ? `±${a.size_variation}` : ''} B${a.delay ? ` ${a.delay} µs apart` : ''}`;
    }
    case 'reset_peer':
      return t.attributes.timeout === 0
        ? 'reset at once'
        : `reset after ${t.attributes.timeout} ms`;
    case 'limit_data':
      return `cut after ${t.attributes.bytes} B`;
  }
}

/**
 * A one-line label for a report band: "latency 50±20 ms down", "black hole
 * up+down" (the same toxic on both streams, given as a list), "reset at once
 * up (30% of connections)".
 */
export function describeToxic(toxic: ToxicInput | Toxic | readonly (ToxicInput | Toxic)[]): string {
  const list = (Array.isArray(toxic) ? toxic : [toxic]).map((t: unknown) => parseToxic(t));
  const groups = new Map<string, Set<'upstream' | 'downstream'>>();
  for (const t of list) {
    const share = t.toxicity < 1 ? ` (${Math.round(t.toxicity * 1000) / 10}% of connections)` : '';
    const key = `${effect(t)}\u0000${share}`;
    groups.set(key, (groups.get(key) ?? new Set()).add(t.stream));
  }
  return [...groups]
    .map(([key, streams]) => {
      const [what, share] = key.split('\u0000');
      const dirs = (['upstream', 'downstream'] as const).filter((s) => streams.has(s));
      return `${what} ${dirs.map((s) => ARROW[s]).join('+')}${share}`;
    })
    .join(', ');
}
