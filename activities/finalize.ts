// The end of a run, as steps the workflow sequences on every terminal path: `endRun` (the
// terminal state, closing what was still open), `closeSession` for each of its sessions (last
// transcript and usage kept, agent disposed), `writeReport`; from era 7 the last two are one
// step, `closeRun`. Each is keyed, so a retry after a crash at any line ends in the same rows.
// `finalizeRun` does the three at once, for runs whose history scheduled it before the split.
import { and, eq, inArray } from 'drizzle-orm';
import { closePendingApprovals } from '../db/approvals.ts';
import { writeRunReport } from '../db/report.ts';
import { runPhases, runs, tuiSessions } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { transitionPhase, transitionRun } from '../db/transitions.ts';
import { phaseKeys, runKeys } from '../lib/keys.ts';
import { sessionLifecycle } from '../sessions/lifecycle.ts';
import type { RunOutcome } from '../workflows/messages.ts';
import { checkpoint, type ActivityDeps } from './deps.ts';

const TERMINAL_EVENT = { completed: 'run.completed', failed: 'run.failed', aborted: 'run.aborted' } as const;
const OPEN_PHASES = ['running', 'awaiting_artifact', 'validating', 'awaiting_approval'] as const;

export function createFinalizeActivities(deps: ActivityDeps) {
  const { db } = deps;
  const lifecycle = sessionLifecycle(deps);

  const steps = {
    /**
     * The run's terminal state, with its open phases failed and its open requests closed.
     * Returns its sessions (to close), or `recorded: false` when the run was never recorded
     * (its input was refused before it existed).
     */
    async endRun(input: { runId: string; outcome: RunOutcome }): Promise<{ recorded: boolean; sessionIds: string[] }> {
      const { runId, outcome } = input;
      const [exists] = await db.select({ id: runs.id }).from(runs).where(eq(runs.id, runId));
      if (!exists) return { recorded: false, sessionIds: [] };
      await db.transaction(async (tx) => {
        const [run] = await tx.select().from(runs).where(eq(runs.id, runId)).for('update');
        if (TERMINAL_RUN_STATES.has(run!.state)) return;
        if (outcome.state !== 'completed') {
          const open = await tx.select().from(runPhases).where(and(eq(runPhases.runId, runId), inArray(runPhases.state, [...OPEN_PHASES])));
          for (const phase of open) {
            await transitionPhase(tx, {
              phaseId: phase.id,
              to: 'failed',
              event: { type: 'phase.failed', idempotencyKey: phaseKeys.endedByRun(phase.id), payload: { reason: outcome.reason } },
            });
          }
          await closePendingApprovals(tx, { runId, reason: `the run ended ${outcome.state}` });
        }
        await transitionRun(tx, {
          runId,
          to: outcome.state,
          event: { type: TERMINAL_EVENT[outcome.state], idempotencyKey: runKeys.terminal(runId), payload: { reason: outcome.reason } },
        });
      });
      checkpoint(deps, 'finalizeRun:terminal');
      const sessions = await db.select({ id: tuiSessions.id }).from(tuiSessions).where(eq(tuiSessions.runId, runId)).orderBy(tuiSessions.createdAt);
      return { recorded: true, sessionIds: sessions.map((s) => s.id) };
    },

    closeSession: lifecycle.closeSession,

    async writeReport(input: { runId: string }): Promise<{ reportPath: string }> {
      return { reportPath: await writeRunReport(db, input.runId, deps.workspaceRoot) };
    },
  };

  return {
    ...steps,
    /**
     * The host's part of a run's end in one step (era 7 on): each session closed, then the report.
     * Both parts are keyed, so a retry ends in the same rows and the same report.
     */
    async closeRun(input: { runId: string; sessionIds: string[] }): Promise<{ reportPath: string }> {
      for (const sessionId of input.sessionIds) await steps.closeSession({ sessionId });
      return steps.writeReport({ runId: input.runId });
    },
    /** The three steps at once (runs that scheduled it before they were split). */
    async finalizeRun(input: { runId: string; outcome: RunOutcome }): Promise<{ reportPath: string | null }> {
      const ended = await steps.endRun(input);
      if (!ended.recorded) return { reportPath: null };
      for (const sessionId of ended.sessionIds) await steps.closeSession({ sessionId });
      checkpoint(deps, 'finalizeRun:disposed');
      return steps.writeReport({ runId: input.runId });
    },
  };
}
