// k6 traffic for `flashcrowd demo`: each iteration is one shopper who takes a
// coupon, pays by card at the mock bank or through the wallet, then uses or
// gives back the coupon. Open model (arrival rate), bounded duration.
// By hand: k6 run -e BANK_URL=... -e WALLET_URL=... -e COUPON_URL=... -e NOTIFY_URL=... scenarios/mocks-demo.ts
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import exec from 'k6/execution';

const BANK = __ENV.BANK_URL;
const WALLET = __ENV.WALLET_URL;
const COUPON = __ENV.COUPON_URL;
const NOTIFY = __ENV.NOTIFY_URL;
const CAMPAIGN = __ENV.CAMPAIGN ?? 'demo-live';
const RATE = Number(__ENV.RATE ?? 50);
const DURATION = Number(__ENV.DURATION ?? 15);

export const options = {
  scenarios: {
    shoppers: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: `${DURATION}s`,
      preAllocatedVUs: Math.min(200, RATE * 2),
      maxVUs: Math.max(50, RATE * 10),
    },
  },
  summaryTrendStats: ['med', 'p(90)', 'p(99)', 'max'],
};

const outcomes = new Counter('flashcrowd_demo_outcomes');

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
const JSON_HEADERS = { 'content-type': 'application/json' };

function classify(r: http.RefinedResponse<'text'>): string {
  if (r.status === 0) return 'network_error';
  try {
    const b = r.json() as { status?: string; reason?: string };
    return b.reason ?? b.status ?? `http_${r.status}`;
  } catch {
    return 'malformed';
  }
}

function post(url: string, body: unknown, name: string, key?: string) {
  return http.post(url, JSON.stringify(body), {
    headers: key ? { ...JSON_HEADERS, 'idempotency-key': key } : JSON_HEADERS,
    timeout: '2s',
    tags: { name },
  });
}

export default function () {
  const n = exec.scenario.iterationInTest;
  const orderId = `demo-${n}`;
  const userId = `u${n % 2000}`;
  const amount = 1999 + (n % 7) * 100;

  let coupon: string | undefined;
  if (COUPON) {
    const r = post(
      `${COUPON}/v1/coupons`,
      { campaignId: CAMPAIGN, userId: `${userId}-${n}` },
      'coupon issue',
      `issue-${n}`,
    );
    outcomes.add(1, { service: 'coupon', step: 'issue', outcome: classify(r) });
    if (r.status === 201) {
      coupon = (r.json() as { code: string }).code;
      const l = post(
        `${COUPON}/v1/coupons/${coupon}/lock`,
        { orderId },
        'coupon lock',
        `lock-${n}`,
      );
      outcomes.add(1, { service: 'coupon', step: 'lock', outcome: classify(l) });
      if (l.status !== 200) coupon = undefined;
    }
  }

  let paid = false;
  if (WALLET && NOTIFY && n % 3 === 0) {
    const t = post(
      `${WALLET}/v1/trades`,
      {
        outTradeNo: orderId,
        amount,
        notifyUrl: NOTIFY,
        style: n % 2 ? 'alipay' : 'wechat',
        userId,
      },
      'wallet create',
      `trade-${n}`,
    );
    outcomes.add(1, { service: 'wallet', step: 'create', outcome: classify(t) });
    if (t.status === 201) {
      const tradeNo = (t.json() as { tradeNo: string }).tradeNo;
      const p = post(`${WALLET}/v1/trades/${tradeNo}/pay`, {}, 'wallet pay');
      outcomes.add(1, { service: 'wallet', step: 'pay', outcome: classify(p) });
      paid = p.status === 200;
    }
  } else if (BANK) {
    const r = post(
      `${BANK}/v1/payments`,
      { orderId, amount, currency: 'CNY', card: { number: CARDS[n % CARDS.length] }, userId },
      'bank pay',
      `pay-${n}`,
    );
    outcomes.add(1, { service: 'bank', step: 'pay', outcome: classify(r) });
    paid = r.status === 200 || r.status === 202;
  }
  check(paid, { 'shopper paid': (x) => x });

  if (coupon) {
    const step = paid ? 'consume' : 'release';
    const r = post(
      `${COUPON}/v1/coupons/${coupon}/${step}`,
      { orderId },
      `coupon ${step}`,
      `${step}-${n}`,
    );
    outcomes.add(1, { service: 'coupon', step, outcome: classify(r) });
  }
}
