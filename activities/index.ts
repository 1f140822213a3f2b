// Activities get their dependencies here; the worker (and tests) pass them in.
import type { Database } from '../db/client.ts';
import { createStackCheckActivities } from './stack-check.ts';

export interface ActivityDeps {
  db: Database;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createStackCheckActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
