import type { DatabaseHandle } from './client.ts';
import { applyMigrations } from './migrate.ts';
import { syncRegistries } from './registries.ts';

/** Everything a devflow process needs from the database before it serves: schema and registries. */
export async function prepareDatabase(handle: DatabaseHandle, options: { definitionsDir?: string } = {}) {
  await applyMigrations(handle);
  return syncRegistries(handle.db, { ...(options.definitionsDir ? { userRoot: options.definitionsDir } : {}) });
}
