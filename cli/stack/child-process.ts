// A devflow process (worker or API) run by `devflow up`: its own node process with an IPC
// channel, output appended to a log file, pid in $DEVFLOW_HOME/run/<name>.pid, restarted
// with backoff if it dies on its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { removePidFile, writePidFile } from './pid-files.ts';

const TSX_LOADER = import.meta.resolve('tsx');
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 5 * 60_000;

export interface SupervisedProcessOptions {
  name: string;
  entry: string;
  env: NodeJS.ProcessEnv;
  logFile: string;
  runDir: string;
  say: (line: string) => void;
  /** Called when the process keeps dying and will not be restarted again. */
  onGiveUp: (reason: string) => void;
  stopTimeoutMs?: number;
}

export class SupervisedProcess {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts: number[] = [];

  constructor(private readonly options: SupervisedProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process and resolves when it reports `ready` over IPC. */
  async start(readyTimeoutMs = 120_000): Promise<void> {
    const { name, entry, env, logFile, runDir } = this.options;
    const log = openSync(logFile, 'a');
    const child = spawn(process.execPath, ['--import', TSX_LOADER, entry], {
      env,
      stdio: ['ignore', log, log, 'ipc'],
    });
    closeSync(log);
    this.child = child;
    await writePidFile(runDir, name, child.pid!);

    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not become ready within ${readyTimeoutMs / 1000} s; see ${logFile}`)), readyTimeoutMs);
      child.on('message', (message: { type?: string }) => {
        if (message?.type === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited during start-up (${signal ?? `code ${code}`}); see ${logFile}`));
      });
    });
    await ready;
    // Only a process that was up is restarted; one that cannot start fails `start()` instead.
    child.once('exit', (code, signal) => void this.exited(child, code, signal));
  }

  private async exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.stopping || child !== this.child) return;
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    const why = signal ?? `code ${code}`;
    if (this.restarts.length >= MAX_RESTARTS) {
      this.options.onGiveUp(`${this.options.name} exited (${why}) ${MAX_RESTARTS} times within ${RESTART_WINDOW_MS / 60_000} minutes`);
      return;
    }
    this.restarts.push(now);
    const delay = 1_000 * 2 ** (this.restarts.length - 1);
    this.options.say(`${this.options.name} exited (${why}); restarting in ${delay / 1000} s`);
    await sleep(delay);
    if (this.stopping) return;
    try {
      await this.start();
      this.options.say(`${this.options.name} restarted (pid ${this.child?.pid})`);
    } catch (error) {
      this.options.onGiveUp((error as Error).message);
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited within the timeout. */
  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timeout = this.options.stopTimeoutMs ?? 20_000;
      const killer = setTimeout(() => child.kill('SIGKILL'), timeout);
      await exited;
      clearTimeout(killer);
    }
    await removePidFile(this.options.runDir, this.options.name);
  }
}
