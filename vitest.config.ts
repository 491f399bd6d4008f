import { defineConfig } from 'vitest/config';

/**
 * Test files that drive real load (a whole `flashcrowd run`, or the load engine
 * at a rate): they run one at a time, because two of them at once on a 2-core
 * machine starve each other's engine and checkout, and a capacity budget
 * (dropped_iterations==0, checkout.p99_ms) then fails for the machine's sake.
 * The other files run beside them, one at a time: `npm test` runs the two
 * projects in two vitest processes at once (scripts/test-projects.mjs, the
 * unit one at a lower CPU priority), because in one process vitest 4 runs
 * them mostly one after the other. The fuzzer and the Prometheus scrape load
 * a stack too, but judge no latency or capacity budget: they run as unit files.
 */
const LOAD = [
  'test/run.test.ts',
  'test/run-cluster.test.ts',
  'test/reproducibility.test.ts',
  'test/run-reset.test.ts',
  'test/presets-promise.test.ts',
  'test/run-mutants.test.ts',
  'test/idempotency-verdict.test.ts',
  'test/compose.test.ts',
  'test/k8s-local.test.ts',
  'test/engine-http.test.ts',
  'test/scenario-livestream.test.ts',
  'test/phenomena.test.ts',
  'test/multihost-netns.test.ts',
];

const shared = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    // Tests start real servers on loopback; two workers match the 2-core machines we run on.
    maxWorkers: 2,
    reporters: ['default', './test/support/count-reporter.ts'],
    projects: [
      { test: { ...shared, name: 'load', include: LOAD, fileParallelism: false } },
      { test: { ...shared, name: 'unit', include: ['test/**/*.test.ts'], exclude: LOAD } },
    ],
  },
});
