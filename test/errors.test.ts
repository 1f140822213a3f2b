// One class per error code, in one table: what Temporal retries, what opens which human gate,
// what ends a run. The run-workflow suite shows each class routed at the steps that raise it.
import { describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { toFailure } from '../activities/failures.ts';
import { DevflowError, ERROR_CODES, gateOf, NON_RETRYABLE_ERROR_TYPES, type ErrorCode } from '../lib/errors.ts';

describe('error codes', () => {
  const codes = Object.keys(ERROR_CODES) as ErrorCode[];

  it('give every error its class from the one table', () => {
    for (const code of codes) expect(new DevflowError({ code, message: 'x' }).errorClass).toBe(ERROR_CODES[code].class);
  });

  it('name the human gate of every human_required code, and of no other', () => {
    for (const code of codes) {
      if (ERROR_CODES[code].class === 'human_required') expect(gateOf(code), code).toMatch(/^[a-z_]+$/);
      else expect(gateOf(code), code).toBeUndefined();
    }
    expect(gateOf('agent_blocked')).toBe('session_recovery_required');
    expect(gateOf('artifact_unreadable')).toBe('artifact_unreadable');
  });

  it('reach Temporal typed by class: fatal and human_required are not retried', () => {
    expect(NON_RETRYABLE_ERROR_TYPES).toEqual(['fatal', 'human_required']);
    const failure = toFailure(new DevflowError({ code: 'agent_blocked', message: 'stuck', recoveryHint: 'look', details: { screen: 'Settings Error' } })) as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'human_required', nonRetryable: true, details: [{ code: 'agent_blocked', recoveryHint: 'look', details: { screen: 'Settings Error' } }] });
    expect((toFailure(new DevflowError({ code: 'prompt_send_failed', message: 'no pane' })) as ApplicationFailure).nonRetryable).toBe(false);
  });
});
