// One segment of a run, in this thread: walks the arrival schedule from a
// shared start instant, starts one journey per arrival in a bounded pool of
// VUs (an arrival that finds every VU busy is dropped and counted, never
// delayed: the open model), drives each journey's steps over HTTP, and
// records every metric. After the last stage, running journeys get
// `gracefulStopS` to finish; the rest are interrupted (their requests
// aborted) and counted. Used by a worker thread (worker.ts) or inline.
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  Journey,
  JourneyAnswer,
  JourneyContext,
  JourneyRequest,
  JourneyStep,
} from '../../scenarios/lib/journey.ts';
import { journeyKind, type JourneySpec } from '../../scenarios/lib/journeys.ts';
import { HttpClient, type AnswerSink } from './http.ts';
import { MetricStore, type CounterCell, type MetricSnapshot, type TrendCell } from './metrics.ts';
import { arrivals, segmentCount, scheduledCount, type Segment, type Shape } from './schedule.ts';

export interface SegmentPlan {
  journey: JourneySpec;
  shape: Shape;
  /** This segment's VUs: `preAllocatedVUs` is only the first value of the vus_max gauge (nothing is pre-allocated); at most `maxVUs` journeys run at once. */
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
  readonly http = new HttpClient();
  readonly expected: readonly number[];
  private readonly kind;
  private readonly ctxElapsedS = () => this.elapsedS();
  /** The hard stop: no journey goes on, sleeping ones wake, requests in flight are aborted. */
  stopped = false;
  private readonly sleeping = new Set<Iteration>();
  started = 0;
  dropped = 0;
  active = 0;
  private idle: () => void = () => undefined;
  // The built-in series the runner records into, made on first use (a snapshot lists only those used).
  private lateness: TrendCell | undefined;
  private droppedCell: CounterCell | undefined;
  private iterationsCell: CounterCell | undefined;
  private interruptedCell: CounterCell | undefined;
  private durationCell: TrendCell | undefined;

  constructor(readonly plan: SegmentPlan) {
    this.kind = journeyKind(plan.journey);
    this.store = new MetricStore(this.kind.metrics);
    this.expected = this.kind.expectedStatuses;
  }

  elapsedS(): number {
    return (nowMs() - this.plan.startAtMs) / 1000;
  }

  /** Start arrival i now, or drop it when every VU is busy; `lateMs` after its instant. */
  arrive(i: number, lateMs: number) {
    (this.lateness ??= this.store.trendCell('arrival_lateness')).record(lateMs > 0 ? lateMs : 0);
    if (this.active >= this.plan.maxVUs) {
      this.dropped += 1;
      (this.droppedCell ??= this.store.counterCell('dropped_iterations')).n += 1;
      return;
    }
    this.started += 1;
    this.active += 1;
    this.store.gauge('vus', this.active);
    const ctx: JourneyContext = { index: i, elapsedS: this.ctxElapsedS, metrics: this.store };
    new Iteration(this, this.kind.start(this.plan.journey.config, ctx)).advance(undefined);
  }

  /** An iteration is over: completed (with its duration) or interrupted. */
  ended(durationMs: number | undefined) {
    if (durationMs === undefined)
      (this.interruptedCell ??= this.store.counterCell('interrupted_iterations')).n += 1;
    else {
      (this.iterationsCell ??= this.store.counterCell('iterations')).n += 1;
      (this.durationCell ??= this.store.trendCell('iteration_duration')).record(durationMs);
    }
    this.active -= 1;
    this.store.gauge('vus', this.active);
    if (this.active === 0) this.idle();
  }

  sleep(it: Iteration, ms: number): NodeJS.Timeout {
    this.sleeping.add(it);
    return setTimeout(() => {
      this.sleeping.delete(it);
      it.advance(undefined);
    }, ms);
  }

  /** Wait for running journeys up to `ms`, then interrupt the rest. */
  async drain(ms: number) {
    if (this.active > 0) {
      const idle = new Promise<void>((r) => (this.idle = r));
      const timer = new Promise<void>((r) => setTimeout(r, ms).unref());
      await Promise.race([idle, timer]);
    }
    this.stopped = true;
    for (const it of this.sleeping) it.wake();
    this.sleeping.clear();
    this.http.abortAll();
    while (this.active > 0) await sleep(5);
  }

  async close() {
    await this.http.close();
  }
}

/**
 * One arrival's journey, driven by callbacks (no promise per step or request):
 * each http step's requests go out together, and the journey gets their answers
 * once the last one came; a sleep step is a timer. After the hard stop the
 * journey sees no more answers, and requests cut short count nowhere (k6 alike).
 */
class Iteration implements AnswerSink {
  private readonly t0 = performance.now();
  private requests: readonly JourneyRequest[] = [];
  private answers: JourneyAnswer[] = [];
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly run: SegmentRun,
    private readonly journey: Journey,
  ) {}

  advance(answers: JourneyAnswer[] | undefined): void {
    const run = this.run;
    if (run.stopped) return run.ended(undefined);
    let next: IteratorResult<JourneyStep, void>;
    try {
      next = this.journey.next(answers);
    } catch (e) {
      // A journey's bug ends the run as an unhandled error did before (not swallowed here).
      process.nextTick(() => {
        throw e;
      });
      return run.ended(undefined);
    }
    if (next.done) return run.ended(performance.now() - this.t0);
    const step = next.value;
    if (step.kind === 'sleep') {
      this.timer = run.sleep(this, step.seconds * 1000);
      return;
    }
    const rs = step.requests;
    this.requests = rs;
    this.answers = new Array<JourneyAnswer>(rs.length);
    this.pending = rs.length;
    if (rs.length === 0) return this.advance(this.answers);
    for (let k = 0; k < rs.length; k++) run.http.dispatch(rs[k]!, this, k);
  }

  answer(a: JourneyAnswer, slot: number): void {
    const run = this.run;
    if (!run.stopped) run.store.answered(this.requests[slot]!, a, run.expected);
    this.answers[slot] = a;
    if (--this.pending === 0) this.advance(this.answers);
  }

  /** The hard stop during a sleep. */
  wake(): void {
    clearTimeout(this.timer);
    this.advance(undefined);
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
    await waitForEnd(run, o.signal);
    await run.drain(o.signal?.aborted ? 0 : plan.gracefulStopS * 1000);
  } finally {
    clearInterval(ticker);
    await run.close();
  }
  const final = report(true);
  run.store.destroy();
  return final;
}

/** The longest the schedule's timer waits at once (a stop is seen within it). */
const MAX_WAIT_MS = 250;

/**
 * Start each arrival at its instant, never before: a timer to the next
 * arrival's instant (Node's timers: 1 ms at least, so above about 1,000/s a
 * wake-up starts a batch), then every arrival due, each with its own lateness
 * (its start minus its instant, the time the batch's earlier arrivals took
 * included). No spinning: between arrivals the thread is idle.
 */
function walkSchedule(run: SegmentRun, signal: AbortSignal | undefined): Promise<void> {
  const plan = run.plan;
  const base = plan.startAtMs;
  const it = arrivals(plan.shape, plan.segment);
  let next = it.next();
  let vusMax = plan.preAllocatedVUs;
  return new Promise<void>((resolve) => {
    const tick = () => {
      if (signal?.aborted) return resolve();
      let now = nowMs();
      while (!next.done) {
        const due = base + next.value.atS * 1000;
        if (due > now) break;
        run.arrive(next.value.i, now - due);
        next = it.next();
        now = nowMs();
      }
      if (run.active > vusMax) run.store.gauge('vus_max', (vusMax = run.active));
      if (next.done) return resolve();
      const wait = base + next.value.atS * 1000 - now;
      setTimeout(tick, wait < MAX_WAIT_MS ? wait : MAX_WAIT_MS);
    };
    tick();
  });
}

/** The traffic lasts the whole shape even when the last arrival came early. */
async function waitForEnd(run: SegmentRun, signal: AbortSignal | undefined) {
  const plan = run.plan;
  const endMs = plan.startAtMs + plan.shape.stages.reduce((s, st) => s + st.durationS, 0) * 1000;
  while (Date.now() < endMs && !signal?.aborted)
    await sleep(Math.min(MAX_WAIT_MS, endMs - Date.now()));
}
