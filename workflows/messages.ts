// The run workflow's input, messages and status, imported by both the workflow and its clients.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { DecisionAction, RunState } from '../db/state-machines.ts';
import { workflowIds } from '../lib/keys.ts';
import type { PhaseScenarios } from '../sessions/scenarios.ts';

export const RUN_BACKENDS = ['fake', 'scripted', 'tmux'] as const;
export type RunBackend = (typeof RUN_BACKENDS)[number];

export interface RunTiming {
  /** How long to wait for a phase's artifact (overrides the template's per-phase value). */
  artifactTimeoutMs?: number;
  /** A file whose size and mtime are unchanged this long is complete. */
  stabilityMs?: number;
  /** Fallback poll interval when no file-system event arrives. */
  pollMs?: number;
  /** No output for this long while BUSY = HUNG. */
  maxHungMs?: number;
}

export interface RunInput {
  runId: string;
  templateId: string;
  repoPath: string;
  baseBranch: string;
  requirementsMd: string;
  /** The agent of every role not named in `agents`. */
  backend: RunBackend;
  /** The agent of each role, chosen when the run was started (persona default, or the request). */
  agents?: Record<string, string>;
  /** Real agents talk to devflow's playback model (offline demos and tests) instead of their own. */
  playback?: boolean;
  scenarios?: Record<string, PhaseScenarios>;
  timing?: RunTiming;
  /** How many times a person may send one phase back for another try (default 3); then the run fails. */
  maxPhaseRetries?: number;
}

/** `devflow-run:<runId>` (built in lib/keys.ts with every other id). */
export const runWorkflowId = workflowIds.run;

export interface Decision {
  approvalRequestId: string;
  action: DecisionAction;
  clientToken: string;
  comment?: string;
  decidedBy?: string;
}

export interface AbortRequest {
  clientToken: string;
  reason?: string;
}

export interface PendingGate {
  approvalRequestId: string;
  gateKey: string;
  kind: 'approval' | 'human';
  phaseKey: string | null;
}

export interface RunStatus {
  runId: string;
  state: RunState;
  phaseKey: string | null;
  attempt: number;
  pendingGate: PendingGate | null;
}

export interface RunOutcome {
  state: 'completed' | 'failed' | 'aborted';
  reason: string;
}

/**
 * Sent by a worker's session manager: a role's agent is gone. With `approvalRequestId`, a gate
 * was opened for a person; without, devflow restarts the agent itself (its one automatic recovery).
 */
export interface SessionLost {
  approvalRequestId?: string;
  sessionId: string;
  roleId: string;
}

export const sessionLostSignal = defineSignal<[SessionLost]>('sessionLost');
export const decisionSignal = defineSignal<[Decision]>('decision');
export const abortSignal = defineSignal<[AbortRequest]>('abort');
export const statusQuery = defineQuery<RunStatus>('status');
