import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Where a secret can sit in what devflow logs: a request's Authorization header, and the token,
 * secret, key or password of a configuration or of any object logged whole (at most one level down).
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'request.headers.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'api.token',
  'webhooks.secret',
  'config.api.token',
  'config.webhooks.secret',
  'databaseUrl',
  '*.databaseUrl',
  ...['token', 'secret', 'apiKey', 'password'].flatMap((key) => [key, `*.${key}`]),
];

/** JSON logs on stdout (or `destination`); `devflow up` sends each process's stdout to `$DEVFLOW_HOME/logs/<name>.log`. */
export function createLogger(name: string, level = process.env.DEVFLOW_LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  return pino({ name, level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination);
}
