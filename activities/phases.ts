// Completing a phase that needs no gate, and sending the work back when its artifact asks.
import { eq } from 'drizzle-orm';
import { gateThatPausedRun } from '../db/approvals.ts';
import { appendEvent, findEventByKey } from '../db/events.ts';
import { runPhases } from '../db/schema.ts';
import { transitionPhase, transitionSession } from '../db/transitions.ts';
import { phaseKeys, sessionKeys } from '../lib/keys.ts';
import { sessionLifecycle } from '../sessions/lifecycle.ts';
import { checkpoint, type ActivityDeps } from './deps.ts';

export function createPhaseActivities(deps: ActivityDeps) {
  const sessions = sessionLifecycle(deps);
  return {
    /**
     * A valid artifact and no gate: the phase is done, its session idle, its output kept. When
     * the session manager paused the run under this step, nothing is completed and the gate that
     * paused it is returned, for the workflow to wait at.
     */
    async completePhase(input: { phaseId: string; sessionId: string; attempt: number; round?: number }): Promise<{ pausedBy?: string }> {
      checkpoint(deps, 'completePhase:start');
      // A phase a loop sent back completes once per round.
      const completedKey = (input.round ?? 1) > 1 ? phaseKeys.completedInRound(input.phaseId, input.round!) : phaseKeys.completed(input.phaseId);
      const pausedBy = await deps.db.transaction(async (tx) => {
        const [phase] = await tx.select({ runId: runPhases.runId }).from(runPhases).where(eq(runPhases.id, input.phaseId));
        const paused = (await findEventByKey(tx, completedKey)) ? undefined : await gateThatPausedRun(tx, phase!.runId);
        if (paused) return paused;
        await transitionPhase(tx, { phaseId: input.phaseId, to: 'completed', event: { type: 'phase.completed', idempotencyKey: completedKey, ...(input.round ? { payload: { round: input.round } } : {}) } });
        await transitionSession(tx, {
          sessionId: input.sessionId,
          to: 'READY',
          event: { type: 'session.idle', idempotencyKey: sessionKeys.idleAfterPhase(input.sessionId, input.phaseId, input.attempt) },
          // Its agent was lost after it wrote the artifact: recovered (or, lost for good, replaced) when the role works next.
          unless: ['CRASHED', 'FAILED_NEEDS_HUMAN'],
        });
        return undefined;
      });
      if (pausedBy) return { pausedBy };
      checkpoint(deps, 'completePhase:transitions');
      await sessions.captureTranscript({ sessionId: input.sessionId });
      return {};
    },

    /**
     * This phase's artifact sent the work back to an earlier phase: the `round`-th time, with what
     * it quoted. The phases between are run again from there.
     */
    async recordLoop(input: { runId: string; phaseId: string; fromPhase: string; toPhase: string; round: number; maxRounds: number; field: string; equals: unknown; quoted: string | null; value: unknown }): Promise<void> {
      const { runId, phaseId, ...payload } = input;
      await appendEvent(deps.db, { runId, phaseId, type: 'phase.looped', idempotencyKey: phaseKeys.looped(phaseId, input.round), payload });
    },
  };
}
