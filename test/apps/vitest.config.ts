import { defineConfig } from 'vitest/config';
export default defineConfig({ test: { include: ['test/apps/**/*.test.ts'], fileParallelism: false, testTimeout: 60_000, hookTimeout: 60_000, pool: 'forks' } });
