// One segment of a run, in this thread: walks the arrival schedule from a
// shared start instant, starts one journey per arrival in a bounded pool of
// VUs (an arrival that finds every VU busy is dropped and counted, never
// delayed: the open model), drives each journey's steps over HTTP, and
// records every metric. After the last stage, running journeys get
// `gracefulStopS` to finish; the rest are interrupted (their requests
// aborted) and counted. Used by a worker thread (worker.ts) or inline.
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  Journey,
  JourneyAnswer,
  JourneyContext,
  JourneyRequest,
} from '../../scenarios/lib/journey.ts';
import { journeyKind, type JourneySpec } from '../../scenarios/lib/journeys.ts';
import { HttpClient } from './http.ts';
import { MetricStore, type MetricSnapshot } from './metrics.ts';
import { arrivals, segmentCount, scheduledCount, type Segment, type Shape } from './schedule.ts';

export interface SegmentPlan {
  journey: JourneySpec;
  shape: Shape;
  /** This segment's VUs: started with `preAllocatedVUs` idle, at most `maxVUs` busy at once. */
  preAllocatedVUs: number;
  maxVUs: number;
  gracefulStopS: number;
  segment: Segment;
  /** The shared start instant (ms since the epoch). */
  startAtMs: number;
}

/** What a segment reports each second and at the end. */
export interface SegmentReport {
  segment: Segment;
  /** Arrivals of this segment's schedule, started and dropped so far, journeys running now. */
  scheduled: number;
  started: number;
  dropped: number;
  active: number;
  done: boolean;
  /** Seconds since the start instant. */
  elapsedS: number;
  metrics: MetricSnapshot;
}

export interface RunSegmentOptions {
  /** Called about once a second with the cumulative report. */
  onReport?: (r: SegmentReport) => void;
  /** Stop early: no new arrivals, running journeys interrupted. */
  signal?: AbortSignal;
  /** Snapshot period (ms, default 1000). */
  reportEveryMs?: number;
}

/** Wall-clock ms with sub-millisecond resolution (lateness is measured in µs). */
const nowMs = () => performance.timeOrigin + performance.now();

class SegmentRun {
  readonly store: MetricStore;
  private readonly http = new HttpClient();
  private readonly expected: readonly number[];
  private readonly hardStop = new AbortController();
  private readonly kind;
  started = 0;
  dropped = 0;
  active = 0;
  private idle: () => void = () => undefined;

  constructor(readonly plan: SegmentPlan) {
    this.kind = journeyKind(plan.journey);
    // Every pausing journey waits on this signal (each listener goes when its pause ends).
    setMaxListeners(0, this.hardStop.signal);
    this.store = new MetricStore(this.kind.metrics);
    this.expected = this.kind.expectedStatuses;
  }

  elapsedS(): number {
    return (nowMs() - this.plan.startAtMs) / 1000;
  }

  /** Start arrival i now, or drop it when every VU is busy. */
  arrive(i: number, lateMs: number) {
    this.store.add('arrival_lateness', Math.max(0, lateMs), {});
    if (this.active >= this.plan.maxVUs) {
      this.dropped += 1;
      this.store.add('dropped_iterations', 1, {});
      return;
    }
    this.started += 1;
    this.active += 1;
    this.store.gauge('vus', this.active);
    const ctx: JourneyContext = { index: i, elapsedS: () => this.elapsedS(), metrics: this.store };
    void this.drive(this.kind.start(this.plan.journey.config, ctx)).finally(() => {
      this.active -= 1;
      this.store.gauge('vus', this.active);
      if (this.active === 0) this.idle();
    });
  }

  private async drive(j: Journey) {
    const t0 = performance.now();
    const stop = this.hardStop.signal;
    let answers: JourneyAnswer[] | undefined;
    for (;;) {
      const next = j.next(answers);
      if (next.done) break;
      const step = next.value;
      if (step.kind === 'sleep') {
        await sleep(step.seconds * 1000, undefined, { signal: stop }).catch(() => undefined);
        answers = undefined;
      } else answers = await Promise.all(step.requests.map((r) => this.send(r)));
      // Interrupted (k6 alike): the journey sees no more answers, and requests cut short count nowhere.
      if (stop.aborted) {
        this.store.add('interrupted_iterations', 1, {});
        return;
      }
    }
    this.store.add('iterations', 1, {});
    this.store.add('iteration_duration', performance.now() - t0, {});
  }

  private async send(r: JourneyRequest): Promise<JourneyAnswer> {
    const a = await this.http.send(r);
    if (!this.hardStop.signal.aborted) this.store.answered(r, a, this.expected);
    return a;
  }

  /** Wait for running journeys up to `ms`, then interrupt the rest. */
  async drain(ms: number) {
    if (this.active > 0) {
      const idle = new Promise<void>((r) => (this.idle = r));
      const timer = new Promise<void>((r) => setTimeout(r, ms).unref());
      await Promise.race([idle, timer]);
    }
    this.hardStop.abort();
    this.http.abortAll();
    while (this.active > 0) await sleep(5);
  }

  async close() {
    await this.http.close();
  }
}

/** Run the segment to its end; resolves with the final report. */
export async function runSegment(
  plan: SegmentPlan,
  o: RunSegmentOptions = {},
): Promise<SegmentReport> {
  const run = new SegmentRun(plan);
  const scheduled = segmentCount(scheduledCount(plan.shape), plan.segment);
  const report = (done: boolean): SegmentReport => ({
    segment: plan.segment,
    scheduled,
    started: run.started,
    dropped: run.dropped,
    active: run.active,
    done,
    elapsedS: run.elapsedS(),
    metrics: run.store.snapshot(),
  });
  run.store.gauge('vus', 0);
  run.store.gauge('vus_max', plan.preAllocatedVUs);
  const ticker = setInterval(() => o.onReport?.(report(false)), o.reportEveryMs ?? 1000);
  try {
    await walkSchedule(run, o.signal);
    await run.drain(o.signal?.aborted ? 0 : plan.gracefulStopS * 1000);
  } finally {
    clearInterval(ticker);
    await run.close();
  }
  const final = report(true);
  run.store.destroy();
  return final;
}

/** Start each arrival at its instant: a timer to the next one, then every arrival now due. */
async function walkSchedule(run: SegmentRun, signal: AbortSignal | undefined) {
  const plan = run.plan;
  const it = arrivals(plan.shape, plan.segment);
  let next = it.next();
  let vusMax = plan.preAllocatedVUs;
  while (!next.done) {
    if (signal?.aborted) return;
    const dueMs = plan.startAtMs + next.value.atS * 1000;
    const wait = dueMs - nowMs();
    if (wait > 1) await sleep(Math.min(wait - 0.5, 250));
    else if (wait > 0) await new Promise((r) => setImmediate(r));
    const now = nowMs();
    while (!next.done && plan.startAtMs + next.value.atS * 1000 <= now) {
      run.arrive(next.value.i, now - (plan.startAtMs + next.value.atS * 1000));
      next = it.next();
    }
    if (run.active > vusMax) run.store.gauge('vus_max', (vusMax = run.active));
  }
  // The traffic lasts the whole shape even when the last arrival came early.
  const endMs = plan.startAtMs + plan.shape.stages.reduce((s, st) => s + st.durationS, 0) * 1000;
  while (Date.now() < endMs && !signal?.aborted) await sleep(Math.min(250, endMs - Date.now()));
}
