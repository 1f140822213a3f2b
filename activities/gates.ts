// Gates: approval gates declared by the template, human gates raised by failures, and the
// decisions that resolve them. Each gate opens in one transaction with all its state changes.
import { eq } from 'drizzle-orm';
import { closePendingApprovals, gateThatPausedRun, openApprovalRequest, recordDecision as recordDecisionRow, type DecisionInput } from '../db/approvals.ts';
import { findEventByKey } from '../db/events.ts';
import { runPhases, runs } from '../db/schema.ts';
import type { DecisionAction, SessionState } from '../db/state-machines.ts';
import { transitionPhase, transitionRun, transitionSession } from '../db/transitions.ts';
import { gateKeys, phaseKeys, runKeys, sessionKeys } from '../lib/keys.ts';
import { checkpoint, type ActivityDeps } from './deps.ts';
import { WORKING_PHASE_STATES } from '../sessions/lifecycle.ts';

/** A gate opened, or (the run was paused under the step) the gate that paused it, where the workflow waits instead. */
export type GateOpened = { approvalRequestId: string } | { pausedBy: string };

export function createGateActivities(deps: ActivityDeps) {
  const { db } = deps;
  return {
    /**
     * Valid artifact, gated phase: phase, session and run wait for a person. A gate the template
     * did not declare (a loop out of rounds) says why it was raised.
     */
    async openApprovalGate(input: { runId: string; phaseId: string; sessionId: string; gateKey: string; attempt: number; reason?: string }): Promise<GateOpened> {
      const key = (what: Parameters<typeof gateKeys>[0]) => gateKeys(what, input.phaseId, input.gateKey, input.attempt);
      await checkpoint(deps, 'openApprovalGate:start');
      return db.transaction(async (tx) => {
        const pausedBy = await gateThatPausedRun(tx, input.runId);
        if (pausedBy) return { pausedBy };
        await transitionPhase(tx, { phaseId: input.phaseId, to: 'awaiting_approval', event: { type: 'phase.awaiting_approval', idempotencyKey: key('phase-gate') } });
        checkpoint(deps, 'openApprovalGate:phase');
        await transitionSession(tx, { sessionId: input.sessionId, to: 'WAITING_FOR_APPROVAL', event: { type: 'session.waiting', idempotencyKey: key('session-gate') }, unless: ['CRASHED', 'FAILED_NEEDS_HUMAN'] });
        await transitionRun(tx, {
          runId: input.runId,
          to: 'awaiting_approval',
          event: { type: 'run.awaiting_approval', idempotencyKey: key('run-gate'), payload: { gateKey: input.gateKey } },
          set: { currentPhaseId: input.phaseId },
        });
        const request = await openApprovalRequest(tx, { runId: input.runId, phaseId: input.phaseId, gateKey: input.gateKey, kind: 'approval', key: key('gate'), payload: { attempt: input.attempt, ...(input.reason ? { reason: input.reason } : {}) } });
        return { approvalRequestId: request.id };
      });
    },

    /**
     * A failure the system cannot fix by itself: the phase fails, the session is marked,
     * the run pauses (remembering where from) and a person is asked.
     */
    async openHumanGate(input: {
      runId: string;
      phaseId: string;
      sessionId: string | null;
      sessionTo: Extract<SessionState, 'CRASHED' | 'FAILED_NEEDS_HUMAN'> | null;
      gateKey: string;
      attempt: number;
      reason: string;
      hint?: string;
    }): Promise<GateOpened> {
      const key = (what: Parameters<typeof gateKeys>[0]) => gateKeys(what, input.phaseId, input.gateKey, input.attempt);
      const payload = { reason: input.reason, attempt: input.attempt, ...(input.hint ? { hint: input.hint } : {}) };
      await checkpoint(deps, 'openHumanGate:start');
      return db.transaction(async (tx) => {
        // Paused already, and not by this gate (a retry of this step finds its own event): wait at that gate.
        const pausedBy = (await findEventByKey(tx, key('run-paused'))) ? undefined : await gateThatPausedRun(tx, input.runId);
        if (pausedBy) return { pausedBy };
        await transitionPhase(tx, { phaseId: input.phaseId, to: 'failed', event: { type: 'phase.failed', idempotencyKey: key('phase-failed'), payload } });
        checkpoint(deps, 'openHumanGate:phase');
        if (input.sessionId && input.sessionTo) {
          // A session the failing step already gave up on (its agent lost a second time) stays as it is.
          await transitionSession(tx, {
            sessionId: input.sessionId,
            to: input.sessionTo,
            event: { type: input.sessionTo === 'CRASHED' ? 'session.crashed' : 'session.failed', idempotencyKey: key('session-failed'), payload },
            unless: ['FAILED_NEEDS_HUMAN'],
          });
        }
        await transitionRun(tx, {
          runId: input.runId,
          to: 'paused',
          event: { type: 'run.paused', idempotencyKey: key('run-paused'), payload: { gateKey: input.gateKey, ...payload } },
          set: { currentPhaseId: input.phaseId },
        });
        const request = await openApprovalRequest(tx, { runId: input.runId, phaseId: input.phaseId, gateKey: input.gateKey, kind: 'human', key: key('gate'), payload });
        return { approvalRequestId: request.id };
      });
    },

    /** Records a decision; the first decision on a request wins (see db/approvals.ts). */
    async recordDecision(input: DecisionInput): Promise<{ action: DecisionAction; decisionId: string | null; comment: string | null }> {
      const { action, decisionId, comment } = await recordDecisionRow(db, input, () => checkpoint(deps, 'recordDecision:request'));
      return { action, decisionId, comment };
    },

    /** An approved approval gate: the phase is done, its session idle, the run executing again. */
    async passApprovalGate(input: { runId: string; phaseId: string; sessionId: string; approvalRequestId: string }): Promise<void> {
      await db.transaction(async (tx) => {
        await transitionPhase(tx, { phaseId: input.phaseId, to: 'completed', event: { type: 'phase.completed', idempotencyKey: phaseKeys.completedAtGate(input.approvalRequestId) } });
        checkpoint(deps, 'passApprovalGate:phase');
        // An agent lost while its gate waited stays CRASHED: it is not needed until its role works again.
        await transitionSession(tx, { sessionId: input.sessionId, to: 'READY', event: { type: 'session.idle', idempotencyKey: sessionKeys.idleAfterApproval(input.approvalRequestId) }, unless: ['CRASHED', 'FAILED_NEEDS_HUMAN'] });
        await transitionRun(tx, { runId: input.runId, to: 'executing', event: { type: 'run.resumed', idempotencyKey: runKeys.resumedAfterGate(input.approvalRequestId) } });
      });
    },

    /**
     * The phase's agent process was lost mid-attempt (a stack or host restart): the attempt fails
     * with process_lost, and the workflow tries again once devflow has restarted the agent.
     */
    async failAttemptForLostAgent(input: { phaseId: string; attempt: number; sessionId: string }): Promise<void> {
      const [phase] = await db.select().from(runPhases).where(eq(runPhases.id, input.phaseId));
      if (!phase || !WORKING_PHASE_STATES.includes(phase.state)) return;
      await transitionPhase(db, {
        phaseId: input.phaseId,
        to: 'failed',
        event: { type: 'phase.failed', idempotencyKey: phaseKeys.lostAgent(input.phaseId, input.attempt), payload: { reason: 'process_lost', attempt: input.attempt, sessionId: input.sessionId, next: 'devflow restarts the agent with its conversation and tries the phase again' } },
      });
    },

    /**
     * The session manager found the phase's agent gone and paused the run: the attempt in
     * flight fails, and a request still open on this phase is superseded.
     */
    async failPhaseForLostSession(input: { phaseId: string; approvalRequestId: string }): Promise<void> {
      await db.transaction(async (tx) => {
        const [phase] = await tx.select().from(runPhases).where(eq(runPhases.id, input.phaseId));
        if (phase && ['running', 'awaiting_artifact', 'validating', 'awaiting_approval'].includes(phase.state)) {
          await transitionPhase(tx, {
            phaseId: input.phaseId,
            to: 'failed',
            event: { type: 'phase.failed', idempotencyKey: phaseKeys.lostSession(input.phaseId, input.approvalRequestId), payload: { reason: 'session_recovery_required' } },
          });
        }
        if (phase) await closePendingApprovals(tx, { runId: phase.runId, phaseId: input.phaseId, reason: 'the phase was superseded: its agent session was lost' });
      });
    },

    /**
     * An approved human gate: the run leaves `paused` for the state it was paused from and,
     * as the phase is retried, goes on executing.
     */
    async resumeAfterHumanGate(input: { runId: string; approvalRequestId: string }): Promise<void> {
      await db.transaction(async (tx) => {
        const [run] = await tx.select().from(runs).where(eq(runs.id, input.runId)).for('update');
        const back = await transitionRun(tx, {
          runId: input.runId,
          to: run!.state === 'paused' ? (run!.pausedFromState ?? 'executing') : run!.state,
          event: { type: 'run.resumed', idempotencyKey: runKeys.resumedAfterGate(input.approvalRequestId) },
        });
        if (back.row.state === 'awaiting_approval') {
          await transitionRun(tx, { runId: input.runId, to: 'executing', event: { type: 'run.resumed', idempotencyKey: runKeys.executingAfterGate(input.approvalRequestId) } });
        }
      });
    },
  };
}
