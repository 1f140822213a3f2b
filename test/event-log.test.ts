// The event log and the transitions that write it, against the suite's real Postgres.
import { randomUUID } from 'node:crypto';
import { count, eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { closePendingApprovals, openApprovalRequest, recordDecision } from '../db/approvals.ts';
import { appendEvent, listEvents } from '../db/events.ts';
import { approvalRequests, runEvents, runPhases, runs, tuiSessions } from '../db/schema.ts';
import { transitionPhase, transitionRun, transitionSession } from '../db/transitions.ts';
import { newRun, useDatabase } from './helpers/database.ts';

const handle = useDatabase(30);
const { db } = handle;

async function eventCount(runId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(runEvents).where(eq(runEvents.runId, runId));
  return row!.n;
}

describe('appendEvent', () => {
  it('keeps seq gapless and unique under 24 concurrent appenders on separate connections', async () => {
    const run = await newRun(handle); // seq 1: run.created
    const appenders = 24;
    const clientsBefore = handle.pool.totalCount;
    const results = await Promise.all(
      Array.from({ length: appenders }, (_, i) =>
        appendEvent(db, { runId: run.id, type: 'session.busy', idempotencyKey: `${run.id}:concurrent:${i}`, payload: { i } }),
      ),
    );
    // The appenders really ran on separate connections at once.
    expect(handle.pool.totalCount - clientsBefore).toBeGreaterThanOrEqual(20);
    expect(results.every((r) => r.created)).toBe(true);

    const events = await listEvents(db, run.id);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: appenders + 1 }, (_, i) => i + 1));
    expect(new Set(results.map((r) => r.event.seq)).size).toBe(appenders);
  });

  it('returns the existing event for a repeated key, also when repeats race', async () => {
    const run = await newRun(handle);
    const key = `${run.id}:once`;
    const first = await appendEvent(db, { runId: run.id, type: 'run.started', idempotencyKey: key });
    const again = await appendEvent(db, { runId: run.id, type: 'run.started', idempotencyKey: key, payload: { other: true } });
    expect(again.created).toBe(false);
    expect(again.event).toEqual(first.event);

    const racing = await Promise.all(
      Array.from({ length: 10 }, () => appendEvent(db, { runId: run.id, type: 'session.idle', idempotencyKey: `${run.id}:race` })),
    );
    expect(racing.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(racing.map((r) => r.event.id)).size).toBe(1);
    expect((await listEvents(db, run.id)).map((e) => e.type)).toEqual(['run.created', 'run.started', 'session.idle']);
  });

  it('refuses an event for a run that does not exist, writing nothing', async () => {
    const runId = randomUUID();
    await expect(appendEvent(db, { runId, type: 'run.started', idempotencyKey: `${runId}:x` })).rejects.toMatchObject({ code: 'run_not_found' });
    expect(await eventCount(runId)).toBe(0);
  });

  it('rolls the event back with the transaction that wrote it', async () => {
    const run = await newRun(handle);
    await expect(
      db.transaction(async (tx) => {
        await appendEvent(tx, { runId: run.id, type: 'run.started', idempotencyKey: `${run.id}:rolled-back` });
        throw new Error('crash after the append');
      }),
    ).rejects.toThrow('crash after the append');
    expect(await eventCount(run.id)).toBe(1);
    const next = await appendEvent(db, { runId: run.id, type: 'run.started', idempotencyKey: `${run.id}:after` });
    expect(next.event.seq).toBe(2);
  });
});

describe('transitions', () => {
  it('writes the state change and its event together, and a replay changes nothing', async () => {
    const run = await newRun(handle);
    const started = await transitionRun(db, { runId: run.id, to: 'executing', event: { type: 'run.started', idempotencyKey: `${run.id}:started` } });
    expect(started).toMatchObject({ changed: true, row: { state: 'executing' }, event: { seq: 2, type: 'run.started', payload: { from: 'planning', to: 'executing' } } });

    const replay = await transitionRun(db, { runId: run.id, to: 'executing', event: { type: 'run.started', idempotencyKey: `${run.id}:started` } });
    expect(replay.changed).toBe(false);
    expect(replay.event!.id).toBe(started.event!.id);
    expect(await eventCount(run.id)).toBe(2);
  });

  it('remembers paused_from_state and returns there', async () => {
    const run = await newRun(handle);
    await transitionRun(db, { runId: run.id, to: 'executing', event: { type: 'run.started', idempotencyKey: `${run.id}:s` } });
    await transitionRun(db, { runId: run.id, to: 'awaiting_approval', event: { type: 'approval.requested', idempotencyKey: `${run.id}:a` } });
    const paused = await transitionRun(db, { runId: run.id, to: 'paused', event: { type: 'run.paused', idempotencyKey: `${run.id}:p` } });
    expect(paused.row).toMatchObject({ state: 'paused', pausedFromState: 'awaiting_approval' });

    await expect(
      transitionRun(db, { runId: run.id, to: 'executing', event: { type: 'run.resumed', idempotencyKey: `${run.id}:wrong` } }),
    ).rejects.toMatchObject({ code: 'internal_state_corruption' });
    const resumed = await transitionRun(db, { runId: run.id, to: 'awaiting_approval', event: { type: 'run.resumed', idempotencyKey: `${run.id}:r` } });
    expect(resumed.row).toMatchObject({ state: 'awaiting_approval', pausedFromState: null });

    const ended = await transitionRun(db, { runId: run.id, to: 'aborted', event: { type: 'run.aborted', idempotencyKey: `${run.id}:end` } });
    expect(ended.row.endedAt).toBeInstanceOf(Date);
  });

  it('an illegal run transition throws internal_state_corruption and writes nothing', async () => {
    const run = await newRun(handle);
    const before = await db.select().from(runs).where(eq(runs.id, run.id));
    await expect(
      transitionRun(db, { runId: run.id, to: 'completed', event: { type: 'run.completed', idempotencyKey: `${run.id}:bad` } }),
    ).rejects.toMatchObject({ code: 'internal_state_corruption', errorClass: 'fatal' });
    expect(await db.select().from(runs).where(eq(runs.id, run.id))).toEqual(before);
    expect(await eventCount(run.id)).toBe(1);
  });

  it('counts phase attempts on every entry into running, and refuses skipping ahead', async () => {
    const run = await newRun(handle);
    const [phase] = await db.insert(runPhases).values({ runId: run.id, phaseKey: 'spec', ordinal: 0, roleId: 'spec_writer' }).returning();
    const step = (to: Parameters<typeof transitionPhase>[1]['to'], key: string, type: 'phase.started' | 'artifact.expected' | 'artifact.invalid' | 'phase.completed' | 'artifact.validated' = 'phase.started') =>
      transitionPhase(db, { phaseId: phase!.id, to, event: { type, idempotencyKey: `${phase!.id}:${key}` } });

    await expect(step('completed', 'skip', 'phase.completed')).rejects.toMatchObject({ code: 'internal_state_corruption' });
    expect((await step('running', 'run1')).row).toMatchObject({ state: 'running', attempts: 1 });
    await step('awaiting_artifact', 'wait1', 'artifact.expected');
    await step('validating', 'val1', 'artifact.validated');
    const repair = await step('running', 'repair', 'artifact.invalid');
    expect(repair.row.attempts).toBe(2);
    expect(repair.event).toMatchObject({ phaseId: phase!.id, payload: { phaseKey: 'spec', attempt: 2 } });
    await step('awaiting_artifact', 'wait2', 'artifact.expected');
    await step('validating', 'val2', 'artifact.validated');
    const done = await step('completed', 'done', 'phase.completed');
    expect(done.row.endedAt).toBeInstanceOf(Date);
    expect(done.row.startedAt).toBeInstanceOf(Date);
  });

  it('moves a session through its machine and refuses an illegal move without writing', async () => {
    const run = await newRun(handle);
    const [session] = await db.insert(tuiSessions).values({ runId: run.id, roleId: 'spec_writer', backend: 'fake', cwd: '/tmp' }).returning();
    const move = (to: Parameters<typeof transitionSession>[1]['to'], key: string) =>
      transitionSession(db, { sessionId: session!.id, to, event: { type: 'session.busy', idempotencyKey: `${session!.id}:${key}` } });

    await expect(move('BUSY', 'too-early')).rejects.toMatchObject({ code: 'internal_state_corruption' });
    await move('BOOTSTRAPPING', 'boot');
    await move('READY', 'ready');
    await move('BUSY', 'busy');
    await move('FAILED_NEEDS_HUMAN', 'failed');
    await expect(move('READY', 'after-terminal')).rejects.toMatchObject({ code: 'internal_state_corruption' });
    const [row] = await db.select().from(tuiSessions).where(eq(tuiSessions.id, session!.id));
    expect(row!.state).toBe('FAILED_NEEDS_HUMAN');
    expect(await eventCount(run.id)).toBe(5); // run.created + 4 session moves
  });
});

describe('a key holding another fact', () => {
  it('refuses an event of another type under a key already written, and writes nothing', async () => {
    const run = await newRun(handle);
    await appendEvent(db, { runId: run.id, type: 'session.busy', idempotencyKey: `${run.id}:shared` });
    await expect(appendEvent(db, { runId: run.id, type: 'session.idle', idempotencyKey: `${run.id}:shared` })).rejects.toMatchObject({ code: 'internal_state_corruption' });
    expect(await eventCount(run.id)).toBe(2);
  });
});

describe('approval requests', () => {
  it('open once with their event, refuse other content under the same key, and decide or close by transition', async () => {
    const run = await newRun(handle);
    const open = (payload: Record<string, unknown>) => openApprovalRequest(db, { runId: run.id, phaseId: null, gateKey: 'spec_approved', kind: 'approval', key: `${run.id}:gate`, payload });
    const first = await open({ attempt: 1 });
    expect((await open({ attempt: 1 })).id).toBe(first.id);
    await expect(open({ attempt: 2 })).rejects.toMatchObject({ code: 'internal_state_corruption' });
    const second = await openApprovalRequest(db, { runId: run.id, phaseId: null, gateKey: 'session_recovery_required', kind: 'human', key: `${run.id}:gate2`, payload: {} });

    const decided = await recordDecision(db, { approvalRequestId: first.id, action: 'reject', clientToken: 't' });
    expect(decided).toMatchObject({ action: 'reject', created: true });
    expect(await recordDecision(db, { approvalRequestId: first.id, action: 'approve', clientToken: 'u' })).toMatchObject({ action: 'reject', created: false });
    expect(await closePendingApprovals(db, { runId: run.id, reason: 'the run ended' })).toBe(1);
    expect(await closePendingApprovals(db, { runId: run.id, reason: 'the run ended' })).toBe(0);

    const states = await db.select({ id: approvalRequests.id, state: approvalRequests.state }).from(approvalRequests).where(eq(approvalRequests.runId, run.id));
    expect(Object.fromEntries(states.map((r) => [r.id, r.state]))).toEqual({ [first.id]: 'rejected', [second.id]: 'closed' });
    const events = (await listEvents(db, run.id)).map((e) => [e.type, (e.payload as { approvalRequestId?: string }).approvalRequestId ?? null]);
    expect(events).toEqual([
      ['run.created', null],
      ['approval.requested', first.id],
      ['approval.requested', second.id],
      ['approval.decided', first.id],
      ['approval.closed', second.id],
    ]);
  });
});
