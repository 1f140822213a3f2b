// The run routes of the API: start, list, read, events (JSON or a live SSE stream),
// approvals and decisions, abort, report.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { and, asc, count, desc, eq, inArray, notInArray, sql } from 'drizzle-orm';
import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { writeRunReport } from '../db/report.ts';
import { checkRunSource } from '../lib/runs.ts';
import { recordDecision } from '../db/approvals.ts';
import { listEvents } from '../db/events.ts';
import { createRun } from '../db/runs.ts';
import { runUsage } from '../db/usage.ts';
import { approvalDecisions, approvalRequests, artifacts, runPhases, runs, tuiSessions, workflowTemplates } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { abortBody, anyObject, approvalParams, decisionBody, errorResponse, eventsQuery, listRunsQuery, runIdParams, startRunBody, startRunResponse } from '../schemas/api.ts';
import { abortSignal, decisionSignal, runWorkflowId, type RunInput } from '../workflows/messages.ts';
import { REPO, RUN_ID, RUN_STATE, TEMPLATE } from '../workflows/search-attributes.ts';
import type { TemplateDefinition } from '../schemas/registry-files.ts';
import { findAgentCli } from '../sessions/agent-cli.ts';
import { checkAgentsInstalled, chooseAgents, personasOf } from './run-agents.ts';
import { ApiError, isUnavailable, type ApiDeps } from './server.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';

type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, ZodTypeProvider>;
interface RunRouteDeps extends ApiDeps {
  client: Client;
  temporalReachable: () => Promise<boolean>;
}

// Any constant: serialises run creation so the concurrency limit holds under parallel requests.
const START_LOCK = 0x64667374; // "dfst"
/** How long a signal may take before the caller is told to retry (503). */
const SIGNAL_DEADLINE_MS = 5_000;
const errors = { 400: errorResponse, 404: errorResponse, 409: errorResponse, 429: errorResponse, 503: errorResponse };

export function registerRunRoutes(app: App, deps: RunRouteDeps): void {
  const { db, client } = deps;

  async function runOr404(runId: string) {
    const [run] = await db.select().from(runs).where(eq(runs.id, runId));
    if (!run) throw new ApiError(404, 'run_not_found', `run ${runId} does not exist`);
    return run;
  }

  /** Writes a terminal run's missing report (never touching sessions, phases or decisions). */
  async function repairReport(run: typeof runs.$inferSelect): Promise<void> {
    if (!TERMINAL_RUN_STATES.has(run.state)) return;
    if (run.finalReportPath && existsSync(run.finalReportPath)) return;
    await writeRunReport(db, run.id, deps.workspaceRoot);
  }

  app.post('/v1/runs', { schema: { summary: 'Start a run', body: startRunBody, response: { 202: startRunResponse, ...errors } } }, async (request, reply) => {
    const body = request.body;
    const [template] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, body.template));
    if (!template) throw new ApiError(400, 'template_not_found', `template ${body.template} is not registered`, { issues: [{ field: 'body.template', message: 'unknown template' }] });
    const definition = template.definition as TemplateDefinition;
    const agents = chooseAgents(definition, await personasOf(db, definition), body, deps.configuredAgent ?? 'claude-code');
    await checkAgentsInstalled(agents, deps.findAgent ?? ((agent) => findAgentCli(agent)));
    await checkRunSource(body.repoPath, body.baseBranch);
    if (!(await deps.temporalReachable())) throw new ApiError(503, 'temporal_unavailable', 'Temporal is unreachable; nothing was started');

    const runId = body.runId ?? randomUUID();
    await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${START_LOCK})`);
      const [existing] = await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, runId));
      if (existing) return; // the same run asked for again: same answer
      const [active] = await tx.select({ n: count() }).from(runs).where(notInArray(runs.state, [...TERMINAL_RUN_STATES]));
      if (active!.n >= deps.maxConcurrentRuns) {
        throw new ApiError(429, 'too_many_runs', `${active!.n} runs are going; the limit is ${deps.maxConcurrentRuns} (DEVFLOW_MAX_CONCURRENT_RUNS)`);
      }
      await createRun(tx, { id: runId, templateId: body.template, repoPath: body.repoPath, baseBranch: body.baseBranch, requirementsMd: body.requirementsMd });
    });

    const input: RunInput = {
      runId, templateId: body.template, repoPath: body.repoPath, baseBranch: body.baseBranch, requirementsMd: body.requirementsMd,
      backend: body.backend ?? 'tmux', agents, ...(body.playback ? { playback: true } : {}),
      ...(body.scenarios ? { scenarios: body.scenarios } : {}), ...(body.timing ? { timing: body.timing } : {}),
    };
    const workflowId = runWorkflowId(runId);
    try {
      await client.workflow.start('runWorkflow', {
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

  app.get('/v1/runs', { schema: { summary: 'List runs, newest first', querystring: listRunsQuery, response: { 200: anyObject, ...errors } } }, async (request) => {
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

  app.get('/v1/runs/:runId', { schema: { summary: 'A run with its phases, sessions, artifacts and approvals', params: runIdParams, response: { 200: anyObject, ...errors } } }, async (request) => {
    const run = await runOr404(request.params.runId);
    const [phases, sessions, artifactRows, approvals, usage] = await Promise.all([
      db.select().from(runPhases).where(eq(runPhases.runId, run.id)).orderBy(asc(runPhases.ordinal)),
      db.select().from(tuiSessions).where(eq(tuiSessions.runId, run.id)).orderBy(asc(tuiSessions.createdAt)),
      db.select().from(artifacts).where(eq(artifacts.runId, run.id)).orderBy(asc(artifacts.createdAt)),
      approvalsOf(run.id),
      runUsage(db, run.id),
    ]);
    return { run, phases, sessions, artifacts: artifactRows, approvals, usage, finalReportPath: run.finalReportPath };
  });

  async function approvalsOf(runId: string) {
    const requests = await db.select().from(approvalRequests).where(eq(approvalRequests.runId, runId)).orderBy(asc(approvalRequests.createdAt));
    const decisions = requests.length
      ? await db.select().from(approvalDecisions).where(inArray(approvalDecisions.approvalRequestId, requests.map((r) => r.id))).orderBy(asc(approvalDecisions.createdAt))
      : [];
    return requests.map((r) => ({ ...r, decisions: decisions.filter((d) => d.approvalRequestId === r.id) }));
  }

  app.get('/v1/runs/:runId/events', { schema: { summary: 'Events in seq order; text/event-stream streams them live', params: runIdParams, querystring: eventsQuery, response: { 200: anyObject, ...errors } } }, async (request, reply) => {
    const run = await runOr404(request.params.runId);
    if (!request.headers.accept?.includes('text/event-stream')) return { events: await listEvents(db, run.id, request.query.after) };

    // Live: everything after Last-Event-ID (or ?after=), then new events as they are written,
    // until the run has ended and its last event was sent.
    let after = Number(request.headers['last-event-id'] ?? request.query.after) || 0;
    let closed = false;
    request.raw.on('close', () => (closed = true));
    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let idle = 0;
    while (!closed) {
      const events = await listEvents(db, run.id, after);
      for (const event of events) out.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      if (events.length) after = events.at(-1)!.seq;
      const [current] = await db.select({ state: runs.state, report: runs.finalReportPath }).from(runs).where(eq(runs.id, run.id));
      if (events.length === 0 && TERMINAL_RUN_STATES.has(current!.state) && current!.report) break;
      if (events.length === 0 && ++idle % 60 === 0) out.write(': keep-alive\n\n');
      await sleep(250);
    }
    out.end();
  });

  app.get('/v1/runs/:runId/approvals', { schema: { summary: 'Approval requests with their decisions', params: runIdParams, response: { 200: anyObject, ...errors } } }, async (request) => {
    const run = await runOr404(request.params.runId);
    return { approvals: await approvalsOf(run.id) };
  });

  app.post('/v1/runs/:runId/approvals/:approvalId', { schema: { summary: 'Decide an approval request', params: approvalParams, body: decisionBody, response: { 200: anyObject, 202: anyObject, ...errors } } }, async (request, reply) => {
    const { runId, approvalId } = request.params;
    const run = await runOr404(runId);
    const [approval] = await db.select().from(approvalRequests).where(and(eq(approvalRequests.id, approvalId), eq(approvalRequests.runId, runId)));
    if (!approval) throw new ApiError(404, 'approval_not_found', `run ${runId} has no approval request ${approvalId}`);
    const decision = { approvalRequestId: approvalId, ...request.body };
    const recorded = await recordDecision(db, decision);
    if (recorded.action !== decision.action) {
      throw new ApiError(409, 'decision_conflict', `approval request ${approvalId} was already decided: ${recorded.action}`, { decided: recorded.action });
    }
    const answer = { approvalRequestId: approvalId, gateKey: approval.gateKey, action: recorded.action, decisionId: recorded.decisionId };
    const [current] = await db.select().from(runs).where(eq(runs.id, run.id));
    if (TERMINAL_RUN_STATES.has(current!.state)) {
      await repairReport(current!); // a replayed decision on an ended run
      return reply.code(200).send({ ...answer, runState: current!.state });
    }
    try {
      await deps.temporal.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () => client.workflow.getHandle(runWorkflowId(runId)).signal(decisionSignal, decision));
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new ApiError(409, 'run_not_running', `the workflow of run ${runId} is not running`);
      if (isUnavailable(error)) throw new ApiError(503, 'temporal_unavailable', 'the decision is recorded but could not be delivered; send the same request again');
      throw error;
    }
    return reply.code(202).send(answer);
  });

  app.post('/v1/runs/:runId/abort', { schema: { summary: 'Abort a run', params: runIdParams, body: abortBody, response: { 200: anyObject, 202: anyObject, ...errors } } }, async (request, reply) => {
    const run = await runOr404(request.params.runId);
    if (TERMINAL_RUN_STATES.has(run.state)) return reply.code(200).send({ runId: run.id, state: run.state });
    try {
      await deps.temporal.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () => client.workflow.getHandle(runWorkflowId(run.id)).signal(abortSignal, request.body));
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new ApiError(409, 'run_not_running', `the workflow of run ${run.id} is not running`);
      if (isUnavailable(error)) throw new ApiError(503, 'temporal_unavailable', 'Temporal is unreachable; send the same request again');
      throw error;
    }
    return reply.code(202).send({ runId: run.id, workflowId: runWorkflowId(run.id) });
  });

  app.get('/v1/runs/:runId/report', { schema: { summary: 'The final report (text/markdown)', params: runIdParams, response: { 200: z.string(), 404: errorResponse, 400: errorResponse } } }, async (request, reply) => {
    const run = await runOr404(request.params.runId);
    if (!run.finalReportPath || !existsSync(run.finalReportPath)) throw new ApiError(404, 'report_not_ready', `run ${run.id} has no report yet (state ${run.state})`);
    return reply.type('text/markdown; charset=utf-8').send(await readFile(run.finalReportPath, 'utf8'));
  });
}

/** At API start: every terminal run without its report gets one. */
export async function repairMissingReports(db: ApiDeps['db'], workspaceRoot: string): Promise<string[]> {
  const ended = await db.select().from(runs).where(inArray(runs.state, [...TERMINAL_RUN_STATES]));
  const repaired: string[] = [];
  for (const run of ended) {
    if (run.finalReportPath && existsSync(run.finalReportPath)) continue;
    await writeRunReport(db, run.id, workspaceRoot);
    repaired.push(run.id);
  }
  return repaired;
}
