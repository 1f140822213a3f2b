// A private devflow stack for a benchmark: embedded Postgres, the Temporal dev server, a worker
// (scripted or real agents in tmux, the real ones on a playback model; or fake sessions) and, on request, the HTTP API on a free port.
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { buildApi } from '../api/server.ts';
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
import { createDevflowWorkers } from '../worker/worker.ts';

export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

export function percentiles(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  return { n: sorted.length, p50: at(50), p99: at(99), max: sorted.at(-1)! };
}

export async function startBenchStack(options: { withApi?: boolean } = {}) {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const home = await mkdtemp(path.join(os.tmpdir(), 'devflow-bench-'));
  chmodSync(home, 0o755);
  const cli = await resolveTemporalCli({ log: (line) => console.log(line) });
  const postgres = await startEmbeddedPostgres({ dir: path.join(home, 'pg'), port: await freePort() });
  const temporal = await startTemporalDevServer({ cliPath: cli.path, port: await freePort(), uiPort: 0, namespace: 'default', headless: true });
  const database = connectDatabase(postgres.url, { max: 10 });
  await prepareDatabase(database);
  const tmux = new TmuxServer(path.join(home, 'tmux.sock'));
  // Real agents talk to a playback model of the benchmark's own, with config folders under its home.
  const playback = new PlaybackAgents(path.join(home, 'agents'));
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
  const workers = await createDevflowWorkers({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    deps: { db: database.db, drivers, workspaceRoot, hostId: 'bench', hostQueue: 'devflow-host:bench' },
  });
  const running = workers.run();
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  const api = options.withApi
    ? await buildApi({ db: database.db, pool: database.pool, temporal: connection, namespace: 'default', taskQueue, maxConcurrentRuns: 10_000, workspaceRoot })
    : undefined;
  const apiUrl = api ? await api.listen({ host: '127.0.0.1', port: await freePort() }) : undefined;

  const repo = path.join(home, 'repo');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  execFileSync('git', ['-C', repo, '-c', 'user.email=b@b', '-c', 'user.name=bench', 'commit', '-q', '--allow-empty', '-m', 'init']);

  return {
    db: database.db, client, taskQueue, workspaceRoot, repo, apiUrl, drivers, hostId: 'bench',
    async stop() {
      await api?.close();
      workers.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      await tmux.killServer();
      await playback.close();
      await database.close();
      await temporal.stop();
      await postgres.stop();
      await rm(home, { recursive: true, force: true });
    },
  };
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
