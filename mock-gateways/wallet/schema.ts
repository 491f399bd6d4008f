// Wallet input and profile schemas: the one place the wallet validates anything.
import { z } from 'zod';
import { latencySchema } from '../chaos/profile.ts';
import { WALLET_DECLINE_REASONS } from './reasons.ts';

export const WALLET_OPERATIONS = [
  'trades.create',
  'trades.pay',
  'trades.get',
  'trades.list',
  'trades.close',
  'refunds.create',
  'statement',
] as const;

export const TRADE_STATUSES = [
  'WAIT_BUYER_PAY',
  'USERPAYING',
  'SUCCESS',
  'PAYERROR',
  'CLOSED',
  'REFUND',
] as const;
export type TradeStatus = (typeof TRADE_STATUSES)[number];

export const NOTIFY_STYLES = ['alipay', 'wechat'] as const;
export type NotifyStyle = (typeof NOTIFY_STYLES)[number];

const prob = z.number().finite().min(0).max(1);

/** Asynchronous notification knobs under the profile's `extra.notify` (docs/mocks/wallet.md). */
export const notifyExtraSchema = z
  .object({
    /** Multiplies the real retry schedule (0.001 turns WeChat's 15 s into 15 ms); overrides the service's option and time-scale. */
    timeScale: z.number().finite().positive().max(1).optional(),
    /** Wait before the first attempt (world milliseconds: scaled by the service's time-scale, not by `timeScale` here). */
    delay: latencySchema.optional(),
    /** Probability that an attempt is silently not sent (the schedule goes on). */
    lossRate: prob.optional(),
    /** Probability that a notification is lost for good: none of its attempts is ever sent. */
    lostRate: prob.optional(),
    /** Probability that a sent attempt is delivered twice. */
    duplicateRate: prob.optional(),
    /** Hold first attempts for `windowMs` (world ms: scaled by the service's time-scale) and release them reversed or shuffled. */
    reorder: z
      .object({
        windowMs: z.number().int().min(1).max(60_000),
        order: z.enum(['reverse', 'shuffle']).optional(),
      })
      .strict()
      .optional(),
    /** Probability that the first attempt is delivered before the pay call answers. */
    notifyBeforeResponseRate: prob.optional(),
    /** Deadline of one delivery (connect, send, answer); default the service option (5 s). */
    timeoutMs: z.number().int().min(1).max(60_000).optional(),
  })
  .strict();
export type NotifyExtra = z.infer<typeof notifyExtraSchema>;

/** Wallet knobs under the profile's `extra` (docs/mocks/wallet.md, "Profile"). */
export const walletExtraSchema = z
  .object({
    /** How long the buyer takes to pay; the trade is USERPAYING meanwhile (default 0). The pay call's latency: real ms, not scaled. */
    payDelayMs: latencySchema.optional(),
    /** Risk control: pay attempts per buyer in a sliding window; `false` turns it off. */
    velocity: z
      .union([
        z.literal(false),
        z
          .object({
            windowMs: z.number().int().min(1).max(86_400_000),
            maxPerBuyer: z.number().int().min(1),
          })
          .strict(),
      ])
      .optional(),
    notify: notifyExtraSchema.optional(),
  })
  .strict();
export type WalletExtra = z.infer<typeof walletExtraSchema>;

export const DEFAULT_VELOCITY = { windowMs: 60_000, maxPerBuyer: 10 } as const;
export const DEFAULT_NOTIFY_TIMEOUT_MS = 5_000;

const id = z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters');
export const tradeNo = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, _ or -');
const amount = z
  .number({ error: 'must be an integer amount in minor units' })
  .int('must be an integer amount in minor units')
  .min(1, 'must be at least 1')
  .max(1_000_000_000, 'must be at most 1000000000');
const currency = z
  .string()
  .regex(/^[A-Za-z]{3}$/, 'must be a 3-letter ISO 4217 code')
  .toUpperCase();

/** True for hosts on the loopback interface: 127.0.0.0/8, localhost, [::1]. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === 'localhost' || h === '[::1]') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

function notifyUrl(allowRemote: boolean) {
  return z
    .string({ error: 'must be an http(s) URL' })
    .max(2048, 'must be at most 2048 characters')
    .superRefine((s, ctx) => {
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be an absolute http(s) URL' });
        return;
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:')
        ctx.addIssue({ code: 'custom', message: 'must use http or https' });
      else if (!allowRemote && !isLoopbackHost(u.hostname))
        ctx.addIssue({
          code: 'custom',
          message:
            'must point at a loopback address (127.0.0.0/8, localhost or [::1]); start the wallet with allowRemoteNotify to lift this',
        });
    });
}

/** The create-trade body; the notifyUrl check depends on the service option allowRemoteNotify. */
export function makeTradeInput(opts: { allowRemoteNotify: boolean }) {
  return z
    .object({
      outTradeNo: id,
      amount,
      currency: currency.default('CNY'),
      subject: z.string().max(256, 'must be at most 256 characters').optional(),
      notifyUrl: notifyUrl(opts.allowRemoteNotify),
      style: z.enum(NOTIFY_STYLES),
      userId: id.optional(),
    })
    .strict();
}
export type TradeInput = z.infer<ReturnType<typeof makeTradeInput>>;

export const payInput = z
  .object({
    buyerId: id.optional(),
    outcome: z.enum(['success', 'payerror']).optional(),
    /** The PAYERROR reason when outcome is payerror (default balance_insufficient). */
    reason: z.enum(WALLET_DECLINE_REASONS).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.reason !== undefined && p.outcome !== 'payerror')
      ctx.addIssue({
        code: 'custom',
        path: ['reason'],
        message: 'only applies with outcome "payerror"',
      });
  });
export type PayInput = z.infer<typeof payInput>;

/** Close takes no body fields. */
export const closeInput = z.object({}).strict();

export const tradeParams = z.object({ tradeNo }).strict();

export const refundInput = z
  .object({
    tradeNo,
    amount: amount.optional(),
    reason: z.string().max(64, 'must be at most 64 characters').optional(),
  })
  .strict();
export type RefundInput = z.infer<typeof refundInput>;

export const listQuery = z.object({ outTradeNo: id }).strict();

export { statementQuery } from '../ledger.ts';

export const notificationsQuery = z.object({ tradeNo: tradeNo.optional() }).strict();
