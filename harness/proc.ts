// CPU accounting from /proc (Linux): what a process and its live descendants
// spent, and the whole machine. The benchmarks and `flashcrowd run`'s
// per-process CPU shares (which part saturated: the load generator, the
// checkout, a mock, Redis) read it. Elsewhere every reading is undefined.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

function clockTicks(): number {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number((r.stdout ?? '').trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
}

const TICKS = clockTicks();

/** utime + stime of one process, in seconds (undefined when it is gone or not Linux). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime 15.
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return undefined;
  }
}

/** The live children of a process (every thread's), from /proc/PID/task/TID/children. */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
        .split(' ')
        .filter(Boolean)
        .map(Number),
    );
  } catch {
    return [];
  }
}

/**
 * A process and its live descendants (a guard and the redis-server it runs),
 * in seconds: a descendant that exits meanwhile leaves the sum.
 */
export function treeCpuSeconds(pid: number): number | undefined {
  const own = cpuSeconds(pid);
  if (own === undefined) return undefined;
  return childrenOf(pid).reduce((s, c) => s + (treeCpuSeconds(c) ?? 0), own);
}

/** CPU seconds all CPUs spent busy since boot (user, nice, system, irq, softirq, steal). */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
    return busy / TICKS;
  } catch {
    return undefined;
  }
}

/** This process's CPU seconds (every thread: worker threads of the engine included). */
export const selfCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
