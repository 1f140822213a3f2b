// Activities throw DevflowError; Temporal sees an ApplicationFailure whose type is the error's
// class, so retry policies can name `fatal` and `human_required` as non-retryable.
import { ApplicationFailure } from '@temporalio/common';
import { DevflowError } from '../lib/errors.ts';

export function toFailure(error: unknown): unknown {
  if (!(error instanceof DevflowError)) return error;
  return ApplicationFailure.create({
    type: error.errorClass,
    message: error.message,
    nonRetryable: error.errorClass !== 'recoverable',
    details: [{ code: error.code, recoveryHint: error.recoveryHint ?? null, details: error.details ?? null }],
    cause: error,
  });
}

/** Wraps every function of an activity object so DevflowErrors reach Temporal typed. */
export function mapFailures<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      async (...args: never[]) => {
        try {
          return await fn(...args);
        } catch (error) {
          throw toFailure(error);
        }
      },
    ]),
  ) as T;
}
