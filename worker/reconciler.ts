// Stranded runs (SPEC section 12): a run row that is not terminal while its workflow is gone or
// closed (terminated from the Web UI, failed by a bug, a namespace reset, never started) would
// read `running` forever and keep its agents alive. Every worker sweeps on a timer: it settles
// such runs as the workflow would have (terminal state with the reason, sessions closed, the
// report), and disposes the agents of ended runs that still live on its own host. Every step is
// idempotent, so several workers sweeping at once end in the same rows.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { and, eq, inArray, notInArray } from 'drizzle-orm';
import type { createFinalizeActivities } from '../activities/finalize.ts';
import type { Database } from '../db/client.ts';
import { runs, tuiSessions } from '../db/schema.ts';
import { TERMINAL_RUN_STATES, TERMINAL_SESSION_STATES } from '../db/state-machines.ts';
import { every } from '../lib/every.ts';
import type { Logger } from '../lib/logger.ts';
import { runWorkflowId, type RunOutcome } from '../workflows/messages.ts';

export interface ReconcilerOptions {
  db: Database;
  client: Client;
  hostId: string;
  /** The run-ending steps, bound to this host (its drivers dispose its agents). */
  finalize: Pick<ReturnType<typeof createFinalizeActivities>, 'endRun' | 'closeSession' | 'writeReport'>;
  log?: Logger;
  /** A run with no workflow younger than this is left alone (default 30 s). */
  graceMs?: number;
  /** A `planning` run with no workflow is given this long for its start to be retried (default 10 min). */
  planningGraceMs?: number;
}

export interface SettledRun {
  runId: string;
  /** What was found of its workflow: TERMINATED, FAILED, TIMED_OUT, CANCELED, COMPLETED, NOT_FOUND, … */
  workflow: string;
  outcome: RunOutcome;
}

export interface SweepResult {
  settled: SettledRun[];
  /** Sessions of ended runs on this host whose agents were disposed. */
  disposed: string[];
}

const WHY: Record<string, string> = {
  TERMINATED: 'was terminated (from the Temporal Web UI or CLI)',
  FAILED: 'failed',
  TIMED_OUT: 'timed out',
  CANCELED: 'was cancelled',
  COMPLETED: 'completed without recording the end of the run',
  CONTINUED_AS_NEW: 'continued as new',
  NOT_FOUND: 'does not exist (never started, or its namespace was reset)',
};

export class Reconciler {
  constructor(private readonly options: ReconcilerOptions) {}

  async sweep(): Promise<SweepResult> {
    const settled: SettledRun[] = [];
    for (const run of await this.openRuns()) {
      const found = await this.workflowOf(run.id);
      if (found === 'RUNNING') continue;
      // No workflow yet may be one being started: a planning run gets time for its start to be retried.
      const age = Date.now() - run.createdAt.getTime();
      if (found === 'NOT_FOUND' && age < (run.state === 'planning' ? (this.options.planningGraceMs ?? 600_000) : (this.options.graceMs ?? 30_000))) continue;
      const outcome: RunOutcome = {
        state: found === 'CANCELED' ? 'aborted' : 'failed',
        reason: `stranded: its workflow ${WHY[found] ?? `is ${found}`}; devflow settled the run`,
      };
      const ended = await this.options.finalize.endRun({ runId: run.id, outcome });
      if (!ended.recorded) continue;
      await this.closeOwnSessions(run.id);
      await this.options.finalize.writeReport({ runId: run.id });
      settled.push({ runId: run.id, workflow: found, outcome });
      this.options.log?.warn({ runId: run.id, workflow: found, outcome }, 'settled a stranded run');
    }
    return { settled, disposed: await this.disposeLeftovers() };
  }

  private async openRuns() {
    return this.options.db
      .select({ id: runs.id, state: runs.state, createdAt: runs.createdAt })
      .from(runs)
      .where(notInArray(runs.state, [...TERMINAL_RUN_STATES]))
      .orderBy(runs.createdAt);
  }

  private async workflowOf(runId: string): Promise<string> {
    try {
      const described = await this.options.client.workflow.getHandle(runWorkflowId(runId)).describe();
      return described.status.name;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return 'NOT_FOUND';
      throw error;
    }
  }

  private async closeOwnSessions(runId: string): Promise<void> {
    const own = await this.options.db
      .select({ id: tuiSessions.id })
      .from(tuiSessions)
      .where(and(eq(tuiSessions.runId, runId), eq(tuiSessions.hostId, this.options.hostId)));
    for (const session of own) await this.options.finalize.closeSession({ sessionId: session.id });
  }

  /** Live sessions of ended runs on this host (another host settled the run): closed, their agents disposed, the report written if missing. */
  private async disposeLeftovers(): Promise<string[]> {
    const left = await this.options.db
      .select({ id: tuiSessions.id, runId: tuiSessions.runId, reportPath: runs.finalReportPath })
      .from(tuiSessions)
      .innerJoin(runs, eq(runs.id, tuiSessions.runId))
      .where(and(eq(tuiSessions.hostId, this.options.hostId), inArray(runs.state, [...TERMINAL_RUN_STATES]), notInArray(tuiSessions.state, [...TERMINAL_SESSION_STATES])));
    for (const session of left) {
      await this.options.finalize.closeSession({ sessionId: session.id });
      if (session.reportPath === null) await this.options.finalize.writeReport({ runId: session.runId });
    }
    return left.map((s) => s.id);
  }
}

/** Sweeps now and every `intervalMs` until stopped. */
export function startReconciler(reconciler: Reconciler, intervalMs: number, log?: Logger): { stop(): Promise<void> } {
  return every(
    intervalMs,
    async () => {
      const result = await reconciler.sweep();
      if (result.settled.length + result.disposed.length > 0) log?.info({ settled: result.settled.length, disposed: result.disposed.length }, 'reconciler sweep');
    },
    (error) => log?.warn({ error: String(error) }, 'reconciler sweep failed'),
  );
}
