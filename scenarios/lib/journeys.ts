// Every journey an engine can run, by name, from a plain-JSON spec (it crosses
// worker threads and HTTP to runner processes): its metrics, the statuses its
// built-in http_req_failed accepts, and how to start one. No engine here.
import { one, type Journey, type JourneyContext, type MetricDef } from './journey.ts';
import {
  LIVESTREAM_EXPECTED_STATUSES,
  LIVESTREAM_METRICS,
  livestreamJourney,
  type LivestreamConfig,
} from './livestream-journey.ts';
import { TOUR_METRICS, tourJourney, type TourConfig } from './tour-journey.ts';
import {
  BENCH_ORDER_METRICS,
  benchOrderJourney,
  benchPostJourney,
  type BenchOrderConfig,
  type BenchPostConfig,
} from './bench-journeys.ts';

export interface JourneyKind<C> {
  metrics: readonly MetricDef[];
  expectedStatuses: readonly number[];
  start(config: C, ctx: JourneyContext): Journey;
}

/** A GET of one URL per arrival (benchmarks: the engine's own cost). */
export interface GetConfig {
  url: string;
  timeoutS?: number;
  /** Add `i=<arrival number>` to the query (tests check that each arrival came once). */
  withIndex?: boolean;
}

export type JourneySpec =
  | { name: 'livestream'; config: LivestreamConfig }
  | { name: 'tour'; config: TourConfig }
  | { name: 'get'; config: GetConfig }
  | { name: 'bench-post'; config: BenchPostConfig }
  | { name: 'bench-order'; config: BenchOrderConfig };

const KINDS: {
  [K in JourneySpec['name']]: JourneyKind<Extract<JourneySpec, { name: K }>['config']>;
} = {
  livestream: {
    metrics: LIVESTREAM_METRICS,
    expectedStatuses: LIVESTREAM_EXPECTED_STATUSES,
    start: livestreamJourney,
  },
  tour: { metrics: TOUR_METRICS, expectedStatuses: [], start: tourJourney },
  get: {
    metrics: [],
    expectedStatuses: [],
    *start(c, ctx) {
      const url = c.withIndex ? `${c.url}${c.url.includes('?') ? '&' : '?'}i=${ctx.index}` : c.url;
      yield one({ method: 'GET', url, tags: { name: 'GET' }, timeoutS: c.timeoutS ?? 10 });
    },
  },
  // The benchmarks' (scenarios/lib/bench-journeys.ts).
  'bench-post': { metrics: [], expectedStatuses: [], start: benchPostJourney },
  'bench-order': {
    metrics: BENCH_ORDER_METRICS,
    expectedStatuses: [409],
    start: benchOrderJourney,
  },
};

export function journeyKind(spec: JourneySpec): JourneyKind<JourneySpec['config']> {
  const k = KINDS[spec.name] as JourneyKind<JourneySpec['config']> | undefined;
  if (!k)
    throw new Error(
      `unknown journey "${(spec as { name: string }).name}" (known: ${Object.keys(KINDS).join(', ')})`,
    );
  return k;
}
