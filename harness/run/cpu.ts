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
}

export interface CpuWatch {
  /** The shares since the watch started (empty where /proc cannot be read). */
  stop(): { shares: CpuShare[]; cores: number };
}

/** Start counting CPU for this process, the stack's processes and the machine. */
export function watchCpu(target: Target, harnessName: string): CpuWatch {
  const procs = target.stack?.processes ?? [];
  const t0 = performance.now();
  const self0 = selfCpuSeconds();
  const m0 = machineBusySeconds();
  const p0 = procs.map((p) => treeCpuSeconds(p.pid));
  return {
    stop() {
      const wall = (performance.now() - t0) / 1000;
      const cores = cpus().length;
      if (wall <= 0) return { shares: [], cores };
      const shares: CpuShare[] = [{ name: harnessName, cores: (selfCpuSeconds() - self0) / wall }];
      procs.forEach((p, i) => {
        const a = p0[i];
        const b = treeCpuSeconds(p.pid);
        if (a !== undefined && b !== undefined)
          shares.push({ name: p.name, cores: (b - a) / wall });
      });
      const m1 = machineBusySeconds();
      if (m0 !== undefined && m1 !== undefined)
        shares.push({ name: 'machine', cores: (m1 - m0) / wall });
      return {
        shares: shares.map((s) => ({ ...s, cores: Number(s.cores.toFixed(3)) })),
        cores,
      };
    },
  };
}

/**
 * The part that saturated, if one did: a process at 0.9 core or more (Node and
 * Redis run their work on one thread), else the machine at 90% of its cores.
 */
export function saturated(shares: CpuShare[], cores: number): string | undefined {
  const procs = shares.filter((s) => s.name !== 'machine').sort((a, b) => b.cores - a.cores);
  if (procs[0] && procs[0].cores >= 0.9) return procs[0].name;
  const m = shares.find((s) => s.name === 'machine');
  return m && m.cores >= 0.9 * cores ? 'machine' : undefined;
}
