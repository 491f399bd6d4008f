// Test card numbers with deterministic outcomes, after Stripe's test cards.
// The table is documented in docs/MOCKS.md (keep them in step).

export const BANK_DECLINE_REASONS = [
  'insufficient_funds',
  'expired_card',
  'incorrect_cvc',
  'lost_card',
  'stolen_card',
  'processing_error',
  'card_velocity_exceeded',
  'fraudulent',
  'amount_too_large',
  'do_not_honor',
] as const;
export type BankDeclineReason = (typeof BANK_DECLINE_REASONS)[number];

export const DECLINE_MESSAGES: Record<BankDeclineReason, string> = {
  insufficient_funds: 'The card has insufficient funds to complete the purchase.',
  expired_card: 'The card has expired.',
  incorrect_cvc: "The card's security code is incorrect.",
  lost_card: 'The card has been reported lost.',
  stolen_card: 'The card has been reported stolen.',
  processing_error: 'An error occurred while processing the card; the charge did not go through.',
  card_velocity_exceeded:
    'Too many attempts with this card or by this shopper in a short time (risk control).',
  fraudulent: 'The payment was blocked by risk control as likely fraudulent.',
  amount_too_large: 'The amount is over the limit for this card.',
  do_not_honor: 'The issuer declined the card without giving a reason.',
};

export type CardBehaviour =
  | { outcome: 'success' }
  | { outcome: 'decline'; reason: BankDeclineReason }
  | { outcome: 'processing' };

export const TEST_CARDS: Record<string, { brand: string; behaviour: CardBehaviour; note: string }> =
  {
    '4242424242424242': { brand: 'visa', behaviour: { outcome: 'success' }, note: 'succeeds' },
    '5555555555554444': {
      brand: 'mastercard',
      behaviour: { outcome: 'success' },
      note: 'succeeds',
    },
    '6200000000000005': {
      brand: 'unionpay',
      behaviour: { outcome: 'success' },
      note: 'succeeds (UnionPay)',
    },
    '4000000000003220': {
      brand: 'visa',
      behaviour: { outcome: 'processing' },
      note: 'answers processing, settles later as succeeded',
    },
    '4000000000009995': {
      brand: 'visa',
      behaviour: { outcome: 'decline', reason: 'insufficient_funds' },
      note: 'declined',
    },
    '4000000000000069': {
      brand: 'visa',
      behaviour: { outcome: 'decline', reason: 'expired_card' },
      note: 'declined',
    },
    '4000000000000127': {
      brand: 'visa',
      behaviour: { outcome: 'decline', reason: 'incorrect_cvc' },
      note: 'declined',
    },
    '4000000000009987': {
      brand: 'visa',
      behaviour: { outcome: 'decline', reason: 'lost_card' },
      note: 'declined',
    },
    '4000000000009979': {
      brand: 'visa',
      behaviour: { outcome: 'decline', reason: 'stolen_card' },
      note: 'declined',
    },
    '4000000000000119': {
      brand: 'visa',
      behaviour: { outcome: 'decline', reason: 'processing_error' },
      note: 'declined',
    },
    '4000000000006975': {
      brand: 'visa',
      behaviour: { outcome: 'decline', reason: 'card_velocity_exceeded' },
      note: 'declined',
    },
    '4100000000000019': {
      brand: 'visa',
      behaviour: { outcome: 'decline', reason: 'fraudulent' },
      note: 'declined',
    },
    '4000000000000002': {
      brand: 'visa',
      behaviour: { outcome: 'decline', reason: 'do_not_honor' },
      note: 'declined',
    },
  };

/** Luhn check digit validation. */
export function luhnValid(num: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = num.length - 1; i >= 0; i--) {
    let d = num.charCodeAt(i) - 48;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

/** Behaviour of any card: a test card's, else success for a Luhn-valid number. */
// A Map: a 16-digit key is slow to look up on a plain object (it looks like an index).
const CARD_TABLE = new Map(Object.entries(TEST_CARDS));
const SUCCESS: CardBehaviour = Object.freeze({ outcome: 'success' });

export function cardBehaviour(num: string): CardBehaviour {
  return CARD_TABLE.get(num)?.behaviour ?? SUCCESS;
}

export function cardBrand(num: string): string {
  const known = CARD_TABLE.get(num)?.brand;
  if (known) return known;
  if (num.startsWith('4')) return 'visa';
  if (/^5[1-5]/.test(num)) return 'mastercard';
  if (num.startsWith('62')) return 'unionpay';
  return 'unknown';
}
