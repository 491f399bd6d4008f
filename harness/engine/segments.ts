// The segments of one run side by side (worker threads, runner processes):
// the latest report of each, the live snapshot they add up to, and the run's
// result from their final reports (metric snapshots merged).
import { flashcrowdVersion } from '../tools.ts';
import { BUILTIN_METRICS, mergeSnapshots, summarize } from './metrics.ts';
import type { SegmentReport } from './runner.ts';
import { scheduledCount, type Segment } from './schedule.ts';
import type { LoadPlan, LoadResult, LoadSnapshot } from './types.ts';
import { journeyKind } from '../../scenarios/lib/journeys.ts';

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

  /** Every segment's last report merged into one, for `seg` (a runner reports its workers as its segment). */
  combined(seg: Segment, done: boolean): SegmentReport {
    const reports = [...this.latest.values()];
    return {
      segment: seg,
      scheduled: reports.reduce((a, r) => a + r.scheduled, 0),
      started: reports.reduce((a, r) => a + r.started, 0),
      dropped: reports.reduce((a, r) => a + r.dropped, 0),
      active: reports.reduce((a, r) => a + r.active, 0),
      done,
      elapsedS: Math.max(0, ...reports.map((r) => r.elapsedS)),
      metrics: mergeSnapshots(reports.map((r) => r.metrics)),
    };
  }

  /**
   * The run's result from every segment's final report. `failures` name the
   * segments that died: their last report counts (so their missing arrivals
   * show as unaccounted and the run fails), and the failures are warnings.
   */
  result(plan: LoadPlan, detail: string, failures: readonly string[] = []): LoadResult {
    const reports = this.segments
      .map((s) => this.finals.get(segmentName(s)) ?? this.latest.get(segmentName(s)))
      .filter((r): r is SegmentReport => r !== undefined);
    const merged = mergeSnapshots(reports.map((f) => f.metrics));
    const durationS = Math.max(0, ...reports.map((f) => f.elapsedS));
    const time = new Set(
      [...BUILTIN_METRICS, ...journeyKind(plan.journey).metrics]
        .filter((d) => d.time)
        .map((d) => d.name),
    );
    return {
      engine: { name: 'flashcrowd', version: flashcrowdVersion(), detail },
      summary: summarize(merged, durationS, time),
      scheduled: scheduledCount(plan.shape),
      started: reports.reduce((a, f) => a + f.started, 0),
      dropped: reports.reduce((a, f) => a + f.dropped, 0),
      exitCode: failures.length ? 1 : 0,
      log: failures.length ? failures.join('\n') + '\n' : '',
      logFile: 'engine.log',
      warnings: [...failures],
    };
  }
}
