// The tour's shopper (`flashcrowd tour`, the mock gateways alone): takes a
// coupon and locks it, pays by card at the mock bank or through the wallet,
// then uses or gives back the coupon. Arrival n decides everything from n.
// No imports except sibling files (k6 loads this file by relative path).
import {
  jsonBody,
  type Journey,
  type JourneyAnswer,
  type JourneyContext,
  type JourneyRequest,
  type JourneyStep,
  type MetricDef,
} from './journey.ts';

export interface TourConfig {
  bankUrl?: string;
  walletUrl?: string;
  couponUrl?: string;
  /** The merchant that receives wallet notifications. */
  notifyUrl?: string;
  campaign: string;
}

export const TOUR_METRICS: readonly MetricDef[] = [
  { name: 'flashcrowd_demo_outcomes', type: 'counter' },
];

// Mostly good cards, some that decline, one that settles asynchronously.
const CARDS = [
  '4242424242424242',
  '4242424242424242',
  '4242424242424242',
  '5555555555554444',
  '6200000000000005',
  '4000000000009995',
  '4000000000000069',
  '4000000000003220',
];

function classify(a: JourneyAnswer): string {
  if (a.status === 0) return 'network_error';
  const b = jsonBody<{ status?: string; reason?: string }>(a);
  if (a.body !== '' && Object.keys(b).length === 0) return 'malformed';
  return b.reason ?? b.status ?? `http_${a.status}`;
}

function post(url: string, body: unknown, name: string, key?: string): JourneyRequest {
  return {
    method: 'POST',
    url,
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    tags: { name },
    timeoutS: 2,
  };
}

export function* tourJourney(c: TourConfig, ctx: JourneyContext): Journey {
  const n = ctx.index;
  const orderId = `demo-${n}`;
  const userId = `u${n % 2000}`;
  const amount = 1999 + (n % 7) * 100;
  const count = (service: string, step: string, a: JourneyAnswer) =>
    ctx.metrics.add('flashcrowd_demo_outcomes', 1, { service, step, outcome: classify(a) });
  const send = function* (
    r: JourneyRequest,
  ): Generator<JourneyStep, JourneyAnswer, JourneyAnswer[] | undefined> {
    const [a] = (yield { kind: 'http', requests: [r] })!;
    return a!;
  };

  let coupon: string | undefined;
  if (c.couponUrl) {
    const r = yield* send(
      post(
        `${c.couponUrl}/v1/coupons`,
        { campaignId: c.campaign, userId: `${userId}-${n}` },
        'coupon issue',
        `issue-${n}`,
      ),
    );
    count('coupon', 'issue', r);
    if (r.status === 201) {
      coupon = jsonBody<{ code: string }>(r).code;
      const l = yield* send(
        post(`${c.couponUrl}/v1/coupons/${coupon}/lock`, { orderId }, 'coupon lock', `lock-${n}`),
      );
      count('coupon', 'lock', l);
      if (l.status !== 200) coupon = undefined;
    }
  }

  let paid = false;
  if (c.walletUrl && c.notifyUrl && n % 3 === 0) {
    const t = yield* send(
      post(
        `${c.walletUrl}/v1/trades`,
        {
          outTradeNo: orderId,
          amount,
          notifyUrl: c.notifyUrl,
          style: n % 2 ? 'alipay' : 'wechat',
          userId,
        },
        'wallet create',
        `trade-${n}`,
      ),
    );
    count('wallet', 'create', t);
    if (t.status === 201) {
      const tradeNo = jsonBody<{ tradeNo: string }>(t).tradeNo;
      const p = yield* send(post(`${c.walletUrl}/v1/trades/${tradeNo}/pay`, {}, 'wallet pay'));
      count('wallet', 'pay', p);
      paid = p.status === 200;
    }
  } else if (c.bankUrl) {
    const r = yield* send(
      post(
        `${c.bankUrl}/v1/payments`,
        { orderId, amount, currency: 'CNY', card: { number: CARDS[n % CARDS.length] }, userId },
        'bank pay',
        `pay-${n}`,
      ),
    );
    count('bank', 'pay', r);
    paid = r.status === 200 || r.status === 202;
  }

  if (coupon) {
    const step = paid ? 'consume' : 'release';
    const r = yield* send(
      post(
        `${c.couponUrl}/v1/coupons/${coupon}/${step}`,
        { orderId },
        `coupon ${step}`,
        `${step}-${n}`,
      ),
    );
    count('coupon', step, r);
  }
}
