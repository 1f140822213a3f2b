// devflow scaled out as it would be on many machines, here on one: two worker hosts (two worker
// processes, each with its own DEVFLOW_HOST_ID and DEVFLOW_HOME, so its own tmux server and
// workspace folder) on one task queue, one Temporal and one Postgres. Runs spread over both
// hosts; each run's agents and worktree stay on the host that took its first step; a host
// whose worker is killed mid-phase holds only its own runs, which go on when it is back.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listEvents } from '../db/events.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { worktreePathFor } from '../lib/runs.ts';
import { waitFor } from '../lib/wait.ts';
import { TmuxServer, tmuxSessionName } from '../sessions/tmux.ts';
import { decisionSignal, runWorkflowId, statusQuery, type RunInput } from '../workflows/messages.ts';
import { runWorkflow } from '../workflows/run.ts';
import { useDatabase } from './helpers/database.ts';
import { makeRepo, TMUX_TIMING } from './helpers/run-harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/**
 * How long the implementer of a run that the kill catches mid-phase works before it writes
 * anything (scenario `timeout`, then `ok` for the repair prompt): long enough that all those
 * runs are waiting for their artifact at the same moment, whatever the spread of their agents' starts.
 */
const MID_PHASE_MS = 10_000;
/** Runs each host should get. */
const PER_HOST = 3;
/** Events of a run that something happened to: an agent lost, crashed or restarted, a failure, a timeout, a repair, a pause. */
const TROUBLE = /process_lost|crashed|resuming|rebootstrapped|recovered|failed|paused|timeout|repaired|probed/;

interface Host {
  id: string;
  home: string;
  workspace: string;
  tmux: TmuxServer;
  worker?: ChildProcess;
}

interface Run {
  runId: string;
  handle: WorkflowHandle<typeof runWorkflow>;
  host?: Host;
}

const { db } = useDatabase();
const taskQueue = `two-hosts-${randomUUID().slice(0, 8)}`;
let root = '';
let connection: Connection;
let client: Client;
const hosts: Host[] = [];
let hostA: Host;
let hostB: Host;
const runs: Run[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'devflow-hosts-'));
  chmodSync(root, 0o755);
  for (const name of ['a', 'b']) {
    // DEVFLOW_HOME gives a host its tmux socket (<home>/tmux.sock) and workspace (<home>/workspaces).
    const home = path.join(root, `host-${name}`);
    await mkdir(home, { mode: 0o755 });
    hosts.push({ id: `host-${name}-${randomUUID().slice(0, 6)}`, home, workspace: path.join(home, 'workspaces'), tmux: new TmuxServer(path.join(home, 'tmux.sock')) });
  }
  [hostA, hostB] = hosts as [Host, Host];
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
});
afterAll(async () => {
  for (const host of hosts) {
    const w = host.worker;
    if (w && w.exitCode === null && w.signalCode === null) {
      w.kill('SIGKILL');
      await new Promise((resolve) => w.once('exit', resolve));
    }
  }
  for (const host of hosts) await host.tmux.killServer();
  await connection?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** `npm run worker` for a host, as `devflow up` starts it there; resolves once it polls. */
async function startWorker(host: Host, name: string): Promise<ChildProcess> {
  const logFile = path.join(root, `${name}.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DEVFLOW_HOME: host.home,
      DEVFLOW_HOST_ID: host.id,
      DATABASE_URL: inject('databaseUrl'),
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      DEVFLOW_TASK_QUEUE: taskQueue,
      // A silent agent is probed quickly (as the run harness's workers do).
      DEVFLOW_PROBE_INTERVAL_MS: '200',
    },
    stdio: ['ignore', log, log, 'ipc'],
  });
  host.worker = child;
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type?: string }) => m?.type === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`worker ${name} exited (${code}); see ${logFile}`)));
  });
  return child;
}

/** Stops a host's worker as an operator would (SIGTERM): it drains, and leaves its agents for the next one. */
async function stopWorker(host: Host): Promise<void> {
  const worker = host.worker!;
  worker.kill('SIGTERM');
  await new Promise((resolve) => worker.once('exit', resolve));
}

/** A run of development@1; `midPhase`: its implementer works on, writing nothing for MID_PHASE_MS, so a kill finds it mid-phase. */
async function startRun(midPhase: boolean): Promise<Run> {
  const runId = randomUUID();
  const input: RunInput = {
    runId, templateId: 'development@1', repoPath: makeRepo(root), baseBranch: 'main', requirementsMd: '# Two hosts\n', backend: 'scripted',
    ...(midPhase
      ? { scenarios: { implement: ['timeout'] }, timing: { ...TMUX_TIMING, artifactTimeoutMs: MID_PHASE_MS } }
      : { timing: { ...TMUX_TIMING, artifactTimeoutMs: 60_000 } }),
  };
  const handle = await client.workflow.start(runWorkflow, { workflowId: runWorkflowId(runId), taskQueue, args: [input] });
  return { runId, handle };
}

const short = (run: Run) => run.runId.slice(0, 8);
const runRow = (runId: string) => db.query.runs.findFirst({ where: (r, { eq }) => eq(r.id, runId) });
const sessionsOf = (runId: string) => db.query.tuiSessions.findMany({ where: (s, { eq }) => eq(s.runId, runId) });

/** The host a run is pinned to, by where its worktree was made (prepareRun runs on the run's host). */
async function pinnedHost(run: Run): Promise<Host> {
  await waitFor(`run ${short(run)} to have its worktree`, 60_000, async () => (await runRow(run.runId))?.worktreeRoot != null, 100);
  const { worktreeRoot } = (await runRow(run.runId))!;
  const host = hosts.find((h) => worktreeRoot === path.dirname(worktreePathFor(h.workspace, run.runId)));
  expect(host, `worktree ${worktreeRoot} of run ${short(run)} is under neither host's workspace`).toBeDefined();
  return host!;
}

const gateOf = async (run: Run) => (await run.handle.query(statusQuery).catch(() => undefined))?.pendingGate;

async function approveSpec(run: Run): Promise<void> {
  const gate = (await gateOf(run))!;
  expect(gate.gateKey).toBe('spec_approved');
  await run.handle.signal(decisionSignal, { approvalRequestId: gate.approvalRequestId, action: 'approve', clientToken: `go-${short(run)}` });
}

const implementing = async (run: Run) => (await listEvents(db, run.runId)).some((e) => e.type === 'prompt.sent' && (e.payload as { phaseKey: string }).phaseKey === 'implement');

/**
 * The run's implementer has its prompt, and the run's only step in flight is its wait for the
 * artifact: a step that heartbeats, so Temporal hands it out again soon after its worker dies
 * (a step that does not, caught by the kill, would wait out its one-minute start-to-close).
 */
async function awaitingImplementation(run: Run): Promise<boolean> {
  if (!(await implementing(run))) return false;
  const pending = (await run.handle.describe()).raw.pendingActivities ?? [];
  return pending.length > 0 && pending.every((a) => a.lastHeartbeatTime != null);
}

/** The JSON lines a worker logged. */
function readLog(name: string): { msg?: string; runId?: string }[] {
  return readFileSync(path.join(root, `${name}.log`), 'utf8').split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg?: string; runId?: string });
}

const workflowStatus = async (run: Run) => (await run.handle.describe()).status.name;
const closeTime = async (run: Run) => (await run.handle.describe()).closeTime!;

describe('two worker hosts on one queue, one Temporal and one Postgres', () => {
  it('pin each run to the host whose worker took its first step: its worktree there, its agents on that tmux server', async () => {
    // Which worker Temporal gives a run's first step to is not ours to choose (in trials with
    // both up, 4 of 7 and then 7 of 10 new runs went to the same host), so each host gets its
    // runs while it is the only one polling: A first; then A's worker is stopped (SIGTERM, as an
    // operator restarting it would) while B starts and gets its runs; then A's worker is back.
    await startWorker(hostA, 'a-1');
    runs.push(...(await Promise.all(Array.from({ length: PER_HOST }, () => startRun(true)))));
    for (const run of runs) run.host = await pinnedHost(run);
    // A's runs wait at their gate with nothing in flight (the next role's agent, started ahead at the gate, is up).
    for (const run of runs) {
      await waitFor(`run ${short(run)} at spec_approved, nothing in flight`, 60_000, async () =>
        (await gateOf(run))?.gateKey === 'spec_approved' && ((await run.handle.describe()).raw.pendingActivities ?? []).length === 0, 100);
    }
    await stopWorker(hostA);
    await startWorker(hostB, 'b-1');
    const onB = await Promise.all(Array.from({ length: PER_HOST }, () => startRun(false)));
    for (const run of onB) run.host = await pinnedHost(run);
    runs.push(...onB);
    await startWorker(hostA, 'a-2');
    for (const run of runs) await waitFor(`run ${short(run)} at spec_approved`, 60_000, async () => (await gateOf(run))?.gateKey === 'spec_approved', 100);
    expect(runs.map((r) => r.host!.id)).toEqual([...Array(PER_HOST).fill(hostA.id), ...Array(PER_HOST).fill(hostB.id)]);

    // What an operator sees on each machine: its tmux server holds the agents of its runs and of no other.
    for (const host of hosts) {
      const mine = runs.filter((r) => r.host === host);
      expect((await host.tmux.sessionNames()).sort()).toEqual(mine.map((r) => tmuxSessionName(r.runId)).sort());
      for (const run of mine) {
        // The spec writer's agent, and any agent started ahead for the next phase while the gate waits.
        const sessions = (await sessionsOf(run.runId)).filter((s) => s.lastKnownPanePid !== null);
        expect(sessions.map((s) => s.roleId)).toContain('spec_writer');
        const panes = await host.tmux.panePids(tmuxSessionName(run.runId));
        for (const session of sessions) {
          expect(session).toMatchObject({ hostId: host.id, tmuxSession: tmuxSessionName(run.runId) });
          expect(panes).toContain(session.lastKnownPanePid);
        }
      }
    }
    // A's worker restart left its runs as they were: their agents kept, nothing asked of anyone.
    expect(new Set(readLog('a-2').filter((line) => line.msg === 'kept live agent session').map((line) => line.runId))).toEqual(new Set(runs.filter((r) => r.host === hostA).map((r) => r.runId)));
  }, 180_000);

  it("a host whose worker is killed mid-phase holds its own runs until it is back; the other host's runs finish meanwhile", async () => {
    const onA = runs.filter((r) => r.host === hostA);
    const onB = runs.filter((r) => r.host === hostB);
    for (const run of runs) await approveSpec(run);
    // A's runs are waiting for their implementers' artifacts (their agents print, write nothing
    // yet), and B's implementers have their prompts (review and the end of the run still to come), when A's worker dies.
    await waitFor('every run implementing', 60_000, async () =>
      (await Promise.all([...onA.map(awaitingImplementation), ...onB.map(implementing)])).every(Boolean), 100);
    const second = hostA.worker!;
    second.kill('SIGKILL');
    await new Promise((resolve) => second.once('exit', resolve));
    const killedAt = new Date();
    const lastSeqAtKill = new Map<string, number>();
    for (const run of onA) lastSeqAtKill.set(run.runId, (await listEvents(db, run.runId)).at(-1)!.seq);

    // B's runs go on and end while A is down (a step of theirs that A's worker had in hand when it
    // died is Temporal's to give again: after a minute for a step that does not heartbeat).
    await waitFor("host B's runs to end while host A is down", 120_000, async () => (await Promise.all(onB.map(workflowStatus))).every((s) => s !== 'RUNNING'), 250);
    for (const run of onB) expect(await run.handle.result()).toEqual({ state: 'completed', reason: 'every phase completed' });
    // B's runs were still at work when A's worker died.
    const closed = await Promise.all(onB.map(closeTime));
    for (const time of closed) expect(time.getTime()).toBeGreaterThan(killedAt.getTime());
    console.info(`host B's runs completed ${(Math.max(...closed.map((d) => d.getTime())) - killedAt.getTime()) / 1000} s after host A's worker was killed`);

    // A's runs waited: still going, and nothing happened to them since the kill.
    for (const run of onA) {
      expect(await workflowStatus(run)).toBe('RUNNING');
      expect(TERMINAL_RUN_STATES.has((await runRow(run.runId))!.state)).toBe(false);
      expect((await listEvents(db, run.runId)).at(-1)!.seq).toBe(lastSeqAtKill.get(run.runId));
    }
    expect(hostB.worker!.exitCode).toBeNull();

    // A new worker process with the same host id (same home, its tmux server still there) takes A's runs back.
    const restartedAt = Date.now();
    await startWorker(hostA, 'a-3');
    for (const run of onA) expect(await run.handle.result()).toEqual({ state: 'completed', reason: 'every phase completed' });
    console.info(`host A's runs completed ${(Date.now() - restartedAt) / 1000} s after its worker was started again`);

    // B's runs did not notice: no agent lost or restarted, nothing timed out, no gate but the spec's.
    for (const run of onB) {
      const events = await listEvents(db, run.runId);
      expect(events.map((e) => e.type).filter((t) => TROUBLE.test(t))).toEqual([]);
      expect(events.filter((e) => e.type === 'approval.requested').map((e) => (e.payload as { gateKey: string }).gateKey)).toEqual(['spec_approved']);
      expect(events.filter((e) => e.type === 'prompt.sent').map((e) => (e.payload as { phaseKey: string }).phaseKey)).toEqual(['spec', 'implement', 'review']);
    }
    // A's runs kept their agents through the worker's death: one session per role, none lost, no
    // person asked (the implementer's late artifact, its scenario, was had by the repair prompt).
    for (const run of onA) {
      const events = await listEvents(db, run.runId);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      const types = events.map((e) => e.type);
      expect(types.filter((t) => t === 'session.created')).toHaveLength(3);
      expect(types.filter((t) => /process_lost|session\.failed|run\.paused/.test(t))).toEqual([]);
      expect(events.filter((e) => e.type === 'approval.requested').map((e) => (e.payload as { gateKey: string }).gateKey)).toEqual(['spec_approved']);
      expect(events.filter((e) => e.type === 'prompt.sent').map((e) => (e.payload as { phaseKey: string }).phaseKey)).toEqual(['spec', 'implement', 'review']);
    }
    // The new worker found A's agents alive and kept them, and touched no session of B's.
    expect(new Set(readLog('a-3').filter((line) => line.msg === 'kept live agent session').map((line) => line.runId))).toEqual(new Set(onA.map((r) => r.runId)));
  }, 240_000);

  it("left each run's worktree and agents on its own host only, and each host disposed of its own agents", async () => {
    for (const run of runs) {
      const host = run.host!;
      const other = hosts.find((h) => h !== host)!;
      const worktree = worktreePathFor(host.workspace, run.runId);
      expect(existsSync(worktree)).toBe(true);
      expect(existsSync(path.join(other.workspace, run.runId))).toBe(false);
      const sessions = await sessionsOf(run.runId);
      expect(sessions.map((s) => s.roleId).sort()).toEqual(['implementer', 'reviewer', 'spec_writer']);
      for (const session of sessions) expect(session).toMatchObject({ hostId: host.id, cwd: worktree, state: 'CLOSED' });
      // The scripted agents kept their prompts where they worked: in the worktree on the run's host.
      for (const role of ['spec_writer', 'implementer', 'reviewer']) {
        expect(readdirSync(path.join(worktree, '.devflow', 'scripted-agent', role)).length).toBeGreaterThan(0);
      }
    }
    // Closing a session disposes its agent on the tmux server that holds it: none is left on either.
    for (const host of hosts) expect(await host.tmux.sessionNames()).toEqual([]);
  });
});
