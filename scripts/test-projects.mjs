#!/usr/bin/env node
// The test suite's vitest projects (vitest.config.ts) in separate processes:
// `load` (the files that drive real load, one at a time) and `unit`
// (everything else, one file at a time) side by side, then `late` (the load
// files that compare two runs of one seed) alone once both are done. In one
// vitest process the projects run one after the other.
//
// The unit process runs at a lower CPU priority (nice 10, inherited by the
// servers its tests start): on a 2-core machine the load files' latency
// budgets and same-seed comparisons keep the CPU they need, and the unit
// files take what is left. Each line is prefixed with its project; the exit
// code is the worse of the two. Extra arguments go to both
// (`node scripts/test-projects.mjs -t name`).
import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';

const args = process.argv.slice(2);
const started = Date.now();
const UNIT_NICE = 10;

function run(project, extra, nice = 0) {
  const child = spawn(
    process.execPath,
    [
      'node_modules/vitest/vitest.mjs',
      'run',
      '--project',
      project,
      '--passWithNoTests',
      ...extra,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (nice && child.pid !== undefined)
    try {
      setPriority(child.pid, nice);
    } catch (e) {
      console.log(`[${project}] could not lower its priority (${e.message}): running at 0`);
    }
  for (const stream of [child.stdout, child.stderr])
    createInterface({ input: stream }).on('line', (l) => console.log(`[${project}] ${l}`));
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
  );
}

const [load, unit] = await Promise.all([
  run('load', []),
  run('unit', ['--maxWorkers', '1'], UNIT_NICE),
]);
const late = await run('late', []);
const took = ((Date.now() - started) / 1000).toFixed(0);
console.log(`\ntest projects: load exit ${load}, unit exit ${unit}, late exit ${late}; ${took} s`);
process.exit([load, unit, late].find((c) => c !== 0) ?? 0);
