// What an operator finds in the Temporal Web UI: runs by devflow's search attributes (the same
// list queries the UI's search box sends), with readable summaries.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../lib/wait.ts';
import { decisionSignal, runWorkflowId } from '../workflows/messages.ts';
import { useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness('fake');

async function listIds(query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const execution of h.client.workflow.list({ query })) ids.push(execution.workflowId);
  return ids;
}

describe('runs in the Temporal Web UI', () => {
  it('are findable by run id, state, template and repository, and carry summaries', async () => {
    const { runId, handle } = await h.start();
    const workflowId = runWorkflowId(runId);
    const status = await h.waitForGate(runId, 'spec_approved');
    await waitFor('the run listed as awaiting_approval', 20_000, async () =>
      (await listIds(`DevflowRunId = "${runId}" AND DevflowState = "awaiting_approval"`)).includes(workflowId));

    await handle.signal(decisionSignal, { approvalRequestId: status.pendingGate!.approvalRequestId, action: 'approve', clientToken: 'ui' });
    await handle.result();
    await waitFor('the run listed as completed', 20_000, async () =>
      (await listIds(`DevflowRunId = "${runId}" AND DevflowState = "completed"`)).includes(workflowId));
    const { run } = await h.snapshot(runId);
    expect(await listIds(`DevflowTemplate = "development@1" AND DevflowRepo = "${run.repoPath}"`)).toEqual([workflowId]);

    const described = await handle.describe();
    expect(await described.staticSummary()).toBe(`devflow run ${runId} (development@1)`);
    const history = await handle.fetchHistory();
    const summaries = history.events!
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => JSON.parse(Buffer.from(e.userMetadata!.summary!.data!).toString()) as string);
    expect(summaries).toEqual(expect.arrayContaining(['create the run, its phases and its worktree', 'spec: wait for dev/spec@1, validate, record', 'review: ready a fake session for reviewer and send it the initial prompt']));
  });
});
