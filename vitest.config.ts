import { defineConfig } from 'vitest/config';

/**
 * Test files that drive real load (a whole `flashcrowd run`, or the load engine
 * at a rate): they run one at a time, because two of them at once on a 2-core
 * machine starve each other's engine and checkout, and a capacity budget
 * (dropped_iterations==0, checkout.p99_ms) then fails for the machine's sake.
 * The other files (`unit`) run beside them, one at a time: `npm test` runs
 * the projects in separate vitest processes (scripts/test-projects.mjs, the
 * unit one at a lower CPU priority), because in one process vitest 4 runs
 * projects one after the other. The fuzzer and the Prometheus scrape load a
 * stack too, but judge no latency or capacity budget: they are unit files.
 */
const LOAD = [
  'test/run.test.ts',
  'test/run-cluster.test.ts',
  'test/run-reset.test.ts',
  'test/presets-promise.test.ts',
  'test/run-mutants.test.ts',
  'test/idempotency-verdict.test.ts',
  'test/compose.test.ts',
  'test/k8s-local.test.ts',
  'test/engine-http.test.ts',
  'test/scenario-livestream.test.ts',
  'test/multihost-netns.test.ts',
];

/**
 * Load files that compare two runs of one seed (exact audit and fault counts,
 * latencies within a factor): `npm test` runs them once `load` and `unit` are
 * both done, with the machine to themselves. Beside the unit files, even at
 * a lower priority, a naive retry storm retried more than its repeat (755
 * against 835 bank calls, fresh clone 05:33) and a stage's p99 moved 169
 * against 17 ms (06:20).
 */
const LATE = ['test/reproducibility.test.ts', 'test/phenomena.test.ts'];

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
      { test: { ...shared, name: 'late', include: LATE, fileParallelism: false } },
      {
        test: {
          ...shared,
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [...LOAD, ...LATE],
        },
      },
    ],
  },
});
