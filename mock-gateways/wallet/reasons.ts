// Wallet reason codes: the declines a payment can end with (also what the chaos
// `decline` fault may inject) and the refusals of the trade state machine, each
// with the Alipay and WeChat Pay codes it stands for. Documented in
// docs/mocks/wallet.md (keep the two in step).

export const WALLET_DECLINE_REASONS = [
  'balance_insufficient',
  'risk_control_rejected',
  'buyer_account_frozen',
  'payment_limit_exceeded',
  'bank_error',
  'trade_closed',
  'trade_not_exist',
  'system_error',
] as const;
export type WalletDeclineReason = (typeof WALLET_DECLINE_REASONS)[number];

export interface ReasonInfo {
  message: string;
  /** The Alipay sub_code this reason stands for. */
  alipay: string;
  /** The WeChat Pay error code this reason stands for. */
  wechat: string;
}

export const DECLINES: Record<WalletDeclineReason, ReasonInfo> = {
  balance_insufficient: {
    message: "The buyer's balance is not enough to pay for this trade.",
    alipay: 'ACQ.BUYER_BALANCE_NOT_ENOUGH',
    wechat: 'NOTENOUGH',
  },
  risk_control_rejected: {
    message: 'The payment was rejected by risk control (too many attempts, or looks risky).',
    alipay: 'ACQ.PAYMENT_REQUEST_HAS_RISK',
    wechat: 'TRADE_ERROR',
  },
  buyer_account_frozen: {
    message: "The buyer's account is frozen or restricted.",
    alipay: 'ACQ.BUYER_ENABLE_STATUS_FORBID',
    wechat: 'ACCOUNT_ERROR',
  },
  payment_limit_exceeded: {
    message: "The amount is over the buyer's payment limit.",
    alipay: 'ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR',
    wechat: 'RULE_LIMIT',
  },
  bank_error: {
    message: "The buyer's bank card was refused by the bank.",
    alipay: 'ACQ.PAYMENT_FAIL',
    wechat: 'BANK_ERROR',
  },
  trade_closed: {
    message: 'The trade is closed; it cannot be paid.',
    alipay: 'ACQ.TRADE_HAS_CLOSE',
    wechat: 'ORDER_CLOSED',
  },
  trade_not_exist: {
    message: 'The wallet does not know this trade.',
    alipay: 'ACQ.TRADE_NOT_EXIST',
    wechat: 'ORDER_NOT_EXIST',
  },
  system_error: {
    message: 'The wallet had an internal error; the payment did not go through.',
    alipay: 'ACQ.SYSTEM_ERROR',
    wechat: 'SYSTEM_ERROR',
  },
};

/** Refusals of the state machine (HTTP 404/409) with the nearest upstream codes. */
export const REFUSALS = {
  trade_not_found: { status: 404, alipay: 'ACQ.TRADE_NOT_EXIST', wechat: 'ORDER_NOT_EXIST' },
  trade_closed: { status: 409, alipay: 'ACQ.TRADE_HAS_CLOSE', wechat: 'ORDER_CLOSED' },
  trade_already_paid: { status: 409, alipay: 'ACQ.TRADE_HAS_SUCCESS', wechat: 'ORDER_PAID' },
  trade_paying: { status: 409, alipay: 'ACQ.TRADE_STATUS_ERROR', wechat: 'USER_PAYING' },
  trade_not_paid: { status: 409, alipay: 'ACQ.TRADE_STATUS_ERROR', wechat: 'INVALID_REQUEST' },
  already_refunded: { status: 409, alipay: 'ACQ.TRADE_HAS_FINISHED', wechat: 'INVALID_REQUEST' },
  out_trade_no_conflict: {
    status: 409,
    alipay: 'ACQ.CONTEXT_INCONSISTENT',
    wechat: 'OUT_TRADE_NO_USED',
  },
} as const;
export type WalletRefusal = keyof typeof REFUSALS;

/** The upstream code a reason stands for in `style`. */
export function subCode(
  reason: WalletDeclineReason | WalletRefusal,
  style: 'alipay' | 'wechat',
): string {
  const info =
    (DECLINES as Record<string, ReasonInfo | undefined>)[reason] ??
    (REFUSALS as Record<string, { alipay: string; wechat: string }>)[reason];
  return info ? info[style] : reason;
}
