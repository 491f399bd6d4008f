// The segments of one run side by side (worker threads, runner processes):
// the latest report of each, the live snapshot they add up to, and the run's
// result from their final reports (metric snapshots merged).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../tools.ts';
import { BUILTIN_METRICS, mergeSnapshots, summarize } from './metrics.ts';
import type { SegmentReport } from './runner.ts';
import { scheduledCount, type Segment } from './schedule.ts';
import type { LoadPlan, LoadResult, LoadSnapshot } from './types.ts';
import { journeyKind } from '../../scenarios/lib/journeys.ts';

/** flashcrowd's version: the engine's. */
export function engineVersion(): string {
  return (
    JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

/** `k/N`, 1-based, as the CLI writes it. */
export function segmentName(s: Segment): string {
  return `${s.index + 1}/${s.count}`;
}

export class SegmentSet {
  private readonly latest = new Map<string, SegmentReport>();
  private readonly finals = new Map<string, SegmentReport>();

  constructor(readonly segments: readonly Segment[]) {}

  update(r: SegmentReport) {
    this.latest.set(segmentName(r.segment), r);
  }

  finish(r: SegmentReport) {
    this.latest.set(segmentName(r.segment), r);
    this.finals.set(segmentName(r.segment), r);
  }

  /** Segments with no final report yet. */
  pending(): Segment[] {
    return this.segments.filter((s) => !this.finals.has(segmentName(s)));
  }

  snapshot(): LoadSnapshot | undefined {
    if (this.latest.size === 0) return undefined;
    const s: LoadSnapshot = { started: 0, dropped: 0, vus: 0, elapsedS: 0 };
    for (const r of this.latest.values()) {
      s.started += r.started;
      s.dropped += r.dropped;
      s.vus += r.active;
      s.elapsedS = Math.max(s.elapsedS, r.elapsedS);
    }
    return s;
  }

  /** The run's result from every segment's final report. */
  result(plan: LoadPlan, detail: string, log: string, logFile: string): LoadResult {
    const finals = this.segments.map((s) => this.finals.get(segmentName(s))!);
    const merged = mergeSnapshots(finals.map((f) => f.metrics));
    const durationS = Math.max(0, ...finals.map((f) => f.elapsedS));
    const time = new Set(
      [...BUILTIN_METRICS, ...journeyKind(plan.journey).metrics]
        .filter((d) => d.time)
        .map((d) => d.name),
    );
    return {
      engine: { name: 'flashcrowd', version: engineVersion(), detail },
      summary: summarize(merged, durationS, time),
      scheduled: scheduledCount(plan.shape),
      started: finals.reduce((a, f) => a + f.started, 0),
      dropped: finals.reduce((a, f) => a + f.dropped, 0),
      exitCode: 0,
      log,
      logFile,
      warnings: [],
    };
  }
}
