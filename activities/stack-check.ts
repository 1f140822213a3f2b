import os from 'node:os';
import { eq } from 'drizzle-orm';
import type { Database } from '../db/client.ts';
import { stackChecks } from '../db/schema.ts';

export function createStackCheckActivities(deps: { db: Database }) {
  const workerIdentity = `${os.hostname()}:${process.pid}`;
  return {
    /** Idempotent: a retry after a crash finds the row written by the first attempt. */
    async recordStackCheck(checkId: string): Promise<{ checkId: string; workerIdentity: string }> {
      await deps.db.insert(stackChecks).values({ id: checkId, workerIdentity }).onConflictDoNothing();
      const [row] = await deps.db.select().from(stackChecks).where(eq(stackChecks.id, checkId));
      return { checkId, workerIdentity: row!.workerIdentity };
    },
  };
}

export type StackCheckActivities = ReturnType<typeof createStackCheckActivities>;
