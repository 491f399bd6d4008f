// The flashcrowd CLI as a user runs it, for the end-to-end tests: a child
// process (vitest's own event loop stays free), its stdout and stderr in one
// log for failure messages, SIGINT after `timeoutMs` so a stuck run still
// ends (and writes its reports, as an interrupted run does).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'flashcrowd.js');

export async function runCli(
  args: string[],
  o: { timeoutMs?: number; bin?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; log: string }> {
  const child = spawn(process.execPath, [o.bin ?? BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(o.cwd ? { cwd: o.cwd } : {}),
    env: o.env ?? process.env,
  });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const t = setTimeout(() => child.kill('SIGINT'), o.timeoutMs ?? 240_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(t);
  return { code, log };
}

/**
 * Half of the presets' `ci` time-scale (0.0166667): 10 s of traffic and a 7.5 s payment TTL, a
 * run in about 21 s instead of 40. The end-to-end tests run at it where what they check holds at
 * both scales (the phenomenon matrix, test/phenomena.test.ts, holds at both); `--ci` keeps the
 * presets' load-scale.
 */
export const HALF_CI_TIME_SCALE = 0.00833;
export const HALF_CI = ['--ci', '--time-scale', String(HALF_CI_TIME_SCALE)];

/** Pids of the processes whose environment holds `mark` (readable ones: this user's). */
export function processesMarked(mark: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').includes(mark)) pids.push(Number(d));
    } catch {
      /* gone, or another user's */
    }
  }
  return pids;
}
