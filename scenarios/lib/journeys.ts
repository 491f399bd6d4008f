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

export interface JourneyKind<C> {
  metrics: readonly MetricDef[];
  expectedStatuses: readonly number[];
  start(config: C, ctx: JourneyContext): Journey;
}

/** A GET of one URL per arrival (benchmarks: the engine's own cost). */
export interface GetConfig {
  url: string;
  timeoutS?: number;
}

export type JourneySpec =
  | { name: 'livestream'; config: LivestreamConfig }
  | { name: 'tour'; config: TourConfig }
  | { name: 'get'; config: GetConfig };

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
    *start(c, _ctx) {
      yield one({ method: 'GET', url: c.url, tags: { name: 'GET' }, timeoutS: c.timeoutS ?? 10 });
    },
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
