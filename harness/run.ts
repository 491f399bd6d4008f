// `flashcrowd run`: the command lives in harness/run/, one stage a module
// (harness/run/index.ts lists them in order). This file keeps the imports of
// harness/run.ts working.
export { runCommand } from './run/index.ts';
export type { RunOptions } from './run/options.ts';
export { bandsOf } from './run/chaos.ts';
export { engineFactory, trafficCheck } from './run/load.ts';
export { computeMetrics } from './run/metrics.ts';
