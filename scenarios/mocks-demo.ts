// k6 traffic for `flashcrowd demo`: shoppers paying by card at the mock bank,
// by wallet, and using coupons. Open model (arrival rate), bounded duration.
// Run by hand: k6 run -e BANK_URL=http://127.0.0.1:PORT ... scenarios/mocks-demo.ts
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import exec from 'k6/execution';

const BANK = __ENV.BANK_URL;
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

function classify(r: http.RefinedResponse<'text'>): string {
  if (r.error_code) return r.status === 0 ? 'network_error' : `error_${r.status}`;
  try {
    const b = r.json() as { status?: string; reason?: string };
    return b.reason ?? b.status ?? `http_${r.status}`;
  } catch {
    return 'malformed';
  }
}

export default function () {
  const n = exec.scenario.iterationInTest;
  if (BANK) {
    const body = JSON.stringify({
      orderId: `demo-${n}`,
      amount: 1999 + (n % 7) * 100,
      currency: 'CNY',
      card: { number: CARDS[n % CARDS.length] },
      userId: `u${n % 500}`,
    });
    const r = http.post(`${BANK}/v1/payments`, body, {
      headers: { 'content-type': 'application/json', 'idempotency-key': `demo-pay-${n}` },
      timeout: '2s',
      tags: { name: 'bank POST /v1/payments' },
    });
    outcomes.add(1, { service: 'bank', outcome: classify(r) });
    check(r, { 'bank answered': (x) => x.status > 0 });
  }
}
