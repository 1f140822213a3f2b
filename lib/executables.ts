// Finding programs devflow runs but does not ship: on PATH, or in devflow's per-user cache
// ($XDG_CACHE_HOME/devflow, default ~/.cache/devflow), where what it builds or installs is kept
// so it happens once per machine.
import { spawnSync } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export function devflowCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME?.trim() || path.join(env.HOME?.trim() || os.homedir(), '.cache');
  return path.join(base, 'devflow');
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The first line a program prints for `--version`; undefined if it cannot (truncated download, wrong arch). */
export function versionOf(file: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const result = spawnSync(file, ['--version'], { timeout: 15_000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env });
  return result.status === 0 ? (result.stdout.trim().split('\n')[0] ?? '') : undefined;
}
