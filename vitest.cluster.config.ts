import { defineConfig } from 'vitest/config';

// Cluster and Sentinel suites start 6 (or 5) redis-server processes each, so they run apart
// from the main suite, one file at a time.
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
