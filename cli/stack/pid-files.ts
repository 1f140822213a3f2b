// Pid files under $DEVFLOW_HOME/run/: what `devflow up` started, so a second `up` can tell
// the stack is already running and a crashed supervisor's leftovers can be cleaned up.
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { processAlive } from '../../lib/processes.ts';

export { waitForExit } from '../../lib/processes.ts';

export async function writePidFile(runDir: string, name: string, pid: number): Promise<void> {
  await mkdir(runDir, { recursive: true });
  await writeFile(path.join(runDir, `${name}.pid`), `${pid}\n`);
}

export async function removePidFile(runDir: string, name: string): Promise<void> {
  await rm(path.join(runDir, `${name}.pid`), { force: true });
}

export async function readPidFiles(runDir: string): Promise<Map<string, number>> {
  const pids = new Map<string, number>();
  const names = await readdir(runDir).catch(() => [] as string[]);
  for (const file of names.filter((n) => n.endsWith('.pid'))) {
    const pid = Number((await readFile(path.join(runDir, file), 'utf8')).trim());
    if (Number.isInteger(pid) && pid > 0) pids.set(file.slice(0, -'.pid'.length), pid);
  }
  return pids;
}

export const isAlive = processAlive;

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}
