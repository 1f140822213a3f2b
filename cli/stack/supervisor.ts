// Keeps one part of the stack `devflow up` started (Postgres, Temporal, the worker, the API)
// running: a part that ends on its own is reported and started again, on the same port and data,
// after a delay that doubles with each death; one that keeps dying is given up on, so that
// `devflow up` stops the rest and exits non-zero instead of looping forever. Every part goes
// through this one policy.
import { setTimeout as sleep } from 'node:timers/promises';
import { removePidFile, writePidFile } from './pid-files.ts';

export interface PartExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One started process of a part, as its starter hands it over. */
export interface RunningPart {
  pid: number;
  /** Resolves when the process has ended, however it ended. */
  exited: Promise<PartExit>;
  stop(): Promise<void>;
}

export interface RestartPolicy {
  /** Deaths tolerated within `windowMs`; one more and the part is given up on. */
  maxRestarts: number;
  windowMs: number;
  /** Delay before the first restart; doubled for each further death within the window, up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs?: number;
}

export const RESTART_POLICY: RestartPolicy = { maxRestarts: 5, windowMs: 5 * 60_000, firstDelayMs: 1_000, maxDelayMs: 30_000 };

export interface SupervisorOptions<P extends RunningPart> {
  /** As the terminal and the pid file name it: `postgres`, `temporal`, `worker`, `api`. */
  name: string;
  /** Starts the part and resolves once it serves; rejects if it cannot. */
  start: () => Promise<P>;
  runDir: string;
  say: (line: string) => void;
  /** Called once when the part keeps dying and will not be restarted again. */
  onGiveUp: (reason: string) => void;
  /** True once `devflow up` is stopping: a part that ends then is let go, not restarted. */
  stackStopping?: () => boolean;
  policy?: RestartPolicy;
}

export function describeExit(exit: PartExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

export class Supervisor<P extends RunningPart = RunningPart> {
  private current: P | undefined;
  private stopped = false;
  private deaths: number[] = [];
  private restarting: Promise<void> | undefined;
  private readonly wake = new AbortController();

  constructor(private readonly options: SupervisorOptions<P>) {}

  /** The part's current process. */
  get part(): P | undefined {
    return this.current;
  }

  /** The first start: a part that cannot start fails `devflow up` rather than being retried. */
  async start(): Promise<void> {
    const part = await this.options.start();
    this.current = part;
    await writePidFile(this.options.runDir, this.options.name, part.pid);
    void part.exited.then((exit) => {
      if (part === this.current && !this.halted()) this.restarting = this.restartAfter(describeExit(exit));
    });
  }

  private halted(): boolean {
    return this.stopped || (this.options.stackStopping?.() ?? false);
  }

  /** A restart that fails counts as one more death, so Temporal still coming up does not end the stack. */
  private async restartAfter(how: string): Promise<void> {
    const { name, say, onGiveUp } = this.options;
    const policy = this.options.policy ?? RESTART_POLICY;
    for (;;) {
      const now = Date.now();
      this.deaths = this.deaths.filter((at) => now - at < policy.windowMs);
      this.deaths.push(now);
      if (this.deaths.length > policy.maxRestarts) {
        say(`${name} ${how}; it died ${this.deaths.length} times within ${policy.windowMs / 1000} s, not restarting it again`);
        onGiveUp(`${name} keeps dying`);
        return;
      }
      const delay = Math.min(policy.firstDelayMs * 2 ** (this.deaths.length - 1), policy.maxDelayMs ?? Infinity);
      say(`${name} ${how}; restarting it in ${delay / 1000} s`);
      await sleep(delay, undefined, { signal: this.wake.signal }).catch(() => undefined);
      if (this.halted()) return;
      try {
        await this.start();
        say(`${name} restarted (pid ${this.current?.pid})`);
        return;
      } catch (error) {
        how = `failed to restart (${(error as Error).message.split('\n')[0]})`;
        if (this.halted()) return;
      }
    }
  }

  /** Stops the part for good, waiting for a restart under way to finish first. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake.abort();
    await this.restarting;
    await this.current?.stop();
    await removePidFile(this.options.runDir, this.options.name);
  }
}
