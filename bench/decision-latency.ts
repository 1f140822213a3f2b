// Decision latency through the public API: from POST /v1/runs/:id/approvals/:approvalId
// (approve the spec gate) to the next phase started (the implement phase's phase.started event),
// with the scripted agent in tmux (the next phase starts its agent first). Prints figures.
//   npm run bench:decisions [-- --decisions 50 --concurrency 5 --backend scripted|fake]
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { runEvents } from '../db/schema.ts';
import { apiClient, numberArg, pendingSpecGate, percentiles, pool, startBenchStack } from './stack.ts';

const decisions = numberArg('decisions', 50);
const concurrency = numberArg('concurrency', 5);
const backendArg = process.argv.indexOf('--backend');
const backend = backendArg > 0 ? process.argv[backendArg + 1]! : 'scripted';
const stack = await startBenchStack({ withApi: true });
const api = apiClient(stack.apiUrl!);

async function oneDecision(): Promise<number> {
  const runId = randomUUID();
  await api.call('POST', '/v1/runs', { runId, requirementsMd: '# bench\n', repoPath: stack.repo, baseBranch: 'main', backend });
  const approvalId = await pendingSpecGate(api, runId, 20);
  const posted = Date.now();
  await api.call('POST', `/v1/runs/${runId}/approvals/${approvalId}`, { action: 'approve', clientToken: 'bench' });
  for (;;) {
    const rows = await stack.db.select().from(runEvents).where(and(eq(runEvents.runId, runId), eq(runEvents.type, 'phase.started')));
    const next = rows.find((r) => (r.payload as { phaseKey?: string }).phaseKey === 'implement');
    if (next) {
      await api.call('POST', `/v1/runs/${runId}/abort`, { clientToken: 'bench-done' });
      return next.createdAt.getTime() - posted;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

console.log(`${decisions} decisions, ${concurrency} runs at a time, ${backend} backend, through the HTTP API`);
const started = Date.now();
const p = percentiles(await pool(decisions, concurrency, oneDecision));
console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`POST approve -> next phase started  n=${p.n}  p50 ${p.p50} ms  p99 ${p.p99} ms  max ${p.max} ms`);
await stack.stop();
process.exit(0);
