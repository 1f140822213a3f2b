// A four-service Temporal cluster on PostgreSQL (cli/stack/temporal-cluster.ts) for running devflow
// against the kind of Temporal it meets in production:
//   npm run cluster [-- --port 7933] [--pg-port 7932] [--dir folder]
// Postgres: DATABASE_URL when set, else an embedded one in <dir>/pg. The folder (default
// $DEVFLOW_HOME/cluster) keeps the config, the services' logs and pid files, and the embedded
// Postgres's data, so a second start finds its workflows again. Runs until Ctrl-C or SIGTERM, then
// stops everything it started. Exit codes: 0 stopped on request, 1 failed, 2 bad options.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../cli/stack/postgres.ts';
import { startTemporalCluster, type TemporalClusterHandle } from '../cli/stack/temporal-cluster.ts';
import { loadConfig } from '../lib/env.ts';
import { runMain } from '../lib/main.ts';

const say = (line: string) => process.stdout.write(`${line}\n`);

function portNumber(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65_535) throw new InvalidArgumentError('a port number between 1 and 65535');
  return port;
}

const program = new Command()
  .name('cluster')
  .description('a four-service Temporal cluster (frontend, history, matching, worker) on PostgreSQL')
  .option('--port <n>', "the frontend's gRPC port (TEMPORAL_ADDRESS)", portNumber, 7933)
  .option('--pg-port <n>', 'the embedded Postgres port (ignored with DATABASE_URL)', portNumber, 7932)
  .option('--dir <folder>', 'config, logs, pid files and embedded Postgres data (default $DEVFLOW_HOME/cluster)')
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));
program.parse(process.argv);
const options = program.opts<{ port: number; pgPort: number; dir?: string }>();

await runMain('cluster', async () => {
  const config = loadConfig();
  const dir = path.resolve(options.dir ?? path.join(config.home, 'cluster'));
  let postgres: EmbeddedPostgresHandle | undefined;
  let cluster: TemporalClusterHandle | undefined;
  let requested = false;
  let stopping: ((why: string) => void) | undefined;
  const stopRequested = new Promise<string>((resolve) => (stopping = resolve));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      requested = true;
      stopping?.(signal);
    });
  }

  // Stops what was started, in reverse order; also on a failed start, so nothing is left behind.
  const stopAll = async () => {
    await cluster?.stop();
    await postgres?.stop();
  };
  try {
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      // Made here, with ordinary permissions: the Postgres starter creates missing parents of its
      // data folder as private (0700), which the `postgres` user (as root) could not then enter.
      await mkdir(dir, { recursive: true });
      say(`starting embedded Postgres in ${path.join(dir, 'pg')} on port ${options.pgPort}`);
      postgres = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: options.pgPort, database: 'postgres', log: say });
      databaseUrl = postgres.url;
    }
    const started = Date.now();
    cluster = await startTemporalCluster({ dir, databaseUrl, basePort: options.port, log: say });
    say(`started in ${((Date.now() - started) / 1000).toFixed(1)} s; logs in ${path.join(dir, 'logs')}`);
    say(`Temporal cluster (4 services on PostgreSQL) at ${cluster.address}; point devflow at it with TEMPORAL_ADDRESS=${cluster.address}`);
  } catch (error) {
    await stopAll();
    throw error;
  }

  // A service that dies on its own ends the cluster: half a cluster would only mislead.
  const died = Promise.race(
    cluster.processes.map((part) => part.exited.then(({ code, signal }) => `the ${part.service} service ${signal ? `was killed by ${signal}` : `exited with code ${code}`} (see ${part.logFile})`)),
  );
  const postgresDied = postgres?.exited.then(({ code, signal }) => `Postgres ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`);
  const outcome = await Promise.race([
    stopRequested.then((signal) => ({ code: 0, why: signal })),
    died.then((why) => ({ code: 1, why })),
    ...(postgresDied ? [postgresDied.then((why) => ({ code: 1, why }))] : []),
  ]);
  say(`stopping the Temporal cluster (${outcome.why})`);
  await stopAll();
  say('stopped');
  // Ctrl-C in a terminal reaches the services too, and one may end before this process hears it.
  return requested ? 0 : outcome.code;
});
