import { describe, expect, it } from 'vitest';
import { decisionSignal } from '../workflows/messages.ts';
import { useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness();

describe('happy path', () => {
  it('runs', async () => {
    const { runId, handle } = await h.start();
    const status = await h.waitForGate(runId, 'spec_approved');
    await handle.signal(decisionSignal, { approvalRequestId: status.pendingGate!.approvalRequestId, action: 'approve', clientToken: 't1' });
    const outcome = await handle.result();
    const snap = await h.snapshot(runId);
    console.log(outcome, snap.events, snap.phases.map((p) => [p.phaseKey, p.state, p.attempts]));
    expect(outcome.state).toBe('completed');
  });
});
