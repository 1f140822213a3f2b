// Time from the agent writing its artifact to devflow recording the phase's work done
// (phase.completed, or phase.awaiting_approval at a gate), and each run's wall time, through the
// real stack: the Temporal dev server, Postgres, a worker and an agent in tmux (the scripted one,
// or a real CLI on the playback model). Prints figures.
//   npm run bench:latency [-- --runs 25 --concurrency 5 --stability-ms 500 --agent scripted|claude-code|codex]
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { runEvents } from '../db/schema.ts';
import { decisionSignal, runWorkflowId, statusQuery, type RunInput } from '../workflows/messages.ts';
import { runWorkflow } from '../workflows/run.ts';
import { isRealAgent } from '../sessions/agent-cli.ts';
import { numberArg, percentiles, pool, startBenchStack } from './stack.ts';

const agentIndex = process.argv.indexOf('--agent');
const agent = agentIndex > 0 ? process.argv[agentIndex + 1]! : 'scripted';
if (agent !== 'scripted' && !isRealAgent(agent)) {
  console.error(`--agent: scripted, claude-code or codex (got ${agent})`);
  process.exit(2);
}
const runsWanted = numberArg('runs', 25);
const concurrency = numberArg('concurrency', 5);
const stabilityMs = numberArg('stability-ms', 500);
const stack = await startBenchStack();
const { db, client } = stack;

const runWallMs: number[] = [];

async function oneRun(): Promise<{ phase: string; ms: number }[]> {
  const runId = randomUUID();
  const agents = isRealAgent(agent) ? { agents: { spec_writer: agent, implementer: agent, reviewer: agent }, playback: true } : {};
  const input: RunInput = { runId, templateId: 'development@1', repoPath: stack.repo, baseBranch: 'main', requirementsMd: '# bench\n', backend: 'scripted', ...agents, timing: { stabilityMs } };
  const startedAt = Date.now();
  const handle = await client.workflow.start(runWorkflow, { workflowId: runWorkflowId(runId), taskQueue: stack.taskQueue, args: [input] });
  for (;;) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.pendingGate) {
      await handle.signal(decisionSignal, { approvalRequestId: status.pendingGate.approvalRequestId, action: 'approve', clientToken: 'bench' });
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await handle.result();
  runWallMs.push(Date.now() - startedAt);
  const artifactsDir = path.join(stack.workspaceRoot, runId, 'main', '.devflow', 'artifacts');
  const recorded = async (type: 'phase.completed' | 'phase.awaiting_approval', phaseKey: string) => {
    const rows = await db.select().from(runEvents).where(and(eq(runEvents.runId, runId), eq(runEvents.type, type)));
    return rows.find((r) => (r.payload as { phaseKey?: string }).phaseKey === phaseKey)!.createdAt.getTime();
  };
  const renamed = (file: string) => statSync(path.join(artifactsDir, file)).ctimeMs;
  return [
    { phase: 'spec (gated)', ms: (await recorded('phase.awaiting_approval', 'spec')) - renamed('spec.json') },
    { phase: 'implement', ms: (await recorded('phase.completed', 'implement')) - renamed('implementation.json') },
    { phase: 'review', ms: (await recorded('phase.completed', 'review')) - renamed('review.json') },
  ];
}

const agentLabel = isRealAgent(agent) ? `${agent} in tmux on the playback model` : 'scripted agent in tmux';
console.log(`${runsWanted} runs (${runsWanted * 3} phases), ${concurrency} at a time, stability window ${stabilityMs} ms, ${agentLabel}`);
const started = Date.now();
const samples = (await pool(runsWanted, concurrency, oneRun)).flat();
console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
const line = (label: string, values: number[]) => {
  const p = percentiles(values);
  console.log(`${label.padEnd(22)} n=${String(p.n).padStart(3)}  p50 ${p.p50.toFixed(0)} ms  p99 ${p.p99.toFixed(0)} ms  max ${p.max.toFixed(0)} ms`);
};
line('all phases', samples.map((s) => s.ms));
for (const phase of ['spec (gated)', 'implement', 'review']) line(phase, samples.filter((s) => s.phase === phase).map((s) => s.ms));
line('run wall time', runWallMs);
await stack.stop();
process.exit(0);
