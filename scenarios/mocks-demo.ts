// k6 traffic through the mock gateways alone, the same shoppers as `flashcrowd
// tour` (scenarios/lib/tour-journey.ts): each iteration takes a coupon, pays
// by card at the mock bank or through the wallet, then uses or gives back the
// coupon. Open model (constant arrival rate), bounded duration.
// With your own k6: k6 run -e BANK_URL=... -e WALLET_URL=... -e COUPON_URL=... -e NOTIFY_URL=... scenarios/mocks-demo.ts
import exec from 'k6/execution';
import { drive, k6Sink } from './k6-driver.ts';
import { TOUR_METRICS, tourJourney, type TourConfig } from './lib/tour-journey.ts';

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

const CONFIG: TourConfig = {
  ...(__ENV.BANK_URL ? { bankUrl: __ENV.BANK_URL } : {}),
  ...(__ENV.WALLET_URL ? { walletUrl: __ENV.WALLET_URL } : {}),
  ...(__ENV.COUPON_URL ? { couponUrl: __ENV.COUPON_URL } : {}),
  ...(__ENV.NOTIFY_URL ? { notifyUrl: __ENV.NOTIFY_URL } : {}),
  campaign: __ENV.CAMPAIGN ?? 'demo-live',
};
const metrics = k6Sink(TOUR_METRICS);

export default function () {
  const startMs = exec.scenario.startTime;
  drive(
    tourJourney(CONFIG, {
      index: exec.scenario.iterationInTest,
      elapsedS: () => (Date.now() - startMs) / 1000,
      metrics,
    }),
  );
}
