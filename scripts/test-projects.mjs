#!/usr/bin/env node
// The test suite's two vitest projects (vitest.config.ts) in two processes at
// once: `load` (the files that drive real load, one at a time) and `unit`
// (everything else, one file at a time beside them). In one vitest process
// the two projects share one pool and vitest 4 mostly runs them one after the
// other; side by side the load files are the suite's critical path alone.
// Each line is prefixed with its project; the exit code is the worse of the
// two. Extra arguments go to both (`node scripts/test-projects.mjs -t name`).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const args = process.argv.slice(2);
const started = Date.now();

function run(project, extra) {
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
  for (const stream of [child.stdout, child.stderr])
    createInterface({ input: stream }).on('line', (l) => console.log(`[${project}] ${l}`));
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
  );
}

const [load, unit] = await Promise.all([run('load', []), run('unit', ['--maxWorkers', '1'])]);
const took = ((Date.now() - started) / 1000).toFixed(0);
console.log(`\ntest projects: load exit ${load}, unit exit ${unit}; ${took} s`);
process.exit(load !== 0 ? load : unit);
