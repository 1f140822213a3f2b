// One embedded Postgres and one Temporal dev server for the whole test run, found and
// started exactly as `devflow up` does; test files get their addresses through inject().
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../cli/stack/postgres.ts';
import { resolveTemporalCli } from '../cli/stack/temporal-cli.ts';
import { startTemporalDevServer } from '../cli/stack/temporal-server.ts';
import { connectDatabase } from '../db/client.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { processAlive } from '../lib/processes.ts';
import { freePorts } from './helpers/ports.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    temporalAddress: string;
    temporalCliPath: string;
  }
}

export default async function setup(project: TestProject) {
  const say = (line: string) => process.stderr.write(`[test stack] ${line}\n`);
  const home = await mkdtemp(path.join(os.tmpdir(), 'devflow-test-'));
  await chmod(home, 0o755); // as root, Postgres runs as the postgres user, who must reach it
  const cli = await resolveTemporalCli({ log: say });
  say(`Temporal CLI from ${cli.source}: ${cli.path}`);
  const [pgPort, temporalPort] = await freePorts(2);

  const postgres = await startEmbeddedPostgres({ dir: path.join(home, 'pg'), port: pgPort!, log: say });
  const temporal = await startTemporalDevServer({
    cliPath: cli.path,
    port: temporalPort!,
    uiPort: 0,
    namespace: 'default',
    headless: true,
  }).catch(async (error) => {
    await postgres.stop();
    throw error;
  });

  const database = connectDatabase(postgres.url, { max: 2 });
  await prepareDatabase(database);
  await database.close();

  project.provide('databaseUrl', postgres.url);
  project.provide('temporalAddress', temporal.address);
  project.provide('temporalCliPath', cli.path);

  return async () => {
    // Every test cleans up its agents; one still running here is a leak worth failing for.
    const leftovers = leftoverAgents();
    for (const pid of leftovers) process.kill(pid, 'SIGKILL');
    await temporal.stop();
    await postgres.stop();
    await rm(home, { recursive: true, force: true });
    if (leftovers.length > 0) throw new Error(`scripted agents left running after the suite (killed now): ${leftovers.join(', ')}`);
  };
}

/** Scripted agent processes started by this suite (their folders are under the temp dir) still alive. */
function leftoverAgents(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      // The agent itself (node ... scripted-agent.ts), not a tmux server whose start command named it.
      if (path.basename(argv[0] ?? '') !== 'node' || !argv.some((a) => a.endsWith('scripted-agent.ts'))) continue;
      if (!readlinkSync(`/proc/${entry}/cwd`).startsWith(path.join(os.tmpdir(), 'devflow-'))) continue;
      if (processAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      // ended while we looked
    }
  }
  return pids;
}
