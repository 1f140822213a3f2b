import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    // One Postgres and one Temporal dev server for the whole run (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    // The Temporal worker's native bridge needs process isolation, not threads.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
