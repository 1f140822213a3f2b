// The worker process killed with SIGKILL mid-phase while its tmux agent works: a new worker
// process recovers the host's sessions and the run finishes as if nothing happened.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listEvents } from '../db/events.ts';
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
async function startWorker(name: string): Promise<ChildProcess> {
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

