// The stack self-check: one activity that writes to Postgres, run on the real worker.
// `devflow up` runs it once at start to prove Temporal, the worker and Postgres work together.
import { proxyActivities } from '@temporalio/workflow';
import type { StackCheckActivities } from '../activities/stack-check.ts';

const { recordStackCheck } = proxyActivities<StackCheckActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second' },
  summary: 'write a stack check row to Postgres',
});

export async function stackCheckWorkflow(checkId: string): Promise<{ checkId: string; workerIdentity: string }> {
  return recordStackCheck(checkId);
}
