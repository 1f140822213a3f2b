// A private devflow stack for a benchmark: embedded Postgres, the Temporal dev server, a worker
// (scripted or real agents in tmux, the real ones on a playback model; or fake sessions) and, on request, the HTTP API on a free port.
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { buildApi } from '../api/server.ts';
import { startDevflowProcess } from '../cli/stack/child-process.ts';
import { startEmbeddedPostgres } from '../cli/stack/postgres.ts';
import { resolveTemporalCli } from '../cli/stack/temporal-cli.ts';
import { startTemporalDevServer } from '../cli/stack/temporal-server.ts';
import { connectDatabase } from '../db/client.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { ensureAgentCli } from '../sessions/agent-cli.ts';
import { FakeSessionDriver } from '../sessions/fake.ts';
import { agentDrivers } from '../sessions/index.ts';
import { PlaybackAgents } from '../sessions/playback-model/agents.ts';
import { TmuxServer } from '../sessions/tmux.ts';
import { ensureSearchAttributes } from '../worker/search-attributes.ts';
import { createDevflowWorkers } from '../worker/worker.ts';
import { freePort } from '../lib/ports.ts';

export { freePort, freePorts } from '../lib/ports.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

export function percentiles(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  return { n: sorted.length, p50: at(50), p99: at(99), max: sorted.at(-1)! };
}

const startedParts: { name: string; stop: () => Promise<void> }[] = [];
let stopping: Promise<void> | undefined;

/** Stops, newest first, everything the benchmark registered with `track`; safe to call twice. */
export function stopStarted(): Promise<void> {
  stopping ??= (async () => {
    for (const part of startedParts.reverse()) {
      await part.stop().catch((error: Error) => process.stderr.write(`could not stop ${part.name}: ${error.message}\n`));
    }
  })();
  return stopping;
}

/**
 * Registers something a benchmark started (a stack part, a child process, a temp folder). A
 * benchmark that throws, or is stopped with Ctrl-C, stops all of it before it exits non-zero.
 */
export function track(name: string, stop: () => Promise<void>): void {
  if (startedParts.length === 0 && !stopping) {
    const fail = (why: string) => {
      process.stderr.write(`${why}\nstopping what the benchmark started\n`);
      void stopStarted().finally(() => process.exit(1));
    };
    process.on('uncaughtException', (error) => fail(`benchmark failed: ${error.stack ?? error}`));
    process.on('SIGINT', () => fail('SIGINT'));
    process.on('SIGTERM', () => fail('SIGTERM'));
  }
  startedParts.push({ name, stop });
}

/** The resident memory of a process (Linux: VmRSS), in MB. */
export function rssMbOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  if (!line) throw new Error(`no VmRSS for process ${pid}`);
  return Math.round(Number(line.split(/\s+/)[1]) / 1024);
}

export async function startBenchStack(options: { withApi?: boolean; temporalAddress?: string; workerProcess?: boolean } = {}) {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const home = await mkdtemp(path.join(os.tmpdir(), 'devflow-bench-'));
  track('its home folder', () => rm(home, { recursive: true, force: true }));
  chmodSync(home, 0o755);
  const postgres = await startEmbeddedPostgres({ dir: path.join(home, 'pg'), port: await freePort() });
  track('Postgres', () => postgres.stop());
  // A Temporal the caller runs (a cluster), or a dev server of the benchmark's own.
  const temporal = options.temporalAddress
    ? { address: options.temporalAddress }
    : await startTemporalDevServer({ cliPath: (await resolveTemporalCli({ log: (line) => console.log(line) })).path, port: await freePort(), uiPort: 0, namespace: 'default', headless: true });
  if ('stop' in temporal) track('the Temporal dev server', () => temporal.stop());
  const database = connectDatabase(postgres.url, { max: 10 });
  track('the database pool', () => database.close());
  await prepareDatabase(database);
  const tmux = new TmuxServer(path.join(home, 'tmux.sock'));
  track('the agents (tmux)', () => tmux.killServer());
  // Real agents talk to a playback model of the benchmark's own, with config folders under its home.
  const playback = new PlaybackAgents(path.join(home, 'agents'));
  track('the playback model', () => playback.close());
  const drivers = agentDrivers({
    tmux,
    configured: 'claude-code',
    fake: new FakeSessionDriver(),
    playback,
    driver: { findCli: (agent) => ensureAgentCli(agent, { searchPath: false, log: (line) => console.log(line) }) },
  });
  const workspaceRoot = path.join(home, 'ws');
  const taskQueue = 'bench';
  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  track('the worker connection', () => nativeConnection.close());
  let workerPid: number | undefined;
  if (options.workerProcess) {
    // `npm run worker` as devflow up runs it (with its session manager and reconciler), so its
    // memory is measured apart. DEVFLOW_HOME gives it this stack's tmux socket (<home>/tmux.sock).
    const worker = await startDevflowProcess({
      name: 'the worker',
      entry: path.join(ROOT, 'worker', 'main.ts'),
      env: { ...process.env, DEVFLOW_HOME: home, DEVFLOW_WORKSPACE_ROOT: workspaceRoot, DEVFLOW_HOST_ID: 'bench', DEVFLOW_TASK_QUEUE: taskQueue, DATABASE_URL: postgres.url, TEMPORAL_ADDRESS: temporal.address, DEVFLOW_LOG_LEVEL: 'warn' },
      logFile: path.join(home, 'worker.log'),
    });
    workerPid = worker.pid;
    track('the worker', worker.stop);
  } else {
    const workers = await createDevflowWorkers({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      deps: { db: database.db, drivers, workspaceRoot, hostId: 'bench', hostQueue: 'devflow-host:bench' },
    });
    const running = workers.run();
    track('the worker', async () => {
      workers.shutdown();
      await running;
    });
  }
  const connection = await Connection.connect({ address: temporal.address });
  track('the client connection', () => connection.close());
  // A Temporal the benchmark did not start lacks devflow's search attributes until they are added.
  if (options.temporalAddress) await ensureSearchAttributes(connection, 'default');
  const client = new Client({ connection });
  const api = options.withApi
    ? await buildApi({ db: database.db, pool: database.pool, temporal: connection, namespace: 'default', taskQueue, maxConcurrentRuns: 10_000, workspaceRoot })
    : undefined;
  if (api) track('the API', () => api.close());
  const apiUrl = api ? await api.listen({ host: '127.0.0.1', port: await freePort() }) : undefined;

  const repo = path.join(home, 'repo');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  execFileSync('git', ['-C', repo, '-c', 'user.email=b@b', '-c', 'user.name=bench', 'commit', '-q', '--allow-empty', '-m', 'init']);

  return { db: database.db, client, nativeConnection, temporalAddress: temporal.address, taskQueue, workspaceRoot, repo, apiUrl, drivers, hostId: 'bench', workerPid, stop: stopStarted };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** devflow's HTTP API as a client uses it; a 503 ("send it again": Temporal busy or restarting) is sent again. */
export function apiClient(baseUrl: string) {
  let resent = 0;
  const call = async <T = unknown>(method: string, route: string, body?: unknown): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      const response = await fetch(`${baseUrl}${route}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
      // Starts and decisions are idempotent, so sending one again is safe.
      if (response.status === 503 && attempt < 20) {
        resent += 1;
        await response.body?.cancel();
        await sleep(100 * attempt);
        continue;
      }
      if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    }
  };
  return { call, resent: () => resent };
}

/** The id of a run's pending spec gate, polled through the API as a person's client would; another gate is an error. */
export async function pendingSpecGate(api: ReturnType<typeof apiClient>, runId: string, pollMs: number): Promise<string> {
  for (;;) {
    const pending = (await api.call<{ approvals: { id: string; state: string; gateKey: string }[] }>('GET', `/v1/runs/${runId}/approvals`)).approvals.filter((a) => a.state === 'pending');
    const other = pending.find((a) => a.gateKey !== 'spec_approved');
    if (other) throw new Error(`run ${runId} stopped at gate ${other.gateKey}`);
    if (pending[0]) return pending[0].id;
    await sleep(pollMs);
  }
}

/** Runs `work` `total` times, `concurrency` at a time. */
export async function pool<T>(total: number, concurrency: number, work: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next += 1;
      results.push(await work());
    }
  }));
  return results;
}
