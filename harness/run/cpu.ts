// `flashcrowd run`, CPU shares: what each process the run depends on spent
// during the traffic, in cores (1.0: one core busy the whole time), from
// /proc. On a small machine the load generator competes with the system
// under test; a sweep step says which part saturated (a single-threaded Node
// process or Redis near 1.0 core, or the machine near all of its cores).
import { cpus } from 'node:os';
import { machineBusySeconds, selfCpuSeconds, treeCpuSeconds } from '../proc.ts';
import type { Target } from './target.ts';

export interface CpuShare {
  /** `harness` (with flashcrowd's engine in process: the load generator), `checkout`, `mocks`, `redis`, `machine`. */
  name: string;
  /** Cores used on average over the traffic (machine: of `cores`). */
  cores: number;
  /**
   * Cores used in the busiest PEAK_WINDOW_S seconds of the traffic (the
   * average hides a peak of a few seconds in a short run); absent when the
   * traffic was shorter than that.
   */
  peakCores?: number;
}

/** The window of `peakCores`, in seconds of traffic (sampled once a second). */
export const PEAK_WINDOW_S = 3;

export interface CpuWatch {
  /** The shares since the watch started (empty where /proc cannot be read). */
  stop(): { shares: CpuShare[]; cores: number };
}

/** Start counting CPU for this process, the stack's processes and the machine (a sample a second). */
export function watchCpu(target: Target, harnessName: string): CpuWatch {
  const procs = target.stack?.processes ?? [];
  const names = [harnessName, ...procs.map((p) => p.name), 'machine'];
  const read = (): (number | undefined)[] => [
    selfCpuSeconds(),
    ...procs.map((p) => treeCpuSeconds(p.pid)),
    machineBusySeconds(),
  ];
  const samples: { t: number; v: (number | undefined)[] }[] = [];
  const sample = () => samples.push({ t: performance.now(), v: read() });
  sample();
  const timer = setInterval(sample, 1_000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      const cores = cpus().length;
      const first = samples[0]!;
      const last = samples.at(-1)!;
      const wall = (last.t - first.t) / 1000;
      if (wall <= 0) return { shares: [], cores };
      const shares: CpuShare[] = [];
      names.forEach((name, i) => {
        const a = first.v[i];
        const b = last.v[i];
        if (a === undefined || b === undefined) return;
        const peak = busiest(samples, i);
        shares.push({
          name,
          cores: round((b - a) / wall),
          ...(peak !== undefined ? { peakCores: round(peak) } : {}),
        });
      });
      return { shares, cores };
    },
  };
}

const round = (x: number) => Number(x.toFixed(3));

/** The most cores series `i` used over PEAK_WINDOW_S consecutive seconds of samples. */
export function busiest(samples: { t: number; v: (number | undefined)[] }[], i: number) {
  let best: number | undefined;
  for (let k = 0; k + PEAK_WINDOW_S < samples.length; k++) {
    const a = samples[k]!;
    const b = samples[k + PEAK_WINDOW_S]!;
    const va = a.v[i];
    const vb = b.v[i];
    const dt = (b.t - a.t) / 1000;
    if (va === undefined || vb === undefined || dt <= 0) continue;
    best = Math.max(best ?? 0, (vb - va) / dt);
  }
  return best;
}

/**
 * The part that saturated, if one did, at its peak (`peakCores`, else the
 * average): a process at 0.9 core or more (Node and Redis run their work on
 * one thread), else the machine at 90% of its cores.
 */
export function saturated(shares: CpuShare[], cores: number): string | undefined {
  const at = (s: CpuShare) => s.peakCores ?? s.cores;
  const procs = shares.filter((s) => s.name !== 'machine').sort((a, b) => at(b) - at(a));
  if (procs[0] && at(procs[0]) >= 0.9) return procs[0].name;
  const m = shares.find((s) => s.name === 'machine');
  return m && at(m) >= 0.9 * cores ? 'machine' : undefined;
}
