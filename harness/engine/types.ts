// The one interface the run has to its load generator: start, a snapshot each
// second, the final result, stop. flashcrowd's own engine (embedded.ts, with
// worker threads; remote.ts, with runner processes) and the user's k6 (k6.ts)
// implement it; collection, quiescence, audit, budgets and reports do not know
// which one ran.
import { UsageError } from '../errors.ts';
import type { JourneySpec } from '../../scenarios/lib/journeys.ts';
import type { EngineSummary } from './metrics.ts';
import type { Shape } from './schedule.ts';

export type EngineName = 'flashcrowd' | 'k6';

/** What to load: the journey and its arrival shape, plus what k6 needs to run the same with its script. */
export interface LoadPlan {
  journey: JourneySpec;
  shape: Shape;
  preAllocatedVUs: number;
  maxVUs: number;
  gracefulStopS: number;
  /** For the k6 engine: the script with the same journey, its environment, the folders it writes in. */
  k6?: {
    script: string;
    env: Record<string, string | number>;
    mounts: string[];
    summaryFile: string;
  };
}

/** The latest second of the traffic, for live progress and the time series. */
export interface LoadSnapshot {
  /** Arrivals started and dropped so far, journeys running now. */
  started: number;
  dropped: number;
  vus: number;
  elapsedS: number;
}

export interface LoadResult {
  engine: { name: EngineName; version: string; detail: string };
  /** The metrics in k6's summary shape (undefined: the engine wrote none). */
  summary: EngineSummary | undefined;
  /** Arrivals the schedule holds; started (null: the engine does not say) and dropped. */
  scheduled: number;
  started: number | null;
  dropped: number;
  /** The engine's own exit code (0 fine; k6's 99 is thresholds). */
  exitCode: number;
  /** The engine's output, written to the run folder. */
  log: string;
  logFile: string;
  warnings: string[];
}

export interface LoadEngine {
  readonly name: EngineName;
  /** One line: which engine, where from. */
  describe(): string;
  /**
   * Get ready to start at once (worker threads booted, runner processes
   * registered), so the chaos timeline applied next starts with the traffic;
   * start() does it when it was not called. Rejects with EngineStartError.
   */
  ready?(plan: LoadPlan): Promise<void>;
  /**
   * Start the traffic; resolves with its start instant (epoch ms, when the
   * first arrival is due: the run starts the chaos and fault clocks there), or
   * rejects with EngineStartError when it cannot start.
   */
  start(plan: LoadPlan): Promise<number>;
  /** The latest snapshot (undefined before the first). */
  snapshot(): LoadSnapshot | undefined;
  /** The final result, once the traffic and the graceful stop are over. */
  result(): Promise<LoadResult>;
  /** Cut the traffic short (Ctrl-C). */
  stop(): Promise<void>;
}

/** The engine could not start: the run exits 2 and says why. */
export class EngineStartError extends UsageError {}
