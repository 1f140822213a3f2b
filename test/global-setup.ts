// One embedded Postgres and one Temporal dev server for the whole test run, found and
// started exactly as `devflow up` does; test files get their addresses through inject().
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../cli/stack/postgres.ts';
import { resolveTemporalCli } from '../cli/stack/temporal-cli.ts';
import { startTemporalDevServer } from '../cli/stack/temporal-server.ts';
import { connectDatabase } from '../db/client.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { ensureChromium } from '../lib/chromium.ts';
import { devflowCacheDir } from '../lib/executables.ts';
import { processAlive } from '../lib/processes.ts';
import { ensureAgentCli, REAL_AGENTS } from '../sessions/agent-cli.ts';
import { ensureSearchAttributes } from '../worker/search-attributes.ts';
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
  // Every test file's folders (and so its tmux servers and agents) live under this run's own
  // temp folder: the leftover check below then sees only this run's, never another suite's.
  const tmp = path.join(home, 'tmp');
  await mkdir(tmp, { mode: 0o755 });
  process.env.TMPDIR = tmp;
  const cli = await resolveTemporalCli({ log: say });
  say(`Temporal CLI from ${cli.source}: ${cli.path}`);
  // The real agents, pinned, from devflow's cache (installed there once per machine).
  for (const agent of REAL_AGENTS) {
    const found = await ensureAgentCli(agent, { searchPath: false, log: say });
    say(`${agent} ${found.version} from ${found.source}: ${found.path}`);
  }
  say(`Chromium for the browser tests: ${ensureChromium(say)}`);
  const [pgPort, temporalPort] = await freePorts(2);

  const postgres = await startEmbeddedPostgres({ dir: path.join(home, 'pg'), port: pgPort!, log: say });
  // DEVFLOW_TEST_TEMPORAL_ADDRESS runs the suite (or a file of it) on a Temporal it did not start,
  // such as the cluster of `npm run cluster`; otherwise a dev server of its own.
  const external = process.env.DEVFLOW_TEST_TEMPORAL_ADDRESS?.trim();
  const temporal = await (external
    ? useExternalTemporal(external, say)
    : startTemporalDevServer({ cliPath: cli.path, port: temporalPort!, uiPort: 0, namespace: 'default', headless: true })
  ).catch(async (error) => {
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
    // Every test cleans up its agents and tmux servers; one still running here is a leak worth failing for.
    const leftovers = leftoverProcesses(tmp);
    for (const { pid } of leftovers) process.kill(pid, 'SIGKILL');
    await temporal.stop();
    await postgres.stop();
    await rm(home, { recursive: true, force: true });
    if (leftovers.length > 0) {
      throw new Error(`processes left running after the suite (killed now):\n${leftovers.map((p) => `  ${p.pid} ${p.what}: ${p.command}`).join('\n')}`);
    }
  };
}

/** A Temporal the suite did not start: reachable, and with devflow's search attributes, as a worker would leave it. */
async function useExternalTemporal(address: string, say: (line: string) => void): Promise<{ address: string; stop: () => Promise<void> }> {
  const connection = await Connection.connect({ address, connectTimeout: 10_000 }).catch((error: Error) => {
    throw new Error(`DEVFLOW_TEST_TEMPORAL_ADDRESS=${address}: no Temporal answers there (${error.message})`);
  });
  try {
    await ensureSearchAttributes(connection, 'default');
  } finally {
    await connection.close();
  }
  say(`Temporal at ${address} (DEVFLOW_TEST_TEMPORAL_ADDRESS), not started by the suite`);
  return { address, stop: async () => {} };
}

/**
 * What this suite started that is still alive: scripted agents, real agents (Claude Code, Codex
 * and anything they left, such as a Codex daemon) and tmux servers, all recognised by their
 * folders under the temp dir or the agents' cache.
 */
function leftoverProcesses(tmp: string): { pid: number; what: string; command: string }[] {
  const found: { pid: number; what: string; command: string }[] = [];
  const ours = (folder: string) => folder.startsWith(path.join(tmp, 'devflow-'));
  const agentsCache = path.join(devflowCacheDir(), 'agents');
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const pid = Number(entry);
      if (pid === process.pid || !processAlive(pid)) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const command = argv.join(' ').slice(0, 200);
      const exe = argv[0] ?? '';
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (path.basename(exe) === 'node' && argv.some((a) => a.endsWith('scripted-agent.ts')) && ours(cwd)) found.push({ pid, what: 'scripted agent', command });
      else if (path.basename(exe).startsWith('tmux') && argv.some((a) => ours(a))) found.push({ pid, what: 'tmux server', command });
      else if (/chrom/.test(path.basename(exe)) && argv.some((a) => a.startsWith(`--user-data-dir=${tmp}`))) found.push({ pid, what: 'browser', command });
      else if ((exe.startsWith(agentsCache) || argv.some((a) => a.startsWith(agentsCache))) && (ours(cwd) || argv.includes('app-server'))) found.push({ pid, what: 'real agent', command });
    } catch {
      // ended while we looked
    }
  }
  return found;
}
