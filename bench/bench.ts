// devflow beside the engine it runs on. On one Temporal (a dev server of its own, or with --cluster
// also a four-service cluster on PostgreSQL), in one process, it runs devflow through the HTTP API
// (the scripted agent in tmux, and the fake backend) and a bare Temporal baseline (bench/
// baseline-workflow.ts: one plain activity per phase, one signal at the gate), and prints each
// figure beside the baseline's. Asserts nothing.
//   npm run bench [-- --quick] [--json FILE] [--cluster] [--parked N] [--parked-minutes M]
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { Command, InvalidArgumentError } from 'commander';
import { and, count, eq, inArray, sql } from 'drizzle-orm';
import { runEvents, runPhases } from '../db/schema.ts';
import { runWorkflowId, statusQuery } from '../workflows/messages.ts';
import { baselineApprove, baselineAtGate, baselineRun, type BaselineActivities } from './baseline-workflow.ts';
import { apiClient, pendingSpecGate, percentiles, pool, rssMbOf, startBenchStack, stopStarted, track } from './stack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Sizes {
  /** Scripted runs one at a time, and then five at a time (artifact and decision latency). */
  scriptedC1: number;
  scriptedC5: number;
  /** Full runs (fake backend, auto-approve) per concurrency. */
  throughput: Record<'c1' | 'c5' | 'c20', number>;
  parked: number;
  parkedMinutes: number;
}

const FULL: Sizes = { scriptedC1: 10, scriptedC5: 25, throughput: { c1: 5, c5: 25, c20: 60 }, parked: 1000, parkedMinutes: 10 };
const QUICK: Sizes = { scriptedC1: 3, scriptedC5: 5, throughput: { c1: 2, c5: 5, c20: 20 }, parked: 100, parkedMinutes: 0.5 };

type P = { p50: number; p99: number };
export interface Figures {
  target: string;
  /** One run at a time; `c5`: five at a time. */
  artifactToPhaseMs: P & { c5: P; baseline: P };
  approveToPromptMs: { c1: P; c5: P; baseline: { c1: P; c5: P } };
  eventsPerPhase: number;
  runsPerMinute: { devflow: Record<string, number>; baseline: Record<string, number>; ratio: Record<string, number> };
  parked: {
    runs: number;
    minutes: number;
    eventsWritten: number;
    temporalEvents: number;
    postgresEvents: number;
    /** Write-ahead log Postgres wrote while the runs were parked: any write at all shows here. */
    postgresWalBytes: number;
    /** Autovacuum and autoanalyze passes Postgres ran meanwhile (upkeep after the parking's inserts, not devflow's writes). */
    postgresAutovacuums: number;
    /** The devflow worker process alone (`npm run worker`, as a host runs it). */
    workerRssMb: number;
    /** The runs that worker keeps in memory (DEVFLOW_WORKFLOW_CACHE); null: the SDK's default, sized by the heap. */
    workflowCache: number | null;
    /** The bench process: the HTTP API, the client and the baseline's worker. */
    benchRssMb: number;
    approveAllMs: number;
    /** `workerRssMb`: the bench process (the baseline's worker, the API, the client) with only the baseline parked. */
    baseline: { runs: number; eventsWritten: number; approveAllMs: number; workerRssMb: number };
  };
  baseline: { eventsPerPhase: number };
}

const positive = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a positive number');
  return n;
};

const program = new Command('bench')
  .description('devflow beside a bare Temporal baseline on the same server')
  .option('--quick', 'a smaller version (fewer runs, 100 parked for 30 s), under five minutes')
  .option('--json <file>', 'also write the figures as JSON')
  .option('--cluster', 'also measure on a four-service Temporal cluster on PostgreSQL (npm run cluster), in a column of its own')
  .option('--parked <n>', 'runs parked at a gate', positive)
  .option('--parked-minutes <m>', 'how long they stay parked', positive)
  .option('--target <name>', '(internal) measure one target and write its figures to --json', (v) => {
    if (v !== 'dev' && v !== 'cluster') throw new InvalidArgumentError('dev or cluster');
    return v;
  })
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });
try {
  program.parse();
} catch (error) {
  const code = (error as { exitCode?: number }).exitCode;
  process.exit(code === 0 ? 0 : 2);
}
const opts = program.opts<{ quick?: boolean; json?: string; cluster?: boolean; parked?: number; parkedMinutes?: number; target?: 'dev' | 'cluster' }>();
const sizes: Sizes = { ...(opts.quick ? QUICK : FULL) };
if (opts.parked) sizes.parked = opts.parked;
if (opts.parkedMinutes) sizes.parkedMinutes = opts.parkedMinutes;

if (opts.target) {
  await measureTarget(opts.target);
} else {
  await main();
}

/** Each target in a process of its own (its memory is its own), then one table. */
async function main(): Promise<void> {
  const targets: ('dev' | 'cluster')[] = opts.cluster ? ['dev', 'cluster'] : ['dev'];
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'devflow-bench-figures-'));
  const results: Figures[] = [];
  try {
    for (const target of targets) {
      const file = path.join(scratch, `${target}.json`);
      const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--target', target, '--json', file];
      if (opts.quick) args.push('--quick');
      args.push('--parked', String(sizes.parked), '--parked-minutes', String(sizes.parkedMinutes));
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
        track(`the ${target} measurement`, async () => void child.kill('SIGTERM'));
        child.once('exit', resolve);
      });
      if (code !== 0) {
        // What was measured is still shown.
        if (results.length) console.log(`\n${table(results)}`);
        throw new Error(`the ${target} measurement exited with ${code}`);
      }
      results.push(JSON.parse(await readFile(file, 'utf8')) as Figures);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  console.log('');
  console.log(table(results));
  if (opts.json) await writeFile(opts.json, `${JSON.stringify(results.length === 1 ? results[0] : { dev: results[0], cluster: results[1] }, null, 2)}\n`);
  process.exit(0);
}

function table(results: Figures[]): string {
  const ms = (n: number) => `${Math.round(n)} ms`;
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(1)}×` : '–');
  const rows: { label: string; cells: (f: Figures) => [string, string, string] }[] = [
    { label: 'artifact → phase recorded p50, 1 run', cells: (f) => [ms(f.artifactToPhaseMs.p50), ms(f.artifactToPhaseMs.baseline.p50), ratio(f.artifactToPhaseMs.p50, f.artifactToPhaseMs.baseline.p50)] },
    { label: 'artifact → phase recorded p99, 1 run', cells: (f) => [ms(f.artifactToPhaseMs.p99), ms(f.artifactToPhaseMs.baseline.p99), ratio(f.artifactToPhaseMs.p99, f.artifactToPhaseMs.baseline.p99)] },
    { label: 'artifact → phase recorded p50, 5 runs', cells: (f) => [ms(f.artifactToPhaseMs.c5.p50), ms(f.artifactToPhaseMs.baseline.p50), ratio(f.artifactToPhaseMs.c5.p50, f.artifactToPhaseMs.baseline.p50)] },
    { label: 'artifact → phase recorded p99, 5 runs', cells: (f) => [ms(f.artifactToPhaseMs.c5.p99), ms(f.artifactToPhaseMs.baseline.p99), ratio(f.artifactToPhaseMs.c5.p99, f.artifactToPhaseMs.baseline.p99)] },
    ...(['c1', 'c5'] as const).flatMap((c) =>
      (['p50', 'p99'] as const).map((p) => ({
        label: `approve → next prompt ${p}, ${c === 'c1' ? '1 run' : '5 runs'}`,
        cells: (f: Figures): [string, string, string] => [ms(f.approveToPromptMs[c][p]), ms(f.approveToPromptMs.baseline[c][p]), ratio(f.approveToPromptMs[c][p], f.approveToPromptMs.baseline[c][p])],
      })),
    ),
    { label: 'history events per phase', cells: (f) => [String(f.eventsPerPhase), String(f.baseline.eventsPerPhase), ratio(f.eventsPerPhase, f.baseline.eventsPerPhase)] },
    ...(['c1', 'c5', 'c20'] as const).map((c) => ({
      label: `full runs per minute, ${c.slice(1)} at once`,
      cells: (f: Figures): [string, string, string] => [f.runsPerMinute.devflow[c]!.toFixed(1), f.runsPerMinute.baseline[c]!.toFixed(1), `÷ ${f.runsPerMinute.ratio[c]!.toFixed(2)}`],
    })),
    { label: 'parked: events written', cells: (f) => [`${f.parked.eventsWritten} (${f.parked.temporalEvents} T + ${f.parked.postgresEvents} PG)`, String(f.parked.baseline.eventsWritten), ''] },
    { label: 'parked: Postgres WAL written', cells: (f) => [`${f.parked.postgresWalBytes} B (${f.parked.postgresAutovacuums} autovacuum/analyze)`, '–', ''] },
    { label: 'parked: worker RSS (baseline: bench process)', cells: (f) => [`${f.parked.workerRssMb} MB`, `${f.parked.baseline.workerRssMb} MB`, ''] },
    { label: 'parked: bench process RSS (API, client)', cells: (f) => [`${f.parked.benchRssMb} MB`, '–', ''] },
    { label: 'parked: approve all → next phase', cells: (f) => [ms(f.parked.approveAllMs), ms(f.parked.baseline.approveAllMs), ratio(f.parked.approveAllMs, f.parked.baseline.approveAllMs)] },
  ];
  const header = ['figure', ...results.flatMap((f) => [`devflow (${f.target})`, `baseline (${f.target})`, 'ratio'])];
  const body = rows.map((row) => [row.label, ...results.flatMap((f) => row.cells(f))]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const first = results[0]!;
  return [
    `parked: ${first.parked.runs} runs for ${first.parked.minutes} min; the worker keeps ${first.parked.workflowCache ?? "the SDK's default number of"} runs in memory (DEVFLOW_WORKFLOW_CACHE); devflow's scripted figures from its runs one at a time and five at a time (approved once the run has settled at its gate, as a person reading it would); throughput on the fake backend (approved as soon as the gate opens)`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
  ].join('\n');
}

// ---- one target ------------------------------------------------------------------------------

async function measureTarget(target: 'dev' | 'cluster'): Promise<void> {
  const say = (line: string) => console.log(`[${target}] ${line}`);
  let temporalAddress: string | undefined;
  if (target === 'cluster') {
    const { startTemporalCluster } = await import('../cli/stack/temporal-cluster.ts');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'devflow-bench-cluster-'));
    track('the cluster folder', () => rm(dir, { recursive: true, force: true }));
    // Postgres runs as its own user when devflow runs as root: it must be able to enter the folder.
    await chmod(dir, 0o755);
    const { startEmbeddedPostgres } = await import('../cli/stack/postgres.ts');
    const { freePort } = await import('../lib/ports.ts');
    const postgres = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: await freePort() });
    track("the cluster's Postgres", () => postgres.stop());
    const cluster = await startTemporalCluster({ dir, databaseUrl: postgres.url, log: say });
    track('the Temporal cluster', () => cluster.stop());
    temporalAddress = cluster.address;
  }
  say('starting the stack');
  // The worker in a process of its own, as a host runs it, so its memory is measured apart.
  const stack = await startBenchStack({ withApi: true, workerProcess: true, ...(temporalAddress ? { temporalAddress } : {}) });
  const { db, client } = stack;

  // The baseline's worker, on its own queue, in this process.
  const marks = new Map<string, number>();
  const activities: BaselineActivities = {
    async baselineStep({ runKey, index }) {
      marks.set(`${runKey}:${index}:start`, Date.now());
      marks.set(`${runKey}:${index}:end`, Date.now());
    },
  };
  const baselineQueue = 'bench-baseline';
  const baselineWorker = await Worker.create({
    connection: stack.nativeConnection,
    namespace: 'default',
    taskQueue: baselineQueue,
    workflowsPath: path.join(ROOT, 'bench', 'baseline-workflow.ts'),
    activities,
  });
  const baselineRunning = baselineWorker.run();
  track('the baseline worker', async () => {
    if (baselineWorker.getState() === 'RUNNING') baselineWorker.shutdown();
    await baselineRunning;
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const http = apiClient(stack.apiUrl!);
  const api = http.call;
  let resent = 0;
  const POLL_MS = 50;
  /** Parking a thousand runs polls less often: the polls themselves would load the server. */
  const PARK_POLL_MS = 250;
  /** A Temporal call that the server refuses while it is busy (Unavailable, ResourceExhausted, DeadlineExceeded) is made again. */
  const BUSY = new Set([14, 8, 4]); // gRPC status codes
  const temporalCall = async <T>(call: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const code = (error as { cause?: { code?: number }; code?: number }).code ?? (error as { cause?: { code?: number } }).cause?.code;
        if (attempt >= 20 || code === undefined || !BUSY.has(code)) throw error;
        resent += 1;
        await sleep(100 * attempt);
      }
    }
  };

  const pendingGate = (runId: string, pollMs = POLL_MS) => pendingSpecGate(http, runId, pollMs);
  /**
   * A person reads before approving: the run has settled at its gate (nothing in flight, the next
   * role's agent started where devflow does that). Not part of any timed span.
   */
  async function settledAtGate(runId: string, pollMs = POLL_MS): Promise<void> {
    const handle = client.workflow.getHandle(runWorkflowId(runId));
    for (;;) {
      // The workflow shows its gate once it has taken the step that opened it (and started what it starts there).
      if ((await temporalCall(() => handle.query(statusQuery))).pendingGate) {
        const { raw } = await temporalCall(() => handle.describe());
        if ((raw.pendingActivities ?? []).length === 0 && !raw.pendingWorkflowTask) return;
      }
      await sleep(pollMs);
    }
  }
  const startRun = (backend: 'scripted' | 'fake') => {
    const runId = randomUUID();
    return api('POST', '/v1/runs', { runId, requirementsMd: '# bench\n', repoPath: stack.repo, baseBranch: 'main', backend }).then(() => runId);
  };
  const approve = (runId: string, approvalId: string) => api('POST', `/v1/runs/${runId}/approvals/${approvalId}`, { action: 'approve', clientToken: `bench-${approvalId}` });
  const finished = async (runId: string) => {
    const outcome = (await client.workflow.getHandle(runWorkflowId(runId)).result()) as { state: string; reason: string };
    if (outcome.state !== 'completed') throw new Error(`run ${runId} ended ${outcome.state}: ${outcome.reason}`);
  };
  // In the order they were recorded: a gated phase's first "recorded" event is its gate, not its completion after the approval.
  const eventsOf = (runId: string, types: string[]) => db.select().from(runEvents).where(and(eq(runEvents.runId, runId), inArray(runEvents.type, types))).orderBy(runEvents.seq);

  // ---- devflow, scripted agent: artifact → phase recorded, approve → next prompt delivered ----
  const artifactSamples: number[] = [];
  const artifactSamplesC5: number[] = [];
  let scriptedConcurrency = 1;
  let eventsPerPhase = 0;
  async function scriptedRun(): Promise<number> {
    const runId = await startRun('scripted');
    const approvalId = await pendingGate(runId);
    await settledAtGate(runId);
    const posted = Date.now();
    await approve(runId, approvalId);
    let promptAt: number | undefined;
    while (promptAt === undefined) {
      const sent = (await eventsOf(runId, ['prompt.sent'])).find((e) => (e.payload as { phaseKey?: string }).phaseKey === 'implement');
      if (sent) promptAt = sent.createdAt.getTime();
      else await sleep(5);
    }
    await finished(runId);
    // Per phase: the artifact file's rename (its ctime) → the phase's work recorded.
    const events = await eventsOf(runId, ['artifact.expected', 'phase.completed', 'phase.awaiting_approval']);
    for (const expected of events.filter((e) => e.type === 'artifact.expected')) {
      const recorded = events.find((e) => e.phaseId === expected.phaseId && e.type !== 'artifact.expected');
      if (recorded) (scriptedConcurrency === 1 ? artifactSamples : artifactSamplesC5).push(recorded.createdAt.getTime() - statSync((expected.payload as { path: string }).path).ctimeMs);
    }
    if (!eventsPerPhase) {
      // A gated phase records two of these (awaiting approval, then completed): count phases, not events.
      const phases = new Set(events.filter((e) => e.type !== 'artifact.expected').map((e) => e.phaseId)).size;
      eventsPerPhase = Math.round((await client.workflow.getHandle(runWorkflowId(runId)).describe()).historyLength / phases);
    }
    return promptAt - posted;
  }

  // ---- the baseline: the same figures without devflow ----
  const baselineHops: number[] = [];
  let baselineEventsPerPhase = 0;
  const BASELINE_PHASES = 3;
  async function baselineOne(options: { measure: boolean }): Promise<number> {
    const runKey = randomUUID();
    const handle = await client.workflow.start(baselineRun, { workflowId: `baseline-${runKey}`, taskQueue: baselineQueue, args: [{ runKey, phases: BASELINE_PHASES, gateAfter: 0 }] });
    while (!(await handle.query(baselineAtGate))) await sleep(POLL_MS);
    const signalled = Date.now();
    await handle.signal(baselineApprove);
    await handle.result();
    const at = (index: number, edge: 'start' | 'end') => marks.get(`${runKey}:${index}:${edge}`)!;
    if (options.measure) {
      for (let i = 1; i < BASELINE_PHASES - 1; i++) baselineHops.push(at(i + 1, 'start') - at(i, 'end'));
      if (!baselineEventsPerPhase) baselineEventsPerPhase = Math.round((await handle.describe()).historyLength / BASELINE_PHASES);
    }
    return at(1, 'start') - signalled;
  }

  const p = (values: number[]): P => {
    const { p50, p99 } = percentiles(values);
    return { p50, p99 };
  };

  say(`warming up (one run of each)`);
  await scriptedRun();
  await baselineOne({ measure: false });
  artifactSamples.length = 0;
  eventsPerPhase = 0;

  say(`scripted runs: ${sizes.scriptedC1} one at a time, then ${sizes.scriptedC5} five at a time`);
  const approveC1 = await pool(sizes.scriptedC1, 1, scriptedRun);
  scriptedConcurrency = 5;
  const approveC5 = await pool(sizes.scriptedC5, 5, scriptedRun);
  const baselineC1 = await pool(sizes.scriptedC1, 1, () => baselineOne({ measure: true }));
  const baselineC5 = await pool(sizes.scriptedC5, 5, () => baselineOne({ measure: true }));

  // ---- full runs per minute, auto-approve: devflow on the fake backend, and the baseline ----
  async function fakeRun(): Promise<void> {
    const runId = await startRun('fake');
    await approve(runId, await pendingGate(runId));
    await finished(runId);
  }
  const perMinute = async (total: number, concurrency: number, one: () => Promise<unknown>) => {
    const started = performance.now();
    await pool(total, concurrency, one);
    return total / ((performance.now() - started) / 60_000);
  };
  const runsPerMinute: Figures['runsPerMinute'] = { devflow: {}, baseline: {}, ratio: {} };
  for (const [key, total] of Object.entries(sizes.throughput)) {
    const concurrency = Number(key.slice(1));
    say(`full runs, ${concurrency} at a time: ${total} of devflow (fake backend), ${total} of the baseline`);
    runsPerMinute.devflow[key] = await perMinute(total, concurrency, fakeRun);
    runsPerMinute.baseline[key] = await perMinute(total, concurrency, () => baselineOne({ measure: false }));
    runsPerMinute.ratio[key] = runsPerMinute.devflow[key]! / runsPerMinute.baseline[key]!;
  }

  // ---- parked at a gate: what waiting costs, and what a wave of approvals costs ----
  const rssMb = () => Math.round(process.memoryUsage().rss / 1024 / 1024);
  say(`parking ${sizes.parked} baseline runs at their gate`);
  const parkedBaseline = await pool(sizes.parked, 20, async () => {
    const runKey = randomUUID();
    const handle = await client.workflow.start(baselineRun, { workflowId: `baseline-${runKey}`, taskQueue: baselineQueue, args: [{ runKey, phases: BASELINE_PHASES, gateAfter: 0 }] });
    while (!(await temporalCall(() => handle.query(baselineAtGate)))) await sleep(PARK_POLL_MS);
    return { runKey, handle };
  });
  const baselineRss = rssMb();
  say(`parking ${sizes.parked} devflow runs (fake backend) at the spec gate`);
  const parkedRuns = await pool(sizes.parked, 20, async () => {
    const runId = await startRun('fake');
    const approvalId = await pendingGate(runId, PARK_POLL_MS);
    await settledAtGate(runId, PARK_POLL_MS);
    return { runId, approvalId };
  });
  const historyTotal = async (ids: string[]) =>
    (await pool(ids.length, 20, async () => {
      const handle = client.workflow.getHandle(ids.pop()!);
      return (await temporalCall(() => handle.describe())).historyLength;
    })).reduce((a, b) => a + b, 0);
  const devflowIds = () => parkedRuns.map((r) => runWorkflowId(r.runId));
  const baselineIds = () => parkedBaseline.map((r) => r.handle.workflowId);
  const pgEvents = async () => (await db.select({ n: count() }).from(runEvents))[0]!.n;
  const walLsn = async () => (await db.execute<{ lsn: string }>(sql`select pg_current_wal_lsn()::text as lsn`)).rows[0]!.lsn;
  const autovacuums = async () => Number((await db.execute<{ n: string }>(sql`select coalesce(sum(autovacuum_count + autoanalyze_count), 0)::text as n from pg_stat_all_tables`)).rows[0]!.n);
  const walSince = async (lsn: string) => Number((await db.execute<{ bytes: string }>(sql`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}::pg_lsn)::text as bytes`)).rows[0]!.bytes);
  const before = { devflow: await historyTotal(devflowIds()), baseline: await historyTotal(baselineIds()), pg: await pgEvents(), wal: await walLsn(), vacuums: await autovacuums() };
  say(`parked; waiting ${sizes.parkedMinutes} min`);
  await sleep(sizes.parkedMinutes * 60_000);
  const after = { devflow: await historyTotal(devflowIds()), baseline: await historyTotal(baselineIds()), pg: await pgEvents(), walBytes: await walSince(before.wal), vacuums: await autovacuums() };
  const workerRss = rssMbOf(stack.workerPid!);
  const benchRss = rssMb();

  say(`approving all ${sizes.parked} baseline runs`);
  let started = performance.now();
  const signalAll = [...parkedBaseline];
  await pool(signalAll.length, 20, () => signalAll.pop()!.handle.signal(baselineApprove));
  while (parkedBaseline.some((r) => !marks.has(`${r.runKey}:1:start`))) await sleep(20);
  const baselineApproveAll = performance.now() - started;

  say(`approving all ${sizes.parked} devflow runs`);
  started = performance.now();
  const approveAll = [...parkedRuns];
  await pool(approveAll.length, 20, () => {
    const run = approveAll.pop()!;
    return approve(run.runId, run.approvalId);
  });
  const ids = parkedRuns.map((r) => r.runId);
  for (;;) {
    const rows = await db
      .select({ n: count() })
      .from(runEvents)
      .innerJoin(runPhases, eq(runPhases.id, runEvents.phaseId))
      .where(and(inArray(runEvents.runId, ids), eq(runEvents.type, 'phase.started'), eq(runPhases.phaseKey, 'implement')));
    if (rows[0]!.n >= ids.length) break;
    await sleep(50);
  }
  const approveAllMs = performance.now() - started;

  const figures: Figures = {
    target: target === 'dev' ? 'dev server' : 'cluster',
    artifactToPhaseMs: { ...p(artifactSamples), c5: p(artifactSamplesC5), baseline: p(baselineHops) },
    approveToPromptMs: { c1: p(approveC1), c5: p(approveC5), baseline: { c1: p(baselineC1), c5: p(baselineC5) } },
    eventsPerPhase,
    runsPerMinute,
    parked: {
      runs: sizes.parked,
      minutes: sizes.parkedMinutes,
      temporalEvents: after.devflow - before.devflow,
      postgresEvents: after.pg - before.pg,
      eventsWritten: after.devflow - before.devflow + (after.pg - before.pg),
      postgresWalBytes: after.walBytes,
      postgresAutovacuums: after.vacuums - before.vacuums,
      workerRssMb: workerRss,
      workflowCache: process.env.DEVFLOW_WORKFLOW_CACHE ? Number(process.env.DEVFLOW_WORKFLOW_CACHE) : null,
      benchRssMb: benchRss,
      approveAllMs,
      baseline: { runs: sizes.parked, eventsWritten: after.baseline - before.baseline, approveAllMs: baselineApproveAll, workerRssMb: baselineRss },
    },
    baseline: { eventsPerPhase: baselineEventsPerPhase },
  };
  if (resent + http.resent()) say(`${http.resent()} API requests answered 503 and ${resent} Temporal calls refused as busy were made again`);
  if (opts.json) await writeFile(opts.json, `${JSON.stringify(figures, null, 2)}\n`);
  else console.log(table([figures]));
  say('stopping');
  await stopStarted();
  process.exit(0);
}
