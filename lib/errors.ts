// One error type for devflow, and one table that gives every error code its class:
//   recoverable     Temporal retries the step (bounded by the step's retry policy);
//   human_required  the run stops at the human gate the table names, for a person to fix and approve;
//   fatal           retrying cannot help: the run ends failed with the code and its hint.
// Workflow code imports this file too (it has no dependencies), so the lists live once.

export type ErrorClass = 'recoverable' | 'human_required' | 'fatal';

/** The gate a `human_required` error opens. */
export type HumanGateKey = 'session_recovery_required' | 'artifact_unreadable';

interface CodeInfo {
  class: ErrorClass;
  gate?: HumanGateKey;
}

const recoverable: CodeInfo = { class: 'recoverable' };
const fatal: CodeInfo = { class: 'fatal' };
const agentGate: CodeInfo = { class: 'human_required', gate: 'session_recovery_required' };

export const ERROR_CODES = {
  // Talking to an agent: transient, retried.
  prompt_send_failed: recoverable,
  session_not_running: recoverable,
  agent_exited: recoverable,
  agent_not_ready: recoverable,
  session_manager_stopping: recoverable,
  // An agent that needs a person: its screen, a dialog, a missing program, starts that keep failing.
  agent_blocked: agentGate,
  agent_dialog_needs_person: agentGate,
  agent_start_failed: agentGate,
  agent_not_installed: agentGate,
  // Its agent process was lost again after devflow restarted it once.
  agent_process_lost: agentGate,
  // The artifact exists but devflow may not read it (permissions): a person fixes it.
  artifact_unreadable: { class: 'human_required', gate: 'artifact_unreadable' },
  // The artifact is there but devflow refuses to read it: a link (or a folder swapped for one)
  // leading out of the worktree, or more bytes than DEVFLOW_MAX_ARTIFACT_BYTES. The run treats it
  // as an invalid artifact (a repair prompt, then a gate); should it escape a step, retrying would
  // find the same file, so a person looks.
  artifact_outside_worktree: { class: 'human_required', gate: 'artifact_unreadable' },
  artifact_too_large: { class: 'human_required', gate: 'artifact_unreadable' },
  // A run's definition or input that cannot work, whatever is retried.
  artifact_path_outside_worktree: fatal,
  artifact_schema_unknown: fatal,
  repo_path_invalid: fatal,
  repo_not_git: fatal,
  base_branch_not_found: fatal,
  template_not_found: fatal,
  template_hash_mismatch: fatal,
  backend_unavailable: fatal,
  playback_unavailable: fatal,
  // Rows that should exist, and rows that contradict each other.
  run_not_found: fatal,
  phase_not_found: fatal,
  session_not_found: fatal,
  approval_request_not_found: fatal,
  internal_state_corruption: fatal,
  // Setting devflow up: these stop a process, never a run.
  temporal_cli_not_found: fatal,
  temporal_cli_build_failed: fatal,
  stack_already_running: fatal,
  session_manager_already_running: fatal,
  registry_file_invalid: fatal,
  registry_version_reused: fatal,
  agent_install_failed: fatal,
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Failure types Temporal must not retry: the class is the failure's type (activities/failures.ts). */
export const NON_RETRYABLE_ERROR_TYPES: ErrorClass[] = ['fatal', 'human_required'];

export function classOf(code: string): ErrorClass | undefined {
  return (ERROR_CODES as Record<string, CodeInfo>)[code]?.class;
}

export function gateOf(code: string): HumanGateKey | undefined {
  return (ERROR_CODES as Record<string, CodeInfo>)[code]?.gate;
}

export interface DevflowErrorOptions {
  code: ErrorCode;
  message: string;
  recoveryHint?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class DevflowError extends Error {
  readonly errorClass: ErrorClass;
  readonly code: ErrorCode;
  readonly recoveryHint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(options: DevflowErrorOptions) {
    super(options.message, { cause: options.cause });
    this.name = 'DevflowError';
    this.errorClass = ERROR_CODES[options.code].class;
    this.code = options.code;
    this.recoveryHint = options.recoveryHint;
    this.details = options.details;
  }
}

export function isDevflowError(error: unknown, code?: ErrorCode): error is DevflowError {
  return error instanceof DevflowError && (code === undefined || error.code === code);
}
