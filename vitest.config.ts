import { defineConfig } from 'vitest/config';

// Whole-system tests (test/system/**) share one local control plane per run and each uses its
// own namespace; they run one file at a time (fileParallelism off) so that 2 cores suffice.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Node 20 lacks Promise.withResolvers, which nock 15 needs (see test/support/node20.ts).
    setupFiles: ['test/support/node20.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
});
