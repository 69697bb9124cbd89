import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Shaders live in shaders/ and are pulled in with import.meta.glob(..., { query: '?raw' }).
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Software GPU drivers use every core: running test files one at a time is faster and keeps memory bounded.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
