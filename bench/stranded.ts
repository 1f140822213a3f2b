// Stranded runs: how long from a run's workflow terminated (as from the Web UI or
// `temporal workflow terminate`) mid-phase to the run settled `failed` with its report, with the
// reconciler sweeping at the worker's interval. Prints figures.
//   npm run bench:stranded [-- --runs 10 --interval 15000]
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { and, eq } from 'drizzle-orm';
import { createFinalizeActivities } from '../activities/finalize.ts';
import { runEvents, runs } from '../db/schema.ts';
import { runWorkflowId } from '../workflows/messages.ts';
import { runWorkflow } from '../workflows/run.ts';
import { Reconciler, startReconciler } from '../worker/reconciler.ts';
import { numberArg, percentiles, startBenchStack, track } from './stack.ts';

const total = numberArg('runs', 10);
const intervalMs = numberArg('interval', 15_000);
const stack = await startBenchStack();
const deps = { db: stack.db, drivers: stack.drivers, workspaceRoot: stack.workspaceRoot, hostId: stack.hostId, hostQueue: `devflow-host:${stack.hostId}` };
const reconciler = startReconciler(new Reconciler({ db: stack.db, client: stack.client, hostId: stack.hostId, finalize: createFinalizeActivities(deps), graceMs: 0 }), intervalMs);
track('the reconciler', () => reconciler.stop());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function oneStranded(): Promise<number> {
  const runId = randomUUID();
  // The scripted agent in tmux, mid-phase: it works and never writes its artifact.
  const handle = await stack.client.workflow.start(runWorkflow, {
    workflowId: runWorkflowId(runId),
    taskQueue: stack.taskQueue,
    args: [{ runId, templateId: 'development@1', repoPath: stack.repo, baseBranch: 'main', requirementsMd: '# bench\n', backend: 'scripted', scenarios: { spec: 'timeout' }, timing: { artifactTimeoutMs: 600_000 } }],
  });
  while ((await stack.db.select().from(runEvents).where(and(eq(runEvents.runId, runId), eq(runEvents.type, 'artifact.expected')))).length === 0) await sleep(20);
  const terminated = Date.now();
  await handle.terminate('bench: terminated by hand');
  for (;;) {
    const [run] = await stack.db.select().from(runs).where(eq(runs.id, runId));
    if (run?.state === 'failed' && run.finalReportPath && existsSync(run.finalReportPath)) return Date.now() - terminated;
    await sleep(10);
  }
}

console.log(`${total} runs terminated mid-phase, one at a time; the reconciler sweeps every ${intervalMs} ms (DEVFLOW_RECONCILE_INTERVAL_MS)`);
const times: number[] = [];
for (let i = 0; i < total; i++) times.push(await oneStranded());
const p = percentiles(times);
console.log(`terminated -> run failed with its report  n=${p.n}  p50 ${p.p50} ms  p99 ${p.p99} ms  max ${p.max} ms  (bound: one interval plus a sweep)`);
await stack.stop();
process.exit(0);
