// flashcrowd's own engine in this process: the run's segment (the whole
// schedule, or `--segment k/N` of it on a runner) split between worker
// threads, each running its share of the arrivals and VUs (runner.ts), their
// reports merged (segments.ts). Workers boot first; the shared start instant
// is set once all of them are ready.
import { Worker } from 'node:worker_threads';
import {
  EngineStartError,
  type LoadEngine,
  type LoadPlan,
  type LoadResult,
  type LoadSnapshot,
} from './types.ts';
import type { SegmentPlan, SegmentReport } from './runner.ts';
import { WHOLE, segmentShare, splitSegment, type Segment } from './schedule.ts';
import { SegmentSet, segmentName } from './segments.ts';
import type { FromWorker } from './worker.ts';

export interface EmbeddedOptions {
  /** Worker threads (default 1). */
  workers?: number;
  /** The part of the schedule this process runs (default: all of it). */
  segment?: Segment;
  /** Each segment's reports as they come (a runner process forwards them to the harness). */
  onReport?: (r: SegmentReport, final: boolean) => void;
  /** How long after every worker is ready the traffic starts (ms, default 100). */
  leadMs?: number;
  /** A start instant fixed from outside (runner processes share the harness's). */
  startAtMs?: number;
}

const BOOT = new URL('./worker-boot.mjs', import.meta.url);
const BOOT_TIMEOUT_MS = 60_000;

/** A segment's plan: its arrivals, and its share of the VUs. */
export function segmentPlan(plan: LoadPlan, segment: Segment): Omit<SegmentPlan, 'startAtMs'> {
  // Every segment's share of the run's VUs (the shares add up to the whole).
  const share = (n: number) => Math.max(1, segmentShare(n, segment));
  return {
    journey: plan.journey,
    shape: plan.shape,
    preAllocatedVUs: share(plan.preAllocatedVUs),
    maxVUs: share(plan.maxVUs),
    gracefulStopS: plan.gracefulStopS,
    segment,
  };
}

export class EmbeddedEngine implements LoadEngine {
  readonly name = 'flashcrowd' as const;
  private readonly workers: Worker[] = [];
  private set: SegmentSet | undefined;
  private done: Promise<LoadResult> | undefined;
  private readonly errors: string[] = [];

  constructor(private readonly o: EmbeddedOptions = {}) {}

  describe(): string {
    const w = this.o.workers ?? 1;
    return `flashcrowd engine (${w} worker thread${w === 1 ? '' : 's'}${this.o.segment ? `, segment ${segmentName(this.o.segment)}` : ''})`;
  }

  private booted: Promise<void> | undefined;

  /** Boot the worker threads (each with its segment of the plan) and wait until all say ready. */
  ready(plan: LoadPlan): Promise<void> {
    this.booted ??= (async () => {
      const segs = splitSegment(this.o.segment ?? WHOLE, this.o.workers ?? 1);
      const set = (this.set = new SegmentSet(segs));
      const finals = segs.map((seg) => this.spawn(plan, seg, set));
      await this.allReady();
      this.done = Promise.all(finals).then(() => set.result(plan, this.describe(), this.errors));
    })();
    return this.booted;
  }

  async start(plan: LoadPlan): Promise<number> {
    await this.ready(plan);
    const startAtMs = this.o.startAtMs ?? Date.now() + (this.o.leadMs ?? 100);
    for (const w of this.workers) w.postMessage({ type: 'go', startAtMs });
    return startAtMs;
  }

  private readyCount = 0;
  private onReady: () => void = () => undefined;

  private allReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new EngineStartError(
              `the engine's worker threads did not start within ${BOOT_TIMEOUT_MS / 1000} s`,
            ),
          ),
        BOOT_TIMEOUT_MS,
      );
      this.onReady = () => {
        if (this.readyCount === this.workers.length) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.onReady();
    });
  }

  /** One worker for one segment; resolves when its final report came (or it died: the error is kept). */
  private spawn(plan: LoadPlan, seg: Segment, set: SegmentSet): Promise<void> {
    const w = new Worker(BOOT, { workerData: { plan: segmentPlan(plan, seg) } });
    this.workers.push(w);
    return new Promise<void>((resolve) => {
      let final = false;
      w.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          this.readyCount += 1;
          this.onReady();
        } else if (m.type === 'report') {
          set.update(m.report);
          this.o.onReport?.(m.report, false);
        } else {
          final = true;
          set.finish(m.report);
          this.o.onReport?.(m.report, true);
        }
      });
      w.on('error', (e) =>
        this.errors.push(`worker for segment ${segmentName(seg)} failed: ${e.message}`),
      );
      w.on('exit', (code) => {
        if (!final)
          this.errors.push(
            `worker for segment ${segmentName(seg)} exited (code ${code}) before its final report`,
          );
        resolve();
      });
    });
  }

  snapshot(): LoadSnapshot | undefined {
    return this.set?.snapshot();
  }

  /** This process's workers as one report of its segment (what a runner sends the harness). */
  report(done: boolean): SegmentReport | undefined {
    return this.set?.combined(this.o.segment ?? WHOLE, done);
  }

  result(): Promise<LoadResult> {
    if (!this.done) return Promise.reject(new Error('the engine was not started'));
    return this.done;
  }

  async stop(): Promise<void> {
    for (const w of this.workers) w.postMessage({ type: 'stop' });
    await this.done?.catch(() => undefined);
  }
}
