// k6's driver of a shopper journey (scenarios/lib/journey.ts): sends each
// step's requests with k6/http (several at once with http.batch), sleeps the
// pauses, and records the journey's metrics as k6 Counters, Rates and Trends.
// flashcrowd's own engine drives the same journeys (harness/engine/), so the
// two engines cannot drift apart.
import { sleep } from 'k6';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';
import type {
  Journey,
  JourneyAnswer,
  JourneyRequest,
  MetricDef,
  MetricSink,
} from './lib/journey.ts';

/** k6 metric objects for the journey's metrics (call in the init context). */
export function k6Sink(defs: readonly MetricDef[]): MetricSink {
  const by = new Map<string, Counter | Rate | Trend>();
  for (const d of defs)
    by.set(
      d.name,
      d.type === 'counter'
        ? new Counter(d.name)
        : d.type === 'rate'
          ? new Rate(d.name)
          : new Trend(d.name, d.time === true),
    );
  return {
    add(name, value, tags) {
      const metric = by.get(name);
      if (!metric) throw new Error(`journey metric ${name} is not declared`);
      metric.add(typeof value === 'boolean' ? (value ? 1 : 0) : value, tags);
    },
  };
}

function params(r: JourneyRequest) {
  return {
    // Stamped as a load balancer stamps it, as flashcrowd's engine does: the checkout sheds on its queue time.
    headers: { ...(r.headers ?? {}), 'x-request-start': `t=${Date.now()}` },
    tags: r.tags,
    timeout: `${r.timeoutS}s`,
    responseType: 'text' as const,
  };
}

function answer(r: {
  status: number;
  body: string | null | ArrayBuffer;
  timings: { duration: number };
}): JourneyAnswer {
  return {
    status: r.status,
    body: typeof r.body === 'string' ? r.body : '',
    durationMs: r.timings.duration,
  };
}

/** Run one journey to its end in this VU. */
export function drive(journey: Journey): void {
  let answers: JourneyAnswer[] | undefined;
  for (;;) {
    const next = journey.next(answers);
    if (next.done) return;
    const step = next.value;
    if (step.kind === 'sleep') {
      sleep(step.seconds);
      answers = undefined;
      continue;
    }
    const reqs = step.requests;
    if (reqs.length === 1) {
      const r = reqs[0]!;
      answers = [answer(http.request(r.method, r.url, r.body ?? null, params(r)))];
    } else {
      answers = http
        .batch(
          reqs.map((r) => ({
            method: r.method,
            url: r.url,
            body: r.body ?? null,
            params: params(r),
          })),
        )
        .map(answer);
    }
  }
}
