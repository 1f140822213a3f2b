// One error type for devflow. `errorClass` decides what happens next:
// recoverable errors are retried, human_required ones open a human gate, fatal ones stop.
export type ErrorClass = 'recoverable' | 'human_required' | 'fatal';

export interface DevflowErrorOptions {
  errorClass: ErrorClass;
  code: string;
  message: string;
  recoveryHint?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class DevflowError extends Error {
  readonly errorClass: ErrorClass;
  readonly code: string;
  readonly recoveryHint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(options: DevflowErrorOptions) {
    super(options.message, { cause: options.cause });
    this.name = 'DevflowError';
    this.errorClass = options.errorClass;
    this.code = options.code;
    this.recoveryHint = options.recoveryHint;
    this.details = options.details;
  }
}

export function isDevflowError(error: unknown, code?: string): error is DevflowError {
  return error instanceof DevflowError && (code === undefined || error.code === code);
}
