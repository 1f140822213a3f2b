// `devflow up`: the whole local stack on embedded defaults under $DEVFLOW_HOME.
//   embedded Postgres (unless DATABASE_URL) -> Temporal dev server + Web UI (unless
//   TEMPORAL_ADDRESS) -> migrations and registries -> worker and API processes -> self-check.
// Every part started here is supervised (supervisor.ts): reported and restarted if it dies, and
// the whole stack stopped (exit 1) if one keeps dying. Ctrl-C stops everything in reverse order,
// restarts nothing, and leaves no process behind.
import { appendFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { connectDatabase } from '../../db/client.ts';
import { prepareDatabase } from '../../db/prepare.ts';
import { loadConfig, type DevflowConfig } from '../../lib/env.ts';
import { DevflowError } from '../../lib/errors.ts';
import { waitFor } from '../../lib/wait.ts';
import { TmuxServer } from '../../sessions/tmux.ts';
import { workflowIds } from '../../lib/keys.ts';
import { formatProblems } from '../../schemas/definitions.ts';
import { stackCheckWorkflow } from '../../workflows/stack-check.ts';
import { startDevflowProcess } from './child-process.ts';
import { commandLine, isAlive, readPidFiles, removePidFile, waitForExit, writePidFile } from './pid-files.ts';
import { RESTART_POLICY, Supervisor, type RunningPart } from './supervisor.ts';
import { startEmbeddedPostgres } from './postgres.ts';
import { resolveTemporalCli } from './temporal-cli.ts';
import { startTemporalDevServer } from './temporal-server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

type Stopper = { name: string; stop: () => Promise<void> };

export interface UpOptions {
  env?: NodeJS.ProcessEnv;
  say?: (line: string) => void;
}

export async function up(options: UpOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const config = loadConfig(env);
  await mkdir(config.runDir, { recursive: true });
  await mkdir(config.logDir, { recursive: true });
  await refuseIfRunning(config);
  await reapLeftovers(config, say);
  await writePidFile(config.runDir, 'devflow', process.pid);

  const started: Stopper[] = [];
  let shuttingDown: Promise<number> | undefined;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));

  const shutdown = (code: number, why: string) => {
    shuttingDown ??= (async () => {
      say(`stopping devflow (${why})`);
      for (const item of started.reverse()) {
        try {
          await item.stop();
          say(`  stopped ${item.name}`);
        } catch (error) {
          say(`  ${item.name} did not stop cleanly: ${(error as Error).message}`);
        }
      }
      await removePidFile(config.runDir, 'devflow');
      resolveStopped(code);
      return code;
    })();
    return shuttingDown;
  };
  process.on('SIGINT', () => void shutdown(0, 'SIGINT'));
  process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));

  try {
    await startStack(config, env, say, started, (reason) => void shutdown(1, reason), () => shuttingDown !== undefined);
  } catch (error) {
    if (shuttingDown) return shuttingDown;
    say(`devflow up failed: ${(error as Error).message}`);
    if (error instanceof DevflowError && error.recoveryHint) say(error.recoveryHint);
    return shutdown(1, 'start-up failed');
  }
  return stopped;
}

async function startStack(
  config: DevflowConfig,
  env: NodeJS.ProcessEnv,
  say: (line: string) => void,
  started: Stopper[],
  giveUp: (reason: string) => void,
  cancelled: () => boolean,
): Promise<void> {
  const logFile = (name: string) => path.join(config.logDir, `${name}.log`);
  const check = () => {
    if (cancelled()) throw new Error('cancelled');
  };

  // Each part started here is supervised: restarted on the same port and data if it dies.
  const supervise = <P extends RunningPart>(name: string, start: () => Promise<P>) => {
    const policy = { ...RESTART_POLICY, maxRestarts: config.restartLimit };
    const supervisor = new Supervisor({ name, start, runDir: config.runDir, say, onGiveUp: giveUp, stackStopping: cancelled, policy });
    started.push({ name, stop: () => supervisor.stop() });
    return supervisor;
  };

  let databaseUrl = config.databaseUrl;
  if (databaseUrl) {
    say(`Postgres: using DATABASE_URL`);
  } else {
    say(`Postgres: starting embedded server on 127.0.0.1:${config.embeddedPostgresPort}`);
    const postgres = supervise('postgres', () =>
      startEmbeddedPostgres({
        dir: path.join(config.home, 'pg'),
        port: config.embeddedPostgresPort,
        log: (line) => say(`  ${line}`),
        serverLog: (text) => appendFileSync(logFile('postgres'), text),
      }),
    );
    await postgres.start();
    databaseUrl = postgres.part!.url;
  }
  check();

  let temporalAddress = config.temporal.address;
  let uiUrl: string | undefined;
  if (temporalAddress) {
    say(`Temporal: using TEMPORAL_ADDRESS ${temporalAddress}`);
  } else {
    const cli = await resolveTemporalCli({ env, log: (line) => say(`  ${line}`) });
    check();
    say(`Temporal: starting dev server on 127.0.0.1:${config.temporal.devServerPort} (CLI from ${cli.source}: ${cli.path})`);
    // Histories live in this SQLite file, so a restarted server still has every run.
    const temporal = supervise('temporal', () =>
      startTemporalDevServer({
        cliPath: cli.path,
        port: config.temporal.devServerPort,
        uiPort: config.temporal.uiPort,
        namespace: config.temporal.namespace,
        dbFile: path.join(config.home, 'temporal.sqlite'),
        output: (text) => appendFileSync(logFile('temporal'), text),
      }),
    );
    await temporal.start();
    temporalAddress = temporal.part!.address;
    uiUrl = temporal.part!.uiUrl;
  }
  check();

  const database = connectDatabase(databaseUrl, { max: 2, applicationName: 'devflow-up' });
  try {
    const registries = await prepareDatabase(database, { definitionsDir: config.definitionsDir });
    say(`database: migrations applied; ${registries.templates.length} templates, ${registries.personas.length} personas, ${registries.schemas.length} artifact schemas registered`);
    for (const line of formatProblems(registries.problems)) say(`  refused: ${line}`);
  } finally {
    await database.close();
  }
  check();

  // Stopped after the worker: the agents' tmux server of this home, with every agent in it.
  const tmux = new TmuxServer(config.tmuxSocket);
  started.push({ name: 'agent sessions (tmux)', stop: () => tmux.killServer() });

  // The children reach what was started here; the API links to the Web UI this stack runs.
  const childEnv = { ...env, DATABASE_URL: databaseUrl, TEMPORAL_ADDRESS: temporalAddress, ...(uiUrl && !env.DEVFLOW_WEB_UI_URL ? { DEVFLOW_WEB_UI_URL: uiUrl } : {}) };
  for (const name of ['worker', 'api'] as const) {
    const child = supervise(name, () =>
      startDevflowProcess({ name, entry: path.join(ROOT, name, 'main.ts'), env: childEnv, logFile: logFile(name) }),
    );
    say(`${name}: starting`);
    await child.start();
    check();
  }

  await selfCheck(temporalAddress, config);
  const apiUrl = `http://${config.api.host}:${config.api.port}`;
  await waitFor('the API to report ready', 30_000, async () => {
    const response = await fetch(`${apiUrl}/readyz`).catch(() => undefined);
    return response?.status === 200;
  });

  say('');
  say('devflow is up');
  say(`  API     ${apiUrl}  (GET /readyz)`);
  if (uiUrl) say(`  Web UI  ${uiUrl}/namespaces/${config.temporal.namespace}/workflows`);
  say(`  logs    ${config.logDir}`);
  say('Press Ctrl-C to stop.');
}

/** Runs the stack-check workflow on the fresh worker: Temporal, worker and Postgres together. */
async function selfCheck(address: string, config: DevflowConfig): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const id = workflowIds.stackCheck(new Date().toISOString());
    await client.workflow.execute(stackCheckWorkflow, {
      workflowId: id,
      taskQueue: config.taskQueue,
      args: [id],
      workflowExecutionTimeout: '60 seconds',
    });
  } finally {
    await connection.close();
  }
}

async function refuseIfRunning(config: DevflowConfig): Promise<void> {
  const pids = await readPidFiles(config.runDir);
  const supervisor = pids.get('devflow');
  if (supervisor && supervisor !== process.pid && isAlive(supervisor) && commandLine(supervisor).includes('devflow')) {
    throw new DevflowError({
      code: 'stack_already_running',
      message: `devflow is already running from ${config.home} (pid ${supervisor})`,
      recoveryHint: 'stop it first (Ctrl-C in its terminal, or kill ' + supervisor + '), or use another DEVFLOW_HOME',
    });
  }
}

/** A supervisor killed with SIGKILL leaves its children behind; stop them before starting anew. */
async function reapLeftovers(config: DevflowConfig, say: (line: string) => void): Promise<void> {
  const markers: Record<string, string> = { worker: 'worker/main.ts', api: 'api/main.ts', temporal: 'start-dev', postgres: 'postgres' };
  for (const [name, pid] of await readPidFiles(config.runDir)) {
    const marker = markers[name];
    if (marker && isAlive(pid) && commandLine(pid).includes(marker)) {
      say(`stopping ${name} (pid ${pid}) left over from an earlier devflow up`);
      process.kill(pid, name === 'postgres' ? 'SIGINT' : 'SIGTERM');
      if (!(await waitForExit(pid, 15_000))) process.kill(pid, 'SIGKILL');
    }
    await removePidFile(config.runDir, name);
  }
}
