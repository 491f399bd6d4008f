// The benchmarks' journeys (bench/mocks.ts, bench/checkout.ts, bench/closed-loop.ts),
// registered in journeys.ts beside the shoppers': as cheap as a journey can be, so
// what a benchmark measures is the server, not the journey.
//
//   bench-post   one POST of a fixed body per arrival (the mock bank's payments)
//   bench-order  one order through a checkout: POST /v1/orders {user, sku}, then
//                POST /v1/orders/:id/pay until it answers 200 paid; counts paid,
//                refused (409 sold out and the like) and failed orders, and the
//                create + pay duration of paid ones
//
// No imports except sibling files (k6 loads journeys by relative path).
import { jsonBody, one, type Journey, type JourneyContext, type MetricDef } from './journey.ts';

export interface BenchPostConfig {
  url: string;
  body: string;
  headers?: Record<string, string>;
  /** The request's `name` tag (default `POST`). */
  name?: string;
  timeoutS?: number;
}

export interface BenchOrderConfig {
  /** The checkout, e.g. http://127.0.0.1:8100 (no trailing slash). */
  target: string;
  sku: string;
  /** Prefixes the user ids (`<prefix><arrival number>`): the sale sells one unit per user. */
  userPrefix: string;
  timeoutS?: number;
}

export const BENCH_ORDER_METRICS: readonly MetricDef[] = [
  { name: 'orders_paid', type: 'counter' },
  { name: 'orders_refused', type: 'counter' },
  { name: 'orders_failed', type: 'counter' },
  { name: 'order_duration', type: 'trend', time: true },
];

const JSON_HEADERS = { 'content-type': 'application/json' };
const PAY_BODY = '{}';

export function* benchPostJourney(c: BenchPostConfig, _ctx: JourneyContext): Journey {
  yield one({
    method: 'POST',
    url: c.url,
    body: c.body,
    headers: c.headers ?? JSON_HEADERS,
    tags: { name: c.name ?? 'POST' },
    timeoutS: c.timeoutS ?? 10,
  });
}

export function* benchOrderJourney(c: BenchOrderConfig, ctx: JourneyContext): Journey {
  const m = ctx.metrics;
  const timeoutS = c.timeoutS ?? 10;
  const [created] = (yield one({
    method: 'POST',
    url: `${c.target}/v1/orders`,
    body: `{"user":"${c.userPrefix}${ctx.index}","sku":"${c.sku}"}`,
    headers: JSON_HEADERS,
    tags: { name: 'POST /v1/orders' },
    timeoutS,
  }))!;
  const id = created!.status === 201 ? jsonBody<{ id?: string }>(created).id : undefined;
  if (!id) {
    m.add(created!.status === 409 ? 'orders_refused' : 'orders_failed', 1, {});
    return;
  }
  const [paid] = (yield one({
    method: 'POST',
    url: `${c.target}/v1/orders/${id}/pay`,
    body: PAY_BODY,
    headers: JSON_HEADERS,
    tags: { name: 'POST /v1/orders/:id/pay' },
    timeoutS,
  }))!;
  if (paid!.status === 200 && jsonBody<{ state?: string }>(paid).state === 'paid') {
    m.add('orders_paid', 1, {});
    m.add('order_duration', created!.durationMs + paid!.durationMs, {});
  } else m.add('orders_failed', 1, {});
}
