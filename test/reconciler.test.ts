// Stranded runs against the real dev server, Postgres and tmux: a run whose workflow was
// terminated mid-phase (as from the Web UI) is settled failed with a report and no agent left;
// a run whose workflow never started is settled; running runs are left alone; sweeping again
// changes nothing.
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createFinalizeActivities } from '../activities/finalize.ts';
import { listEvents } from '../db/events.ts';
import { createRun } from '../db/runs.ts';
import { processAlive } from '../lib/processes.ts';
import { waitFor } from '../lib/wait.ts';
import { tmuxSessionName } from '../sessions/tmux.ts';
import { Reconciler } from '../worker/reconciler.ts';
import { makeRepo, useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness('scripted');

function reconciler(planningGraceMs = 600_000) {
  const deps = { db: h.db, drivers: h.drivers, workspaceRoot: h.workspaceRoot, hostId: h.hostId, hostQueue: `devflow-host:${h.hostId}` };
  return new Reconciler({ db: h.db, client: h.client, hostId: h.hostId, finalize: createFinalizeActivities(deps), graceMs: 0, planningGraceMs });
}

async function midPhase() {
  const started = await h.start({ scenarios: { spec: 'timeout' }, timing: { ...h.timing, artifactTimeoutMs: 120_000 } });
  await waitFor('the spec prompt', 30_000, async () => (await h.snapshot(started.runId)).events.includes('artifact.expected'), 50);
  return started;
}

describe('the reconciler', () => {
  it('settles a run whose workflow was terminated mid-phase: failed with the reason, a report, its agent gone', async () => {
    const { runId, handle } = await midPhase();
    const [session] = (await h.snapshot(runId)).sessions;
    expect(processAlive(session!.lastKnownPanePid!)).toBe(true);
    const waiting = await h.start();
    await h.waitForGate(waiting.runId, 'spec_approved');

    await handle.terminate('terminated by hand in the Web UI');
    const swept = await reconciler().sweep();
    // (Other files share the database: a run row of theirs whose workflow never started may be settled in the same sweep.)
    expect(swept.settled.filter((s) => s.runId === runId || s.runId === waiting.runId)).toEqual([{ runId, workflow: 'TERMINATED', outcome: { state: 'failed', reason: expect.stringContaining('was terminated') } }]);

    const snap = await h.snapshot(runId);
    expect(snap.run).toMatchObject({ state: 'failed', finalReportPath: expect.any(String) });
    expect(existsSync(snap.run.finalReportPath!)).toBe(true);
    expect(snap.phases.map((p) => p.state)).toEqual(['failed', 'pending', 'pending']);
    expect(snap.sessions.map((s) => s.state)).toEqual(['CLOSED']);
    expect(snap.events.slice(-4)).toEqual(['phase.failed', 'run.failed', 'session.closed', 'report.written']);
    expect((await listEvents(h.db, runId)).find((e) => e.type === 'run.failed')?.payload).toMatchObject({ reason: expect.stringMatching(/^stranded: its workflow was terminated/) });
    await waitFor('the agent to be gone', 10_000, async () => !processAlive(session!.lastKnownPanePid!), 50);
    expect(await h.tmux!.sessionNames()).not.toContain(tmuxSessionName(runId));

    // The run still going is left alone, and a second sweep writes nothing.
    expect((await h.snapshot(waiting.runId)).run.state).toBe('awaiting_approval');
    const events = await listEvents(h.db, runId);
    expect((await reconciler().sweep()).settled.filter((s) => s.runId === runId || s.runId === waiting.runId)).toEqual([]);
    expect(await listEvents(h.db, runId)).toEqual(events);
  });

  it('settles a planning run whose workflow never started, once its start had time to be retried', async () => {
    const runId = randomUUID();
    await createRun(h.db, { id: runId, templateId: 'development@1', repoPath: makeRepo(h.root), baseBranch: 'main', requirementsMd: '# Never started\n' });
    expect((await reconciler().sweep()).settled.map((s) => s.runId)).not.toContain(runId);
    expect((await h.snapshot(runId)).run.state).toBe('planning');

    const swept = await reconciler(0).sweep();
    expect(swept.settled.filter((s) => s.runId === runId)).toEqual([{ runId, workflow: 'NOT_FOUND', outcome: { state: 'failed', reason: expect.stringContaining('does not exist') } }]);
    const snap = await h.snapshot(runId);
    expect(snap.run.state).toBe('failed');
    expect(existsSync(snap.run.finalReportPath!)).toBe(true);
  });
});
