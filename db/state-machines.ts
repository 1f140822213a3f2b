// The three state machines of devflow (SPEC section 4). Every write that changes a run,
// phase or session state asks this module first; an illegal move throws
// `internal_state_corruption` before anything is written.
import { DevflowError } from '../lib/errors.ts';

export const RUN_STATES = [
  'planning',
  'executing',
  'awaiting_approval',
  'paused',
  'completed',
  'failed',
  'aborted',
] as const;
export type RunState = (typeof RUN_STATES)[number];

export const PHASE_STATES = [
  'pending',
  'running',
  'awaiting_artifact',
  'validating',
  'awaiting_approval',
  'completed',
  'failed',
] as const;
export type PhaseState = (typeof PHASE_STATES)[number];

export const SESSION_STATES = [
  'CREATED',
  'BOOTSTRAPPING',
  'READY',
  'BUSY',
  'WAITING_FOR_APPROVAL',
  'ARTIFACT_TIMEOUT',
  'HUNG',
  'CRASHED',
  'RESUMING',
  'REBOOTSTRAPPED',
  'FAILED_NEEDS_HUMAN',
  'CLOSED',
] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** `closed`: left open when its phase was superseded or its run ended, so nobody decided it. */
export const APPROVAL_STATES = ['pending', 'approved', 'rejected', 'aborted', 'closed'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

export const DECISION_ACTIONS = ['approve', 'reject', 'abort'] as const;
export type DecisionAction = (typeof DECISION_ACTIONS)[number];

export const TERMINAL_RUN_STATES: ReadonlySet<RunState> = new Set(['completed', 'failed', 'aborted']);

type Table<S extends string> = Readonly<Record<S, readonly S[]>>;

// Runs. Leaving `paused` is only allowed back to the state it was paused from
// (checked in assertRunTransition) or to a terminal state.
const RUN_TRANSITIONS: Table<RunState> = {
  planning: ['executing', 'failed', 'aborted'],
  executing: ['awaiting_approval', 'paused', 'completed', 'failed', 'aborted'],
  awaiting_approval: ['executing', 'paused', 'failed', 'aborted'],
  paused: ['executing', 'awaiting_approval', 'failed', 'aborted'],
  completed: [],
  failed: [],
  aborted: [],
};

// Phases. `running` is re-entered for a repair or a retry (the attempt counter goes up);
// a failed phase is re-entered only when a human gate approves a retry, a completed one only
// when a later phase's loop sends the work back to it.
const PHASE_TRANSITIONS: Table<PhaseState> = {
  pending: ['running'],
  running: ['awaiting_artifact', 'failed'],
  awaiting_artifact: ['validating', 'running', 'failed'],
  validating: ['awaiting_approval', 'completed', 'running', 'failed'],
  awaiting_approval: ['completed', 'failed'],
  completed: ['running'],
  failed: ['running'],
};

// Sessions. Any live state may fail for good (FAILED_NEEDS_HUMAN) or be closed when its run
// ends and its agent is disposed (CLOSED); both are terminal.
const SESSION_TRANSITIONS: Table<SessionState> = {
  CREATED: ['BOOTSTRAPPING', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  BOOTSTRAPPING: ['READY', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  // READY and WAITING_FOR_APPROVAL may be found CRASHED: their agent process is gone (process_lost).
  READY: ['BUSY', 'WAITING_FOR_APPROVAL', 'CRASHED', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  BUSY: ['READY', 'WAITING_FOR_APPROVAL', 'ARTIFACT_TIMEOUT', 'HUNG', 'CRASHED', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  WAITING_FOR_APPROVAL: ['READY', 'CRASHED', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  ARTIFACT_TIMEOUT: ['RESUMING', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  HUNG: ['RESUMING', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  CRASHED: ['RESUMING', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  RESUMING: ['REBOOTSTRAPPED', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  REBOOTSTRAPPED: ['READY', 'FAILED_NEEDS_HUMAN', 'CLOSED'],
  FAILED_NEEDS_HUMAN: [],
  CLOSED: [],
};

export const TERMINAL_SESSION_STATES: ReadonlySet<SessionState> = new Set(['FAILED_NEEDS_HUMAN', 'CLOSED']);

// Approval requests: decided once (approve, reject, abort), or closed undecided.
const APPROVAL_TRANSITIONS: Table<ApprovalState> = {
  pending: ['approved', 'rejected', 'aborted', 'closed'],
  approved: [],
  rejected: [],
  aborted: [],
  closed: [],
};

/** The state a decision puts its request in. */
export const DECIDED_STATE: Record<DecisionAction, 'approved' | 'rejected' | 'aborted'> = { approve: 'approved', reject: 'rejected', abort: 'aborted' };

export type Machine = 'run' | 'phase' | 'session' | 'approval';

function illegal(machine: Machine, from: string, to: string, why = 'not an allowed transition'): DevflowError {
  return new DevflowError({
    code: 'internal_state_corruption',
    message: `illegal ${machine} transition ${from} -> ${to}: ${why}`,
    recoveryHint: 'this is a devflow bug or a manual database edit; inspect the run events before retrying',
    details: { machine, from, to },
  });
}

export function canTransitionRun(from: RunState, to: RunState, pausedFrom?: RunState | null): boolean {
  if (!RUN_TRANSITIONS[from].includes(to)) return false;
  if (from === 'paused' && !TERMINAL_RUN_STATES.has(to)) return pausedFrom === to;
  return true;
}

export function assertRunTransition(from: RunState, to: RunState, pausedFrom?: RunState | null): void {
  if (!RUN_TRANSITIONS[from].includes(to)) throw illegal('run', from, to);
  if (!canTransitionRun(from, to, pausedFrom)) {
    throw illegal('run', from, to, `a paused run returns to the state it was paused from (${pausedFrom ?? 'unknown'})`);
  }
}

export function canTransitionPhase(from: PhaseState, to: PhaseState): boolean {
  return PHASE_TRANSITIONS[from].includes(to);
}

export function assertPhaseTransition(from: PhaseState, to: PhaseState): void {
  if (!canTransitionPhase(from, to)) throw illegal('phase', from, to);
}

export function canTransitionSession(from: SessionState, to: SessionState): boolean {
  return SESSION_TRANSITIONS[from].includes(to);
}

export function assertSessionTransition(from: SessionState, to: SessionState): void {
  if (!canTransitionSession(from, to)) throw illegal('session', from, to);
}

export function canTransitionApproval(from: ApprovalState, to: ApprovalState): boolean {
  return APPROVAL_TRANSITIONS[from].includes(to);
}

export function assertApprovalTransition(from: ApprovalState, to: ApprovalState): void {
  if (!canTransitionApproval(from, to)) throw illegal('approval', from, to);
}

export const EVENT_TYPES = [
  'run.created',
  'run.started',
  'run.paused',
  'run.resumed',
  'run.completed',
  'run.failed',
  'run.aborted',
  'phase.started',
  'phase.completed',
  'phase.failed',
  'prompt.sent',
  'prompt.repaired',
  'artifact.expected',
  'artifact.validated',
  'artifact.invalid',
  'artifact.timeout',
  'session.created',
  'session.ready',
  'session.busy',
  'session.idle',
  'session.crashed',
  'session.recovered',
  'session.failed',
  'session.process_lost',
  'session.probed',
  'webhook.delivered',
  'webhook.failed',
  'approval.requested',
  'approval.decided',
  'report.written',
  // Beyond the minimum list: every state change has an event of its own.
  'run.awaiting_approval',
  'phase.awaiting_approval',
  'session.bootstrapping',
  'session.waiting',
  'session.resuming',
  'session.rebootstrapped',
  // Real agents: a first-run dialog answered by rule (with its screen), a start that failed.
  'session.dialog_answered',
  'session.start_failed',
  // A session whose agent was disposed when its run ended; a request nobody decided.
  'session.closed',
  'approval.closed',
  // A prompt about to be pasted (so a retry can tell whether the agent already has it).
  'prompt.delivering',
  // A phase's artifact sent the work back to an earlier phase (a review asking for changes).
  'phase.looped',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
