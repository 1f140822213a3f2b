// finalizeRun, on every terminal path: the terminal state (closing what was still open), the
// sessions' last transcripts and their disposal, then the report. Each step is keyed, so a
// retry after a crash at any line ends in the same rows.
import { and, eq, inArray, ne } from 'drizzle-orm';
import { approvalRequests, runPhases, runs, tuiSessions } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { transitionPhase, transitionRun } from '../db/transitions.ts';
import type { RunOutcome } from '../workflows/messages.ts';
import { checkpoint, type ActivityDeps } from './deps.ts';
import { writeRunReport } from './report.ts';
import { createSessionActivities, targetOf } from './sessions.ts';

const TERMINAL_EVENT = { completed: 'run.completed', failed: 'run.failed', aborted: 'run.aborted' } as const;
const OPEN_PHASES = ['running', 'awaiting_artifact', 'validating', 'awaiting_approval'] as const;

export function createFinalizeActivities(deps: ActivityDeps) {
  const { db } = deps;
  const sessions = createSessionActivities(deps);
  return {
    /** Returns no report path when the run was never recorded (its input was refused). */
    async finalizeRun(input: { runId: string; outcome: RunOutcome }): Promise<{ reportPath: string | null }> {
      const { runId, outcome } = input;
      const [exists] = await db.select({ id: runs.id }).from(runs).where(eq(runs.id, runId));
      if (!exists) return { reportPath: null };
      await db.transaction(async (tx) => {
        const [run] = await tx.select().from(runs).where(eq(runs.id, runId)).for('update');
        if (TERMINAL_RUN_STATES.has(run!.state)) return;
        if (outcome.state !== 'completed') {
          const open = await tx.select().from(runPhases).where(and(eq(runPhases.runId, runId), inArray(runPhases.state, [...OPEN_PHASES])));
          for (const phase of open) {
            await transitionPhase(tx, {
              phaseId: phase.id,
              to: 'failed',
              event: { type: 'phase.failed', idempotencyKey: `phase:${phase.id}:ended-by-run`, payload: { reason: outcome.reason } },
            });
          }
          await tx
            .update(approvalRequests)
            .set({ state: 'aborted', decidedAt: new Date() })
            .where(and(eq(approvalRequests.runId, runId), eq(approvalRequests.state, 'pending')));
        }
        await transitionRun(tx, {
          runId,
          to: outcome.state,
          event: { type: TERMINAL_EVENT[outcome.state], idempotencyKey: `run:${runId}:terminal`, payload: { reason: outcome.reason } },
        });
      });
      checkpoint(deps, 'finalizeRun:terminal');

      const live = await db.select().from(tuiSessions).where(and(eq(tuiSessions.runId, runId), ne(tuiSessions.state, 'FAILED_NEEDS_HUMAN')));
      for (const session of live) {
        await sessions.captureTranscript({ sessionId: session.id });
        await deps.drivers.forBackend(session.backend).dispose(targetOf(session));
      }
      checkpoint(deps, 'finalizeRun:disposed');
      return { reportPath: await writeRunReport(db, runId, deps.workspaceRoot) };
    },
  };
}
