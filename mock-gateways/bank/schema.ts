// Bank input and profile schemas: the one place the bank validates anything.
import { z } from 'zod';
import { latencySchema } from '../chaos/profile.ts';
import { luhnValid } from './cards.ts';

export const BANK_OPERATIONS = [
  'payments.create',
  'payments.get',
  'payments.list',
  'refunds.create',
  'statement',
] as const;

/** Bank knobs under the profile's `extra` (docs/CHAOS.md, "Bank"). */
export const bankExtraSchema = z
  .object({
    /** A share of successful payments answers `processing` (202) and settles later. */
    processing: z
      .object({
        rate: z.number().min(0).max(1),
        settleMs: latencySchema.optional(),
        /** Share of processing payments that settle as failed (processing_error). */
        failRate: z.number().min(0).max(1).optional(),
      })
      .strict()
      .optional(),
    /** Risk control: attempts per user or card in a sliding window; `false` turns it off. */
    velocity: z
      .union([
        z.literal(false),
        z
          .object({
            windowMs: z.number().int().min(1).max(86_400_000),
            maxPerUser: z.number().int().min(1).optional(),
            maxPerCard: z.number().int().min(1).optional(),
          })
          .strict(),
      ])
      .optional(),
    /** Largest amount (minor units) a payment may have; above it: amount_too_large. */
    amountLimit: z.number().int().min(1).optional(),
  })
  .strict();
export type BankExtra = z.infer<typeof bankExtraSchema>;

export const DEFAULT_VELOCITY = { windowMs: 60_000, maxPerUser: 10 } as const;
export const DEFAULT_AMOUNT_LIMIT = 5_000_000;
export const DEFAULT_SETTLE = { dist: 'uniform', minMs: 500, maxMs: 2_000 } as const;

const id = z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters');
const amount = z
  .number({ error: 'must be an integer amount in minor units' })
  .int('must be an integer amount in minor units')
  .min(1, 'must be at least 1')
  .max(1_000_000_000, 'must be at most 1000000000');
const currency = z
  .string()
  .regex(/^[A-Za-z]{3}$/, 'must be a 3-letter ISO 4217 code')
  .toUpperCase();

export const paymentInput = z
  .object({
    orderId: id,
    amount,
    currency,
    card: z
      .object({
        number: z
          .string()
          .regex(/^\d{12,19}$/, 'must be 12 to 19 digits')
          .refine(luhnValid, 'fails the Luhn check'),
        expMonth: z.number().int().min(1).max(12).optional(),
        expYear: z.number().int().min(2000).max(2100).optional(),
        cvc: z
          .string()
          .regex(/^\d{3,4}$/, 'must be 3 or 4 digits')
          .optional(),
      })
      .strict(),
    userId: id.optional(),
    description: z.string().max(256).optional(),
    metadata: z.record(z.string(), z.string().max(256)).optional(),
  })
  .strict();
export type PaymentInput = z.infer<typeof paymentInput>;

export const refundInput = z
  .object({
    paymentId: id,
    amount: amount.optional(),
    reason: z.string().max(64).optional(),
  })
  .strict();
export type RefundInput = z.infer<typeof refundInput>;

export const listQuery = z.object({ orderId: id }).strict();

export { statementQuery } from '../ledger.ts';
