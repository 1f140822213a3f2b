import { defineConfig } from 'drizzle-kit';

// Only used by `npm run db:generate`; migrations are applied by db/migrate.ts at start.
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema.ts',
  out: './db/migrations',
});
