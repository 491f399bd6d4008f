// Checkout inputs: the one place the checkout validates a request.
import { z } from 'zod';
import { luhnValid } from '../mock-gateways/bank/cards.ts';
import { campaignParams, codeParams, discountSchema } from '../mock-gateways/coupon/schema.ts';
import { SKU_ID } from './store.ts';

export const CHANNELS = ['card', 'alipay', 'wechat'] as const;
export type Channel = (typeof CHANNELS)[number];

const id = z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters');
const channel = z.enum(CHANNELS, { error: `must be one of ${CHANNELS.join(', ')}` });

export const createOrderInput = z
  .object({
    user: id,
    sku: z.string().regex(SKU_ID, 'must be 1-32 letters, digits, _ or -'),
    quantity: z
      .number()
      .int('must be an integer')
      .min(1, 'must be at least 1')
      .max(100, 'must be at most 100')
      .default(1),
    /** A coupon code as the coupon service has them: refused here rather than by it. */
    coupon: codeParams.shape.code.optional(),
    channel: channel.default('card'),
  })
  .strict();
export type CreateOrderInput = z.infer<typeof createOrderInput>;

export const payInput = z
  .object({
    channel: channel.optional(),
    /** Card number for the card channel (default: a test card that succeeds). */
    card: z
      .string()
      .regex(/^\d{12,19}$/, 'must be 12 to 19 digits')
      // Refused here, so a mistyped number never fails (and releases) the order at the bank.
      .refine(luhnValid, 'fails the Luhn check')
      .optional(),
    /** Channels the shopper accepts if the first one fails (hardened failover). */
    fallbackChannels: z.array(channel).max(3).optional(),
  })
  .strict();
export type PayInput = z.infer<typeof payInput>;

/** Cancel takes no body fields: one sent is a typo, refused rather than ignored. */
export const cancelInput = z.object({}).strict();

export const listOrdersQuery = z.object({ user: id }).strict();

export const saleInput = z
  .object({
    skus: z
      .array(
        z
          .object({
            id: z.string().regex(SKU_ID, 'must be 1-32 letters, digits, _ or -'),
            name: z.string().min(1).max(128).optional(),
            price: z.number().int().min(1).max(100_000_000),
            stock: z.number().int().min(0).max(100_000_000),
            /** Units one user may hold (reserved or bought); 0: no limit. */
            limit: z.number().int().min(0).max(1000).default(1),
          })
          .strict(),
      )
      .min(1)
      .max(1000),
    /**
     * The campaign the checkout creates at the coupon service: its bounds are the
     * coupon service's, so a sale it would refuse is a 400 here, not a 502.
     */
    coupon: z
      .object({
        campaignId: campaignParams.shape.id,
        budget: z.number().int().min(0).max(10_000_000),
        /** Money off each order, in minor units (fen): 2000 is 20.00 CNY off. */
        discount: discountSchema.options[0].shape.value,
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.skus.forEach((k, i) => {
      if (seen.has(k.id))
        ctx.addIssue({
          code: 'custom',
          path: ['skus', i, 'id'],
          message: `duplicate SKU id ${k.id}`,
        });
      seen.add(k.id);
    });
  });
export type SaleInput = z.infer<typeof saleInput>;
