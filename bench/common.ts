// What the benchmarks (bench/engine.ts, bench/mocks.ts, bench/checkout.ts) share: the machine's
// description, pinning with taskset, CPU accounting from /proc, and the
// report's number formats and tables.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { cpuSeconds, machineBusySeconds, selfCpuSeconds } from '../harness/proc.ts';
import { findTool } from '../harness/tools.ts';

// ---------------------------------------------------------------- machine and pinning

export function allowedCpus(): number[] {
  try {
    const m = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m?.[1]) {
      const out: number[] = [];
      for (const part of m[1].split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a!; c <= (b ?? a!); c++) out.push(c);
      }
      return out;
    }
  } catch {
    /* not Linux */
  }
  return cpus().map((_, i) => i);
}

export function cpuModel(): string {
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) return m[1].trim();
  } catch {
    /* not Linux */
  }
  return cpus()[0]?.model ?? 'unknown';
}

export interface Pinning {
  pinned: boolean;
  loadCpu?: number;
  serverCpu?: number;
  note: string;
}

/** Pin this process (so the load generators, its children, inherit it) to one CPU; servers go to another. */
export function setUpPinning(noPin: boolean): Pinning {
  const allowed = allowedCpus();
  const taskset = findTool('taskset');
  if (noPin) return { pinned: false, note: 'unpinned (--no-pin)' };
  if (!taskset) return { pinned: false, note: 'unpinned: taskset not found' };
  if (allowed.length < 2)
    return { pinned: false, note: `unpinned: only ${allowed.length} CPU available` };
  const [loadCpu, serverCpu] = allowed as [number, number];
  const r = spawnSync(taskset, ['-a', '-p', '-c', String(loadCpu), String(process.pid)], {
    encoding: 'utf8',
  });
  if (r.status !== 0)
    return { pinned: false, note: `unpinned: taskset failed: ${(r.stderr ?? '').trim()}` };
  return {
    pinned: true,
    loadCpu,
    serverCpu,
    note: `the load generator (and this runner) on CPU ${loadCpu}, each server on CPU ${serverCpu}${
      allowed.length > 2 ? ` (of ${allowed.length} CPUs; the others idle)` : ''
    }`,
  };
}

// ---------------------------------------------------------------- CPU accounting from /proc

export { cpuSeconds, machineBusySeconds, selfCpuSeconds };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** SIGTERM a server child, SIGKILL after 5 s; resolves on 'close' (exited and its output drained). */
export async function stopChild(child: import('node:child_process').ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await closed;
  clearTimeout(t);
}

/** CPU the rest of the machine uses over `ms` (this runner excluded; call it while no server or generator runs). */
export async function otherLoad(ms: number): Promise<number | undefined> {
  const m0 = machineBusySeconds();
  const r0 = selfCpuSeconds();
  const t0 = performance.now();
  await sleep(ms);
  const m1 = machineBusySeconds();
  const wall = (performance.now() - t0) / 1000;
  if (m0 === undefined || m1 === undefined) return undefined;
  return Math.max(0, (m1 - m0 - (selfCpuSeconds() - r0)) / wall);
}

// ---------------------------------------------------------------- report

export const fmtInt = (x: number) => Math.round(x).toLocaleString('en-US');
export const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
export const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}%`;
export const cores = (x?: number) => (x === undefined ? 'n/a' : x.toFixed(2));

export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...rows.map(line)].join('\n');
}
