// A real Temporal cluster on PostgreSQL: the four services (frontend, history, matching, worker)
// as separate `temporal-server` processes, the way a production deployment runs them, unlike the
// single-process dev server of `devflow up`. For trying devflow (and its benchmarks) against the
// kind of Temporal it meets in production: SQL persistence and visibility, services talking over
// gRPC and membership, caches that refresh on their own schedule.
//
// The binaries are built once per machine with `go install` into devflow's per-user cache (next
// to the Temporal CLI); the server's configuration is written here, from TypeScript, into the
// cluster's folder, so nothing depends on the layout of Go's module cache. The SQL schemas are
// embedded in `temporal-sql-tool` (`--schema-name`), so no schema folder is needed either.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import pg from 'pg';
import { DevflowError } from '../../lib/errors.ts';
import { findOnPath, isExecutable, versionOf } from '../../lib/executables.ts';
import { freePorts } from '../../lib/ports.ts';
import { waitFor } from '../../lib/wait.ts';
import { commandLine, isAlive, readPidFiles, removePidFile, writePidFile } from './pid-files.ts';
import type { PartExit } from './supervisor.ts';
import { temporalCacheDir } from './temporal-cli.ts';
import { TEMPORAL_LATENCY_CONFIG } from './temporal-server.ts';

export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
const SERVER_PACKAGE = `go.temporal.io/server/cmd/server@${TEMPORAL_SERVER_VERSION}`;
const SQL_TOOL_PACKAGE = `go.temporal.io/server/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`;
/** What `go install` names each package's binary, and the name devflow keeps it under. */
const BINARIES = { server: { built: 'server', kept: 'temporal-server' }, sqlTool: { built: 'sql', kept: 'temporal-sql-tool' } };

export const TEMPORAL_SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
export type TemporalService = (typeof TEMPORAL_SERVICES)[number];

/** The config file is `<dir>/config/<env>.yaml`; the server picks it by this name (`--env`). */
const CONFIG_ENV = 'devflow';
/** Fixed when a database is first used: Temporal cannot change a cluster's shard count later. */
const HISTORY_SHARDS = 4;
/** Where devflow registers runs; any other namespace a caller needs can be registered the same way. */
const NAMESPACE = 'default';
const RETENTION = '3 days';

type Log = (line: string) => void;

// ---------------------------------------------------------------------------------------------
// The binaries: TEMPORAL_SERVER_PATH / TEMPORAL_SQL_TOOL_PATH, else the cache, else `go install`.

export interface ResolvedTemporalServer {
  serverPath: string;
  sqlToolPath: string;
}

export interface ResolveServerOptions {
  env?: NodeJS.ProcessEnv;
  /** Progress lines; the first build takes minutes. */
  log?: Log;
}

/** A binary counts only if it runs and is the version this module writes configuration for. */
function answersRightVersion(file: string, env: NodeJS.ProcessEnv): boolean {
  return versionOf(file, env)?.includes(TEMPORAL_SERVER_VERSION.slice(1)) ?? false;
}

async function explicitBinary(variable: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const file = env[variable]?.trim();
  if (!file) return undefined;
  if (!(await isExecutable(file))) {
    throw new DevflowError({
      code: 'temporal_cli_not_found',
      message: `${variable}: ${file} is not an executable file`,
      recoveryHint: `point ${variable} at a Temporal ${TEMPORAL_SERVER_VERSION} binary, or unset it to let devflow build one`,
    });
  }
  return file;
}

export async function resolveTemporalServer(options: ResolveServerOptions = {}): Promise<ResolvedTemporalServer> {
  const env = options.env ?? process.env;
  const log = options.log ?? (() => undefined);
  const cacheDir = temporalCacheDir(env);
  const cached = { serverPath: path.join(cacheDir, BINARIES.server.kept), sqlToolPath: path.join(cacheDir, BINARIES.sqlTool.kept) };
  const explicit = {
    serverPath: await explicitBinary('TEMPORAL_SERVER_PATH', env),
    sqlToolPath: await explicitBinary('TEMPORAL_SQL_TOOL_PATH', env),
  };
  const usable = async (file: string) => (await isExecutable(file)) && answersRightVersion(file, env);
  const missing = (!explicit.serverPath && !(await usable(cached.serverPath))) || (!explicit.sqlToolPath && !(await usable(cached.sqlToolPath)));
  if (missing) await buildIntoCache(cacheDir, env, log);
  return { serverPath: explicit.serverPath ?? cached.serverPath, sqlToolPath: explicit.sqlToolPath ?? cached.sqlToolPath };
}

async function buildIntoCache(cacheDir: string, env: NodeJS.ProcessEnv, log: Log): Promise<void> {
  const go = (await findOnPath('go', env)) ?? ((await isExecutable('/usr/local/go/bin/go')) ? '/usr/local/go/bin/go' : undefined);
  if (!go) {
    throw new DevflowError({
      code: 'temporal_cli_not_found',
      message: `no temporal-server ${TEMPORAL_SERVER_VERSION} in ${cacheDir}, and Go is not installed to build it`,
      recoveryHint: `install Go (https://go.dev/dl/) and re-run, or set TEMPORAL_SERVER_PATH and TEMPORAL_SQL_TOOL_PATH to Temporal ${TEMPORAL_SERVER_VERSION} binaries`,
    });
  }
  await mkdir(cacheDir, { recursive: true });
  // Build into a private folder and rename, so an interrupted build never leaves a broken binary.
  const gobin = await mkdtemp(path.join(cacheDir, '.build-server-'));
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 1000);
  log(`building temporal-server and temporal-sql-tool ${TEMPORAL_SERVER_VERSION} with Go; the first build takes a few minutes and is cached in ${cacheDir}`);
  const ticker = setInterval(() => log(`  still building the Temporal server (${seconds()} s)`), 20_000);
  try {
    const { code, output } = await runCollecting(go, ['install', SERVER_PACKAGE, SQL_TOOL_PACKAGE], { env: { ...env, GOBIN: gobin } });
    if (code !== 0) {
      throw new DevflowError({
        code: 'temporal_cli_build_failed',
        message: `go install ${SERVER_PACKAGE} ${SQL_TOOL_PACKAGE} failed (exit ${code}):\n${output.slice(-3000)}`,
        recoveryHint: 'build them yourself and set TEMPORAL_SERVER_PATH and TEMPORAL_SQL_TOOL_PATH, or point devflow at an existing Temporal with TEMPORAL_ADDRESS',
      });
    }
    for (const binary of Object.values(BINARIES)) await rename(path.join(gobin, binary.built), path.join(cacheDir, binary.kept));
    log(`built the Temporal server in ${seconds()} s -> ${cacheDir}`);
  } finally {
    clearInterval(ticker);
    await rm(gobin, { recursive: true, force: true });
  }
}

/** Runs a program to its end, keeping the last 20 kB of what it printed (for error messages). */
function runCollecting(program: string, args: string[], options: { env: NodeJS.ProcessEnv }): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000));
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

// ---------------------------------------------------------------------------------------------
// The databases: two on the given Postgres, created if missing, schemas set up and updated.

interface DatabaseTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The database named in the URL: where devflow connects to create the two others. */
  adminDatabase: string;
}

function parseDatabaseUrl(databaseUrl: string): DatabaseTarget {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new Error(`the database URL for the Temporal cluster is not a URL: ${JSON.stringify(databaseUrl.replace(/:[^:@/]*@/, ':***@'))}`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`the Temporal cluster needs a postgres:// URL, got ${url.protocol}//`);
  }
  // The server's Postgres driver sets sslmode itself from its TLS settings, which this module does not write.
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode && sslmode !== 'disable') {
    throw new Error(`the database URL asks for sslmode=${sslmode}; the Temporal cluster connects to Postgres without TLS only`);
  }
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username || 'postgres'),
    password: decodeURIComponent(url.password),
    adminDatabase: decodeURIComponent(url.pathname.slice(1)) || 'postgres',
  };
}

function pgClient(target: DatabaseTarget, database: string): pg.Client {
  return new pg.Client({ host: target.host, port: target.port, user: target.user, password: target.password, database });
}

async function ensureDatabases(target: DatabaseTarget, names: string[]): Promise<void> {
  const admin = pgClient(target, target.adminDatabase);
  await admin.connect();
  try {
    for (const name of names) {
      const found = await admin.query('select 1 from pg_database where datname = $1', [name]);
      if (found.rowCount) continue;
      await admin.query(`create database "${name}"`).catch((error: Error) => {
        throw new Error(`could not create database ${name} on ${target.host}:${target.port} as ${target.user}: ${error.message} (create it yourself, or use a role with CREATEDB)`);
      });
    }
  } finally {
    await admin.end();
  }
}

async function hasVersionTable(target: DatabaseTarget, database: string): Promise<boolean> {
  const client = pgClient(target, database);
  await client.connect();
  try {
    const result = await client.query<{ found: string | null }>(`select to_regclass('schema_version')::text as found`);
    return result.rows[0]?.found != null;
  } finally {
    await client.end();
  }
}

/**
 * Services bootstrap their membership ring from the hosts that heartbeated into the database in
 * the last 20 s (Temporal's cutoff). Right after a stop, those are the previous run's processes,
 * on ports nobody listens to any more, and the first service would spend its whole join timeout
 * (30 s and more) trying them: waiting for their records to age out is quicker.
 */
async function waitForStaleMembers(target: DatabaseTarget, database: string, log: Log): Promise<void> {
  const client = pgClient(target, database);
  await client.connect();
  let age: number | undefined;
  try {
    // Temporal writes these times in UTC into columns without a time zone.
    const result = await client.query<{ age: string | null }>(
      `select extract(epoch from (now() at time zone 'utc') - max(last_heartbeat))::text as age from cluster_membership`,
    );
    age = result.rows[0]?.age == null ? undefined : Number(result.rows[0].age);
  } finally {
    await client.end();
  }
  const cutoffSeconds = 21;
  if (age === undefined || age >= cutoffSeconds) return;
  const waitSeconds = Math.ceil(cutoffSeconds - age);
  log(`waiting ${waitSeconds} s for the previous run's membership records to expire (the services would try to join them)`);
  await new Promise((resolve) => setTimeout(resolve, waitSeconds * 1000));
}

/** Sets the schema up once (the version tables at 0.0), then brings it to the binary's latest version. */
async function ensureSchema(sqlTool: string, target: DatabaseTarget, database: string, schemaName: string, logFile: string): Promise<void> {
  // Through the environment, so the password does not show in `ps`.
  const env = {
    ...process.env,
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: target.host,
    SQL_PORT: String(target.port),
    SQL_USER: target.user,
    SQL_PASSWORD: target.password,
    SQL_DATABASE: database,
  };
  const steps = [['update-schema', '--schema-name', schemaName]];
  if (!(await hasVersionTable(target, database))) steps.unshift(['setup-schema', '--version', '0.0']);
  for (const args of steps) {
    const { code, output } = await runCollecting(sqlTool, args, { env });
    await writeFile(logFile, `$ temporal-sql-tool ${args.join(' ')} (database ${database})\n${output}\n`, { flag: 'a' });
    if (code !== 0) throw new Error(`temporal-sql-tool ${args[0]} failed for database ${database} (exit ${code}):\n${output.slice(-2000)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The configuration, written as YAML into <dir>/config.

interface ServicePorts {
  grpc: number;
  membership: number;
  /** The frontend's HTTP API. */
  http?: number;
}

export type ClusterPorts = Record<TemporalService, ServicePorts>;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The frontend on `frontendPort` (or a free port), every other listener on a free port. */
async function pickPorts(frontendPort: number | undefined): Promise<ClusterPorts> {
  // Said here, rather than as a bind error at the end of the frontend's log.
  if (frontendPort !== undefined && !(await portFree(frontendPort))) {
    throw new Error(`port ${frontendPort} on 127.0.0.1, wanted for the Temporal frontend, is in use; choose another port`);
  }
  const free = (await freePorts(9)).filter((port) => port !== frontendPort);
  const next = () => free.shift()!;
  return {
    frontend: { grpc: frontendPort ?? next(), membership: next(), http: next() },
    history: { grpc: next(), membership: next() },
    matching: { grpc: next(), membership: next() },
    worker: { grpc: next(), membership: next() },
  };
}

/** Enough YAML for the server's config: nested mappings in block style, everything else as JSON (valid YAML). */
function toYaml(value: Record<string, unknown>, indent = ''): string {
  return Object.entries(value)
    .map(([key, item]) =>
      item !== null && typeof item === 'object' && !Array.isArray(item)
        ? `${indent}${key}:\n${toYaml(item as Record<string, unknown>, `${indent}  `)}`
        : `${indent}${key}: ${JSON.stringify(item)}\n`,
    )
    .join('');
}

function sqlStore(target: DatabaseTarget, database: string, maxConns: number) {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return {
    sql: {
      pluginName: 'postgres12',
      databaseName: database,
      connectAddr: `${host}:${target.port}`,
      connectProtocol: 'tcp',
      user: target.user,
      password: target.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  };
}

function serverConfig(dir: string, target: DatabaseTarget, databases: { main: string; visibility: string }, ports: ClusterPorts, logLevel: string) {
  const rpc = (p: ServicePorts) => ({ rpc: { grpcPort: p.grpc, membershipPort: p.membership, bindOnLocalHost: true, ...(p.http ? { httpPort: p.http } : {}) } });
  return {
    log: { stdout: true, level: logLevel },
    persistence: {
      defaultStore: 'main',
      visibilityStore: 'visibility',
      numHistoryShards: HISTORY_SHARDS,
      // Four processes each open their own pools: kept small so they fit Postgres's default 100 connections.
      datastores: { main: sqlStore(target, databases.main, 10), visibility: sqlStore(target, databases.visibility, 3) },
    },
    // No metrics or pprof listeners: four processes cannot share the one port each would take.
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: { frontend: rpc(ports.frontend), history: rpc(ports.history), matching: rpc(ports.matching), worker: rpc(ports.worker) },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `127.0.0.1:${ports.frontend.grpc}` } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    // Absolute, so the services do not depend on their working directory to find it.
    dynamicConfigClient: { filepath: path.join(dir, 'config', 'dynamicconfig', `${CONFIG_ENV}.yaml`), pollInterval: '10s' },
  };
}

/** Dynamic config: the defaults that do not suit a cluster people look into (values are lists of constrained values). */
const DYNAMIC_CONFIG = {
  // 10 per frontend by default, which `temporal workflow list` and a Web UI pointed here soon reach.
  'frontend.namespaceRPS.visibility': [{ value: 100 }],
  // The history service's queue reads, as on the dev server (see TEMPORAL_LATENCY_CONFIG).
  ...Object.fromEntries(Object.entries(TEMPORAL_LATENCY_CONFIG).map(([key, value]) => [key, [{ value }]])),
};

async function writeConfig(dir: string, config: Record<string, unknown>): Promise<void> {
  await mkdir(path.join(dir, 'config', 'dynamicconfig'), { recursive: true });
  const generated = '# Written by devflow (cli/stack/temporal-cluster.ts) at every start; edits are overwritten.\n';
  // It holds the database password.
  await writeFile(path.join(dir, 'config', `${CONFIG_ENV}.yaml`), generated + toYaml(config), { mode: 0o600 });
  await writeDynamicConfig(dir);
}

/**
 * The dynamic config, written once and then left alone: the services re-read it every 10 s, so it
 * is the place to tune a running cluster. A setting devflow has come to make since the file was
 * written, and which the file does not name at all, is added at its end; what the file names stays.
 */
export async function writeDynamicConfig(dir: string): Promise<void> {
  const file = path.join(dir, 'config', 'dynamicconfig', `${CONFIG_ENV}.yaml`);
  const tunable = '# Temporal dynamic config, written by devflow once; edit freely (re-read every 10 s).\n';
  const existing = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (existing === undefined) {
    await writeFile(file, tunable + toYaml(DYNAMIC_CONFIG));
    return;
  }
  const named = new Set(existing.split('\n').map((line) => /^([^#\s][^:]*):/.exec(line)?.[1]?.trim()));
  const missing = Object.fromEntries(Object.entries(DYNAMIC_CONFIG).filter(([key]) => !named.has(key)));
  if (Object.keys(missing).length === 0) return;
  const added = `# Added by devflow (settings it makes that this file did not name):\n${toYaml(missing)}`;
  await writeFile(file, `${existing}${existing.endsWith('\n') ? '' : '\n'}${added}`);
}

// ---------------------------------------------------------------------------------------------
// The services: one process each, logging to <dir>/logs/<service>.log, pids in <dir>/run.

export interface ClusterProcess {
  service: TemporalService;
  pid: number;
  process: ChildProcess;
  logFile: string;
  /** Resolves when the process has ended, whoever ended it. */
  exited: Promise<PartExit>;
}

/** A cluster already running from this folder (its starter killed, say) would fight over the ports. */
async function refuseIfRunning(dir: string, runDir: string): Promise<void> {
  for (const [service, pid] of await readPidFiles(runDir)) {
    // The pid may have been reused since: only a server started with this --root counts.
    if (isAlive(pid) && commandLine(pid).includes(`--root ${dir} `)) {
      throw new DevflowError({
        code: 'stack_already_running',
        message: `a Temporal ${service} service from ${path.dirname(runDir)} is still running (pid ${pid})`,
        recoveryHint: `stop the cluster that owns it (Ctrl-C in its terminal), or end the leftover services: kill ${pid}`,
      });
    }
    await removePidFile(runDir, service);
  }
}

function startService(serverPath: string, dir: string, service: TemporalService): ClusterProcess {
  const logFile = path.join(dir, 'logs', `${service}.log`);
  const out = openSync(logFile, 'a');
  const args = ['--root', dir, '--config', 'config', '--env', CONFIG_ENV, '--allow-no-auth', 'start', '--service', service];
  const child = spawn(serverPath, args, { cwd: dir, stdio: ['ignore', out, out] });
  closeSync(out);
  const exited = new Promise<PartExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { service, pid: child.pid!, process: child, logFile, exited };
}

function hasExited(part: ClusterProcess): boolean {
  return part.process.exitCode !== null || part.process.signalCode !== null;
}

/** SIGTERM to all, SIGKILL to those still there after `graceMs`; resolves when all have ended. */
async function stopAll(parts: ClusterProcess[], runDir: string, graceMs: number): Promise<void> {
  await Promise.all(
    parts.map(async (part) => {
      if (!hasExited(part)) {
        part.process.kill('SIGTERM');
        const killer = setTimeout(() => part.process.kill('SIGKILL'), graceMs);
        await part.exited;
        clearTimeout(killer);
      }
      await removePidFile(runDir, part.service);
    }),
  );
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-2000);
  } catch {
    return '(no log)';
  }
}

/** Throws (ending the wait) as soon as one service has died during start-up. */
function checkAlive(parts: ClusterProcess[]): void {
  const dead = parts.find(hasExited);
  if (dead) {
    const how = dead.process.signalCode ?? `code ${dead.process.exitCode}`;
    throw new Error(`the Temporal ${dead.service} service exited during start-up (${how}); ${dead.logFile} ends with:\n${logTail(dead.logFile)}`);
  }
}

/** The names history and matching report their health under (grpc.health.v1) on their own ports. */
const INTERNAL_GRPC_SERVICES = {
  history: 'temporal.api.workflowservice.v1.HistoryService',
  matching: 'temporal.api.workflowservice.v1.MatchingService',
};

async function serving(address: string, grpcService: string): Promise<boolean> {
  const connection = Connection.lazy({ address });
  try {
    const response = await connection.withDeadline(Date.now() + 2_000, () => connection.healthService.check({ service: grpcService }));
    return response.status === 1; // SERVING
  } catch {
    return false;
  } finally {
    await connection.close();
  }
}

/** Registers the namespace unless it exists; undefined once the frontend can describe it, else why not. */
async function namespaceProblem(address: string, namespace: string): Promise<string | undefined> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 1_000 });
    const service = connection.workflowService;
    await connection
      .withDeadline(Date.now() + 5_000, () => service.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(RETENTION) }))
      .catch((error: { code?: number }) => {
        if (error.code !== 6) throw error; // ALREADY_EXISTS: registered by an earlier start
      });
    await connection.withDeadline(Date.now() + 2_000, () => service.describeNamespace({ namespace }));
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await connection?.close();
  }
}

// ---------------------------------------------------------------------------------------------

export interface TemporalClusterOptions {
  /** The cluster's folder: config/, logs/ and run/ (pid files) go there. */
  dir: string;
  /** postgres:// URL of a role that may create databases; its database is only used to create the cluster's two. */
  databaseUrl: string;
  /**
   * The frontend's gRPC port, the address clients use. Omitted: a free port, so a cluster started
   * by a benchmark never collides with a dev server on 7233. The other ports are always picked free.
   */
  basePort?: number;
  /** Prefix of the two database names (`<prefix>temporal`, `<prefix>temporal_visibility`); default `devflow_`. */
  databasePrefix?: string;
  /** The services' own log level in their log files; default `warn`. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  log?: Log;
}

export interface TemporalClusterHandle {
  /** host:port of the frontend, for TEMPORAL_ADDRESS. */
  address: string;
  namespace: string;
  ports: ClusterPorts;
  databases: { main: string; visibility: string };
  processes: ClusterProcess[];
  /** SIGTERM to the four services, SIGKILL after a few seconds; resolves when all have ended. */
  stop(): Promise<void>;
}

export async function startTemporalCluster(options: TemporalClusterOptions): Promise<TemporalClusterHandle> {
  const log = options.log ?? (() => undefined);
  const dir = path.resolve(options.dir);
  const prefix = options.databasePrefix ?? 'devflow_';
  if (!/^[a-z0-9_]*$/.test(prefix)) throw new Error(`databasePrefix ${JSON.stringify(prefix)}: use lower-case letters, digits and _ only`);
  const databases = { main: `${prefix}temporal`, visibility: `${prefix}temporal_visibility` };
  const target = parseDatabaseUrl(options.databaseUrl);

  const binaries = await resolveTemporalServer({ env: options.env, log });
  await mkdir(path.join(dir, 'logs'), { recursive: true });
  await refuseIfRunning(dir, path.join(dir, 'run'));
  const ports = await pickPorts(options.basePort);

  log(`preparing databases ${databases.main} and ${databases.visibility} on ${target.host}:${target.port}`);
  await ensureDatabases(target, [databases.main, databases.visibility]);
  const schemaLog = path.join(dir, 'logs', 'schema.log');
  await ensureSchema(binaries.sqlToolPath, target, databases.main, 'postgresql/v12/temporal', schemaLog);
  await ensureSchema(binaries.sqlToolPath, target, databases.visibility, 'postgresql/v12/visibility', schemaLog);
  await waitForStaleMembers(target, databases.main, log);
  await writeConfig(dir, serverConfig(dir, target, databases, ports, options.logLevel ?? 'warn'));

  const { processes, stop } = await startServices(binaries.serverPath, dir, ports, options.readyTimeoutMs ?? 120_000, log);
  return { address: `127.0.0.1:${ports.frontend.grpc}`, namespace: NAMESPACE, ports, databases, processes, stop };
}

/** Starts the four services and resolves once the namespace is usable; on failure stops those started. */
async function startServices(serverPath: string, dir: string, ports: ClusterPorts, timeoutMs: number, log: Log): Promise<{ processes: ClusterProcess[]; stop: () => Promise<void> }> {
  const runDir = path.join(dir, 'run');
  const address = `127.0.0.1:${ports.frontend.grpc}`;
  const processes: ClusterProcess[] = [];
  const stop = () => stopAll(processes, runDir, 5_000);
  const launch = async (service: TemporalService) => {
    const part = startService(serverPath, dir, service);
    processes.push(part);
    await writePidFile(runDir, service, part.pid);
  };
  const untilServing = (service: 'history' | 'matching') =>
    waitFor(`the Temporal ${service} service (see ${path.join(dir, 'logs', `${service}.log`)})`, timeoutMs, async () => {
      checkAlive(processes);
      return serving(`127.0.0.1:${ports[service].grpc}`, INTERNAL_GRPC_SERVICES[service]);
    });

  log(`starting the Temporal services (logs in ${path.join(dir, 'logs')})`);
  let problem: string | undefined;
  try {
    // History alone first: every service writes the cluster's metadata into a fresh database at
    // start, and those that lose the race for it exit. Once history serves, the record is there.
    await launch('history');
    await untilServing('history');
    log('  history serves; starting matching, frontend and worker');
    for (const service of TEMPORAL_SERVICES.filter((s) => s !== 'history')) await launch(service);
    await untilServing('matching');
    log(`  matching serves; registering namespace ${NAMESPACE} through the frontend on ${address}`);
    await waitFor(`the Temporal frontend on ${address} and namespace ${NAMESPACE}`, timeoutMs, async () => {
      checkAlive(processes);
      problem = await namespaceProblem(address, NAMESPACE);
      return problem === undefined;
    }).catch((error: Error) => {
      throw problem ? new Error(`${error.message} (last answer: ${problem})`, { cause: error }) : error;
    });
    checkAlive(processes);
  } catch (error) {
    // Not handed over, so nobody else would stop them.
    await stop();
    throw error;
  }
  return { processes, stop };
}
