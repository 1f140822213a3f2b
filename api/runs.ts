// Run routes: start, list, read, abort, and the final report.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { and, asc, count, desc, eq, inArray, notInArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Database, Executor } from '../db/client.ts';
import { writeRunReport } from '../db/report.ts';
import { createRun } from '../db/runs.ts';
import { artifacts, runPhases, runs, tuiSessions, workflowTemplates } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { listEventsOfTypes } from '../db/events.ts';
import { phaseStops, runStop, sessionStops, STOP_EVENT_TYPES } from '../db/stops.ts';
import { runUsage } from '../db/usage.ts';
import { workflowIds } from '../lib/keys.ts';
import { checkRunSource } from '../lib/runs.ts';
import {
  abortBody,
  abortEndedResponse,
  abortSentResponse,
  dryRunResponse,
  listRunsQuery,
  runDetailResponse,
  runIdParams,
  runListResponse,
  startRunBody,
  startRunResponse,
} from '../schemas/api.ts';
import { formatProblems, type TemplateDefinition } from '../schemas/definitions.ts';
import { findAgentCli } from '../sessions/agent-cli.ts';
import { abortSignal, type RunInput } from '../workflows/messages.ts';
import { runWorkflow } from '../workflows/run.ts';
import { REPO, RUN_ID, RUN_STATE, TEMPLATE } from '../workflows/search-attributes.ts';
import { approvalsOf } from './approvals.ts';
import { dryRun } from './dry-run.ts';
import { ensureReport, errors, runOr404, type App, type RouteDeps } from './context.ts';
import { checkAgentsInstalled, chooseAgents, personasOf } from './run-agents.ts';
import { ApiError, isUnavailable } from './server.ts';

// Any constant: serialises run creation so the concurrency limit holds under parallel requests.
const START_LOCK = 0x64667374; // "dfst"
/** How long a signal may take before the caller is told to retry (503). */
export const SIGNAL_DEADLINE_MS = 5_000;

/** The repository's active runs (the same folder, however it was spelled) against its limit: 429 naming them. */
async function checkRepoSlot(tx: Executor, repoPath: string, limit: number): Promise<void> {
  const real = (p: string) => realpath(p).catch(() => path.resolve(p));
  const repo = await real(repoPath);
  const active = await tx.select({ id: runs.id, repoPath: runs.repoPath, state: runs.state }).from(runs).where(notInArray(runs.state, [...TERMINAL_RUN_STATES])).orderBy(asc(runs.createdAt));
  const holders = [];
  for (const run of active) if (run.repoPath === repoPath || (await real(run.repoPath)) === repo) holders.push(run);
  if (holders.length < limit) return;
  throw new ApiError(429, 'repo_busy', `${repo} has ${holders.length} active run${holders.length === 1 ? '' : 's'} (the limit is ${limit}, DEVFLOW_MAX_RUNS_PER_REPO): ${holders.map((r) => `${r.id} (${r.state})`).join(', ')}; wait for it to end or abort it`, {
    runIds: holders.map((r) => r.id),
  });
}

export function registerRunRoutes(app: App, deps: RouteDeps): void {
  const { db, client } = deps;

  app.post('/v1/runs', { schema: { summary: 'Start a run (or, with dryRun, show what would run)', body: startRunBody, response: { 200: dryRunResponse, 202: startRunResponse, ...errors(429) } } }, async (request, reply) => {
    const body = request.body;
    const problems = deps.definitions?.problemsOf.get(body.template);
    if (problems?.length) {
      throw new ApiError(400, 'definition_invalid', `template ${body.template} cannot run: ${formatProblems(problems).join('; ')}`, {
        issues: problems.map((p) => ({ field: 'body.template', message: `${p.file}: ${p.path}: ${p.message}` })),
      });
    }
    const [template] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, body.template));
    if (!template) throw new ApiError(400, 'template_not_found', `template ${body.template} is not registered`, { issues: [{ field: 'body.template', message: 'unknown template' }] });
    const definition = template.definition as TemplateDefinition;
    const agents = chooseAgents(definition, await personasOf(db, definition), body, deps.configuredAgent ?? 'claude-code');
    await checkAgentsInstalled(agents, deps.findAgent ?? ((agent) => findAgentCli(agent)));
    await checkRunSource(body.repoPath, body.baseBranch);
    const runId = body.runId ?? randomUUID();
    if (body.dryRun) return reply.code(200).send(await dryRun(db, { runId, templateId: body.template, definition, agents, workspaceRoot: deps.workspaceRoot, scenarios: body.scenarios }));
    if (!(await deps.temporalReachable())) throw new ApiError(503, 'temporal_unavailable', 'Temporal is unreachable; nothing was started');

    await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${START_LOCK})`);
      const [existing] = await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, runId));
      if (existing) return; // the same run asked for again: same answer
      const [active] = await tx.select({ n: count() }).from(runs).where(notInArray(runs.state, [...TERMINAL_RUN_STATES]));
      if (active!.n >= deps.maxConcurrentRuns) {
        throw new ApiError(429, 'too_many_runs', `${active!.n} runs are going; the limit is ${deps.maxConcurrentRuns} (DEVFLOW_MAX_CONCURRENT_RUNS)`);
      }
      if (deps.maxRunsPerRepo) await checkRepoSlot(tx, body.repoPath, deps.maxRunsPerRepo);
      await createRun(tx, { id: runId, templateId: body.template, repoPath: body.repoPath, baseBranch: body.baseBranch, requirementsMd: body.requirementsMd });
    });

    const input: RunInput = {
      runId, templateId: body.template, repoPath: body.repoPath, baseBranch: body.baseBranch, requirementsMd: body.requirementsMd,
      backend: body.backend ?? 'tmux', agents, ...(body.playback ? { playback: true } : {}),
      ...(body.scenarios ? { scenarios: body.scenarios } : {}), ...(body.timing ? { timing: body.timing } : {}),
      ...(body.maxPhaseRetries !== undefined ? { maxPhaseRetries: body.maxPhaseRetries } : {}),
    };
    const workflowId = workflowIds.run(runId);
    try {
      await client.workflow.start(runWorkflow, {
        workflowId,
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
    return reply.code(202).send({ runId, workflowId });
  });

  app.get('/v1/runs', { schema: { summary: 'List runs, newest first', querystring: listRunsQuery, response: { 200: runListResponse, ...errors() } } }, async (request) => {
    const { state, limit, cursor } = request.query;
    let after: [string, string] | undefined;
    if (cursor) {
      try {
        after = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [string, string];
      } catch {
        throw new ApiError(400, 'invalid_request', 'query.cursor: not a cursor this API returned');
      }
    }
    const rows = await db
      .select()
      .from(runs)
      .where(and(state ? eq(runs.state, state) : undefined, after ? sql`(${runs.createdAt}, ${runs.id}) < (${after[0]}::timestamptz, ${after[1]}::uuid)` : undefined))
      .orderBy(desc(runs.createdAt), desc(runs.id))
      .limit(limit + 1);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const nextCursor = rows.length > limit && last ? Buffer.from(JSON.stringify([last.createdAt.toISOString(), last.id])).toString('base64url') : null;
    return { runs: page, nextCursor };
  });

  app.get('/v1/runs/:runId', { schema: { summary: 'A run with its phases, sessions, artifacts, approvals and usage', params: runIdParams, response: { 200: runDetailResponse, ...errors() } } }, async (request) => {
    const run = await ensureReport(deps, await runOr404(deps, request.params.runId));
    const [phases, sessions, artifactRows, approvals, usage] = await Promise.all([
      db.select().from(runPhases).where(eq(runPhases.runId, run.id)).orderBy(asc(runPhases.ordinal)),
      db.select().from(tuiSessions).where(eq(tuiSessions.runId, run.id)).orderBy(asc(tuiSessions.createdAt)),
      db.select().from(artifacts).where(eq(artifacts.runId, run.id)).orderBy(asc(artifacts.createdAt)),
      approvalsOf(db, run.id),
      runUsage(db, run.id),
    ]);
    const artifactsOut = artifactRows.map((a) => ({ ...a, validationError: a.validationError as Record<string, unknown> | null }));
    const events = await listEventsOfTypes(db, run.id, STOP_EVENT_TYPES);
    const phaseKey = new Map(phases.map((p) => [p.id, p.phaseKey]));
    const stop = runStop(run, approvals, events, (id) => (id ? (phaseKey.get(id) ?? null) : null));
    const ofPhase = phaseStops(phases, events);
    const ofSession = sessionStops(sessions, events);
    return {
      run,
      stop,
      phases: phases.map((p) => ({ ...p, stop: ofPhase.get(p.id) ?? null })),
      sessions: sessions.map((s) => ({ ...s, stop: ofSession.get(s.id) ?? null })),
      artifacts: artifactsOut,
      approvals,
      usage,
      finalReportPath: run.finalReportPath,
    };
  });

  app.post('/v1/runs/:runId/abort', { schema: { summary: 'Abort a run', params: runIdParams, body: abortBody, response: { 200: abortEndedResponse, 202: abortSentResponse, ...errors(409) } } }, async (request, reply) => {
    const run = await runOr404(deps, request.params.runId);
    if (TERMINAL_RUN_STATES.has(run.state)) return reply.code(200).send({ runId: run.id, state: run.state });
    try {
      await deps.temporal.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () => client.workflow.getHandle(workflowIds.run(run.id)).signal(abortSignal, request.body));
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new ApiError(409, 'run_not_running', `the workflow of run ${run.id} is not running`);
      if (isUnavailable(error)) throw new ApiError(503, 'temporal_unavailable', 'Temporal is unreachable; send the same request again');
      throw error;
    }
    return reply.code(202).send({ runId: run.id, workflowId: workflowIds.run(run.id) });
  });

  app.get('/v1/runs/:runId/report', {
    schema: { summary: 'The final report (text/markdown)', params: runIdParams, response: { 200: { description: 'The report', content: { 'text/markdown': { schema: z.string() } } }, ...errors() } },
  }, async (request, reply) => {
    const run = await ensureReport(deps, await runOr404(deps, request.params.runId));
    if (!run.finalReportPath) throw new ApiError(404, 'report_not_ready', `run ${run.id} has no report yet: it is still ${run.state}`);
    return reply.type('text/markdown; charset=utf-8').send(await readFile(run.finalReportPath, 'utf8'));
  });
}

/** At API start: every terminal run without its report gets one. */
export async function repairMissingReports(db: Database, workspaceRoot: string): Promise<string[]> {
  const ended = await db.select().from(runs).where(inArray(runs.state, [...TERMINAL_RUN_STATES]));
  const repaired: string[] = [];
  for (const run of ended) {
    if (run.finalReportPath && existsSync(run.finalReportPath)) continue;
    await writeRunReport(db, run.id, workspaceRoot);
    repaired.push(run.id);
  }
  return repaired;
}
