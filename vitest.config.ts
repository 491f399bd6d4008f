import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real servers on loopback; two workers match the 2-core machines we run on.
    maxWorkers: 2,
    reporters: ['default', './test/support/count-reporter.ts'],
  },
});
