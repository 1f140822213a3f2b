import { randomUUID } from 'node:crypto';
import { afterAll, inject } from 'vitest';
import { connectDatabase, type DatabaseHandle } from '../../db/client.ts';
import { createRun } from '../../db/runs.ts';

/** A connection pool to the suite's Postgres, closed after the file. */
export function useDatabase(max = 5): DatabaseHandle {
  const handle = connectDatabase(inject('databaseUrl'), { max });
  afterAll(() => handle.close());
  return handle;
}

/** A fresh `development@1` run in `planning`; each test uses its own so tests never collide. */
export async function newRun(handle: DatabaseHandle) {
  const { run } = await createRun(handle.db, {
    id: randomUUID(),
    templateId: 'development@1',
    repoPath: '/tmp/repo',
    baseBranch: 'main',
    requirementsMd: '# Requirements\n',
  });
  return run;
}
