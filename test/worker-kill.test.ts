// The worker process killed with SIGKILL mid-phase while its tmux agent works: a new worker
// process recovers the host's sessions and the run finishes as if nothing happened. And a
// restart of the whole host (the worker stopped and its agents gone with their tmux server):
// nobody is asked, a run at a gate keeps it, a run mid-phase goes on.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listEvents } from '../db/events.ts';
import { processAlive } from '../lib/processes.ts';
import { waitFor } from '../lib/wait.ts';
import { TmuxServer } from '../sessions/tmux.ts';
import { decisionSignal, runWorkflowId, statusQuery, type RunInput } from '../workflows/messages.ts';
import { runWorkflow } from '../workflows/run.ts';
import { useDatabase } from './helpers/database.ts';
import { makeRepo, TMUX_TIMING } from './helpers/run-harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { db } = useDatabase();
let home = '';
let connection: Connection;
let client: Client;
const workers: ChildProcess[] = [];
const taskQueue = `kill-${randomUUID().slice(0, 8)}`;
const hostId = `kill-host-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'devflow-kill-'));
  chmodSync(home, 0o755);
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
});
afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await new TmuxServer(path.join(home, 'tmux.sock')).killServer();
  await connection?.close();
  await rm(home, { recursive: true, force: true });
});

/** `npm run worker`, as devflow up starts it; resolves once it polls. */
async function startWorker(name: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const log = openSync(path.join(home, `${name}.log`), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DEVFLOW_HOME: home,
      DATABASE_URL: inject('databaseUrl'),
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      DEVFLOW_TASK_QUEUE: taskQueue,
      DEVFLOW_HOST_ID: hostId,
      ...env,
    },
    stdio: ['ignore', log, log, 'ipc'],
  });
  workers.push(child);
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type?: string }) => m?.type === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`worker ${name} exited (${code}); see ${home}/${name}.log`)));
  });
  return child;
}

/** One worker per host: the ones an earlier test left are stopped (SIGTERM) before another starts. */
async function stopWorkers(): Promise<void> {
  for (const w of workers.filter((w) => w.exitCode === null && w.signalCode === null)) {
    w.kill('SIGTERM');
    await new Promise((resolve) => w.once('exit', resolve));
  }
}

describe('a worker killed with SIGKILL mid-phase', () => {
  it('leaves a run that a new worker finishes, with one session per role and no duplicate prompts', async () => {
    const first = await startWorker('worker-1');
    const runId = randomUUID();
    const input: RunInput = {
      runId, templateId: 'development@1', repoPath: makeRepo(home), baseBranch: 'main', requirementsMd: '# Kill test\n',
      backend: 'scripted', scenarios: { implement: 'slow' }, timing: { ...TMUX_TIMING, artifactTimeoutMs: 60_000 },
    };
    const handle = await client.workflow.start(runWorkflow, { workflowId: runWorkflowId(runId), taskQueue, args: [input] });
    await waitFor('the spec gate', 60_000, async () => (await handle.query(statusQuery).catch(() => undefined))?.pendingGate?.gateKey === 'spec_approved', 100);
    const status = await handle.query(statusQuery);
    await handle.signal(decisionSignal, { approvalRequestId: status.pendingGate!.approvalRequestId, action: 'approve', clientToken: 'go' });

    // The implementer's agent is writing its artifact slowly when the worker dies.
    await waitFor('the implement prompt', 30_000, async () => (await listEvents(db, runId)).filter((e) => e.type === 'prompt.sent').length === 2, 50);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));

    await startWorker('worker-2');
    expect(await handle.result()).toEqual({ state: 'completed', reason: 'every phase completed' });

    const events = await listEvents(db, runId);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const count = (type: string) => events.filter((e) => e.type === type).length;
    expect(count('prompt.sent')).toBe(3);
    expect(count('prompt.repaired')).toBe(0);
    expect(count('session.created')).toBe(3);
    expect(count('session.failed')).toBe(0);
    const sessions = await db.query.tuiSessions.findMany({ where: (s, { eq }) => eq(s.runId, runId) });
    expect(sessions.map((s) => s.roleId).sort()).toEqual(['implementer', 'reviewer', 'spec_writer']);
  }, 180_000);
});

describe('a restart of the host: the worker stopped and its agents gone', () => {
  it('needs nobody: a run at its gate keeps it as it was, a run mid-phase gets its agent back and goes on', async () => {
    await stopWorkers();
    const first = await startWorker('restart-1');
    const start = async (scenarios: RunInput['scenarios']) => {
      const runId = randomUUID();
      const input: RunInput = {
        runId, templateId: 'development@1', repoPath: makeRepo(home), baseBranch: 'main', requirementsMd: '# Restart test\n',
        backend: 'scripted', scenarios, timing: { ...TMUX_TIMING, artifactTimeoutMs: 90_000 },
      };
      return { runId, handle: await client.workflow.start(runWorkflow, { workflowId: runWorkflowId(runId), taskQueue, args: [input] }) };
    };
    const gateOf = async (handle: WorkflowHandle) => (await handle.query(statusQuery).catch(() => undefined))?.pendingGate;
    const atGate = await start({});
    await waitFor('run A at spec_approved', 60_000, async () => (await gateOf(atGate.handle))?.gateKey === 'spec_approved', 100);
    const gateBefore = (await gateOf(atGate.handle))!;
    // The implementer's agent starts while A's gate waits: it is up when the host stops.
    await waitFor('run A settled at its gate', 60_000, async () => ((await atGate.handle.describe()).raw.pendingActivities ?? []).length === 0, 100);
    // Run B's spec writer is at work (it will write nothing: the scenario of its first attempt) when the host stops.
    const midPhase = await start({ spec: ['timeout', 'ok'] });
    await waitFor('run B to be waiting for its spec', 60_000, async () => (await listEvents(db, midPhase.runId)).some((e) => e.type === 'artifact.expected'), 100);

    first.kill('SIGTERM');
    await new Promise((resolve) => first.once('exit', resolve));
    await new TmuxServer(path.join(home, 'tmux.sock')).killServer();
    await startWorker('restart-2');

    // B: its agent restarted, the phase tried again, the artifact written: at its gate, nobody asked on the way.
    await waitFor('run B at spec_approved', 60_000, async () => (await gateOf(midPhase.handle))?.gateKey === 'spec_approved', 100).catch(async (error: Error) => {
      // What B did instead, and what the new worker said: a timeout alone leaves nothing to read.
      const events = (await listEvents(db, midPhase.runId)).map((e) => e.type).join(' ');
      throw new Error(`${error.message}; run B's events: ${events}; the worker's log ends: ${readFileSync(path.join(home, 'restart-2.log'), 'utf8').slice(-3000)}`);
    });
    // A: the very same gate, still waiting.
    expect(await gateOf(atGate.handle)).toEqual(gateBefore);

    // Every agent of the host was lost: A's two (its spec writer, and its implementer started at the gate), B's spec writer.
    for (const { runId, lost } of [{ ...atGate, lost: ['implementer', 'spec_writer'] }, { ...midPhase, lost: ['spec_writer'] }]) {
      const events = await listEvents(db, runId);
      expect(events.filter((e) => e.type === 'session.process_lost').map((e) => (e.payload as { roleId: string }).roleId).sort()).toEqual(lost);
      expect(events.filter((e) => e.type === 'approval.requested').map((e) => (e.payload as { gateKey: string }).gateKey)).toEqual(['spec_approved']);
      expect(events.filter((e) => e.type === 'run.paused')).toEqual([]);
    }
    const b = await listEvents(db, midPhase.runId);
    expect(b.find((e) => e.type === 'session.process_lost')?.payload).toMatchObject({ reason: 'process_lost', working: true, alive: false });
    expect(b.find((e) => e.type === 'phase.failed')?.payload).toMatchObject({ reason: 'process_lost', attempt: 1 });
    expect(b.find((e) => e.type === 'session.rebootstrapped')).toBeDefined();
    expect(b.filter((e) => e.type === 'prompt.sent').map((e) => (e.payload as { kind: string }).kind)).toEqual(['initial', 'retry']);

    // Approving A's gate goes on to implement: the spec is not written again.
    await atGate.handle.signal(decisionSignal, { approvalRequestId: gateBefore.approvalRequestId, action: 'approve', clientToken: 'go-a' });
    const bGate = (await gateOf(midPhase.handle))!;
    await midPhase.handle.signal(decisionSignal, { approvalRequestId: bGate.approvalRequestId, action: 'approve', clientToken: 'go-b' });
    expect(await atGate.handle.result()).toEqual({ state: 'completed', reason: 'every phase completed' });
    expect(await midPhase.handle.result()).toEqual({ state: 'completed', reason: 'every phase completed' });
    const a = await listEvents(db, atGate.runId);
    expect(a.filter((e) => e.type === 'prompt.sent').map((e) => (e.payload as { phaseKey: string }).phaseKey)).toEqual(['spec', 'implement', 'review']);
    expect(a.map((e) => e.seq)).toEqual(a.map((_, i) => i + 1));
  }, 240_000);
});

describe('a run whose workflow is terminated (from the Web UI or the Temporal CLI)', () => {
  it('is settled failed by the worker, with a report and no agent left, within a few reconcile intervals', async () => {
    await stopWorkers();
    await startWorker('reconcile', { DEVFLOW_RECONCILE_INTERVAL_MS: '1000' });
    const runId = randomUUID();
    const input: RunInput = {
      runId, templateId: 'development@1', repoPath: makeRepo(home), baseBranch: 'main', requirementsMd: '# Terminated\n',
      backend: 'scripted', scenarios: { spec: 'timeout' }, timing: { ...TMUX_TIMING, artifactTimeoutMs: 120_000 },
    };
    const handle = await client.workflow.start(runWorkflow, { workflowId: runWorkflowId(runId), taskQueue, args: [input] });
    await waitFor('the spec prompt', 60_000, async () => (await listEvents(db, runId)).some((e) => e.type === 'artifact.expected'), 100);
    const [session] = await db.query.tuiSessions.findMany({ where: (s, { eq }) => eq(s.runId, runId) });
    await handle.terminate('terminated from the Web UI');
    const terminatedAt = Date.now();
    await waitFor('the run to be settled', 30_000, async () => (await db.query.runs.findFirst({ where: (r, { eq }) => eq(r.id, runId) }))?.finalReportPath != null, 100);
    console.info(`terminated -> settled with its report: ${Date.now() - terminatedAt} ms (reconcile interval 1000 ms)`);
    const run = await db.query.runs.findFirst({ where: (r, { eq }) => eq(r.id, runId) });
    expect(run).toMatchObject({ state: 'failed' });
    const events = await listEvents(db, runId);
    expect(events.find((e) => e.type === 'run.failed')?.payload).toMatchObject({ reason: expect.stringContaining('was terminated') });
    await waitFor('the agent to be gone', 10_000, async () => !processAlive(session!.lastKnownPanePid!), 100);
  }, 120_000);
});
