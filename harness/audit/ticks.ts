// I1 and I2 at every collector tick, not only at the end: the brief asks for
// "sold + reserved + available = initial at every snapshot", and a counter
// that drifts mid-run and is put right by the end (a release applied twice,
// then a sale that is short) would pass an end-only audit. The collector
// hands each tick's `GET /admin/stock` (one HMGET per SKU: a consistent read
// of that SKU's counters) to `observe`; `apply` folds what it saw into the
// final audit's I1 and I2: the first tick that broke each, how many readings
// broke, and every reading counted when the end held.
import type { StockSnapshot } from '../../checkout/store.ts';
import { replaceInvariant, type AuditReport, type InvariantResult } from './report.ts';
import { describeCounters, i1Breaks, i2Breaks } from './stock.ts';

interface Seen {
  /** Readings (tick x SKU) that broke it, and the first few, with their tick. */
  broken: number;
  examples: string[];
  firstS?: number;
}

export class TickWatch {
  private readings = 0;
  private ticks = 0;
  private readonly seen: Record<'I1' | 'I2', Seen> = {
    I1: { broken: 0, examples: [] },
    I2: { broken: 0, examples: [] },
  };

  constructor(private readonly maxExamples = 10) {}

  /** Stock readings checked so far (one per SKU per tick). */
  get readingCount(): number {
    return this.readings;
  }

  /** One tick's stock rows (rows without `initial`, from an older checkout, cannot be checked). */
  observe(tS: number, rows: (Omit<StockSnapshot, 'initial'> & { initial?: number })[]): void {
    const checkable = rows.filter((r): r is StockSnapshot => typeof r.initial === 'number');
    if (!checkable.length) return;
    this.ticks += 1;
    for (const r of checkable) {
      this.readings += 1;
      if (i1Breaks(r)) this.note('I1', tS, r);
      if (i2Breaks(r)) this.note('I2', tS, r);
    }
  }

  private note(id: 'I1' | 'I2', tS: number, r: StockSnapshot) {
    const s = this.seen[id];
    s.broken += 1;
    s.firstS ??= tS;
    if (s.examples.length < this.maxExamples)
      s.examples.push(`t=${tS.toFixed(1)} s ${describeCounters(r)}`);
  }

  /** I1 and I2 of `report` with what the ticks saw (the report's lists follow). */
  apply(report: AuditReport): void {
    if (!this.ticks) return;
    for (const id of ['I1', 'I2'] as const)
      replaceInvariant(report, this.merge(report.byId[id], this.seen[id]));
  }

  private merge(end: InvariantResult, s: Seen): InvariantResult {
    const during = s.broken
      ? `broken at ${s.broken} of ${this.readings} stock readings during the run (${this.ticks} ticks), first at t=${s.firstS!.toFixed(1)} s`
      : `held at every one of ${this.readings} stock readings during the run (${this.ticks} ticks)`;
    const note = end.note ? `${end.note}; ${during}` : during;
    if (!s.broken) return { ...end, note };
    // Broken at the end: its count and examples stand, the ticks add when it began.
    if (end.ok === false) return { ...end, note };
    return {
      ...end,
      ok: false,
      count: s.broken,
      examples: s.examples,
      note: `at the end it held; ${during}`,
    };
  }
}
