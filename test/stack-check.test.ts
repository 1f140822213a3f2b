// A real workflow on the suite's Temporal dev server whose activity writes to Postgres.
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stackChecks } from '../db/schema.ts';
import { createDevflowWorkers, WORKFLOWS_PATH } from '../worker/worker.ts';
import { stackCheckWorkflow } from '../workflows/stack-check.ts';
import { sessionDrivers } from '../sessions/index.ts';
import { useDatabase } from './helpers/database.ts';

const { db } = useDatabase();
let bundle: WorkflowBundleWithSourceMap;
let nativeConnection: NativeConnection;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never });
  nativeConnection = await NativeConnection.connect({ address: inject('temporalAddress') });
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
});
afterAll(async () => {
  await connection?.close();
  await nativeConnection?.close();
});

describe('stack check workflow', () => {
  it('runs on a real worker and writes its row to Postgres, once', async () => {
    const taskQueue = `stack-check-${randomUUID()}`;
    const workers = await createDevflowWorkers({
      connection: nativeConnection, namespace: 'default', taskQueue, workflowBundle: bundle, identity: 'test-worker',
      deps: { db, drivers: sessionDrivers({}), workspaceRoot: '/nonexistent', hostId: 'stack-check', hostQueue: `${taskQueue}-host` },
    });
    const checkId = `check-${randomUUID()}`;

    const running = workers.run();
    const result = await (async () => {
      const first = await client.workflow.execute(stackCheckWorkflow, { workflowId: `devflow-stack-check:${checkId}`, taskQueue, args: [checkId] });
      // The same check again (a retried activity would do this) finds the first row.
      const second = await client.workflow.execute(stackCheckWorkflow, { workflowId: `devflow-stack-check:${checkId}:again`, taskQueue, args: [checkId] });
      return { first, second };
    })().finally(async () => {
      workers.shutdown();
      await running;
    });

    expect(result.first).toEqual({ checkId, workerIdentity: expect.stringMatching(/:\d+$/) });
    expect(result.second).toEqual(result.first);
    const rows = await db.select().from(stackChecks).where(eq(stackChecks.id, checkId));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.workerIdentity).toBe(result.first.workerIdentity);

    const history = await client.workflow.getHandle(`devflow-stack-check:${checkId}`).fetchHistory();
    const scheduled = history.events!.filter((e) => e.activityTaskScheduledEventAttributes);
    expect(scheduled.map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name)).toEqual(['recordStackCheck']);
  });
});
