// What a shopper journey is, for both engines: flashcrowd's own load engine
// (harness/engine/) and k6 (scenarios/livestream.ts). A journey is a
// generator, i.e. a step function with its state kept inside: each step it
// yields is a set of HTTP requests to send at the same time (a click and its
// re-clicks) or a pause; the driver sends them, and the answers are what the
// next `next(answers)` gets. The journey records its own metrics through a
// sink. No engine, no I/O, no imports (k6 loads this file by relative path).

export type Tags = Record<string, string>;

export interface JourneyRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  body?: string;
  headers?: Record<string, string>;
  /** Tags of the request's built-in metrics (http_req_duration, http_req_failed, http_reqs). */
  tags: Tags;
  /** Give up after this long (the answer is then status 0). */
  timeoutS: number;
}

export interface JourneyAnswer {
  /** HTTP status; 0 when no answer came (refused, reset, timed out). */
  status: number;
  /** The body as text ('' when none). */
  body: string;
  /** From sending the request to the end of the answer (ms). */
  durationMs: number;
}

export type JourneyStep =
  { kind: 'http'; requests: JourneyRequest[] } | { kind: 'sleep'; seconds: number };

/** The journey: yields steps, receives the answers of each `http` step (undefined after a sleep). */
export type Journey = Generator<JourneyStep, void, JourneyAnswer[] | undefined>;

export interface MetricSink {
  /** A counter's increment, a rate's sample (true/false) or a trend's value (ms for time trends). */
  add(name: string, value: number | boolean, tags: Tags): void;
}

export interface MetricDef {
  name: string;
  type: 'counter' | 'rate' | 'trend';
  /** A trend of durations in milliseconds (k6's `isTime`). */
  time?: boolean;
}

export interface JourneyContext {
  /** Arrival number in the whole run (k6's exec.scenario.iterationInTest). */
  index: number;
  /** Seconds since the traffic started (the stage in force is read from it). */
  elapsedS(): number;
  metrics: MetricSink;
}

/** Statuses the built-in http_req_failed does not count as failures (k6's expectedStatuses). */
export function expectedStatus(status: number, also: readonly number[]): boolean {
  return (status >= 200 && status <= 399) || also.includes(status);
}

/** One http step of one request. */
export function one(r: JourneyRequest): JourneyStep {
  return { kind: 'http', requests: [r] };
}

/** The JSON object in an answer's body, or {} when it has none. */
export function jsonBody<T extends object>(a: JourneyAnswer | undefined): Partial<T> {
  if (!a || a.body === '') return {};
  try {
    const v = JSON.parse(a.body) as unknown;
    return v && typeof v === 'object' ? (v as Partial<T>) : {};
  } catch {
    return {};
  }
}
