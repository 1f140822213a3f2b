import { transitionPhase, transitionSession } from '../db/transitions.ts';
import { checkpoint, type ActivityDeps } from './deps.ts';
import { createSessionActivities } from './sessions.ts';

export function createPhaseActivities(deps: ActivityDeps) {
  const sessions = createSessionActivities(deps);
  return {
    /** A valid artifact and no gate: the phase is done, its session idle, its output kept. */
    async completePhase(input: { phaseId: string; sessionId: string; attempt: number }): Promise<void> {
      await deps.db.transaction(async (tx) => {
        await transitionPhase(tx, { phaseId: input.phaseId, to: 'completed', event: { type: 'phase.completed', idempotencyKey: `phase:${input.phaseId}:completed` } });
        await transitionSession(tx, {
          sessionId: input.sessionId,
          to: 'READY',
          event: { type: 'session.idle', idempotencyKey: `session:${input.sessionId}:idle:${input.phaseId}:${input.attempt}` },
        });
      });
      checkpoint(deps, 'completePhase:transitions');
      await sessions.captureTranscript({ sessionId: input.sessionId });
    },
  };
}
