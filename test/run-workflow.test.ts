// The run workflow's scenario matrix, on the real Temporal dev server and Postgres, with the
// fake session backend. Each test checks states, events in order, approval rows and the report.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { tuiSessions } from '../db/schema.ts';
import { listEventsOfTypes } from '../db/events.ts';
import { sessionFlags, sessionStops, STOP_EVENT_TYPES } from '../db/stops.ts';
import { DevflowError } from '../lib/errors.ts';
import { waitFor } from '../lib/wait.ts';
import { abortSignal, decisionSignal, runWorkflowId, sessionLostSignal, type Decision } from '../workflows/messages.ts';
import { RUN_STATE } from '../workflows/search-attributes.ts';
import { CANCELLED_FROM_TEMPORAL } from '../workflows/run.ts';
import { syncRegistries } from '../db/registries.ts';
import { BUILT_IN } from '../schemas/definitions.ts';
import { templateVariant } from './helpers/definitions.ts';
import { recordHistory } from './helpers/histories.ts';
import { killProcessGroup, tmuxSessionName } from '../sessions/tmux.ts';
import { failLostSession } from '../sessions/lifecycle.ts';
import { SessionManager } from '../worker/session-manager.ts';
import { makeRepo, useRunHarness, type HarnessBackend, type RunHarness } from './helpers/run-harness.ts';

/** `expected` appears in `events` in this order (other events may come between). */
function expectInOrder(events: string[], expected: string[]): void {
  let from = 0;
  for (const type of expected) {
    const at = events.indexOf(type, from);
    expect(at, `${type} after position ${from} in ${events.join(' ')}`).toBeGreaterThanOrEqual(0);
    from = at + 1;
  }
}

/** Every approval row has its `approval.requested` event, and a decided or closed one its `approval.decided` / `approval.closed`. */
async function expectApprovalsRecorded(harness: RunHarness, runId: string): Promise<void> {
  const requests = await harness.db.query.approvalRequests.findMany({ where: (r, { eq }) => eq(r.runId, runId) });
  const events = await harness.db.query.runEvents.findMany({ where: (e, { eq }) => eq(e.runId, runId) });
  const of = (type: string, id: string) => events.filter((e) => e.type === type && (e.payload as { approvalRequestId?: string }).approvalRequestId === id);
  expect(requests.length).toBeGreaterThan(0);
  for (const request of requests) {
    expect(of('approval.requested', request.id), `approval.requested for ${request.gateKey}`).toHaveLength(1);
    const ending = request.state === 'closed' ? 'approval.closed' : 'approval.decided';
    expect(of(ending, request.id), `${ending} for ${request.gateKey} (${request.state})`).toHaveLength(request.state === 'pending' ? 0 : 1);
  }
}

function expectGapless(seqs: number[]): void {
  expect(seqs).toEqual(seqs.map((_, i) => i + 1));
}

async function decide(harness: RunHarness, runId: string, gateKey: string, action: Decision['action'], extra: Partial<Decision> = {}) {
  const status = await harness.waitForGate(runId, gateKey);
  const decision: Decision = { approvalRequestId: status.pendingGate!.approvalRequestId, action, clientToken: `${action}-${gateKey}`, ...extra };
  await harness.client.workflow.getHandle(runWorkflowId(runId)).signal(decisionSignal, decision);
  return status;
}

function report(snapshot: { run: { finalReportPath: string | null } }): string {
  expect(snapshot.run.finalReportPath).toBeTruthy();
  return readFileSync(snapshot.run.finalReportPath!, 'utf8');
}

const PHASE_EVENTS = ['phase.started', 'session.busy', 'prompt.delivering', 'prompt.sent', 'artifact.expected', 'artifact.validated'];

describe.each(['fake', 'scripted'] as HarnessBackend[])('run workflow, %s backend', (backend) => {
  const h = useRunHarness(backend, { deps: { agentStartPauseMs: 100 } });
  const record = (handle: Parameters<typeof recordHistory>[0], name: string) => (backend === 'fake' ? recordHistory(handle, name) : Promise.resolve());

  it('walks spec -> gate -> implement -> review to completed', async () => {
    const { runId, handle } = await h.start();
    const atGate = await h.waitForGate(runId, 'spec_approved');
    expect(atGate).toMatchObject({ state: 'awaiting_approval', phaseKey: 'spec', attempt: 1, pendingGate: { kind: 'approval', phaseKey: 'spec' } });
    const waiting = await h.snapshot(runId);
    expect(waiting.run.state).toBe('awaiting_approval');
    expect(waiting.phases.map((p) => p.state)).toEqual(['awaiting_approval', 'pending', 'pending']);
    // While a person decides, the implementer's agent is started, so approving does not wait for it.
    expect(waiting.sessions.map((s) => [s.roleId, s.state])).toEqual([['spec_writer', 'WAITING_FOR_APPROVAL'], ['implementer', 'READY']]);
    expect(waiting.approvals).toMatchObject([{ gateKey: 'spec_approved', state: 'pending' }]);

    await decide(h, runId, 'spec_approved', 'approve', { comment: 'ship it', decidedBy: 'alice' });
    expect(await handle.result()).toEqual({ state: 'completed', reason: 'every phase completed' });
    await record(handle, 'happy-path');

    const done = await h.snapshot(runId);
    expect(done.run).toMatchObject({ state: 'completed', pausedFromState: null });
    expect(done.run.endedAt).toBeInstanceOf(Date);
    expect(done.phases.map((p) => [p.phaseKey, p.state, p.attempts])).toEqual([['spec', 'completed', 1], ['implement', 'completed', 1], ['review', 'completed', 1]]);
    // The run ended: every agent was disposed and its session closed.
    expect(done.sessions.map((s) => [s.roleId, s.state])).toEqual([['spec_writer', 'CLOSED'], ['implementer', 'CLOSED'], ['reviewer', 'CLOSED']]);
    expect(done.approvals).toMatchObject([{ gateKey: 'spec_approved', state: 'approved' }]);
    expect(done.decisions).toMatchObject([{ action: 'approve', comment: 'ship it', decidedBy: 'alice' }]);
    const session = ['session.created', 'session.bootstrapping', 'session.ready'];
    // A phase starts, then its step readies the agent and prompts it; the implementer's was started at the spec gate.
    const [started, ...prompted] = PHASE_EVENTS;
    expect(done.events).toEqual([
      'run.created', 'run.started',
      started, ...session, ...prompted,
      'phase.awaiting_approval', 'session.waiting', 'run.awaiting_approval', 'approval.requested', ...session, 'approval.decided',
      'phase.completed', 'session.idle', 'run.resumed',
      ...PHASE_EVENTS, 'phase.completed', 'session.idle',
      started, ...session, ...prompted, 'phase.completed', 'session.idle',
      'run.completed', 'session.closed', 'session.closed', 'session.closed', 'report.written',
    ]);
    expectGapless(done.seqs);
    await expectApprovalsRecorded(h, runId);
    // The state attribute is written when the state changes: planning, executing, awaiting_approval, executing, completed.
    const upserts = (await handle.fetchHistory()).events!.filter((e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.DevflowState);
    expect(upserts).toHaveLength(5);

    const worktree = path.join(h.workspaceRoot, runId, 'main');
    expect(execFileSync('git', ['-C', worktree, 'rev-parse', '--abbrev-ref', 'HEAD']).toString().trim()).toBe(`devflow/${runId}`);
    expect(readFileSync(path.join(worktree, '.devflow', 'requirements.md'), 'utf8')).toBe('# Greeting\n\nPrint hello.\n');
    expect(existsSync(path.join(worktree, '.devflow', 'artifacts', 'review.json'))).toBe(true);

    const text = report(done);
    expect(done.run.finalReportPath).toBe(path.join(h.workspaceRoot, `${runId}.report.md`));
    expect(text).toContain('**Outcome:** completed — every phase completed');
    expect(text).toContain('> Print hello.');
    expect(text).toMatch(/\| 1 \| spec \| spec_writer \| completed \| 1 \|/);
    expect(text).toMatch(/\| spec_approved \| approval \| spec \| .* \| approved \| approve \| alice \| .* \| ship it \|/);
    expect(text).toMatch(/dev\/review@1 \| [0-9a-f]{16} \| yes/);

    const described = await handle.describe();
    expect(described.typedSearchAttributes.get(RUN_STATE)).toBe('completed');
    expect(await h.status(runId)).toMatchObject({ state: 'completed', pendingGate: null });
    if (h.tmux) expect(await h.tmux.sessionNames()).not.toContain(tmuxSessionName(runId));
    const transcripts = await h.db.query.tuiTranscripts.findMany({ where: (t, { eq }) => eq(t.sessionId, done.sessions[0]!.id) });
    expect(transcripts.map((t) => t.chunk).join('')).toMatch(/received initial prompt/);
  });

  it('sends the work back once when review requests changes (development@2), its findings quoted, then completes', async () => {
    const { runId, handle } = await h.start({ templateId: 'development@2', scenarios: { review: ['request_changes', 'ok'] } });
    await decide(h, runId, 'spec_approved', 'approve');
    expect(await handle.result()).toEqual({ state: 'completed', reason: 'every phase completed' });
    await record(handle, 'review-loop');

    const done = await h.snapshot(runId);
    // implement and review ran twice; attempts count on across the rounds.
    expect(done.phases.map((p) => [p.phaseKey, p.state, p.attempts])).toEqual([['spec', 'completed', 1], ['implement', 'completed', 2], ['review', 'completed', 2]]);
    expect(done.approvals.map((a) => a.gateKey)).toEqual(['spec_approved']);
    const events = await h.db.query.runEvents.findMany({ where: (e, { eq }) => eq(e.runId, runId), orderBy: (e, { asc }) => asc(e.seq) });
    const looped = events.filter((e) => e.type === 'phase.looped');
    expect(looped.map((e) => e.payload)).toEqual([
      expect.objectContaining({ fromPhase: 'review', toPhase: 'implement', round: 1, maxRounds: 2, field: 'verdict', equals: 'request_changes', quoted: 'findings', value: [{ severity: 'info', message: 'Nothing to report.' }] }),
    ]);
    const phaseOf = new Map(done.phases.map((p) => [p.id, p.phaseKey]));
    const path_ = events.filter((e) => e.type === 'phase.completed' || e.type === 'phase.looped').map((e) => `${e.type}:${phaseOf.get(e.phaseId!)}`);
    expect(path_).toEqual(['phase.completed:spec', 'phase.completed:implement', 'phase.completed:review', 'phase.looped:review', 'phase.completed:implement', 'phase.completed:review']);
    expectGapless(done.seqs);

    // The implementer's second prompt is a revision that quotes the review's findings.
    const implementer = done.sessions.find((s) => s.roleId === 'implementer')!;
    const prompts = h.prompts(runId, 'implementer', implementer.id);
    expect(prompts).toHaveLength(2);
    expect(prompts[0]).toContain('Kind: initial');
    expect(prompts[1]).toContain('Kind: revise');
    expect(prompts[1]).toContain('## Changes requested (round 1, by review)');
    expect(prompts[1]).toMatch(/findings:\n\[\n {2}\{\n {4}"severity": "info",\n {4}"message": "Nothing to report\."/);
    // Its instructions quote the spec's title from the spec artifact.
    expect(prompts[0]).toContain('Implement the approved specification (Scripted specification) at');

    const text = report(done);
    expect(text).toContain('## Rounds');
    expect(text).toMatch(/\| 1 of 2 \| review \| implement \| verdict = "request_changes" \| findings: \[\{.*"Nothing to report\.".*\}\] \|/);
    expect(text).toMatch(/\| 2 \| implement \| implementer \| completed \| 2 \|/);
  });

  it('stops at review_rounds_exhausted after two request_changes with maxRounds 1; approving goes on to the end', async () => {
    const development2 = JSON.parse(readFileSync(path.join(BUILT_IN.templates, 'development@2.json'), 'utf8'));
    const variant = await templateVariant(h.root, development2, (t) => {
      t.phases[2].loop.maxRounds = 1;
    });
    const synced = await syncRegistries(h.db, { userRoot: variant.root });
    expect(synced.problems).toEqual([]);
    const { runId, handle } = await h.start({ templateId: variant.id, scenarios: { review: ['request_changes', 'request_changes'] } });
    await decide(h, runId, 'spec_approved', 'approve');
    const atGate = await h.waitForGate(runId, 'review_rounds_exhausted');
    expect(atGate).toMatchObject({ state: 'awaiting_approval', phaseKey: 'review', attempt: 2, pendingGate: { kind: 'approval', phaseKey: 'review' } });
    const waiting = await h.snapshot(runId);
    expect(waiting.phases.map((p) => [p.phaseKey, p.state, p.attempts])).toEqual([['spec', 'completed', 1], ['implement', 'completed', 2], ['review', 'awaiting_approval', 2]]);
    const gate = waiting.approvals.find((a) => a.gateKey === 'review_rounds_exhausted')!;
    expect(gate).toMatchObject({ state: 'pending', payload: { kind: 'approval', attempt: 2 } });
    expect((gate.payload as { reason: string }).reason).toBe('review said verdict = "request_changes" again after 1 round(s) back to implement; the template allows 1');
    expect(waiting.events.filter((e) => e === 'phase.looped')).toHaveLength(1);

    await decide(h, runId, 'review_rounds_exhausted', 'approve', { comment: 'good enough', decidedBy: 'bob' });
    expect(await handle.result()).toEqual({ state: 'completed', reason: 'every phase completed' });
    await record(handle, 'rounds-exhausted');
    const done = await h.snapshot(runId);
    expect(done.phases.map((p) => p.state)).toEqual(['completed', 'completed', 'completed']);
    const text = report(done);
    expect(text).toMatch(/\| 1 of 1 \| review \| implement \|/);
    expect(text).toMatch(/\| review_rounds_exhausted \| approval \| review \| .* \| approved \| approve \| bob \| .* \| good enough \|/);
  });

  it('ends failed when the spec gate is rejected', async () => {
    const { runId, handle } = await h.start();
    await decide(h, runId, 'spec_approved', 'reject', { comment: 'not this' });
    expect(await handle.result()).toEqual({ state: 'failed', reason: 'rejected at gate spec_approved at phase spec' });
    const snap = await h.snapshot(runId);
    expect(snap.phases.map((p) => p.state)).toEqual(['failed', 'pending', 'pending']);
    expect(snap.approvals).toMatchObject([{ state: 'rejected' }]);
    // The implementer's agent, started while the gate waited, is closed with the spec writer's.
    expect(snap.sessions.map((s) => [s.roleId, s.state])).toEqual([['spec_writer', 'CLOSED'], ['implementer', 'CLOSED']]);
    expect(snap.events.slice(-7)).toEqual(['session.ready', 'approval.decided', 'phase.failed', 'run.failed', 'session.closed', 'session.closed', 'report.written']);
    expect(report(snap)).toContain('**Outcome:** failed — rejected at gate spec_approved');
  });

  it('ends aborted when the spec gate is aborted', async () => {
    const { runId, handle } = await h.start();
    await decide(h, runId, 'spec_approved', 'abort');
    expect((await handle.result()).state).toBe('aborted');
    const snap = await h.snapshot(runId);
    expect(snap.run.state).toBe('aborted');
    expect(snap.approvals).toMatchObject([{ state: 'aborted' }]);
    expect(snap.events.slice(-6)).toEqual(['approval.decided', 'phase.failed', 'run.aborted', 'session.closed', 'session.closed', 'report.written']);
    expect(report(snap)).toContain('**Outcome:** aborted — aborted at gate spec_approved');
  });

  it('ends aborted when the run is cancelled from Temporal (its Web UI or CLI), the cancellation its reason', async () => {
    const { runId, handle } = await h.start();
    await h.waitForGate(runId, 'spec_approved');
    await handle.cancel();
    expect(await handle.result()).toEqual({ state: 'aborted', reason: CANCELLED_FROM_TEMPORAL });
    await record(handle, 'cancelled-from-temporal');
    const snap = await h.snapshot(runId);
    expect(snap.run.state).toBe('aborted');
    expect(snap.approvals).toMatchObject([{ gateKey: 'spec_approved', state: 'closed' }]);
    expect(snap.sessions.map((s) => s.state)).toEqual(['CLOSED', 'CLOSED']);
    expect(snap.events.slice(-4)).toEqual(['run.aborted', 'session.closed', 'session.closed', 'report.written']);
    expect(report(snap)).toContain(`**Outcome:** aborted — ${CANCELLED_FROM_TEMPORAL}`);
    expect((await handle.describe()).typedSearchAttributes.get(RUN_STATE)).toBe('aborted');
  });

  it('aborts within 2 s while an artifact is awaited, cancelling the wait', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: 'timeout' }, timing: { ...h.timing, artifactTimeoutMs: 60_000 } });
    await waitFor('the settleArtifact activity to be running', 20_000, async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      return pending.some((a) => a.activityType?.name === 'settleArtifact' && Number(a.attempt) >= 1 && a.lastStartedTime);
    }, 50);
    const signalled = Date.now();
    await handle.signal(abortSignal, { clientToken: 'stop', reason: 'changed my mind' });
    expect(await handle.result()).toEqual({ state: 'aborted', reason: 'changed my mind' });
    expect(Date.now() - signalled).toBeLessThan(2_000);
    await record(handle, 'abort-while-awaiting-artifact');

    const history = await handle.fetchHistory();
    const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'settleArtifact')!;
    const canceled = history.events!.find((e) => e.activityTaskCanceledEventAttributes);
    expect(canceled?.activityTaskCanceledEventAttributes?.scheduledEventId?.toString()).toBe(scheduled.eventId!.toString());

    const snap = await h.snapshot(runId);
    expect(snap.run.state).toBe('aborted');
    expect(snap.phases[0]!.state).toBe('failed');
    expect(snap.events.slice(-5)).toEqual(['artifact.expected', 'phase.failed', 'run.aborted', 'session.closed', 'report.written']);
    expect(report(snap)).toContain('**Outcome:** aborted — changed my mind');
  });

  it('repairs an invalid artifact once and goes on', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: ['invalid_json', 'ok'] } });
    await decide(h, runId, 'spec_approved', 'approve');
    expect((await handle.result()).state).toBe('completed');
    const snap = await h.snapshot(runId);
    expect(snap.phases[0]).toMatchObject({ state: 'completed', attempts: 2 });
    expectInOrder(snap.events, ['prompt.sent', 'artifact.expected', 'artifact.invalid', 'phase.started', 'prompt.repaired', 'artifact.expected', 'artifact.validated', 'approval.requested']);
    const prompts = h.prompts(runId, 'spec_writer', snap.sessions[0]!.id);
    expect(prompts).toHaveLength(2);
    expect(prompts[1]).toContain('Kind: repair');
    expect(prompts[1]).toMatch(/- not valid JSON: /);
    const text = report(snap);
    expect(text).toMatch(/\| spec \| .* \| dev\/spec@1 \| [0-9a-f]{16} \| no \| not valid JSON/);
    expect(text).toMatch(/\| spec \| .* \| dev\/spec@1 \| [0-9a-f]{16} \| yes \|/);
  });

  it('raises a human gate when the repair is invalid too; approve retries the phase', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: ['schema_invalid', 'invalid_json', 'ok'] } });
    const gate = await h.waitForGate(runId, 'artifact_invalid_after_repair');
    expect(gate).toMatchObject({ state: 'paused', pendingGate: { kind: 'human', phaseKey: 'spec' } });
    const paused = await h.snapshot(runId);
    expect(paused.run).toMatchObject({ state: 'paused', pausedFromState: 'executing' });
    expect(paused.phases[0]).toMatchObject({ state: 'failed', attempts: 2 });
    expect(paused.sessions.map((s) => s.state)).toEqual(['FAILED_NEEDS_HUMAN']);
    expect(paused.events.slice(-4)).toEqual(['phase.failed', 'session.failed', 'run.paused', 'approval.requested']);
    // The failed session's transcript was kept before the gate opened.
    const kept = await h.db.query.tuiTranscripts.findMany({ where: (t, { eq }) => eq(t.sessionId, paused.sessions[0]!.id) });
    expect(kept.map((t) => t.chunk).join('')).toMatch(/received repair prompt/);

    await decide(h, runId, 'artifact_invalid_after_repair', 'approve', { comment: 'try again' });
    await decide(h, runId, 'spec_approved', 'approve');
    expect((await handle.result()).state).toBe('completed');
    await record(handle, 'human-gate-resolved');
    const snap = await h.snapshot(runId);
    expect(snap.phases[0]).toMatchObject({ state: 'completed', attempts: 3 });
    expect(snap.sessions.filter((s) => s.roleId === 'spec_writer').map((s) => s.state)).toEqual(['FAILED_NEEDS_HUMAN', 'CLOSED']);
    expect(snap.approvals.map((a) => [a.gateKey, a.state])).toEqual([['artifact_invalid_after_repair', 'approved'], ['spec_approved', 'approved']]);
    expectInOrder(snap.events, ['approval.decided', 'run.resumed', 'phase.started', 'session.created', 'session.ready', 'prompt.sent', 'artifact.validated']);
    expectGapless(snap.seqs);
    await expectApprovalsRecorded(h, runId);
    expect(report(snap)).toMatch(/\| artifact_invalid_after_repair \| human \| spec \| .* \| approved \| approve \| .* \| try again \|/);
  });

  it.each([
    ['timeout', 'ARTIFACT_TIMEOUT', 'artifact.timeout'],
    ['hang', 'HUNG', 'artifact.timeout'],
    ['crash', 'CRASHED', 'session.crashed'],
  ] as const)('recovers from %s: classify %s, keep or restart the agent, one repair prompt, then ok', async (scenario, classification, event) => {
    const { runId, handle } = await h.start({ scenarios: { implement: [scenario, 'ok'] } });
    await decide(h, runId, 'spec_approved', 'approve');
    expect((await handle.result()).state).toBe('completed');
    const snap = await h.snapshot(runId);
    expect(snap.phases[1]).toMatchObject({ phaseKey: 'implement', state: 'completed', attempts: 2 });
    const implementer = snap.sessions.filter((s) => s.roleId === 'implementer');
    expect(implementer).toHaveLength(1);
    expect(implementer[0]).toMatchObject({ state: 'CLOSED', recoveryAttempts: 1 });
    expectInOrder(snap.events, ['prompt.sent', 'artifact.expected', event, 'session.resuming', 'session.rebootstrapped', 'session.recovered', 'phase.started', 'session.busy', 'prompt.repaired', 'artifact.validated']);
    const probe = (await h.db.query.runEvents.findFirst({ where: (e, { and, eq }) => and(eq(e.runId, runId), eq(e.type, event)) }))!;
    expect(probe.payload).toMatchObject({ classification });
    // What each probe saw is on record; HUNG only after three that agree.
    const probes = await h.db.query.runEvents.findMany({ where: (e, { and, eq }) => and(eq(e.runId, runId), eq(e.type, 'session.probed')) });
    expect(probes.map((p) => (p.payload as { classification: string }).classification)).toEqual(classification === 'HUNG' ? ['HUNG', 'HUNG', 'HUNG'] : [classification]);
    if (classification === 'HUNG') expect(probe.payload).toMatchObject({ probes: 3, agreed: true });
    if (backend === 'scripted') expect(probes[0]!.payload).toMatchObject({ alive: classification !== 'CRASHED', pid: expect.any(Number) });
    expect(h.prompts(runId, 'implementer', implementer[0]!.id).at(-1)).toContain(`session ${classification}`);
    // An agent whose process is alive is kept (the same process gets the repair prompt), a silent one flagged too; a crashed one is restarted.
    const recovered = snap.events.includes('session.rebootstrapped') ? (await h.db.query.runEvents.findFirst({ where: (e, { and, eq }) => and(eq(e.runId, runId), eq(e.type, 'session.rebootstrapped')) }))! : undefined;
    if (classification === 'CRASHED') expect(recovered?.payload).not.toHaveProperty('kept');
    else expect(recovered?.payload).toMatchObject({ kept: true, ...(classification === 'HUNG' ? { flagged: 'silent' } : {}) });
    if (classification === 'CRASHED') expect(h.prompts(runId, 'implementer', implementer[0]!.id).at(-1)).toContain('your session was restarted');
    else expect(h.prompts(runId, 'implementer', implementer[0]!.id).at(-1)).toContain('your session was kept as it is');
  });

  it('notices an agent that died mid-phase within seconds, not at the artifact timeout, and restarts it with no person', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: ['crash', 'ok'] }, timing: { ...h.timing, artifactTimeoutMs: 600_000 } });
    await h.waitForGate(runId, 'spec_approved');
    const events = await h.db.query.runEvents.findMany({ where: (e, { eq }) => eq(e.runId, runId), orderBy: (e, { asc }) => asc(e.seq) });
    const expected = events.find((e) => e.type === 'artifact.expected')!;
    const crashed = events.find((e) => e.type === 'session.crashed')!;
    // The wait asks every 2 s whether its agent is there; ten minutes were allowed for the artifact.
    expect(crashed.createdAt.getTime() - expected.createdAt.getTime()).toBeLessThan(15_000);
    const spec = (await h.snapshot(runId)).sessions.find((s) => s.roleId === 'spec_writer')!;
    expect(h.prompts(runId, 'spec_writer', spec.id).at(-1)).toContain("the agent's process ended before it wrote the artifact (session CRASHED); your session was restarted");
    expect((await h.snapshot(runId)).approvals.map((a) => a.gateKey)).toEqual(['spec_approved']);
    await decide(h, runId, 'spec_approved', 'abort');
    expect((await handle.result()).state).toBe('aborted');
  });

  it('keeps and flags an agent alive but silent; if it stays silent, a person decides and the flag gives way to the stop', async () => {
    const { runId } = await h.start({ scenarios: { spec: ['hang', 'hang'] } });
    let flagged: ReturnType<typeof sessionFlags> = new Map();
    await waitFor('the silent agent kept and flagged', 30_000, async () => {
      const snap = await h.snapshot(runId);
      flagged = sessionFlags(snap.sessions, await listEventsOfTypes(h.db, runId, STOP_EVENT_TYPES));
      return flagged.size > 0;
    }, 50);
    const [sessionId, flag] = [...flagged][0]!;
    expect(flag).toMatchObject({ code: 'silent', reason: expect.stringContaining('spec_writer agent is alive but was silent') });
    await h.waitForGate(runId, 'artifact_timeout_exhausted');
    const snap = await h.snapshot(runId);
    const session = snap.sessions.find((s) => s.id === sessionId)!;
    expect(session.state).toBe('FAILED_NEEDS_HUMAN');
    // The same process all along: kept, never restarted.
    expect(snap.events.filter((e) => e === 'session.ready')).toHaveLength(1);
    const events = await listEventsOfTypes(h.db, runId, STOP_EVENT_TYPES);
    expect(sessionFlags(snap.sessions, events).size).toBe(0);
    expect(sessionStops(snap.sessions, events).get(sessionId)).toMatchObject({ code: expect.any(String), next: expect.stringContaining('approving starts a new agent') });
    await decide(h, runId, 'artifact_timeout_exhausted', 'abort');
  });

  it('raises artifact_timeout_exhausted when the repair times out too; reject ends the run failed', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: ['timeout', 'timeout'] } });
    await h.waitForGate(runId, 'artifact_timeout_exhausted');
    const paused = await h.snapshot(runId);
    expect(paused.run.state).toBe('paused');
    expect(paused.phases[0]).toMatchObject({ state: 'failed', attempts: 2 });
    await decide(h, runId, 'artifact_timeout_exhausted', 'reject');
    expect(await handle.result()).toMatchObject({ state: 'failed', reason: expect.stringContaining('human gate artifact_timeout_exhausted at phase spec') });
    const snap = await h.snapshot(runId);
    expectInOrder(snap.events, ['artifact.timeout', 'session.recovered', 'prompt.repaired', 'phase.failed', 'session.failed', 'run.paused', 'approval.requested', 'approval.decided', 'run.failed', 'report.written']);
    expect(snap.approvals).toMatchObject([{ gateKey: 'artifact_timeout_exhausted', state: 'rejected' }]);
    expect(report(snap)).toMatch(/\| artifact_timeout_exhausted \| human \| spec \| .* \| rejected \| reject \|/);
  });

  it.runIf(backend === 'fake')('raises prompt_send_exhausted when the agent refuses every prompt; approve recovers the session', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: 'send_fail' } });
    await h.waitForGate(runId, 'prompt_send_exhausted');
    const paused = await h.snapshot(runId);
    expect(paused.sessions.map((s) => s.state)).toEqual(['CRASHED']);
    expect(paused.phases[0]).toMatchObject({ state: 'failed', attempts: 1 });
    expect(paused.events).not.toContain('prompt.sent');
    expect(paused.events.slice(-4)).toEqual(['phase.failed', 'session.crashed', 'run.paused', 'approval.requested']);

    await decide(h, runId, 'prompt_send_exhausted', 'approve');
    await decide(h, runId, 'spec_approved', 'abort');
    expect((await handle.result()).state).toBe('aborted');
    const snap = await h.snapshot(runId);
    expect(snap.sessions.map((s) => [s.roleId, s.state, s.recoveryAttempts])).toEqual([['spec_writer', 'CLOSED', 1], ['implementer', 'CLOSED', 0]]);
    expectInOrder(snap.events, ['run.resumed', 'phase.started', 'session.resuming', 'session.recovered', 'prompt.sent', 'artifact.validated']);
  });

  it.runIf(backend === 'scripted')('restarts an agent whose pane died before its prompt, once and with no person; the second time a person decides', async () => {
    // In tmux the pane goes for real: its window is killed just before a prompt is pasted.
    const killSpecWriter = () => {
      const windows = execFileSync('tmux', ['-S', h.tmux!.socket, 'list-windows', '-a', '-F', '#{session_name}:#{window_name}']).toString();
      for (const w of windows.split('\n').filter((line) => line.endsWith(':spec_writer'))) {
        execFileSync('tmux', ['-S', h.tmux!.socket, 'kill-window', '-t', `=${w}`]);
      }
    };
    const withKills = async (times: number) => {
      await h.stopWorkers(() => true);
      let kills = 0;
      await h.startWorker({
        checkpoint: (point) => {
          if (point !== 'sendPrompt:before-delivery' || kills >= times) return;
          kills += 1;
          killSpecWriter();
        },
      });
      return () => kills;
    };
    try {
      // Once: the try that finds the pane gone restarts the agent (its one automatic recovery) and prompts it.
      let kills = await withKills(1);
      const once = await h.start();
      await h.waitForGate(once.runId, 'spec_approved');
      expect(kills()).toBe(1);
      const snap = await h.snapshot(once.runId);
      expect(snap.approvals.map((a) => a.gateKey)).toEqual(['spec_approved']);
      expect(snap.sessions.map((s) => [s.roleId, s.state, s.processLostRecoveries])).toEqual([['spec_writer', 'WAITING_FOR_APPROVAL', 1], ['implementer', 'READY', 0]]);
      expectInOrder(snap.events, ['prompt.delivering', 'session.process_lost', 'session.resuming', 'session.rebootstrapped', 'session.recovered', 'session.busy', 'prompt.sent', 'artifact.validated']);
      await decide(h, once.runId, 'spec_approved', 'abort');
      expect((await once.handle.result()).state).toBe('aborted');

      // Twice: the agent is gone again after its restart, and a person looks.
      kills = await withKills(2);
      const twice = await h.start();
      await h.waitForGate(twice.runId, 'session_recovery_required');
      expect(kills()).toBe(2);
      const paused = await h.snapshot(twice.runId);
      expect(paused.sessions.map((s) => [s.state, s.processLostRecoveries])).toEqual([['FAILED_NEEDS_HUMAN', 1]]);
      expect(paused.events).not.toContain('prompt.sent');
      await decide(h, twice.runId, 'session_recovery_required', 'abort');
      expect((await twice.handle.result()).state).toBe('aborted');
    } finally {
      await h.stopWorkers(() => true);
      await h.startWorker();
    }
  });

  if (backend === 'fake') it('asks a person when an agent cannot be started (3 tries) or is stopped at a screen; approving starts a new one', async () => {
    const exited = () => new DevflowError({ code: 'agent_exited', message: 'the agent exited while starting', details: { screen: 'segmentation fault' } });
    h.fake.failNextStarts('implementer', exited(), exited(), exited());
    h.fake.failNextStarts('reviewer', new DevflowError({ code: 'agent_blocked', message: 'the agent is stopped at a screen devflow does not know', recoveryHint: 'answer it in the pane', details: { screen: 'Choose a theme: 1. Dark 2. Light' } }));
    const { runId, handle } = await h.start();
    await decide(h, runId, 'spec_approved', 'approve');

    const startFailed = await h.waitForGate(runId, 'session_recovery_required');
    expect(startFailed).toMatchObject({ state: 'paused', phaseKey: 'implement', attempt: 1, pendingGate: { kind: 'human', phaseKey: 'implement' } });
    const paused = await h.snapshot(runId);
    expect(paused.phases[1]).toMatchObject({ state: 'failed', attempts: 1 });
    expect(paused.sessions.filter((s) => s.roleId === 'implementer').map((s) => s.state)).toEqual(['FAILED_NEEDS_HUMAN']);
    expect(paused.events.filter((e) => e === 'session.start_failed')).toHaveLength(3);
    expect(paused.approvals.at(-1)).toMatchObject({ gateKey: 'session_recovery_required', payload: { reason: expect.stringContaining('did not start (3 tries)'), hint: expect.stringContaining('segmentation fault') } });
    await decide(h, runId, 'session_recovery_required', 'approve');

    // The reviewer's agent shows a screen nobody knows: a gate at once, its screen as the hint.
    await waitFor('the reviewer gate', 30_000, async () => (await h.snapshot(runId)).approvals.filter((a) => a.gateKey === 'session_recovery_required').length === 2, 50);
    const blocked = (await h.snapshot(runId)).approvals.at(-1)!;
    expect(blocked.payload).toMatchObject({ kind: 'human', hint: expect.stringMatching(/Choose a theme[\s\S]*What to do: answer it in the pane/) });
    await decide(h, runId, 'session_recovery_required', 'approve');
    expect((await handle.result()).state).toBe('completed');
    await record(handle, 'agent-start-gate');
    const snap = await h.snapshot(runId);
    expect(snap.phases.map((p) => [p.phaseKey, p.state, p.attempts])).toEqual([['spec', 'completed', 1], ['implement', 'completed', 2], ['review', 'completed', 2]]);
    expect(snap.sessions.map((s) => [s.roleId, s.state])).toEqual([['spec_writer', 'CLOSED'], ['implementer', 'FAILED_NEEDS_HUMAN'], ['implementer', 'CLOSED'], ['reviewer', 'FAILED_NEEDS_HUMAN'], ['reviewer', 'CLOSED']]);
    expect(snap.events.filter((e) => e === 'session.start_failed')).toHaveLength(3);
    expectGapless(snap.seqs);
    await expectApprovalsRecorded(h, runId);
  });

  it('delivers a prompt once when the worker crashes between its paste and its record', async () => {
    await h.stopWorkers(() => true);
    let crashed = false;
    await h.startWorker({
      checkpoint: (point) => {
        if (point !== 'sendPrompt:delivered' || crashed) return;
        crashed = true;
        throw new Error('injected crash after the paste');
      },
    });
    try {
      const { runId, handle } = await h.start();
      await h.waitForGate(runId, 'spec_approved');
      expect(crashed).toBe(true);
      const snap = await h.snapshot(runId);
      // The retried step found the prompt at the agent (its screen, or the fake's record) and did not paste it again.
      expect(h.prompts(runId, 'spec_writer', snap.sessions[0]!.id)).toHaveLength(1);
      expect(snap.events.filter((e) => e === 'prompt.delivering')).toHaveLength(1);
      expect(snap.events.filter((e) => e === 'prompt.sent')).toHaveLength(1);
      await handle.signal(abortSignal, { clientToken: 'done', reason: 'seen enough' });
      expect((await handle.result()).state).toBe('aborted');
    } finally {
      await h.stopWorkers(() => true);
      await h.startWorker();
    }
  });

  if (backend === 'fake') it('waits at the gate that paused the run when the session manager pauses it under an approval gate step', async () => {
    await h.stopWorkers(() => true);
    let pausedUnder = false;
    await h.startWorker({
      // The session manager finds the spec writer's agent gone just as the gate is being opened.
      checkpoint: async (point) => {
        if (point !== 'openApprovalGate:start' || pausedUnder) return;
        pausedUnder = true;
        const [session] = await h.db.query.tuiSessions.findMany({ where: (t, { and, eq }) => and(eq(t.roleId, 'spec_writer'), eq(t.state, 'BUSY')), orderBy: (t, { desc }) => [desc(t.createdAt)], limit: 1 });
        const [run] = await h.db.query.runs.findMany({ where: (r, { eq }) => eq(r.id, session!.runId) });
        await failLostSession(h.db, session!, { runState: run!.state, currentPhaseId: run!.currentPhaseId, resumeAttempts: 3 });
      },
    });
    try {
      const { runId, handle } = await h.start();
      const gate = await h.waitForGate(runId, 'session_recovery_required');
      expect(gate).toMatchObject({ state: 'paused', phaseKey: 'spec' });
      const paused = await h.snapshot(runId);
      // The gate step wrote nothing: no spec_approved request was opened under the pause.
      expect(paused.approvals.map((a) => a.gateKey)).toEqual(['session_recovery_required']);
      await decide(h, runId, 'session_recovery_required', 'approve');
      await decide(h, runId, 'spec_approved', 'approve');
      expect((await handle.result()).state).toBe('completed');
      const snap = await h.snapshot(runId);
      expect(snap.phases[0]).toMatchObject({ state: 'completed', attempts: 2 });
      expect(snap.approvals.map((a) => [a.gateKey, a.state])).toEqual([['session_recovery_required', 'approved'], ['spec_approved', 'approved']]);
      await expectApprovalsRecorded(h, runId);
    } finally {
      await h.stopWorkers(() => true);
      await h.startWorker();
    }
  });

  if (backend === 'fake') it('ends the run failed, with no gate, on a fatal error: an artifact folder that leads out of the worktree', async () => {
    const repo = makeRepo(h.root);
    const outside = mkdtempSync(path.join(os.tmpdir(), 'devflow-outside-'));
    mkdirSync(path.join(repo, '.devflow'));
    symlinkSync(outside, path.join(repo, '.devflow', 'artifacts'));
    execFileSync('git', ['-C', repo, 'add', '.']);
    execFileSync('git', ['-C', repo, 'commit', '-q', '-m', 'an artifacts folder that is a link out']);
    const { runId, handle } = await h.start({ repoPath: repo });
    const result = await handle.result();
    expect(result.state).toBe('failed');
    expect(result.reason).toMatch(/^artifact_path_outside_worktree: /);
    const snap = await h.snapshot(runId);
    expect(snap.approvals).toEqual([]);
    expect(snap.phases[0]!.state).toBe('failed');
    expect(snap.events).not.toContain('prompt.sent');
    rmSync(outside, { recursive: true, force: true });
  });

  if (backend === 'fake') it('asks a person when the artifact cannot be read, at the gate its error names', async () => {
    const repo = makeRepo(h.root);
    mkdirSync(path.join(repo, '.devflow', 'artifacts'), { recursive: true });
    symlinkSync('spec.json', path.join(repo, '.devflow', 'artifacts', 'spec.json')); // a link to itself: never readable
    execFileSync('git', ['-C', repo, 'add', '.']);
    execFileSync('git', ['-C', repo, 'commit', '-q', '-m', 'an artifact nobody can read']);
    const { runId, handle } = await h.start({ repoPath: repo, scenarios: { spec: 'timeout' } });
    const gate = await h.waitForGate(runId, 'artifact_unreadable');
    expect(gate).toMatchObject({ state: 'paused', pendingGate: { kind: 'human', phaseKey: 'spec' } });
    const snap = await h.snapshot(runId);
    expect(snap.approvals.at(-1)!.payload).toMatchObject({ reason: expect.stringMatching(/^artifact_unreadable: /), hint: expect.stringContaining('What to do: make the file') });
    await decide(h, runId, 'artifact_unreadable', 'abort');
    expect((await handle.result()).state).toBe('aborted');
  });

  if (backend === 'fake') it('retries a phase after a human gate at most maxPhaseRetries times, then ends failed', async () => {
    const { runId, handle } = await h.start({ maxPhaseRetries: 1, scenarios: { spec: ['schema_invalid', 'invalid_json', 'schema_invalid', 'invalid_json'] } });
    await decide(h, runId, 'artifact_invalid_after_repair', 'approve');
    const result = await handle.result();
    expect(result).toMatchObject({ state: 'failed', reason: expect.stringContaining('it is retried at most 1 times') });
    const snap = await h.snapshot(runId);
    expect(snap.phases[0]).toMatchObject({ state: 'failed', attempts: 4 });
    expect(snap.approvals.map((a) => [a.gateKey, a.state])).toEqual([['artifact_invalid_after_repair', 'approved']]);
  });

  it('records one decision for duplicate and concurrent decision signals', async () => {
    const { runId, handle } = await h.start();
    const status = await h.waitForGate(runId, 'spec_approved');
    const id = status.pendingGate!.approvalRequestId;
    const wf = h.client.workflow.getHandle(runWorkflowId(runId));
    await Promise.all([
      wf.signal(decisionSignal, { approvalRequestId: id, action: 'approve', clientToken: 'a' }),
      wf.signal(decisionSignal, { approvalRequestId: id, action: 'approve', clientToken: 'a' }),
      wf.signal(decisionSignal, { approvalRequestId: id, action: 'reject', clientToken: 'b' }),
      wf.signal(decisionSignal, { approvalRequestId: id, action: 'approve', clientToken: 'c' }),
      wf.signal(decisionSignal, { approvalRequestId: id, action: 'abort', clientToken: 'd' }),
    ]);
    const outcome = await handle.result();
    const snap = await h.snapshot(runId);
    expect(snap.decisions).toHaveLength(1);
    expect(snap.events.filter((e) => e === 'approval.decided')).toHaveLength(1);
    const expected = { approve: 'completed', reject: 'failed', abort: 'aborted' }[snap.decisions[0]!.action];
    expect(outcome.state).toBe(expected);
    expect(snap.approvals[0]!.state).toBe({ approve: 'approved', reject: 'rejected', abort: 'aborted' }[snap.decisions[0]!.action]);
  });

  /** What a worker restarting on this host does before it polls. */
  async function restartRecovery() {
    const manager = await SessionManager.start({
      db: h.db, pool: h.pool, hostId: h.hostId, tmux: h.tmux!, drivers: h.drivers, resumeBackoffMs: 20,
      notifyRun: (id, lost) => h.client.workflow.getHandle(runWorkflowId(id)).signal(sessionLostSignal, { ...(lost.approvalRequestId ? { approvalRequestId: lost.approvalRequestId } : {}), sessionId: lost.sessionId, roleId: lost.roleId }),
    });
    const recovered = await manager.recover();
    await manager.shutdown();
    return recovered;
  }

  if (backend === 'scripted') it('keeps a gate as it was when its agent is found gone; approving goes on without running the phase again', async () => {
    const { runId, handle } = await h.start();
    const before = await h.waitForGate(runId, 'spec_approved');
    const [lostSession] = (await h.snapshot(runId)).sessions;
    await killProcessGroup(lostSession!.lastKnownPanePid!);
    // (The implementer's agent, started while the gate waits, is there and kept.)
    const recovered = (await restartRecovery()).filter((r) => r.runId === runId);
    expect(recovered).toHaveLength(2);
    expect(recovered).toEqual(expect.arrayContaining([expect.objectContaining({ sessionId: lostSession!.id, outcome: 'idle' }), expect.objectContaining({ roleId: 'implementer', outcome: 'kept' })]));
    expect(await h.status(runId)).toEqual(before);
    await decide(h, runId, 'spec_approved', 'approve');
    expect((await handle.result()).state).toBe('completed');

    const snap = await h.snapshot(runId);
    expect(snap.phases.map((p) => [p.phaseKey, p.attempts])).toEqual([['spec', 1], ['implement', 1], ['review', 1]]);
    expect(snap.sessions.filter((s) => s.roleId === 'spec_writer').map((s) => [s.state, s.processLostRecoveries])).toEqual([['CLOSED', 1]]);
    expect(snap.approvals.map((a) => [a.gateKey, a.state])).toEqual([['spec_approved', 'approved']]);
    expectGapless(snap.seqs);
  });

  if (backend === 'scripted') it('restarts an agent lost mid-phase by itself, once: the attempt fails with process_lost and the phase goes on', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: ['timeout', 'ok'] }, timing: { ...h.timing, artifactTimeoutMs: 60_000 } });
    await waitFor('the spec prompt', 60_000, async () => (await h.snapshot(runId)).events.includes('artifact.expected'), 50);
    const [lostSession] = (await h.snapshot(runId)).sessions;
    await killProcessGroup(lostSession!.lastKnownPanePid!);
    expect((await restartRecovery()).filter((r) => r.runId === runId)).toMatchObject([{ sessionId: lostSession!.id, outcome: 'restarting' }]);
    await h.waitForGate(runId, 'spec_approved');
    await decide(h, runId, 'spec_approved', 'approve');
    expect((await handle.result()).state).toBe('completed');
    await recordHistory(handle, 'agent-restarted');

    const snap = await h.snapshot(runId);
    expect(snap.phases[0]).toMatchObject({ phaseKey: 'spec', attempts: 2, state: 'completed' });
    expect(snap.sessions.filter((s) => s.roleId === 'spec_writer').map((s) => [s.id, s.state, s.processLostRecoveries])).toEqual([[lostSession!.id, 'CLOSED', 1]]);
    expect(snap.approvals.map((a) => a.gateKey)).toEqual(['spec_approved']);
    expectInOrder(snap.events, ['artifact.expected', 'session.process_lost', 'phase.failed', 'phase.started', 'session.resuming', 'session.rebootstrapped', 'session.recovered', 'prompt.sent', 'artifact.validated', 'approval.requested']);
    expectGapless(snap.seqs);
  });

  if (backend === 'scripted') it('asks a person at session_recovery_required when the agent is lost mid-phase again after its automatic restart, then retries', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: ['timeout', 'ok'] }, timing: { ...h.timing, artifactTimeoutMs: 60_000 } });
    await waitFor('the spec prompt', 60_000, async () => (await h.snapshot(runId)).events.includes('artifact.expected'), 50);
    const [lostSession] = (await h.snapshot(runId)).sessions;
    await h.db.update(tuiSessions).set({ processLostRecoveries: 1 }).where(eq(tuiSessions.id, lostSession!.id));
    await killProcessGroup(lostSession!.lastKnownPanePid!);
    const recovered = (await restartRecovery()).filter((r) => r.runId === runId);
    expect(recovered).toMatchObject([{ sessionId: lostSession!.id, outcome: 'failed' }]);

    const gate = await h.waitForGate(runId, 'session_recovery_required');
    expect(gate).toMatchObject({ state: 'paused', pendingGate: { kind: 'human', phaseKey: 'spec', approvalRequestId: recovered[0]!.approvalRequestId } });
    await decide(h, runId, 'session_recovery_required', 'approve');
    await decide(h, runId, 'spec_approved', 'approve');
    expect((await handle.result()).state).toBe('completed');

    const snap = await h.snapshot(runId);
    expect(snap.sessions.filter((s) => s.roleId === 'spec_writer').map((s) => s.state)).toEqual(['FAILED_NEEDS_HUMAN', 'CLOSED']);
    expect(snap.approvals.map((a) => [a.gateKey, a.phaseId === null, a.state])).toEqual([['session_recovery_required', true, 'approved'], ['spec_approved', false, 'approved']]);
    expectInOrder(snap.events, ['artifact.expected', 'session.failed', 'run.paused', 'approval.requested', 'phase.failed', 'approval.decided', 'run.resumed', 'phase.started', 'session.created', 'prompt.sent', 'approval.requested', 'approval.decided', 'run.completed']);
    expectGapless(snap.seqs);
    await expectApprovalsRecorded(h, runId);
  });

  it('completes with no duplicate events when its worker is stopped mid-phase and another starts', async () => {
    const { runId, handle } = await h.start({ scenarios: { implement: ['timeout', 'ok'] }, timing: h.timing });
    await decide(h, runId, 'spec_approved', 'approve');
    await waitFor('implement to await its artifact', 20_000, async () => (await h.snapshot(runId)).phases[1]!.state === 'awaiting_artifact', 50);

    // The worker stops (cancelling the wait in flight there) and a new one takes over.
    await h.stopWorkers(() => true);
    await h.startWorker();
    expect((await handle.result()).state).toBe('completed');

    const snap = await h.snapshot(runId);
    expectGapless(snap.seqs);
    await expectApprovalsRecorded(h, runId);
    expect(snap.sessions.map((s) => s.roleId)).toEqual(['spec_writer', 'implementer', 'reviewer']);
    const count = (type: string) => snap.events.filter((e) => e === type).length;
    expect(count('prompt.sent')).toBe(3);
    expect(count('prompt.repaired')).toBe(1);
    expect(count('artifact.timeout')).toBe(1);
    expect(count('run.completed')).toBe(1);
  });
});
