// Runs devflow's run workflow for real: the suite's Temporal dev server and Postgres, a real
// Worker hosting the real activities, real git repositories; sessions use the fake backend.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { asc, eq } from 'drizzle-orm';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, inject } from 'vitest';
import type { ActivityDeps } from '../../activities/index.ts';
import { listEvents } from '../../db/events.ts';
import { approvalDecisions, approvalRequests, runPhases, runs, tuiSessions } from '../../db/schema.ts';
import { waitFor } from '../../lib/wait.ts';
import { FakeSessionDriver } from '../../sessions/fake.ts';
import { sessionDrivers } from '../../sessions/index.ts';
import { createDevflowWorker, WORKFLOWS_PATH } from '../../worker/worker.ts';
import { runWorkflowId, statusQuery, type RunInput, type RunStatus } from '../../workflows/messages.ts';
import { runWorkflow } from '../../workflows/run.ts';
import { useDatabase } from './database.ts';

const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

export const FAST = { artifactTimeoutMs: 2_000, stabilityMs: 100, pollMs: 50, maxHungMs: 500 };

export function makeRepo(root: string): string {
  const repo = path.join(root, `repo-${randomUUID().slice(0, 8)}`);
  const run = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { stdio: 'ignore' });
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  run('config', 'user.email', 'devflow@example.test');
  run('config', 'user.name', 'devflow tests');
  execFileSync('sh', ['-c', `echo hello > ${repo}/README.md`]);
  run('add', '.');
  run('commit', '-q', '-m', 'initial');
  return repo;
}

export interface RunHarness {
  db: ReturnType<typeof useDatabase>['db'];
  client: Client;
  fake: FakeSessionDriver;
  taskQueue: string;
  root: string;
  workspaceRoot: string;
  bundle: () => WorkflowBundleWithSourceMap;
  startWorker(overrides?: Partial<ActivityDeps>): Promise<RunningWorker>;
  /** Stops (gracefully) the workers the predicate picks. */
  stopWorkers(pick: (worker: RunningWorker) => boolean): Promise<void>;
  start(overrides?: Partial<RunInput>): Promise<{ runId: string; handle: WorkflowHandle<typeof runWorkflow> }>;
  status(runId: string): Promise<RunStatus>;
  waitForGate(runId: string, gateKey: string): Promise<RunStatus>;
  snapshot(runId: string): Promise<RunSnapshot>;
}

export interface RunningWorker {
  worker: Worker;
  stop(): Promise<void>;
}

export interface RunSnapshot {
  run: typeof runs.$inferSelect;
  phases: (typeof runPhases.$inferSelect)[];
  sessions: (typeof tuiSessions.$inferSelect)[];
  approvals: (typeof approvalRequests.$inferSelect)[];
  decisions: (typeof approvalDecisions.$inferSelect)[];
  events: string[];
  seqs: number[];
}

/** Call at the top of a test file: one worker for the file, stopped afterwards. */
export function useRunHarness(): RunHarness {
  const database = useDatabase(10);
  const { db } = database;
  const fake = new FakeSessionDriver({ writeDelayMs: 10, chunkDelayMs: 30 });
  const taskQueue = `runs-${randomUUID()}`;
  let bundle: WorkflowBundleWithSourceMap;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let client: Client;
  let root = '';
  const workers: RunningWorker[] = [];

  beforeAll(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    root = await mkdtemp(path.join(os.tmpdir(), 'devflow-runs-'));
    bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet as never });
    nativeConnection = await NativeConnection.connect({ address: inject('temporalAddress') });
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
    harness.client = client;
    harness.root = root;
    harness.workspaceRoot = path.join(root, 'workspaces');
    await harness.startWorker();
  });
  afterAll(async () => {
    for (const w of workers.splice(0)) await w.stop();
    await fake.settle();
    await connection?.close();
    await nativeConnection?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const harness: RunHarness = {
    db,
    client: undefined as unknown as Client,
    fake,
    taskQueue,
    root,
    workspaceRoot: '',
    bundle: () => bundle,
    async startWorker(overrides = {}) {
      const worker = await createDevflowWorker({
        connection: nativeConnection,
        namespace: 'default',
        taskQueue,
        deps: { db, drivers: sessionDrivers({ fake }), workspaceRoot: harness.workspaceRoot, ...overrides },
        workflowBundle: bundle,
        shutdownGraceTime: '2 seconds',
      });
      const running = worker.run();
      const handle = {
        worker,
        async stop() {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running;
        },
      };
      workers.push(handle);
      return handle;
    },
    async stopWorkers(pick) {
      for (const w of workers.filter(pick)) {
        await w.stop();
        workers.splice(workers.indexOf(w), 1);
      }
    },
    async start(overrides = {}) {
      const runId = randomUUID();
      const repoPath = overrides.repoPath ?? makeRepo(root);
      const input: RunInput = {
        runId,
        templateId: 'development@1',
        repoPath,
        baseBranch: 'main',
        requirementsMd: '# Greeting\n\nPrint hello.\n',
        backend: 'fake',
        timing: FAST,
        ...overrides,
      };
      const handle = await client.workflow.start(runWorkflow, {
        workflowId: runWorkflowId(runId),
        taskQueue,
        args: [input],
        staticSummary: `devflow run ${runId} (${input.templateId})`,
      });
      return { runId, handle };
    },
    status: (runId) => client.workflow.getHandle(runWorkflowId(runId)).query(statusQuery),
    async waitForGate(runId, gateKey) {
      let status: RunStatus | undefined;
      await waitFor(`gate ${gateKey} on run ${runId}`, 30_000, async () => {
        status = await harness.status(runId).catch(() => undefined);
        return status?.pendingGate?.gateKey === gateKey;
      }, 50);
      return status!;
    },
    async snapshot(runId) {
      const [run] = await db.select().from(runs).where(eq(runs.id, runId));
      const phases = await db.select().from(runPhases).where(eq(runPhases.runId, runId)).orderBy(asc(runPhases.ordinal));
      const sessions = await db.select().from(tuiSessions).where(eq(tuiSessions.runId, runId)).orderBy(asc(tuiSessions.createdAt));
      const approvals = await db.select().from(approvalRequests).where(eq(approvalRequests.runId, runId)).orderBy(asc(approvalRequests.createdAt));
      const decisions = [];
      for (const a of approvals) decisions.push(...(await db.select().from(approvalDecisions).where(eq(approvalDecisions.approvalRequestId, a.id))));
      const events = await listEvents(db, runId);
      return { run: run!, phases, sessions, approvals, decisions, events: events.map((e) => e.type), seqs: events.map((e) => e.seq) };
    },
  };
  return harness;
}

export async function writeFileInRepo(repo: string, name: string, text: string): Promise<void> {
  await writeFile(path.join(repo, name), text);
}
