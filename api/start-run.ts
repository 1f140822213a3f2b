// Starting a run: the checks, the row and the workflow. POST /v1/runs and a schedule's fire
// both come here, so a scheduled run is refused, limited and started exactly as a direct one.
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { and, asc, count, eq, notInArray, sql } from 'drizzle-orm';
import type { Database, Executor } from '../db/client.ts';
import { createRun } from '../db/runs.ts';
import { runs, scheduleFires, workflowTemplates } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { workflowIds } from '../lib/keys.ts';
import { checkRunSource } from '../lib/runs.ts';
import type { StartRunBody } from '../schemas/api.ts';
import { formatProblems, type Problem, type TemplateDefinition } from '../schemas/definitions.ts';
import { findAgentCli, type RealAgent, type ResolvedAgentCli } from '../sessions/agent-cli.ts';
import type { RunInput } from '../workflows/messages.ts';
import { runWorkflow } from '../workflows/run.ts';
import { REPO, RUN_ID, RUN_STATE, TEMPLATE } from '../workflows/search-attributes.ts';
import { checkAgentsInstalled, chooseAgents, personasOf, type RunAgent } from './run-agents.ts';
import { ApiError } from './server.ts';

// Any constant: serialises run creation so the concurrency limits hold under parallel requests.
const START_LOCK = 0x64667374; // "dfst"

export interface StartRunDeps {
  db: Database;
  client: Client;
  taskQueue: string;
  maxConcurrentRuns: number;
  /** Active runs allowed on one repository (0 or unset: no limit of its own). */
  maxRunsPerRepo?: number | undefined;
  /** Problems that keep templates from running (from the last load of the definitions). */
  definitions?: { problemsOf: Map<string, Problem[]> } | undefined;
  /** The real agent roles use when neither the request nor their persona names one. */
  configuredAgent?: RealAgent | undefined;
  findAgent?: ((agent: RealAgent) => Promise<ResolvedAgentCli | undefined>) | undefined;
}

/** What a run is asked to do: the POST /v1/runs body without the run id or the dry-run switch. */
export type RunRequest = Omit<StartRunBody, 'runId' | 'dryRun'>;

/** A schedule's fire: at most one run per slot, and a fire that starts none says why. */
export interface Fire {
  scheduleId: string;
  slot: Date;
  overlap: 'skip' | 'allow';
}

export type StartOutcome =
  | { outcome: 'started'; runId: string; workflowId: string; created: boolean }
  | { outcome: 'skipped'; code: string; reason: string };

/** Everything a request must pass before anything is written: its template, its agents and its source. */
export async function checkRunRequest(deps: StartRunDeps, body: RunRequest): Promise<{ definition: TemplateDefinition; agents: Record<string, RunAgent> }> {
  const problems = deps.definitions?.problemsOf.get(body.template);
  if (problems?.length) {
    throw new ApiError(400, 'definition_invalid', `template ${body.template} cannot run: ${formatProblems(problems).join('; ')}`, {
      issues: problems.map((p) => ({ field: 'body.template', message: `${p.file}: ${p.path}: ${p.message}` })),
    });
  }
  const [template] = await deps.db.select().from(workflowTemplates).where(eq(workflowTemplates.id, body.template));
  if (!template) throw new ApiError(400, 'template_not_found', `template ${body.template} is not registered`, { issues: [{ field: 'body.template', message: 'unknown template' }] });
  const definition = template.definition as TemplateDefinition;
  const agents = chooseAgents(definition, await personasOf(deps.db, definition), body, deps.configuredAgent ?? 'claude-code');
  await checkAgentsInstalled(agents, deps.findAgent ?? ((agent) => findAgentCli(agent)));
  await checkRunSource(body.repoPath, body.baseBranch);
  return { definition, agents };
}

/**
 * Creates the run (or finds it, when the same id or the same fire comes again) and starts its
 * workflow. A refusal by a limit is thrown for a direct request and recorded for a fire.
 */
export async function startRun(deps: StartRunDeps, body: RunRequest, runId: string, options: { fire?: Fire; agents?: Record<string, RunAgent> } = {}): Promise<StartOutcome> {
  const { fire } = options;
  const agents = options.agents ?? (await checkRunRequest(deps, body)).agents;
  // The same run asked for again (a retried request) needs no lock: many at once would queue on it.
  const [known] = fire ? [] : await deps.db.select({ id: runs.id }).from(runs).where(eq(runs.id, runId));
  const decided = known ? started(runId, false) : await deps.db.transaction(async (tx): Promise<StartOutcome> => {
    await tx.execute(sql`select pg_advisory_xact_lock(${START_LOCK})`);
    if (fire) {
      const [recorded] = await tx.select().from(scheduleFires).where(and(eq(scheduleFires.scheduleId, fire.scheduleId), eq(scheduleFires.slot, fire.slot)));
      if (recorded?.outcome === 'skipped') return { outcome: 'skipped', code: recorded.reasonCode ?? 'skipped', reason: recorded.reason ?? '' };
      if (recorded?.runId) return started(recorded.runId, false);
    }
    const [existing] = await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, runId));
    if (existing) return started(runId, false); // the same run asked for again: same answer
    const refusal = (fire?.overlap === 'skip' ? await overlapRefusal(tx, fire.scheduleId) : undefined) ?? (await limitRefusal(tx, deps, body.repoPath));
    if (refusal) {
      if (!fire) throw refusal;
      await recordSkippedFire(tx, fire, refusal.code, refusal.message);
      return { outcome: 'skipped', code: refusal.code, reason: refusal.message };
    }
    await createRun(tx, { id: runId, templateId: body.template, repoPath: body.repoPath, baseBranch: body.baseBranch, requirementsMd: body.requirementsMd });
    if (fire) await tx.insert(scheduleFires).values({ scheduleId: fire.scheduleId, slot: fire.slot, outcome: 'started', runId });
    return started(runId, true);
  });
  if (decided.outcome === 'started') await startRunWorkflow(deps, body, decided.runId, agents);
  return decided;
}

function started(runId: string, created: boolean): StartOutcome {
  return { outcome: 'started', runId, workflowId: workflowIds.run(runId), created };
}

/** Records that a fire started nothing, and why (a second record of the same slot is a no-op). */
export async function recordSkippedFire(tx: Executor, fire: Fire, code: string, reason: string): Promise<void> {
  await tx.insert(scheduleFires).values({ scheduleId: fire.scheduleId, slot: fire.slot, outcome: 'skipped', reasonCode: code, reason }).onConflictDoNothing();
}

/** The schedule's last run still going: a fire with overlap `skip` starts nothing. */
async function overlapRefusal(tx: Executor, scheduleId: string): Promise<ApiError | undefined> {
  const [active] = await tx
    .select({ id: runs.id, state: runs.state })
    .from(scheduleFires)
    .innerJoin(runs, eq(runs.id, scheduleFires.runId))
    .where(and(eq(scheduleFires.scheduleId, scheduleId), notInArray(runs.state, [...TERMINAL_RUN_STATES])));
  if (!active) return undefined;
  return new ApiError(409, 'schedule_overlap', `schedule ${scheduleId}'s run ${active.id} is still ${active.state} (overlap: skip)`);
}

/** The global limit and the repository's: a 429 naming what holds the slots, or nothing. */
async function limitRefusal(tx: Executor, deps: StartRunDeps, repoPath: string): Promise<ApiError | undefined> {
  const [active] = await tx.select({ n: count() }).from(runs).where(notInArray(runs.state, [...TERMINAL_RUN_STATES]));
  if (active!.n >= deps.maxConcurrentRuns) {
    return new ApiError(429, 'too_many_runs', `${active!.n} runs are going; the limit is ${deps.maxConcurrentRuns} (DEVFLOW_MAX_CONCURRENT_RUNS)`);
  }
  return deps.maxRunsPerRepo ? repoSlotRefusal(tx, repoPath, deps.maxRunsPerRepo) : undefined;
}

/** The repository's active runs (the same folder, however it was spelled) against its limit. */
async function repoSlotRefusal(tx: Executor, repoPath: string, limit: number): Promise<ApiError | undefined> {
  const real = (p: string) => realpath(p).catch(() => path.resolve(p));
  const repo = await real(repoPath);
  const active = await tx.select({ id: runs.id, repoPath: runs.repoPath, state: runs.state }).from(runs).where(notInArray(runs.state, [...TERMINAL_RUN_STATES])).orderBy(asc(runs.createdAt));
  const holders = [];
  for (const run of active) if (run.repoPath === repoPath || (await real(run.repoPath)) === repo) holders.push(run);
  if (holders.length < limit) return undefined;
  return new ApiError(429, 'repo_busy', `${repo} has ${holders.length} active run${holders.length === 1 ? '' : 's'} (the limit is ${limit}, DEVFLOW_MAX_RUNS_PER_REPO): ${holders.map((r) => `${r.id} (${r.state})`).join(', ')}; wait for it to end or abort it`, {
    runIds: holders.map((r) => r.id),
  });
}

/** Starts the run's workflow; one already started (or ended) under that id is the same run. */
async function startRunWorkflow(deps: StartRunDeps, body: RunRequest, runId: string, agents: Record<string, RunAgent>): Promise<void> {
  const input: RunInput = {
    runId, templateId: body.template, repoPath: body.repoPath, baseBranch: body.baseBranch, requirementsMd: body.requirementsMd,
    backend: body.backend ?? 'tmux', agents, ...(body.playback ? { playback: true } : {}),
    ...(body.scenarios ? { scenarios: body.scenarios } : {}), ...(body.timing ? { timing: body.timing } : {}),
    ...(body.maxPhaseRetries !== undefined ? { maxPhaseRetries: body.maxPhaseRetries } : {}),
  };
  try {
    await deps.client.workflow.start(runWorkflow, {
      workflowId: workflowIds.run(runId),
      taskQueue: deps.taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      staticSummary: `devflow run ${runId}: ${body.template} on ${body.repoPath}@${body.baseBranch}`,
      typedSearchAttributes: [
        { key: RUN_ID, value: runId }, { key: TEMPLATE, value: body.template }, { key: REPO, value: body.repoPath }, { key: RUN_STATE, value: 'planning' },
      ],
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}
