// The chaos script, short and with a fixed seed: one fault of each kind while four runs go on,
// exactly as `npm run chaos` does it (its own `devflow up`, the API, the scripted agent).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function chaos(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/chaos.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, TEMPORAL_CLI_PATH: inject('temporalCliPath') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('npm run chaos', () => {
  it('refuses bad options before it starts anything', async () => {
    const before = readdirSync(os.tmpdir()).filter((name) => name.startsWith('devflow-chaos-'));
    const { code, output } = await chaos(['--runs', '0', '--gap', '9-3']);
    expect(code).toBe(2);
    expect(output).toContain('--runs must be a whole number of at least 1');
    expect(output).toContain('--gap must read MIN-MAX in seconds');
    expect(readdirSync(os.tmpdir()).filter((name) => name.startsWith('devflow-chaos-'))).toEqual(before);
  });

  it('a fault of each kind during four runs: nothing lost, no invariant broken, nothing left running', async () => {
    const { code, output } = await chaos(['--runs', '4', '--concurrency', '2', '--faults', '6', '--gap', '2-4', '--seed', '7']);
    process.stdout.write(output.split('\n').filter((line) => /^(fault|worker|Temporal|Postgres|tmux|agent|API|runs:|invariant|chaos:)/.test(line)).join('\n') + '\n');
    const lines = output.trim().split('\n');
    expect(lines.at(-1), output).toBe('chaos: 4 runs, 6 faults, 0 lost, 0 violations (seed 7)');
    expect(code).toBe(0);
    // Every kind was injected once and recovered from (the table's injected and recovered columns).
    for (const label of ['worker SIGKILL', 'Temporal dev server SIGKILL', 'Postgres SIGKILL', 'tmux server SIGKILL', 'agent process SIGKILL', 'API SIGKILL mid-request']) {
      expect(output, label).toMatch(new RegExp(`^${label} +1 +1 `, 'm'));
    }
    // Its stack stopped and its home removed: the suite's own leftover check sees the processes.
    const home = /stack under (\S+)/.exec(output)![1]!;
    expect(existsSync(home)).toBe(false);
  }, 900_000);
});
