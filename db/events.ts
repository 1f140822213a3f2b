// The run event log: append-only, per-run gapless `seq`, idempotent by key.
import { and, eq, gt, asc, inArray, sql } from 'drizzle-orm';
import { DevflowError } from '../lib/errors.ts';
import type { Executor } from './client.ts';
import { notificationOutbox, runEvents, runs } from './schema.ts';
import type { EventType } from './state-machines.ts';

/** The events a person is told of by webhook: a gate opened (approval or human), a run ended. */
export const NOTIFIED_EVENT_TYPES: ReadonlySet<string> = new Set(['approval.requested', 'run.completed', 'run.failed', 'run.aborted']);

export type RunEvent = typeof runEvents.$inferSelect;

export interface NewEvent {
  runId: string;
  phaseId?: string | null;
  type: EventType;
  payload?: Record<string, unknown>;
  /** The same logical fact always carries the same key; appending it again is a no-op. */
  idempotencyKey: string;
}

export interface AppendResult {
  event: RunEvent;
  created: boolean;
}

/**
 * Appends an event. Gapless `seq` comes from locking the run row for the rest of the
 * transaction: appenders to one run queue behind each other, and the next seq is read
 * after the lock is held. Called inside a caller's transaction it joins it (as a savepoint),
 * so a state change and its event commit or roll back together.
 */
export async function appendEvent(executor: Executor, event: NewEvent): Promise<AppendResult> {
  return executor.transaction(async (tx) => {
    const locked = await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, event.runId)).for('update');
    if (locked.length === 0) {
      throw new DevflowError({
        code: 'run_not_found',
        message: `cannot append ${event.type}: run ${event.runId} does not exist`,
      });
    }
    const existing = await findEventByKey(tx, event.idempotencyKey);
    if (existing) {
      // The same fact written again is a no-op; another fact under its key is a bug to stop at.
      if (existing.runId !== event.runId || existing.type !== event.type) {
        throw new DevflowError({
          code: 'internal_state_corruption',
          message: `event key ${event.idempotencyKey} already holds ${existing.type} of run ${existing.runId}, not ${event.type} of run ${event.runId}`,
        });
      }
      return { event: existing, created: false };
    }

    const [next] = await tx
      .select({ seq: sql<number>`coalesce(max(${runEvents.seq}), 0) + 1`.mapWith(Number) })
      .from(runEvents)
      .where(eq(runEvents.runId, event.runId));
    const [inserted] = await tx
      .insert(runEvents)
      .values({
        runId: event.runId,
        phaseId: event.phaseId ?? null,
        seq: next!.seq,
        type: event.type,
        payload: event.payload ?? {},
        idempotencyKey: event.idempotencyKey,
      })
      .returning();
    // A person is told of it (webhooks): queued with the event, in the same transaction.
    if (NOTIFIED_EVENT_TYPES.has(event.type)) await tx.insert(notificationOutbox).values({ eventId: inserted!.id, runId: event.runId });
    return { event: inserted!, created: true };
  });
}

/** A run's events of these types, in seq order. */
export async function listEventsOfTypes(executor: Executor, runId: string, types: string[]): Promise<RunEvent[]> {
  return executor.select().from(runEvents).where(and(eq(runEvents.runId, runId), inArray(runEvents.type, types))).orderBy(asc(runEvents.seq));
}

export async function findEventByKey(executor: Executor, idempotencyKey: string): Promise<RunEvent | undefined> {
  const [row] = await executor.select().from(runEvents).where(eq(runEvents.idempotencyKey, idempotencyKey));
  return row;
}

export async function listEvents(executor: Executor, runId: string, afterSeq = 0): Promise<RunEvent[]> {
  return executor
    .select()
    .from(runEvents)
    .where(and(eq(runEvents.runId, runId), gt(runEvents.seq, afterSeq)))
    .orderBy(asc(runEvents.seq));
}
