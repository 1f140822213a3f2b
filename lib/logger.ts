import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; `devflow up` sends each process's stdout to `$DEVFLOW_HOME/logs/<name>.log`. */
export function createLogger(name: string, level = process.env.DEVFLOW_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level });
}
