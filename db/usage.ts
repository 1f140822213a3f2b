// Tokens the agents of a run used, from `agent_usage`: per session, per phase and in all.
import { asc, eq } from 'drizzle-orm';
import type { Executor } from './client.ts';
import { agentUsage, runPhases, tuiSessions } from './schema.ts';

export interface Tokens {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export interface RunUsage {
  total: Tokens;
  phases: (Tokens & { phaseKey: string })[];
  sessions: (Tokens & { sessionId: string; roleId: string; backend: string })[];
}

const zero = (): Tokens => ({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });

function add(sum: Tokens, row: Tokens): void {
  sum.inputTokens += row.inputTokens;
  sum.outputTokens += row.outputTokens;
  sum.cacheReadTokens += row.cacheReadTokens;
  sum.cacheWriteTokens += row.cacheWriteTokens;
}

export async function runUsage(executor: Executor, runId: string): Promise<RunUsage> {
  const rows = await executor
    .select({
      sessionId: agentUsage.sessionId,
      roleId: tuiSessions.roleId,
      backend: tuiSessions.backend,
      phaseKey: runPhases.phaseKey,
      inputTokens: agentUsage.inputTokens,
      outputTokens: agentUsage.outputTokens,
      cacheReadTokens: agentUsage.cacheReadTokens,
      cacheWriteTokens: agentUsage.cacheWriteTokens,
    })
    .from(agentUsage)
    .innerJoin(runPhases, eq(runPhases.id, agentUsage.phaseId))
    .innerJoin(tuiSessions, eq(tuiSessions.id, agentUsage.sessionId))
    .where(eq(agentUsage.runId, runId))
    .orderBy(asc(runPhases.ordinal), asc(tuiSessions.createdAt));
  const total = zero();
  const phases = new Map<string, Tokens & { phaseKey: string }>();
  const sessions = new Map<string, Tokens & { sessionId: string; roleId: string; backend: string }>();
  for (const row of rows) {
    add(total, row);
    if (!phases.has(row.phaseKey)) phases.set(row.phaseKey, { phaseKey: row.phaseKey, ...zero() });
    add(phases.get(row.phaseKey)!, row);
    if (!sessions.has(row.sessionId)) sessions.set(row.sessionId, { sessionId: row.sessionId, roleId: row.roleId, backend: row.backend, ...zero() });
    add(sessions.get(row.sessionId)!, row);
  }
  return { total, phases: [...phases.values()], sessions: [...sessions.values()] };
}
