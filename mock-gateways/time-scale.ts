// A mock service's run-level time-scale: the factor every world duration of
// its domain is multiplied by (velocity windows, settlement and notification
// delays, retry schedules, lock lifetimes; docs/MOCKS.md, "Time-scale"), so a
// run at 1/60 tells in 20 s the story a 20-minute one tells. A request's
// latency is never scaled. Set at start (ServiceOptions.timeScale, `flashcrowd
// mock --time-scale`) and by `POST /__reset?timeScale=X`; `GET /healthz` shows it.

/** Why `x` is not a time-scale (a number above 0 and at most 1), or undefined when it is one. */
export function timeScaleProblem(x: unknown): string | undefined {
  return typeof x === 'number' && Number.isFinite(x) && x > 0 && x <= 1
    ? undefined
    : 'must be a number above 0 and at most 1';
}

/** The time-scale in force; domains read it when they time something. */
export class TimeScale {
  private v: number;

  constructor(initial = 1) {
    this.v = TimeScale.check(initial);
  }

  private static check(x: number): number {
    const problem = timeScaleProblem(x);
    if (problem) throw new RangeError(`timeScale ${problem} (got ${String(x)})`);
    return x;
  }

  get value(): number {
    return this.v;
  }

  set(x: number): void {
    this.v = TimeScale.check(x);
  }

  /** A world duration in ms, scaled to this run's time. */
  ms(worldMs: number): number {
    return worldMs * this.v;
  }
}
