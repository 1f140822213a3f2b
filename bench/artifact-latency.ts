// Time from the agent's atomic rename of its artifact to devflow recording the phase's work
// done (phase.completed, or phase.awaiting_approval at a gate), through the real stack: the
// Temporal dev server, Postgres, a worker and the scripted agent in tmux. Prints figures.
//   npm run bench:latency [-- --runs 25 --concurrency 5 --stability-ms 500]
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { and, eq } from 'drizzle-orm';
import { startEmbeddedPostgres } from '../cli/stack/postgres.ts';
import { resolveTemporalCli } from '../cli/stack/temporal-cli.ts';
import { startTemporalDevServer } from '../cli/stack/temporal-server.ts';
import { connectDatabase } from '../db/client.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { runEvents } from '../db/schema.ts';
import { sessionDrivers } from '../sessions/index.ts';
import { PRESETS } from '../sessions/presets.ts';
import { TmuxDriver, TmuxServer } from '../sessions/tmux.ts';
import { createDevflowWorkers } from '../worker/worker.ts';
import { decisionSignal, runWorkflowId, statusQuery, type RunInput } from '../workflows/messages.ts';
import { runWorkflow } from '../workflows/run.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const runsWanted = arg('runs', 25);
const concurrency = arg('concurrency', 5);
const stabilityMs = arg('stability-ms', 500);

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

Runtime.install({ logger: new DefaultLogger('WARN') });
const home = await mkdtemp(path.join(os.tmpdir(), 'devflow-bench-'));
chmodSync(home, 0o755);
const say = (line: string) => console.log(line);
const cli = await resolveTemporalCli({ log: say });
const postgres = await startEmbeddedPostgres({ dir: path.join(home, 'pg'), port: await freePort() });
const temporal = await startTemporalDevServer({ cliPath: cli.path, port: await freePort(), uiPort: 0, namespace: 'default', headless: true });
const database = connectDatabase(postgres.url, { max: 10 });
await prepareDatabase(database);
const tmux = new TmuxServer(path.join(home, 'tmux.sock'));
const taskQueue = 'bench';
const workers = await createDevflowWorkers({
  connection: await NativeConnection.connect({ address: temporal.address }),
  namespace: 'default',
  taskQueue,
  deps: { db: database.db, drivers: sessionDrivers({ scripted: new TmuxDriver(tmux, PRESETS.scripted) }), workspaceRoot: path.join(home, 'ws'), hostId: 'bench', hostQueue: 'devflow-host:bench' },
});
const running = workers.run();
const connection = await Connection.connect({ address: temporal.address });
const client = new Client({ connection });

const repo = path.join(home, 'repo');
execFileSync('git', ['init', '-q', '-b', 'main', repo]);
execFileSync('git', ['-C', repo, '-c', 'user.email=b@b', '-c', 'user.name=bench', 'commit', '-q', '--allow-empty', '-m', 'init']);

async function oneRun(): Promise<{ phase: string; ms: number }[]> {
  const runId = randomUUID();
  const input: RunInput = { runId, templateId: 'development@1', repoPath: repo, baseBranch: 'main', requirementsMd: '# bench\n', backend: 'scripted', timing: { stabilityMs } };
  const handle = await client.workflow.start(runWorkflow, { workflowId: runWorkflowId(runId), taskQueue, args: [input] });
  for (;;) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.pendingGate) {
      await handle.signal(decisionSignal, { approvalRequestId: status.pendingGate.approvalRequestId, action: 'approve', clientToken: 'bench' });
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await handle.result();
  const worktree = path.join(home, 'ws', runId, 'main', '.devflow', 'artifacts');
  const recorded = async (type: 'phase.completed' | 'phase.awaiting_approval', phaseKey: string) => {
    const rows = await database.db.select().from(runEvents).where(and(eq(runEvents.runId, runId), eq(runEvents.type, type)));
    return rows.find((r) => (r.payload as { phaseKey?: string }).phaseKey === phaseKey)!.createdAt.getTime();
  };
  return [
    { phase: 'spec (gated)', ms: (await recorded('phase.awaiting_approval', 'spec')) - statSync(path.join(worktree, 'spec.json')).ctimeMs },
    { phase: 'implement', ms: (await recorded('phase.completed', 'implement')) - statSync(path.join(worktree, 'implementation.json')).ctimeMs },
    { phase: 'review', ms: (await recorded('phase.completed', 'review')) - statSync(path.join(worktree, 'review.json')).ctimeMs },
  ];
}

say(`${runsWanted} runs (${runsWanted * 3} phases), ${concurrency} at a time, stability window ${stabilityMs} ms, scripted agent in tmux`);
const samples: { phase: string; ms: number }[] = [];
const started = Date.now();
let next = 0;
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < runsWanted) {
    next += 1;
    samples.push(...(await oneRun()));
  }
}));
const pct = (values: number[], p: number) => values[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)]!;
const line = (label: string, values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  say(`${label.padEnd(22)} n=${String(sorted.length).padStart(3)}  p50 ${pct(sorted, 50).toFixed(0)} ms  p99 ${pct(sorted, 99).toFixed(0)} ms  max ${sorted.at(-1)!.toFixed(0)} ms`);
};
say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
line('all phases', samples.map((s) => s.ms));
for (const phase of ['spec (gated)', 'implement', 'review']) line(phase, samples.filter((s) => s.phase === phase).map((s) => s.ms));

workers.shutdown();
await running;
await connection.close();
await tmux.killServer();
await database.close();
await temporal.stop();
await postgres.stop();
await rm(home, { recursive: true, force: true });
process.exit(0);
