// Ten runs at once on this machine, each with its scripted agents in real tmux panes: every one
// completes, and none stops at a gate for a person (prompt delivery, agent starts and artifact
// waits hold up under the load); the only gate met is each run's own approval gate.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../lib/wait.ts';
import { decisionSignal, runWorkflowId, type RunStatus } from '../workflows/messages.ts';
import { useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness('scripted');
const RUNS = 10;

describe('under load', () => {
  it(`completes ${RUNS} runs at once with no gate for a person`, async () => {
    const timing = { stabilityMs: 200, pollMs: 100 }; // the default artifact timeout: load must not look like a hang
    const started = await Promise.all(Array.from({ length: RUNS }, () => h.start({ timing })));
    await Promise.all(
      started.map(async ({ runId }) => {
        let gate: RunStatus['pendingGate'];
        await waitFor(`run ${runId} at its gate`, 180_000, async () => (gate = (await h.status(runId)).pendingGate) !== null, 200);
        expect(gate!.gateKey, runId).toBe('spec_approved');
        await h.client.workflow.getHandle(runWorkflowId(runId)).signal(decisionSignal, { approvalRequestId: gate!.approvalRequestId, action: 'approve', clientToken: 'load' });
      }),
    );
    const outcomes = await Promise.all(started.map(({ handle }) => handle.result()));
    expect(outcomes.map((o) => o.state)).toEqual(Array(RUNS).fill('completed'));
    for (const { runId } of started) {
      const snap = await h.snapshot(runId);
      expect(snap.approvals.map((a) => [a.gateKey, a.state]), runId).toEqual([['spec_approved', 'approved']]);
      expect(snap.phases.map((p) => [p.state, p.attempts]), runId).toEqual([['completed', 1], ['completed', 1], ['completed', 1]]);
    }
  }, 300_000);
});
