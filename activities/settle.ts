// One step from "the agent was prompted" to "the phase's work is recorded": wait for the artifact,
// validate it, and when it is valid and sends nothing back, complete the phase or open its gate,
// all on the run's host without going back to Temporal in between. The separate steps
// (awaitArtifact, validateArtifact, completePhase, captureTranscript, openApprovalGate) stay for
// runs recorded before this one (and for the paths this one leaves to the workflow).
import { createArtifactActivities, type AwaitArtifactInput } from './artifacts.ts';
import type { ActivityDeps } from './deps.ts';
import { createGateActivities, type GateOpened } from './gates.ts';
import { createPhaseActivities } from './phases.ts';
import { sessionLifecycle } from '../sessions/lifecycle.ts';

export interface SettleArtifactInput extends AwaitArtifactInput {
  runId: string;
  phaseId: string;
  schemaId: string;
  sessionId: string;
  loop?: { field: string; equals: unknown; quote?: string };
  /** Which pass over the phase (a loop sent the work back), for completing it. */
  round?: number;
  /** The phase's gate: a valid artifact opens it (after its transcript is kept) instead of completing the phase. */
  gateKey?: string;
}

export type SettleArtifactResult =
  | { status: 'timeout'; elapsedMs: number; agentGone?: true }
  | {
      status: 'found';
      valid: boolean;
      errors: string[];
      loop?: { matched: boolean; quote?: unknown };
      /** What the step recorded beyond the validation: nothing (invalid, or sent back), the phase completed, or its gate. */
      settled?: { completed: { pausedBy?: string } } | { gate: GateOpened };
    };

export function createSettleActivities(deps: ActivityDeps) {
  const artifactSteps = createArtifactActivities(deps);
  const phases = createPhaseActivities(deps);
  const gates = createGateActivities(deps);
  const sessions = sessionLifecycle(deps);
  return {
    async settleArtifact(input: SettleArtifactInput): Promise<SettleArtifactResult> {
      const waited = await artifactSteps.awaitArtifact(input);
      if (waited.status === 'timeout') return waited;
      const { runId, phaseId, attempt, artifactPath, schemaId, loop } = input;
      const validation = await artifactSteps.validateArtifact({ runId, phaseId, attempt, artifactPath, schemaId, ...(loop ? { loop } : {}) });
      const found = { status: 'found' as const, valid: validation.valid, errors: validation.errors, ...(validation.loop ? { loop: validation.loop } : {}) };
      // Invalid (a repair prompt follows) or sending the work back (the workflow counts rounds): the workflow goes on from here.
      if (!validation.valid || validation.loop?.matched) return found;
      if (input.gateKey) {
        // Kept before the gate opens, so a person sees the transcript and usage while deciding.
        await sessions.captureTranscript({ sessionId: input.sessionId });
        const gate = await gates.openApprovalGate({ runId, phaseId, sessionId: input.sessionId, gateKey: input.gateKey, attempt });
        return { ...found, settled: { gate } };
      }
      const completed = await phases.completePhase({ phaseId, sessionId: input.sessionId, attempt, ...(input.round ? { round: input.round } : {}) });
      return { ...found, settled: { completed } };
    },
  };
}
