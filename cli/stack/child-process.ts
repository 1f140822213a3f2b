// A devflow process (worker or API) run by `devflow up`: its own node process with an IPC
// channel, output appended to a log file. `Supervisor` keeps it running and writes its pid.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { PartExit, RunningPart } from './supervisor.ts';

const TSX_LOADER = import.meta.resolve('tsx');

export interface DevflowProcessOptions {
  name: string;
  entry: string;
  env: NodeJS.ProcessEnv;
  logFile: string;
  readyTimeoutMs?: number;
  stopTimeoutMs?: number;
}

/** Starts the process and resolves when it reports `ready` over IPC. */
export async function startDevflowProcess(options: DevflowProcessOptions): Promise<RunningPart> {
  const { name, entry, env, logFile } = options;
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', TSX_LOADER, entry], {
    env,
    stdio: ['ignore', log, log, 'ipc'],
  });
  closeSync(log);
  const exited = new Promise<PartExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  let timer: NodeJS.Timeout | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not become ready within ${readyTimeoutMs / 1000} s; see ${logFile}`)), readyTimeoutMs);
    child.on('message', (message: { type?: string }) => {
      if (message?.type === 'ready') resolve();
    });
    void exited.then(({ code, signal }) => reject(new Error(`${name} exited during start-up (${signal ?? `code ${code}`}); see ${logFile}`)));
  });

  /** SIGTERM, then SIGKILL if it has not exited within the timeout. */
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), options.stopTimeoutMs ?? 20_000);
    await exited;
    clearTimeout(killer);
  };

  try {
    await ready;
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { pid: child.pid!, exited, stop };
}
