// A schedule's fire: the run its slot starts (through the same checks and limits as POST
// /v1/runs), or the recorded reason it started none. Retrying a fire, or firing a slot twice,
// finds what the first one did.
import { and, eq } from 'drizzle-orm';
import { recordSkippedFire, startRun, type StartRunDeps } from '../api/start-run.ts';
import { ApiError } from '../api/server.ts';
import { scheduleFires, schedules } from '../db/schema.ts';
import { isDevflowError } from '../lib/errors.ts';
import { scheduledRunId } from '../lib/scheduled-run-id.ts';
import { scheduledRunRequest } from '../schemas/api.ts';
import type { FireResult } from '../workflows/scheduled-run.ts';
import type { ActivityDeps } from './deps.ts';

export function createScheduleActivities(deps: ActivityDeps) {
  const starts = (): StartRunDeps => {
    if (!deps.starts) throw new Error('this worker cannot start runs: it was given no Temporal client (ActivityDeps.starts)');
    return { db: deps.db, ...deps.starts };
  };
  return {
    async fireSchedule(input: { scheduleId: string; slot: string }): Promise<FireResult> {
      const slot = new Date(input.slot);
      const [recorded] = await deps.db.select().from(scheduleFires).where(and(eq(scheduleFires.scheduleId, input.scheduleId), eq(scheduleFires.slot, slot)));
      if (recorded) return recorded.runId ? { outcome: 'started', runId: recorded.runId } : { outcome: 'skipped', code: recorded.reasonCode ?? 'skipped', reason: recorded.reason ?? '' };
      const [schedule] = await deps.db.select().from(schedules).where(eq(schedules.id, input.scheduleId));
      // Deleted between Temporal's fire and now (or never recorded): nothing to start, nothing to write.
      if (!schedule || schedule.deletedAt) return { outcome: 'skipped', code: 'schedule_deleted', reason: `schedule ${input.scheduleId} no longer exists` };
      const fire = { scheduleId: schedule.id, slot, overlap: schedule.overlap === 'allow' ? ('allow' as const) : ('skip' as const) };
      try {
        const request = scheduledRunRequest.parse(schedule.request);
        const outcome = await startRun(starts(), request, scheduledRunId(schedule.id, slot), { fire });
        return outcome.outcome === 'started' ? { outcome: 'started', runId: outcome.runId } : outcome;
      } catch (error) {
        // A request that no longer passes (its repository gone, its template refused): skipped, and why.
        const refused = error instanceof ApiError ? error.statusCode < 500 : isDevflowError(error) && error.errorClass !== 'recoverable';
        if (!refused) throw error;
        const code = (error as { code: string }).code;
        await recordSkippedFire(deps.db, fire, code, (error as Error).message);
        return { outcome: 'skipped', code, reason: (error as Error).message };
      }
    },

    /** A fire that could not start a run after an hour of tries: recorded, so it is not lost silently. */
    async recordFireFailure(input: { scheduleId: string; slot: string; reason: string }): Promise<void> {
      const [schedule] = await deps.db.select({ id: schedules.id }).from(schedules).where(eq(schedules.id, input.scheduleId));
      if (schedule) await recordSkippedFire(deps.db, { scheduleId: input.scheduleId, slot: new Date(input.slot), overlap: 'skip' }, 'fire_failed', input.reason);
    },
  };
}
