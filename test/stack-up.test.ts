// `devflow up` as a person runs it: a real process tree of embedded Postgres, the Temporal
// dev server with Web UI, worker and API; then Ctrl-C, and nothing may be left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { isAlive, readPidFiles } from '../cli/stack/pid-files.ts';
import { Supervisor, type PartExit, type RunningPart } from '../cli/stack/supervisor.ts';
import { processAlive } from '../lib/processes.ts';
import { waitFor } from '../lib/wait.ts';
import { makeRepo } from './helpers/run-harness.ts';
import { freePorts } from './helpers/ports.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface UpProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const running: UpProcess[] = [];
const homes: string[] = [];
afterEach(async () => {
  for (const up of running.splice(0)) {
    if (up.child.exitCode === null) process.kill(-up.child.pid!, 'SIGKILL');
  }
  for (const home of homes.splice(0)) {
    // After a failed test: the tmux server and its agents left their process group long ago.
    for (const line of processesOf(home, [])) {
      try {
        process.kill(Number(line.split(':')[0]), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rm(home, { recursive: true, force: true });
  }
});

async function newHome(): Promise<string> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'devflow-up-'));
  await chmod(home, 0o755);
  homes.push(home);
  return home;
}

/** Starts `devflow up` in its own process group, as a terminal would. */
/** A home of its own and free ports for every part: the environment of one `devflow up`. */
async function newStack() {
  const home = await newHome();
  const [api, pgPort, temporalPort, uiPort] = await freePorts(4);
  const env = {
    DEVFLOW_HOME: home,
    DEVFLOW_API_PORT: String(api),
    DEVFLOW_PG_PORT: String(pgPort),
    DEVFLOW_TEMPORAL_PORT: String(temporalPort),
    DEVFLOW_TEMPORAL_UI_PORT: String(uiPort),
    TEMPORAL_CLI_PATH: inject('temporalCliPath'),
  };
  return { home, api: api!, pgPort: pgPort!, temporalPort: temporalPort!, uiPort: uiPort!, env };
}

function startUp(env: NodeJS.ProcessEnv): UpProcess {
  const cleanEnv = { ...process.env };
  delete cleanEnv.DATABASE_URL;
  delete cleanEnv.TEMPORAL_ADDRESS;
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/devflow.ts', 'up'], {
    cwd: ROOT,
    env: { ...cleanEnv, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (c) => (text += c));
  child.stderr!.on('data', (c) => (text += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const up = { child, output: () => text, exited };
  running.push(up);
  return up;
}

async function waitUntilUp(up: UpProcess): Promise<void> {
  await waitFor('devflow is up', 150_000, async () => {
    if (up.child.exitCode !== null) throw new Error(`devflow up exited (${up.child.exitCode}):\n${up.output()}`);
    return up.output().includes('devflow is up');
  });
}

/** Every live process whose command line or working folder is under `home`, or whose parent is one of `pids`. */
function processesOf(home: string, pids: number[]): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (!processAlive(Number(entry))) continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cmdline.includes(home) || cwd.startsWith(home) || pids.includes(ppid)) found.push(`${entry}: ${cmdline}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

async function expectNothingLeft(home: string, pids: number[]): Promise<void> {
  await waitFor('every stack process to exit', 20_000, async () => pids.every((pid) => !isAlive(pid)));
  expect(processesOf(home, pids)).toEqual([]);
  expect((await readdir(path.join(home, 'run'))).filter((f) => f.endsWith('.pid'))).toEqual([]);
}

describe('devflow up', () => {
  it('brings up the whole stack, stops it all on Ctrl-C, and keeps data across a restart', async () => {
    const { home, api, pgPort, temporalPort, uiPort, env } = await newStack();

    const first = startUp(env);
    await waitUntilUp(first);
    expect(first.output()).toContain(`API     http://127.0.0.1:${api}`);
    expect(first.output()).toContain(`Web UI  http://127.0.0.1:${uiPort}/namespaces/default/workflows`);

    const ready = await fetch(`http://127.0.0.1:${api}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', temporal: 'ok' } });
    expect((await fetch(`http://127.0.0.1:${uiPort}/`)).status).toBe(200);

    const pids = await readPidFiles(path.join(home, 'run'));
    expect([...pids.keys()].sort()).toEqual(['api', 'devflow', 'postgres', 'temporal', 'worker']);
    expect([...pids.values()].every(isAlive)).toBe(true);
    expect(pids.get('devflow')).toBe(first.child.pid);

    // A second `up` on the same home is refused and touches nothing.
    const second = startUp(env);
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`devflow is already running from ${home} (pid ${first.child.pid})`);
    expect([...pids.values()].every(isAlive)).toBe(true);

    // A run with the scripted agent in tmux, waiting at its spec gate: its agent is alive.
    const repo = makeRepo(home);
    const started = await fetch(`http://127.0.0.1:${api}/v1/runs`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ requirementsMd: '# Stack test\n', repoPath: repo, baseBranch: 'main', backend: 'scripted' }),
    });
    expect(started.status).toBe(202);
    const { runId } = (await started.json()) as { runId: string };
    await waitFor('the run to wait at its spec gate', 60_000, async () => {
      const body = (await (await fetch(`http://127.0.0.1:${api}/v1/runs/${runId}`)).json()) as { run: { state: string } };
      return body.run.state === 'awaiting_approval';
    });
    expect(processesOf(home, []).some((p) => p.includes('scripted-agent.ts'))).toBe(true);

    // Ctrl-C in a terminal signals the whole foreground process group.
    process.kill(-first.child.pid!, 'SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/stopped api[\s\S]*stopped worker[\s\S]*stopped agent sessions \(tmux\)[\s\S]*stopped temporal[\s\S]*stopped postgres/);
    await expectNothingLeft(home, [...pids.values()]);

    // Started again, both Postgres rows and Temporal histories (SQLite file) are still there.
    const again = startUp(env);
    await waitUntilUp(again);
    const database = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${pgPort}/devflow` });
    await database.connect();
    const checks = await database.query('select id from stack_checks order by checked_at');
    await database.end();
    expect(checks.rows).toHaveLength(2);
    const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
    const described = await new Client({ connection }).workflow.getHandle(checks.rows[0].id).describe();
    await connection.close();
    expect(described.status.name).toBe('COMPLETED');

    // SIGTERM to the supervisor alone (a service manager's stop) also stops everything.
    const pidsAgain = [...(await readPidFiles(path.join(home, 'run'))).values()];
    process.kill(again.child.pid!, 'SIGTERM');
    expect(await again.exited).toBe(0);
    await expectNothingLeft(home, pidsAgain);
  }, 300_000);

  it('restarts a killed Temporal dev server and Postgres, and the run waiting at its gate goes on', async () => {
    const { home, api, env } = await newStack();
    const up = startUp(env);
    await waitUntilUp(up);
    const apiUrl = `http://127.0.0.1:${api}`;
    const readyz = async () => (await fetch(`${apiUrl}/readyz`).catch(() => undefined))?.status;
    const runOf = async (id: string) => (await (await fetch(`${apiUrl}/v1/runs/${id}`)).json()) as {
      run: { state: string }; phases: { phaseKey: string; state: string }[];
    };

    const started = await fetch(`${apiUrl}/v1/runs`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ requirementsMd: '# Survive restarts\n', repoPath: makeRepo(home), baseBranch: 'main', backend: 'scripted' }),
    });
    expect(started.status).toBe(202);
    const { runId } = (await started.json()) as { runId: string };
    await waitFor('the run to wait at its spec gate', 60_000, async () => (await runOf(runId)).run.state === 'awaiting_approval');

    /** kill -9 a part; the terminal reports it and /readyz is 200 again within the bound. */
    const killAndWaitForReady = async (name: 'temporal' | 'postgres', boundMs: number) => {
      const pid = (await readPidFiles(path.join(home, 'run'))).get(name)!;
      expect(isAlive(pid)).toBe(true);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await waitFor(`${name} to be reported dead`, 10_000, async () => up.output().includes(`${name} was killed by SIGKILL; restarting it in 1 s`));
      // A 200 counts only once the new server is there: a restart can be quicker than a /readyz poll.
      await waitFor(`${name} to be reported restarted`, boundMs, async () => new RegExp(`${name} restarted \\(pid \\d+\\)`).test(up.output()), 100);
      await waitFor(`/readyz 200 after ${name} was killed`, boundMs, async () => (await readyz()) === 200, 250);
      const seconds = (Date.now() - killedAt) / 1000;
      process.stdout.write(`${name}: /readyz 200 ${seconds.toFixed(1)} s after kill -9\n`);
      const restarted = (await readPidFiles(path.join(home, 'run'))).get(name)!;
      expect(restarted).not.toBe(pid);
      expect(isAlive(restarted)).toBe(true);
      expect(up.child.exitCode).toBeNull();
    };

    // Temporal: the restarted server has the run's history (its SQLite file); approving moves it on.
    await killAndWaitForReady('temporal', 30_000);
    const approvals = (await (await fetch(`${apiUrl}/v1/runs/${runId}/approvals`)).json()) as { approvals: { id: string; gateKey: string; state: string }[] };
    const gate = approvals.approvals.find((a) => a.gateKey === 'spec_approved' && a.state === 'pending')!;
    expect(gate).toBeDefined();
    let decided: Response | undefined;
    // The worker may still be reconnecting; a 503 means "send it again", as the API says.
    await waitFor('the approval to be accepted', 30_000, async () => {
      decided = await fetch(`${apiUrl}/v1/runs/${runId}/approvals/${gate.id}`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'approve', clientToken: 'after-temporal-restart' }),
      });
      return decided.status !== 503;
    }, 500);
    expect(decided!.status).toBe(202);
    await waitFor('the run to go on through its phases to the end', 60_000, async () => (await runOf(runId)).run.state === 'completed', 500);
    const phases = (await runOf(runId)).phases.map((p) => [p.phaseKey, p.state]);
    expect(phases).toEqual([['spec', 'completed'], ['implement', 'completed'], ['review', 'completed']]);

    // Postgres: restarted on its data folder; the run is still there as it was.
    await killAndWaitForReady('postgres', 30_000);
    const after = await fetch(`${apiUrl}/v1/runs/${runId}`);
    expect(after.status).toBe(200);
    const body = (await after.json()) as Awaited<ReturnType<typeof runOf>>;
    expect(body.run.state).toBe('completed');
    expect(body.phases.map((p) => [p.phaseKey, p.state])).toEqual(phases);

    // Ctrl-C still stops everything, and nothing is restarted on the way out.
    const pids = [...(await readPidFiles(path.join(home, 'run'))).values()];
    const before = up.output().length;
    process.kill(-up.child.pid!, 'SIGINT');
    expect(await up.exited).toBe(0);
    expect(up.output().slice(before)).not.toContain('restarting');
    await expectNothingLeft(home, pids);
  }, 240_000);

  it('uses existing services from DATABASE_URL and TEMPORAL_ADDRESS instead of starting its own', async () => {
    const home = await newHome();
    const [api] = await freePorts(1);
    const up = startUp({
      DEVFLOW_HOME: home,
      DEVFLOW_API_PORT: String(api),
      DATABASE_URL: inject('databaseUrl'),
      TEMPORAL_ADDRESS: inject('temporalAddress'),
    });
    await waitUntilUp(up);
    expect(up.output()).toContain('Postgres: using DATABASE_URL');
    expect(up.output()).toContain(`Temporal: using TEMPORAL_ADDRESS ${inject('temporalAddress')}`);
    expect(up.output()).not.toContain('Web UI');
    expect((await fetch(`http://127.0.0.1:${api}/readyz`)).status).toBe(200);
    const pids = await readPidFiles(path.join(home, 'run'));
    expect([...pids.keys()].sort()).toEqual(['api', 'devflow', 'worker']);
    expect(existsSync(path.join(home, 'pg'))).toBe(false);

    process.kill(-up.child.pid!, 'SIGINT');
    expect(await up.exited).toBe(0);
    await expectNothingLeft(home, [...pids.values()]);
  }, 180_000);

  it('gives up on a part that keeps dying, saying so, instead of restarting it forever', async () => {
    const runDir = path.join(await newHome(), 'run');
    const lines: string[] = [];
    const givenUp: string[] = [];
    let starts = 0;
    // A part that dies a moment after each start, as a server that crashes on every request would.
    const dying = async (): Promise<RunningPart> => {
      starts += 1;
      const child = spawn('sleep', ['0.2']);
      const exited = new Promise<PartExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      return { pid: child.pid!, exited, stop: async () => { child.kill(); await exited; } };
    };
    const part = new Supervisor({
      name: 'flaky', start: dying, runDir, say: (line) => lines.push(line), onGiveUp: (reason) => givenUp.push(reason),
      policy: { maxRestarts: 3, windowMs: 60_000, firstDelayMs: 50 },
    });
    await part.start();
    await waitFor('the supervisor to give up', 10_000, async () => givenUp.length > 0);
    expect(lines).toEqual([
      'flaky exited with code 0; restarting it in 0.05 s',
      expect.stringMatching(/^flaky restarted \(pid \d+\)$/),
      'flaky exited with code 0; restarting it in 0.1 s',
      expect.stringMatching(/^flaky restarted/),
      'flaky exited with code 0; restarting it in 0.2 s',
      expect.stringMatching(/^flaky restarted/),
      'flaky exited with code 0; it died 4 times within 60 s, not restarting it again',
    ]);
    expect(givenUp).toEqual(['flaky keeps dying']);
    expect(starts).toBe(4);
    await part.stop();
    expect(existsSync(path.join(runDir, 'flaky.pid'))).toBe(false);
  });

  it('stops at once on a bad variable, naming it, and starts nothing', async () => {
    const home = path.join(await newHome(), 'never-created');
    const up = startUp({ DEVFLOW_HOME: home, DEVFLOW_API_PORT: 'seventy' });
    expect(await up.exited).toBe(2);
    expect(up.output()).toContain('DEVFLOW_API_PORT: ');
    expect(up.output()).toContain('(got "seventy")');
    expect(existsSync(home)).toBe(false);
  });
});
