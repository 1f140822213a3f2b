// Chaos: `devflow up` on embedded defaults in a home of its own, runs with the scripted agent
// driven through the HTTP API as a person would (approve, reject or abort at the spec gate),
// and faults injected at moments a seeded generator picks: the worker, the Temporal dev server,
// Postgres, the tmux server, an agent process and the API (mid-request) each killed with SIGKILL.
// Afterwards every run and the stack are checked (see `checkInvariants`), a table is printed, and
// the exit code is non-zero when a run was lost or an invariant broken. Whatever it started, it stops.
//   npm run chaos -- --runs 50 --seed 1 [--concurrency 5] [--faults 18] [--gap 3-10] [--kinds worker,tmux,…] [--real-agents] [--keep]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { commandLine, readPidFiles } from '../cli/stack/pid-files.ts';
import { processAlive } from '../lib/processes.ts';
import { findAgentCli, REAL_AGENTS, type RealAgent } from '../sessions/agent-cli.ts';
import { freePorts, numberArg, percentiles } from './stack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KINDS = ['worker', 'temporal', 'postgres', 'tmux', 'agent', 'api'] as const;
type FaultKind = (typeof KINDS)[number];
const FAULT_LABELS: Record<FaultKind, string> = {
  worker: 'worker SIGKILL',
  temporal: 'Temporal dev server SIGKILL',
  postgres: 'Postgres SIGKILL',
  tmux: 'tmux server SIGKILL',
  agent: 'agent process SIGKILL',
  api: 'API SIGKILL mid-request',
};
/** What the person does at the spec gate; a reject ends the run `failed`, an abort `aborted` (SPEC section 5). */
type Scenario = 'approve' | 'reject' | 'abort';
const EXPECTED: Record<Scenario, string> = { approve: 'completed', reject: 'failed', abort: 'aborted' };
/** A run that has not ended this long after it started is lost. */
const RUN_DEADLINE_MS = 10 * 60_000;
/** A fault the stack has not recovered from in this long is an invariant violation. */
const RECOVERY_BOUND_MS = 180_000;

interface Options {
  kinds: FaultKind[];
  /** Real agents (on devflow's playback model) for about one run in five, where installed. */
  realAgents: boolean;
  runs: number;
  seed: number;
  concurrency: number;
  faults: number;
  gapMs: [number, number];
  keep: boolean;
}

function parseOptions(argv: string[]): Options {
  const runs = numberArg('runs', 10);
  const gap = (argv[argv.indexOf('--gap') + 1] ?? '').match(/^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/);
  const kindsArg = argv.includes('--kinds') ? (argv[argv.indexOf('--kinds') + 1] ?? '').split(',') : [...KINDS];
  const unknownKinds = kindsArg.filter((k) => !(KINDS as readonly string[]).includes(k));
  const options: Options = {
    kinds: kindsArg.filter((k): k is FaultKind => (KINDS as readonly string[]).includes(k)),
    runs,
    seed: numberArg('seed', 1),
    concurrency: numberArg('concurrency', 5),
    faults: numberArg('faults', kindsArg.length * Math.max(1, Math.ceil(runs / 20))),
    gapMs: argv.includes('--gap') && gap ? [Number(gap[1]) * 1000, Number(gap[2]) * 1000] : [3_000, 10_000],
    keep: argv.includes('--keep'),
    realAgents: argv.includes('--real-agents'),
  };
  const problems = [
    ...(['runs', 'concurrency'] as const).filter((k) => !Number.isInteger(options[k]) || options[k] < 1).map((k) => `--${k} must be a whole number of at least 1`),
    ...(['seed', 'faults'] as const).filter((k) => !Number.isInteger(options[k]) || options[k] < 0).map((k) => `--${k} must be a whole number of at least 0`),
    ...(argv.includes('--gap') && (!gap || options.gapMs[0] > options.gapMs[1]) ? ['--gap must read MIN-MAX in seconds, e.g. 3-10'] : []),
    ...(unknownKinds.length > 0 || options.kinds.length === 0 ? [`--kinds takes a comma-separated list of ${KINDS.join(', ')} (got ${unknownKinds.join(',') || 'none'})`] : []),
  ];
  if (problems.length > 0) {
    process.stderr.write(`chaos: ${problems.join('; ')}\n`);
    process.exit(2);
  }
  return options;
}

/** mulberry32: the same seed gives the same faults, gaps, targets and scenarios. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface RunRecord {
  id: string;
  scenario: Scenario;
  /** `scripted`, or the real agent every role of the run uses. */
  agent: 'scripted' | RealAgent;
  state: string;
  /** Gates other than the spec gate that a person (the driver) had to decide, with why each opened. */
  personGates: string[];
  lost?: string;
}

interface FaultRecord {
  kind: FaultKind;
  at: number;
  target: string;
  recoveryMs?: number;
}

const options = parseOptions(process.argv);
const rng = random(options.seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

const home = await mkdtemp(path.join(os.tmpdir(), 'devflow-chaos-'));
// The embedded Postgres runs as its own user when devflow runs as root: it must reach its data.
await chmod(home, 0o755);
const [apiPort, pgPort, temporalPort, uiPort, playbackPort] = (await freePorts(5)) as [number, number, number, number, number];
const apiUrl = `http://127.0.0.1:${apiPort}`;
const databaseUrl = `postgres://postgres:postgres@127.0.0.1:${pgPort}/devflow`;
const tmuxSocket = path.join(home, 'tmux.sock');
let upOutput = '';
let up: ChildProcess | undefined;
let stopping: Promise<void> | undefined;

/** Stops everything this script started, however it ends: `devflow up` first, then any straggler under its home. */
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    if (up && up.exitCode === null && up.signalCode === null) {
      const exited = new Promise((resolve) => up!.once('exit', resolve));
      process.kill(-up.pid!, 'SIGINT');
      await Promise.race([exited, sleep(90_000)]);
      if (up.exitCode === null && up.signalCode === null) process.kill(-up.pid!, 'SIGKILL');
    }
    for (const pid of processesUnder(home)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  })();
  return stopping;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`chaos: ${signal}, stopping what it started\n`);
    void stopAll().then(() => process.exit(130));
  });
}

/** Live processes whose command line or working folder is under `folder` (agents, tmux, the stack). */
function processesUnder(folder: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    const pid = Number(entry);
    if (pid === process.pid || !processAlive(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(folder) || readlinkSync(`/proc/${entry}/cwd`).startsWith(folder)) found.push(pid);
    } catch {
      // it ended while we looked
    }
  }
  return found;
}

function workingFolder(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return '';
  }
}

interface Approval {
  id: string;
  gateKey: string;
  state: string;
  payload?: Record<string, unknown>;
}
/** The parts of the API's answers the driver reads. */
interface Answer {
  status: number;
  json: { run?: { state: string }; approvals?: Approval[] } | undefined;
}

async function call(method: string, route: string, body?: unknown): Promise<Answer | undefined> {
  try {
    const response = await fetch(`${apiUrl}${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  } catch {
    return undefined; // the API is down or was killed mid-request: ask again
  }
}

/** Sends a write until the API gives an answer that is not "try again" (no answer, 5xx, 429). */
async function send(method: string, route: string, body: unknown, deadline: number): Promise<Answer> {
  for (;;) {
    const answer = await call(method, route, body);
    if (answer && answer.status < 500 && answer.status !== 429) return answer;
    if (Date.now() > deadline) throw new Error(`${method} ${route}: no answer before the deadline (last ${answer?.status ?? 'none'})`);
    await sleep(500);
  }
}

async function withDatabase<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function lastSeqs(runIds: string[]): Promise<Map<string, number> | undefined> {
  try {
    return await withDatabase(async (client) => {
      const rows = await client.query('select run_id, max(seq)::int as seq from run_events where run_id = any($1) group by run_id', [runIds]);
      return new Map(rows.rows.map((r) => [r.run_id as string, r.seq as number]));
    });
  } catch {
    return undefined;
  }
}

const TERMINAL = new Set(['completed', 'failed', 'aborted']);
const decisionDeadline = () => Date.now() + 120_000;

/** One run, driven as a person would: start it, decide each gate by its scenario, until it ends. */
const startBody = (run: RunRecord, repoPath: string) => ({
  runId: run.id,
  requirementsMd: `# Chaos run\n\nScenario: ${run.scenario}\n`,
  repoPath,
  baseBranch: 'main',
  ...(run.agent === 'scripted' ? { backend: 'scripted' } : { agents: { spec_writer: run.agent, implementer: run.agent, reviewer: run.agent }, playback: true }),
});

/**
 * Whether decisions wait: once every run has started and faults are still to come, the last runs
 * wait at their gates (as a slow person would), so each fault still finds runs going on.
 */
let decisionsHeld: (run: RunRecord) => boolean = () => false;
/** Runs a fault to their agents touched, while it waits for their next event: their decisions never wait. */
const recovering = new Set<string>();

async function drive(run: RunRecord, repoPath: string): Promise<void> {
  const startedAt = Date.now();
  const start = await send('POST', '/v1/runs', startBody(run, repoPath), startedAt + 120_000);
  if (start.status !== 202 && start.status !== 200) throw new Error(`start ${run.id}: ${start.status} ${JSON.stringify(start.json)}`);
  while (!TERMINAL.has(run.state)) {
    if (Date.now() - startedAt > RUN_DEADLINE_MS) {
      run.lost = `not ended after ${RUN_DEADLINE_MS / 60_000} min (state ${run.state})`;
      return;
    }
    await sleep(400);
    const read = await call('GET', `/v1/runs/${run.id}`);
    if (read?.status !== 200) continue;
    run.state = read.json?.run?.state ?? run.state;
    if (run.state !== 'awaiting_approval' && run.state !== 'paused') continue;
    if (decisionsHeld(run)) continue;
    const listed = await call('GET', `/v1/runs/${run.id}/approvals`);
    for (const approval of (listed?.json?.approvals ?? []).filter((a) => a.state === 'pending')) {
      await decide(run, approval);
    }
  }
}

function decisionFor(run: RunRecord, approval: Approval): { route: string; body: Record<string, string> } {
  const route = `/v1/runs/${run.id}/approvals/${approval.id}`;
  const clientToken = `chaos-${approval.id}`;
  if (approval.gateKey !== 'spec_approved') return { route, body: { action: 'approve', clientToken, comment: 'chaos: a person looked and approves' } };
  if (run.scenario === 'abort') return { route: `/v1/runs/${run.id}/abort`, body: { clientToken: `chaos-abort-${run.id}`, reason: 'chaos: the person aborts at the spec gate' } };
  if (run.scenario === 'reject') return { route, body: { action: 'reject', clientToken, comment: 'chaos: the person rejects the spec' } };
  return { route, body: { action: 'approve', clientToken } };
}

async function decide(run: RunRecord, approval: Approval): Promise<void> {
  const { route, body } = decisionFor(run, approval);
  const answer = await send('POST', route, body, decisionDeadline());
  if (answer.status >= 400 && answer.status !== 409) throw new Error(`${route}: ${answer.status} ${JSON.stringify(answer.json)}`);
  if (approval.gateKey !== 'spec_approved') {
    const why = approval.payload?.reason ?? approval.payload?.summary;
    run.personGates.push(`${approval.gateKey} at ${new Date().toISOString().slice(11, 19)}${typeof why === 'string' ? `: ${why.slice(0, 200)}` : ''}`);
  }
}

async function readyz(): Promise<boolean> {
  return (await call('GET', '/readyz'))?.status === 200;
}

/** Until `done` holds (polled), or the bound: the milliseconds it took, or undefined. */
async function timeUntil(since: number, done: () => Promise<boolean>): Promise<number | undefined> {
  while (Date.now() - since < RECOVERY_BOUND_MS) {
    if (await done()) return Date.now() - since;
    await sleep(200);
  }
  return undefined;
}

function kill(pid: number): boolean {
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** A part `devflow up` supervises: killed; recovered once its replacement runs and /readyz is 200. */
async function killPart(name: 'worker' | 'temporal' | 'postgres' | 'api', beforeKill?: () => Promise<void>): Promise<FaultRecord | undefined> {
  const pid = (await readPidFiles(path.join(home, 'run'))).get(name);
  if (!pid || !processAlive(pid)) return undefined;
  await beforeKill?.();
  const at = Date.now();
  kill(pid);
  const recoveryMs = await timeUntil(at, async () => {
    const now = (await readPidFiles(path.join(home, 'run'))).get(name);
    return now !== undefined && now !== pid && processAlive(now) && (await readyz());
  });
  return { kind: name, at, target: `pid ${pid}`, recoveryMs };
}

/** The run that took longest to move after a fault, and what it did first: where a recovery time comes from. */
async function slowest(runIds: string[], before: Map<string, number>, at: number): Promise<string> {
  if (runIds.length === 0) return '';
  try {
    return await withDatabase(async (client) => {
      const rows = await client.query(
        `select distinct on (run_id) run_id, type, created_at from run_events where run_id = any($1) and seq > coalesce(($2::jsonb ->> run_id::text)::int, 0)
         order by run_id, seq`, [runIds, JSON.stringify(Object.fromEntries(before))]);
      const last = rows.rows.sort((a, b) => b.created_at.getTime() - a.created_at.getTime())[0];
      return last ? `; slowest ${String(last.run_id).slice(0, 8)}: ${last.type} after ${((last.created_at.getTime() - at) / 1000).toFixed(1)} s` : '';
    });
  } catch {
    return '';
  }
}

/** Something an agent depends on killed: recovered once every run it touched has a new event (or ended). */
async function killForRuns(kind: 'tmux' | 'agent', pid: number, target: string, runIds: string[], records: Map<string, RunRecord>): Promise<FaultRecord> {
  const before = (await lastSeqs(runIds)) ?? new Map<string, number>();
  const at = Date.now();
  kill(pid);
  for (const id of runIds) recovering.add(id);
  const recoveryMs = await timeUntil(at, async () => {
    const now = await lastSeqs(runIds);
    return now !== undefined && runIds.every((id) => TERMINAL.has(records.get(id)!.state) || (now.get(id) ?? 0) > (before.get(id) ?? 0));
  });
  recovering.clear();
  return { kind, at, target: `${target}${await slowest(runIds, before, at)}`, recoveryMs };
}

/** What a fault may touch: the runs, the ones not started yet (in order) and their repository. */
interface Subjects {
  records: Map<string, RunRecord>;
  queue: RunRecord[];
  repo: string;
}

async function inject(kind: FaultKind, { records, queue, repo }: Subjects): Promise<FaultRecord | undefined> {
  const live = [...records.values()].filter((r) => r.state !== 'queued' && !TERMINAL.has(r.state)).map((r) => r.id);
  if (kind === 'worker' || kind === 'temporal' || kind === 'postgres') return killPart(kind);
  if (kind === 'api') {
    // A write in flight when the API dies: a decision (the driver sends it again with the same
    // client token) or the start of the next run (the driver starts it again with the same run id).
    const waiting = [...records.values()].find((r) => r.state === 'awaiting_approval');
    const pending = waiting ? (await call('GET', `/v1/runs/${waiting.id}/approvals`))?.json?.approvals?.find((a) => a.state === 'pending') : undefined;
    const next = queue[0];
    const delayMs = Math.floor(rng() * 30);
    let during = 'a read';
    const fault = await killPart('api', async () => {
      if (waiting && pending) {
        const { route, body } = decisionFor(waiting, pending);
        void call('POST', route, body);
        during = `a decision on ${waiting.id.slice(0, 8)}`;
      } else if (next) {
        void call('POST', '/v1/runs', startBody(next, repo));
        during = `the start of ${next.id.slice(0, 8)}`;
      } else {
        void call('GET', '/v1/runs?limit=50');
      }
      await sleep(delayMs); // the request is on its way
    });
    if (fault) fault.target += ` during ${during}`;
    return fault;
  }
  if (kind === 'tmux') {
    const server = processesUnder(home).find((pid) => commandLine(pid).startsWith('tmux') && commandLine(pid).includes(tmuxSocket));
    return server ? killForRuns('tmux', server, `pid ${server}`, live, records) : undefined;
  }
  const agents = processesUnder(path.join(home, 'workspaces')).filter((pid) => /scripted-agent|claude|codex/.test(commandLine(pid)));
  const agentsOfLiveRuns = agents.filter((pid) => live.some((id) => workingFolder(pid).includes(id)));
  if (agentsOfLiveRuns.length === 0) return undefined;
  const agent = pick(agentsOfLiveRuns);
  const runId = live.find((id) => workingFolder(agent).includes(id))!;
  return killForRuns('agent', agent, `pid ${agent} of ${runId.slice(0, 8)}`, [runId], records);
}

interface Violation {
  check: string;
  detail: string;
}

/** What must hold once every run has ended, read from Postgres, the file system, tmux and /proc. */
async function checkInvariants(records: RunRecord[]): Promise<Violation[]> {
  const ids = records.map((r) => r.id);
  const ended = records.filter((r) => TERMINAL.has(r.state)).map((r) => r.id);
  const violations: Violation[] = [];
  await withDatabase(async (client) => {
    const gaps = await client.query(
      `select run_id, count(*)::int as n, min(seq) as first, max(seq) as last from run_events where run_id = any($1)
       group by run_id having count(*) <> max(seq) or min(seq) <> 1 or count(distinct seq) <> count(*)`, [ids]);
    for (const r of gaps.rows) violations.push({ check: 'events gapless', detail: `run ${r.run_id}: ${r.n} events, seq ${r.first}..${r.last}` });
    const noEvents = ids.filter((id) => !records.find((r) => r.id === id)!.lost);
    const counted = await client.query('select run_id from run_events where run_id = any($1) group by run_id', [noEvents]);
    for (const id of noEvents.filter((id) => !counted.rows.some((r) => r.run_id === id))) violations.push({ check: 'events gapless', detail: `run ${id}: no events` });
    const keys = await client.query('select idempotency_key, count(*)::int as n from run_events where run_id = any($1) group by 1 having count(*) > 1', [ids]);
    for (const r of keys.rows) violations.push({ check: 'idempotency keys unique', detail: `${r.idempotency_key} ×${r.n}` });
    const sessions = await client.query(
      `select run_id, role_id, count(*)::int as n from tui_sessions where run_id = any($1) and state not in ('FAILED_NEEDS_HUMAN', 'CLOSED')
       group by 1, 2 having count(*) > 1`, [ids]);
    for (const r of sessions.rows) violations.push({ check: 'one live session per role', detail: `run ${r.run_id} role ${r.role_id}: ${r.n}` });
    const open = await client.query(`select run_id, role_id, state from tui_sessions where run_id = any($1) and state not in ('FAILED_NEEDS_HUMAN', 'CLOSED')`, [ended]);
    for (const r of open.rows) violations.push({ check: 'sessions closed when a run ends', detail: `run ${r.run_id} role ${r.role_id}: ${r.state}` });
    const artifacts = await client.query('select run_id, path, hash, count(*)::int as n from artifacts where run_id = any($1) group by 1, 2, 3 having count(*) > 1', [ids]);
    for (const r of artifacts.rows) violations.push({ check: 'one artifact row per content', detail: `run ${r.run_id} ${r.path}: ×${r.n}` });
    const decisions = await client.query(
      `select r.id, count(d.id)::int as n from approval_requests r join approval_decisions d on d.approval_request_id = r.id
       where r.run_id = any($1) group by r.id having count(d.id) > 1`, [ids]);
    for (const r of decisions.rows) violations.push({ check: 'one decision per gate', detail: `approval ${r.id}: ${r.n} decisions` });
    const reports = await client.query('select id, final_report_path from runs where id = any($1)', [ended]);
    for (const r of reports.rows) {
      if (!r.final_report_path || !existsSync(r.final_report_path)) violations.push({ check: 'a report for every ended run', detail: `run ${r.id}: ${r.final_report_path ?? 'no report path'}` });
    }
  });
  for (const pid of processesUnder(path.join(home, 'workspaces'))) {
    const runId = ended.find((id) => workingFolder(pid).includes(id) || commandLine(pid).includes(id));
    if (runId) violations.push({ check: 'no process of an ended run', detail: `pid ${pid} (${commandLine(pid).slice(0, 80)}) of run ${runId}` });
  }
  return violations;
}

/** Sessions are closed and agents stopped just after a run ends: give that a moment before judging. */
async function settledInvariants(records: RunRecord[]): Promise<Violation[]> {
  const until = Date.now() + 60_000;
  for (;;) {
    const violations = await checkInvariants(records).catch((error: Error) => [{ check: 'invariants readable', detail: error.message }]);
    if (violations.length === 0 || Date.now() > until) return violations;
    await sleep(2_000);
  }
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function table(faults: FaultRecord[], skipped: Map<FaultKind, number>, records: RunRecord[], violations: Violation[]): void {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  say('');
  say(`${'fault'.padEnd(30)}${'injected'.padStart(9)}${'recovered'.padStart(11)}${'p50'.padStart(9)}${'p99'.padStart(9)}`);
  for (const kind of KINDS) {
    const of = faults.filter((f) => f.kind === kind);
    const times = of.flatMap((f) => (f.recoveryMs === undefined ? [] : [f.recoveryMs]));
    const p = times.length > 0 ? percentiles(times) : undefined;
    const notInjected = skipped.get(kind) ? `  (${skipped.get(kind)} not injected: no target)` : '';
    say(`${FAULT_LABELS[kind].padEnd(30)}${String(of.length).padStart(9)}${String(times.length).padStart(11)}${(p ? seconds(p.p50) : '-').padStart(9)}${(p ? seconds(p.p99) : '-').padStart(9)}${notInjected}`);
  }
  const lost = records.filter((r) => r.lost);
  const outcomes = new Map<string, number>();
  for (const r of records) outcomes.set(r.state, (outcomes.get(r.state) ?? 0) + 1);
  say('');
  say(`runs: ${records.length} started, ${records.length - lost.length} survived, ${lost.length} lost; ended ${[...outcomes].map(([s, n]) => `${s} ${n}`).join(', ')}`);
  const helped = records.filter((r) => r.personGates.length > 0);
  say(`gates a person decided besides the spec gate: ${helped.length === 0 ? 'none' : ''}`);
  for (const r of helped) say(`  ${r.id.slice(0, 8)}: ${r.personGates.join('; ')}`);
  for (const r of lost) say(`  lost ${r.id} (${r.scenario}): ${r.lost}`);
  say(`invariant violations: ${violations.length}`);
  for (const v of violations) say(`  ${v.check}: ${v.detail}`);
}

let exitCode = 1;
try {
  say(`chaos: ${options.runs} runs (${options.concurrency} at a time), ${options.faults} faults, seed ${options.seed}; stack under ${home}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DEVFLOW_HOME: home,
    DEVFLOW_API_PORT: String(apiPort),
    DEVFLOW_PG_PORT: String(pgPort),
    DEVFLOW_TEMPORAL_PORT: String(temporalPort),
    DEVFLOW_TEMPORAL_UI_PORT: String(uiPort),
    // Every part is killed several times on purpose: the stack must not give up on it.
    DEVFLOW_RESTART_LIMIT: '100',
    DEVFLOW_LOG_LEVEL: 'warn',
    DEVFLOW_PLAYBACK_PORT: String(playbackPort),
  };
  delete env.DATABASE_URL;
  delete env.TEMPORAL_ADDRESS;
  up = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'devflow.ts'), 'up'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  up.stdout!.on('data', (chunk) => (upOutput += chunk));
  up.stderr!.on('data', (chunk) => (upOutput += chunk));
  const upStarted = Date.now();
  while (!upOutput.includes('devflow is up')) {
    if (up.exitCode !== null) throw new Error(`devflow up exited (${up.exitCode}):\n${upOutput}`);
    if (Date.now() - upStarted > 300_000) throw new Error(`devflow up did not come up in 300 s:\n${upOutput}`);
    await sleep(250);
  }
  say(`stack up in ${((Date.now() - upStarted) / 1000).toFixed(1)} s`);

  const repo = path.join(home, 'repo');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  execFileSync('git', ['-C', repo, '-c', 'user.email=chaos@devflow', '-c', 'user.name=chaos', 'commit', '-q', '--allow-empty', '-m', 'init']);
  const scenarios: Scenario[] = ['approve', 'approve', 'reject', 'abort'];
  const installed: RealAgent[] = [];
  for (const agent of options.realAgents ? REAL_AGENTS : []) {
    if (await findAgentCli(agent, { searchPath: false })) installed.push(agent);
    else say(`${agent} is not installed (npm run devflow -- agents install ${agent}): its runs use the scripted agent`);
  }
  const records = new Map<string, RunRecord>();
  for (let i = 0; i < options.runs; i += 1) {
    const id = crypto.randomUUID();
    const agent = installed.length > 0 && rng() < 0.2 ? pick(installed) : 'scripted';
    records.set(id, { id, scenario: pick(scenarios), agent, state: 'queued', personGates: [] });
  }

  const queue = [...records.values()];
  const failures: string[] = [];
  const driving = Promise.all(Array.from({ length: options.concurrency }, async () => {
    for (let run = queue.shift(); run; run = queue.shift()) {
      await drive(run, repo).catch((error: Error) => {
        run.lost ??= error.message;
        failures.push(`${run.id}: ${error.message}`);
      });
      say(`  run ${run.id.slice(0, 8)} (${run.scenario}, ${run.agent}): ${run.lost ? `LOST: ${run.lost}` : run.state}`);
    }
  }));

  // Faults: an even share of each kind, in a seeded order, one at a time, each recovered before the next.
  const plan = Array.from({ length: options.faults }, (_, i) => options.kinds[i % options.kinds.length]!);
  for (let i = plan.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rng() * (i + 1));
    [plan[i], plan[j]] = [plan[j]!, plan[i]!];
  }
  const faults: FaultRecord[] = [];
  const skipped = new Map<FaultKind, number>();
  const stackViolations: Violation[] = [];
  let allDriven = false;
  void driving.then(() => (allDriven = true));
  let faultsDone = false;
  let heldSaid = false;
  decisionsHeld = (run) => {
    const held = queue.length === 0 && !faultsDone && !recovering.has(run.id);
    if (held && !heldSaid) say('  every run started: the last ones wait at their gates until the faults are done');
    heldSaid ||= held;
    return held;
  };
  for (const kind of plan) {
    await sleep(options.gapMs[0] + rng() * (options.gapMs[1] - options.gapMs[0]));
    if (up.exitCode !== null) throw new Error(`devflow up exited (${up.exitCode}) during the chaos:\n${upOutput.slice(-4000)}`);
    const subjects = { records, queue, repo };
    let fault = await inject(kind, subjects);
    // No target now (no agent at work, a part still restarting after the last fault): wait for one rather than skip it.
    for (let tries = 0; !fault && !allDriven && tries < 120; tries += 1) {
      await sleep(500);
      fault = await inject(kind, subjects);
    }
    if (!fault) {
      skipped.set(kind, (skipped.get(kind) ?? 0) + 1);
      continue;
    }
    faults.push(fault);
    const recovered = fault.recoveryMs === undefined ? `not recovered within ${RECOVERY_BOUND_MS / 1000} s` : `recovered in ${(fault.recoveryMs / 1000).toFixed(1)} s`;
    say(`  fault ${faults.length}/${plan.length} at ${new Date(fault.at).toISOString().slice(11, 19)}: ${FAULT_LABELS[kind]} (${fault.target}), ${recovered}`);
    if (fault.recoveryMs === undefined && kind !== 'agent' && kind !== 'tmux') {
      stackViolations.push({ check: 'the stack recovers', detail: `${FAULT_LABELS[kind]} at ${new Date(fault.at).toISOString()}: not recovered within ${RECOVERY_BOUND_MS / 1000} s` });
    }
  }
  faultsDone = true;
  await driving;
  if (up.exitCode !== null) throw new Error(`devflow up exited (${up.exitCode}) during the chaos:\n${upOutput.slice(-4000)}`);

  const all = [...records.values()];
  for (const run of all) {
    if (!run.lost && run.state !== EXPECTED[run.scenario]) run.lost = `ended ${run.state}, its scenario (${run.scenario}) ends ${EXPECTED[run.scenario]}`;
  }
  const violations = [...stackViolations, ...(await settledInvariants(all))];
  table(faults, skipped, all, violations);
  const lost = all.filter((r) => r.lost).length;
  const summary = `chaos: ${all.length} runs, ${faults.length} faults, ${lost} lost, ${violations.length} violations (seed ${options.seed})`;
  exitCode = lost > 0 || violations.length > 0 ? 1 : 0;
  if (exitCode !== 0 || options.keep) {
    writeFileSync(path.join(home, 'chaos-up.log'), upOutput);
    say(`kept ${home} (logs under logs/, devflow up's output in chaos-up.log)`);
  }
  await stopAll();
  if (exitCode === 0 && !options.keep) await rm(home, { recursive: true, force: true });
  say(summary);
} catch (error) {
  process.stderr.write(`chaos: ${(error as Error).stack ?? error}\n`);
  writeFileSync(path.join(home, 'chaos-up.log'), upOutput);
  await stopAll();
  process.stderr.write(`chaos: stopped everything it started; kept ${home} for its logs\n`);
}
process.exit(exitCode);
