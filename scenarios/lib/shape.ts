// Traffic-shape arithmetic shared by the k6 scenario (scenarios/livestream.ts)
// and the harness (harness/preset.ts): one implementation of the scaling, the
// stage labels, the current stage and the number of arrivals. No imports (k6
// loads this file by relative path).

/** One stage: ramp the arrival rate linearly to `target` shoppers/s over `durationS`. */
export interface Stage {
  durationS: number;
  target: number;
  label?: string;
}

/** The label a stage is tagged with: its own, else `stage<i+1>`. */
export function stageLabel(stage: Stage, i: number): string {
  return stage.label ?? `stage${i + 1}`;
}

/** Every stage's label, in order. */
export function stageLabels(stages: readonly Stage[]): string[] {
  return stages.map(stageLabel);
}

/** A rate scaled by the load-scale: a whole number of arrivals/s (k6 wants integers); a rate above 0 stays at least 1. */
export function scaleRate(rate: number, loadScale: number): number {
  if (rate <= 0) return 0;
  return Math.max(1, Math.round(rate * loadScale));
}

/**
 * Scale stages: durations by the time-scale, targets by the load-scale.
 * Durations are whole seconds. The stage *ends* are rounded (cumulative
 * rounding), so the boundaries stay within half a second of the exact scaled
 * times and line up with the chaos timeline, which scales exactly; a stage
 * lasts at least 1 s (which may push the later boundaries a little).
 * Every stage gets its label (`stage<i+1>` when it had none).
 */
export function scaleStages(
  stages: readonly Stage[],
  timeScale: number,
  loadScale: number,
): Required<Stage>[] {
  let exactEnd = 0;
  let end = 0;
  return stages.map((s, i) => {
    exactEnd += s.durationS * timeScale;
    const next = Math.max(end + 1, Math.round(exactEnd));
    const durationS = next - end;
    end = next;
    return { durationS, target: scaleRate(s.target, loadScale), label: stageLabel(s, i) };
  });
}

/** Seconds from the start of traffic to the start of each stage, and the total. */
export function stageBounds(stages: readonly Stage[]): { fromS: number; toS: number }[] {
  let t = 0;
  return stages.map((s) => {
    const fromS = t;
    t += s.durationS;
    return { fromS, toS: t };
  });
}

export function totalDurationS(stages: readonly Stage[]): number {
  return stages.reduce((a, s) => a + s.durationS, 0);
}

/** The index of the stage in force `elapsedS` seconds after the start (the last one after the end). */
export function stageIndexAt(stages: readonly Stage[], elapsedS: number): number {
  let t = 0;
  for (let i = 0; i < stages.length; i += 1) {
    t += stages[i]!.durationS;
    if (elapsedS < t) return i;
  }
  return Math.max(0, stages.length - 1);
}

/** The arrival rate (shoppers/s) at `elapsedS` (linear ramps, as k6's ramping-arrival-rate). */
export function rateAt(startRate: number, stages: readonly Stage[], elapsedS: number): number {
  let from = startRate;
  let t = 0;
  for (const s of stages) {
    if (elapsedS < t + s.durationS)
      return from + ((s.target - from) * (elapsedS - t)) / s.durationS;
    t += s.durationS;
    from = s.target;
  }
  return from;
}

/** Arrivals over the whole shape: the integral of the rate (each stage a trapezoid). */
export function expectedArrivals(startRate: number, stages: readonly Stage[]): number {
  let from = startRate;
  let n = 0;
  for (const s of stages) {
    n += ((from + s.target) / 2) * s.durationS;
    from = s.target;
  }
  return n;
}

/** k6's form of the stages (`ramping-arrival-rate`). */
export function k6Stages(stages: readonly Stage[]): { duration: string; target: number }[] {
  return stages.map((s) => ({ duration: `${s.durationS}s`, target: s.target }));
}
