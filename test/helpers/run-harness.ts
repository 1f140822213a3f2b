// Runs devflow's run workflow for real: the suite's Temporal dev server and Postgres, a real
// Worker hosting the real activities, real git repositories; sessions use the fake backend.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { asc, eq } from 'drizzle-orm';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, inject } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { ActivityDeps } from '../../activities/index.ts';
import { buildApi, type ApiDeps } from '../../api/server.ts';
import { listEvents } from '../../db/events.ts';
import { approvalDecisions, approvalRequests, runPhases, runs, tuiSessions } from '../../db/schema.ts';
import { waitFor } from '../../lib/wait.ts';
import { FakeSessionDriver } from '../../sessions/fake.ts';
import type { SessionDrivers } from '../../sessions/driver.ts';
import { requireAgentCli } from '../../sessions/agent-cli.ts';
import { agentDrivers, sessionDrivers } from '../../sessions/index.ts';
import { PlaybackAgents } from '../../sessions/playback-model/agents.ts';
import { PRESETS } from '../../sessions/presets.ts';
import { TmuxDriver, type TmuxDriverOptions } from '../../sessions/tmux-driver.ts';
import { TmuxServer } from '../../sessions/tmux.ts';
import { createDevflowWorkers, WORKFLOWS_PATH, type DevflowWorkers } from '../../worker/worker.ts';
import { runWorkflowId, statusQuery, type RunInput, type RunStatus } from '../../workflows/messages.ts';
import { runWorkflow } from '../../workflows/run.ts';
import { useDatabase } from './database.ts';

const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

export const FAST = { artifactTimeoutMs: 2_000, stabilityMs: 100, pollMs: 50, maxHungMs: 500 };
/** tmux reports output time in whole seconds, so hangs are told apart on a coarser scale. */
export const TMUX_TIMING = { artifactTimeoutMs: 5_000, stabilityMs: 200, pollMs: 100, maxHungMs: 2_500 };

export type HarnessBackend = 'fake' | 'scripted';

export interface HarnessOptions {
  /** Drivers for the real agents too (the pinned CLIs from devflow's cache), on a playback model of the file's own. */
  realAgents?: boolean;
  /** Agent settings and start timing for the real agents' drivers. */
  driver?: TmuxDriverOptions;
  /** Worker deps overrides for every worker the file starts. */
  deps?: Partial<ActivityDeps>;
}

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
  backend: HarnessBackend;
  /** The playback model's agents (with realAgents). */
  playback: PlaybackAgents | undefined;
  timing: typeof FAST;
  hostId: string;
  drivers: SessionDrivers;
  tmux: TmuxServer | undefined;
  /** The prompts a role's agent received in this run, in order, as it received them. */
  prompts(runId: string, roleId: string, sessionId: string): string[];
  db: ReturnType<typeof useDatabase>['db'];
  pool: ReturnType<typeof useDatabase>['pool'];
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
  workers: DevflowWorkers;
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
export function useRunHarness(backend: HarnessBackend = 'fake', options: HarnessOptions = {}): RunHarness {
  const database = useDatabase(10);
  const { db } = database;
  const fake = new FakeSessionDriver({ writeDelayMs: 10, chunkDelayMs: 30 });
  const taskQueue = `runs-${randomUUID()}`;
  const hostId = `test-${randomUUID().slice(0, 8)}`;
  let bundle: WorkflowBundleWithSourceMap;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let client: Client;
  let root = '';
  const started: RunningWorker[] = [];

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
    harness.tmux = new TmuxServer(path.join(root, 'tmux.sock'));
    if (options.realAgents) {
      // Each file's agents get config folders of their own, never the user's ~/.claude or ~/.codex.
      harness.playback = new PlaybackAgents(path.join(root, 'agents'));
      harness.drivers = agentDrivers({
        tmux: harness.tmux,
        configured: 'claude-code',
        fake,
        playback: harness.playback,
        driver: { findCli: (agent) => requireAgentCli(agent, { searchPath: false }), ...options.driver },
      });
    } else {
      harness.drivers = sessionDrivers({ fake, scripted: new TmuxDriver(harness.tmux, PRESETS.scripted) });
    }
    await harness.startWorker();
  });
  afterAll(async () => {
    for (const w of started.splice(0)) await w.stop();
    await fake.settle();
    await harness.tmux?.killServer();
    await harness.playback?.close();
    await connection?.close();
    await nativeConnection?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const harness: RunHarness = {
    backend,
    playback: undefined,
    timing: backend === 'fake' ? FAST : TMUX_TIMING,
    hostId,
    drivers: sessionDrivers({}),
    tmux: undefined,
    prompts(runId, roleId, sessionId) {
      if (backend === 'fake') return fake.prompts.get(sessionId) ?? [];
      const folder = path.join(harness.workspaceRoot, runId, 'main', '.devflow', 'scripted-agent', roleId);
      if (!existsSync(folder)) return [];
      return readdirSync(folder).sort().map((f) => readFileSync(path.join(folder, f), 'utf8'));
    },
    db,
    pool: database.pool,
    client: undefined as unknown as Client,
    fake,
    taskQueue,
    root,
    workspaceRoot: '',
    bundle: () => bundle,
    async startWorker(overrides = {}) {
      const workers = await createDevflowWorkers({
        connection: nativeConnection,
        namespace: 'default',
        taskQueue,
        deps: { db, drivers: harness.drivers, workspaceRoot: harness.workspaceRoot, hostId, hostQueue: `devflow-host:${hostId}`, probeIntervalMs: 200, ...options.deps, ...overrides },
        workflowBundle: bundle,
        shutdownGraceTime: '2 seconds',
      });
      const running = workers.run();
      const handle = {
        workers,
        async stop() {
          workers.shutdown();
          await running;
        },
      };
      started.push(handle);
      return handle;
    },
    async stopWorkers(pick) {
      for (const w of started.filter(pick)) {
        await w.stop();
        started.splice(started.indexOf(w), 1);
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
        backend,
        timing: harness.timing,
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
      // At an approval gate the next role's agent starts while a person decides: a test decides
      // once it has, so the run's events come in one order.
      await waitFor(`run ${runId} idle at gate ${gateKey}`, 30_000, async () => {
        const described = await client.workflow.getHandle(runWorkflowId(runId)).describe();
        return (described.raw.pendingActivities ?? []).length === 0;
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

/**
 * The HTTP API on the harness's database, queue and workspace, built before the file's tests and
 * closed after them; with `listen`, also on a free loopback port (for clients that are processes).
 */
export function useHarnessApi(h: RunHarness, options: { listen?: boolean; deps?: Partial<ApiDeps> } = {}) {
  const served = { api: undefined as unknown as FastifyInstance, url: '' };
  let temporal: Connection | undefined;
  beforeAll(async () => {
    temporal = await Connection.connect({ address: inject('temporalAddress') });
    served.api = await buildApi({ db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, workspaceRoot: h.workspaceRoot, ...options.deps });
    if (options.listen) {
      await served.api.listen({ host: '127.0.0.1', port: 0 });
      served.url = `http://127.0.0.1:${(served.api.server.address() as { port: number }).port}`;
    }
  });
  afterAll(async () => {
    await served.api?.close();
    await temporal?.close();
  });
  return served;
}
