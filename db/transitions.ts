// Every change of a run, phase or session state goes through here (approvals: db/approvals.ts): one transaction that
// locks the row, asks the state machine, updates the row and appends the event recording it.
// The event's idempotency key makes a repeated transition (a retried activity) a no-op.
import { eq, sql } from 'drizzle-orm';
import { DevflowError } from '../lib/errors.ts';
import type { Executor } from './client.ts';
import { appendEvent, findEventByKey, type RunEvent } from './events.ts';
import { approvalRequests, runPhases, runs, tuiSessions } from './schema.ts';
import {
  assertPhaseTransition,
  assertRunTransition,
  assertSessionTransition,
  TERMINAL_RUN_STATES,
  type EventType,
  type PhaseState,
  type RunState,
  type SessionState,
} from './state-machines.ts';

export type Run = typeof runs.$inferSelect;
export type RunPhase = typeof runPhases.$inferSelect;
export type TuiSession = typeof tuiSessions.$inferSelect;
export type ApprovalRequest = typeof approvalRequests.$inferSelect;

export interface TransitionEvent {
  type: EventType;
  idempotencyKey: string;
  payload?: Record<string, unknown>;
}

export interface TransitionResult<Row> {
  row: Row;
  /** Undefined when the row was left as it was (`unless`). */
  event: RunEvent | undefined;
  /** False when the event already existed: the transition had been applied before. */
  changed: boolean;
}

export function notFound(what: 'run' | 'phase' | 'session' | 'approval_request', id: string): DevflowError {
  return new DevflowError({ code: `${what}_not_found`, message: `${what} ${id} does not exist` });
}

export async function transitionRun(
  executor: Executor,
  input: { runId: string; to: RunState; event: TransitionEvent; set?: Partial<Pick<Run, 'currentPhaseId' | 'worktreeRoot' | 'finalReportPath'>> },
): Promise<TransitionResult<Run>> {
  return executor.transaction(async (tx) => {
    const [run] = await tx.select().from(runs).where(eq(runs.id, input.runId)).for('update');
    if (!run) throw notFound('run', input.runId);
    const prior = await findEventByKey(tx, input.event.idempotencyKey);
    if (prior) return { row: run, event: prior, changed: false };

    assertRunTransition(run.state, input.to, run.pausedFromState);
    const [updated] = await tx
      .update(runs)
      .set({
        ...input.set,
        state: input.to,
        pausedFromState: input.to === 'paused' ? run.state : null,
        updatedAt: sql`now()`,
        ...(TERMINAL_RUN_STATES.has(input.to) ? { endedAt: sql`now()` } : {}),
      })
      .where(eq(runs.id, input.runId))
      .returning();
    const { event } = await appendEvent(tx, {
      runId: input.runId,
      type: input.event.type,
      idempotencyKey: input.event.idempotencyKey,
      payload: { from: run.state, to: input.to, ...input.event.payload },
    });
    return { row: updated!, event, changed: true };
  });
}

export async function transitionPhase(
  executor: Executor,
  input: { phaseId: string; to: PhaseState; event: TransitionEvent },
): Promise<TransitionResult<RunPhase>> {
  return executor.transaction(async (tx) => {
    const [phase] = await tx.select().from(runPhases).where(eq(runPhases.id, input.phaseId)).for('update');
    if (!phase) throw notFound('phase', input.phaseId);
    const prior = await findEventByKey(tx, input.event.idempotencyKey);
    if (prior) return { row: phase, event: prior, changed: false };

    assertPhaseTransition(phase.state, input.to);
    const entersRunning = input.to === 'running';
    const ends = input.to === 'completed' || input.to === 'failed';
    const [updated] = await tx
      .update(runPhases)
      .set({
        state: input.to,
        // Every entry into `running` is a new attempt (first try, repair or retry).
        ...(entersRunning ? { attempts: phase.attempts + 1, endedAt: null } : {}),
        ...(entersRunning && !phase.startedAt ? { startedAt: sql`now()` } : {}),
        ...(ends ? { endedAt: sql`now()` } : {}),
      })
      .where(eq(runPhases.id, input.phaseId))
      .returning();
    const { event } = await appendEvent(tx, {
      runId: phase.runId,
      phaseId: phase.id,
      type: input.event.type,
      idempotencyKey: input.event.idempotencyKey,
      payload: { phaseKey: phase.phaseKey, from: phase.state, to: input.to, attempt: updated!.attempts, ...input.event.payload },
    });
    return { row: updated!, event, changed: true };
  });
}

export async function transitionSession(
  executor: Executor,
  input: {
    sessionId: string;
    to: SessionState;
    event: TransitionEvent;
    set?: Partial<Omit<TuiSession, 'id' | 'runId' | 'roleId' | 'state' | 'createdAt' | 'updatedAt'>>;
    /** States in which the session is left as it is (no event): e.g. CRASHED, an agent lost while it waited, recovered when its role works again. */
    unless?: readonly SessionState[];
  },
): Promise<TransitionResult<TuiSession>> {
  return executor.transaction(async (tx) => {
    const [session] = await tx.select().from(tuiSessions).where(eq(tuiSessions.id, input.sessionId)).for('update');
    if (!session) throw notFound('session', input.sessionId);
    const prior = await findEventByKey(tx, input.event.idempotencyKey);
    if (prior) return { row: session, event: prior, changed: false };
    if (input.unless?.includes(session.state)) return { row: session, event: undefined, changed: false };

    assertSessionTransition(session.state, input.to);
    const [updated] = await tx
      .update(tuiSessions)
      .set({ ...input.set, state: input.to, updatedAt: sql`now()` })
      .where(eq(tuiSessions.id, input.sessionId))
      .returning();
    const { event } = await appendEvent(tx, {
      runId: session.runId,
      type: input.event.type,
      idempotencyKey: input.event.idempotencyKey,
      payload: { sessionId: session.id, roleId: session.roleId, from: session.state, to: input.to, ...input.event.payload },
    });
    return { row: updated!, event, changed: true };
  });
}

