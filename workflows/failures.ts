// What an activity's failure means to the run, read off the DevflowError it carried across
// Temporal (activities/failures.ts): its class, its code, the gate it asks for, and what a person
// should see. Workflow code: deterministic, no I/O.
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { gateOf, type ErrorClass } from '../lib/errors.ts';

export interface FailureInfo {
  errorClass: ErrorClass | 'unknown';
  code: string | undefined;
  /** `code: message`, as a gate's or a run's reason. */
  summary: string;
  /** What a person sees at the gate: the agent's screen when there is one, and what to do. */
  hint: string | undefined;
  /** The human gate a `human_required` failure asks for. */
  gate: string | undefined;
  details: Record<string, unknown>;
}

export function failureOf(error: unknown): FailureInfo | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (!(cause instanceof ApplicationFailure)) return undefined;
  const carried = (cause.details?.[0] ?? {}) as { code?: string; recoveryHint?: string | null; details?: Record<string, unknown> | null };
  const details = carried.details ?? {};
  const screen = typeof details.screen === 'string' ? details.screen : undefined;
  const parts = [screen, carried.recoveryHint ? `What to do: ${carried.recoveryHint}` : undefined].filter(Boolean);
  return {
    errorClass: (['recoverable', 'human_required', 'fatal'] as const).find((c) => c === cause.type) ?? 'unknown',
    code: carried.code,
    summary: describe(error),
    hint: parts.length ? parts.join('\n\n') : undefined,
    gate: carried.code ? gateOf(carried.code) : undefined,
    details,
  };
}

/** `code: message` for a DevflowError, the message otherwise. */
export function describe(error: unknown): string {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure) {
    const code = (cause.details?.[0] as { code?: string } | undefined)?.code;
    return code ? `${code}: ${cause.message}` : cause.message;
  }
  return error instanceof Error ? error.message : String(error);
}

/** A run's reason for ending failed: the code, the message and, for a DevflowError, its hint. */
export function failedBecause(error: unknown): string {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  const hint = cause instanceof ApplicationFailure ? (cause.details?.[0] as { recoveryHint?: string | null } | undefined)?.recoveryHint : undefined;
  return hint ? `${describe(error)} (${hint})` : describe(error);
}
