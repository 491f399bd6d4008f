// Coupon input and profile schemas: the one place the coupon service validates anything.
import { z } from 'zod';
import { pageQuery } from '../ledger.ts';

export const COUPON_OPERATIONS = [
  'campaigns.create',
  'campaigns.get',
  'coupons.issue',
  'coupons.lock',
  'coupons.consume',
  'coupons.release',
  'coupons.get',
  'coupons.list',
  'statement',
] as const;

export const COUPON_STATES = ['ISSUED', 'LOCKED', 'USED'] as const;
export type CouponState = (typeof COUPON_STATES)[number];

/** Reasons the service declines with (HTTP 402); also the reasons a chaos `decline` fault may use. */
export const COUPON_DECLINE_REASONS = [
  'budget_exhausted',
  'campaign_not_started',
  'campaign_ended',
  'frequency_limited',
  'already_used',
  'locked_by_other_order',
  'not_owner',
  'order_below_minimum',
] as const;
export type CouponDeclineReason = (typeof COUPON_DECLINE_REASONS)[number];

export const DECLINE_MESSAGES: Record<CouponDeclineReason, string> = {
  budget_exhausted: 'The campaign has issued all its coupons.',
  campaign_not_started: 'The campaign has not started yet.',
  campaign_ended: 'The campaign has ended.',
  frequency_limited: 'The shopper already holds as many coupons of this campaign as allowed.',
  already_used: 'The coupon has already been used.',
  locked_by_other_order: 'The coupon is locked by another order.',
  not_owner: 'The coupon belongs to another shopper.',
  order_below_minimum: "The order amount is below the campaign's minimum.",
};

/** Coupon knobs under the profile's `extra` (docs/mocks/coupon.md, "Profile extra"). */
export const couponExtraSchema = z
  .object({
    /** Default lock lifetime when a lock request gives no `lockTtlMs` (default: locks never expire). */
    lockTtlMs: z.number().int().min(1).max(86_400_000).optional(),
  })
  .strict();
export type CouponExtra = z.infer<typeof couponExtraSchema>;

/** The message for a wrong type, or "required" when the field is missing. */
const typed = (message: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? 'required' : message;

const id = z
  .string({ error: typed('must be a string') })
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters');
const slug = id.regex(/^[A-Za-z0-9_.:-]+$/, 'may contain only letters, digits and _ . : -');
const amount = z
  .number({ error: typed('must be an integer amount in minor units') })
  .int('must be an integer amount in minor units')
  .min(1, 'must be at least 1')
  .max(1_000_000_000, 'must be at most 1000000000');
const isoTime = z.iso.datetime({
  offset: true,
  message: 'must be an ISO 8601 date-time (e.g. 2025-11-11T20:00:00Z)',
});
const ttl = z
  .number({ error: typed('must be an integer number of milliseconds') })
  .int('must be an integer number of milliseconds')
  .min(1, 'must be at least 1')
  .max(86_400_000, 'must be at most 86400000 (one day)');

export const discountSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('amount'), value: amount }).strict(),
    z
      .object({
        type: z.literal('percent'),
        value: z
          .number({ error: typed('must be a number') })
          .gt(0, 'must be more than 0')
          .max(100, 'must be at most 100'),
      })
      .strict(),
  ],
  { error: typed('must be {type: "amount" | "percent", value}') },
);
export type Discount = z.infer<typeof discountSchema>;

export const campaignInput = z
  .object({
    id: slug.optional(),
    name: z
      .string({ error: typed('must be a string') })
      .min(1, 'must not be empty')
      .max(128),
    budget: z
      .number({ error: typed('must be an integer number of coupons') })
      .int('must be an integer number of coupons')
      .min(0, 'must be at least 0')
      .max(10_000_000, 'must be at most 10000000'),
    discount: discountSchema,
    startsAt: isoTime.optional(),
    endsAt: isoTime.optional(),
    perUserLimit: z
      .number({ error: typed('must be an integer') })
      .int('must be an integer')
      .min(1, 'must be at least 1')
      .max(1_000, 'must be at most 1000')
      .default(1),
    minOrderAmount: amount.optional(),
  })
  .strict()
  .refine((c) => !c.startsAt || !c.endsAt || Date.parse(c.endsAt) > Date.parse(c.startsAt), {
    message: 'must be later than startsAt',
    path: ['endsAt'],
  });
export type CampaignInput = z.infer<typeof campaignInput>;

export const issueInput = z.object({ campaignId: slug, userId: id }).strict();
export type IssueInput = z.infer<typeof issueInput>;

export const lockInput = z
  .object({
    orderId: id,
    userId: id.optional(),
    /** Needed when the campaign has a minimum order amount; also gives `discountAmount`. */
    orderAmount: amount.optional(),
    lockTtlMs: ttl.optional(),
  })
  .strict();
export type LockInput = z.infer<typeof lockInput>;

export const orderInput = z.object({ orderId: id }).strict();
export type OrderInput = z.infer<typeof orderInput>;

export const codeParams = z.object({
  code: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, _ or -'),
});
export const campaignParams = z.object({ id: slug });

export const listQuery = z
  .object({
    userId: id.optional(),
    orderId: id.optional(),
    campaignId: slug.optional(),
    state: z
      .enum(COUPON_STATES, { error: `must be one of ${COUPON_STATES.join(', ')}` })
      .optional(),
  })
  .strict()
  .refine((q) => q.userId !== undefined || q.orderId !== undefined || q.campaignId !== undefined, {
    message: 'give at least one of userId, orderId, campaignId',
  });

export const statementQuery = z
  .object({
    campaignId: slug.optional(),
    state: z
      .enum(COUPON_STATES, { error: `must be one of ${COUPON_STATES.join(', ')}` })
      .optional(),
    ...pageQuery,
  })
  .strict();
