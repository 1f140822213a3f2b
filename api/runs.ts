// Run routes: start, list, read, abort, and the final report.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { WorkflowNotFoundError } from '@temporalio/client';
import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Database } from '../db/client.ts';
import { writeRunReport } from '../db/report.ts';
import { artifacts, runPhases, runs, tuiSessions } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { listEventsOfTypes } from '../db/events.ts';
import { phaseStops, runStop, sessionFlags, sessionStops, STOP_EVENT_TYPES } from '../db/stops.ts';
import { runUsage } from '../db/usage.ts';
import { workflowIds } from '../lib/keys.ts';
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
import { abortSignal } from '../workflows/messages.ts';
import { approvalsOf } from './approvals.ts';
import { dryRun } from './dry-run.ts';
import { checkRunRequest, startRun } from './start-run.ts';
import { ensureReport, errors, runOr404, type App, type RouteDeps } from './context.ts';
import { ApiError, isUnavailable } from './server.ts';

/** How long a signal may take before the caller is told to retry (503). */
export const SIGNAL_DEADLINE_MS = 5_000;

/** What a page's cursor holds: the last run's creation time (one Postgres can read) and id. */
const cursorShape = z.tuple([z.iso.datetime().refine((at) => new Date(at).getUTCFullYear() >= 1), z.uuid()]);

function decodeCursor(cursor: string): [string, string] {
  try {
    return cursorShape.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString()));
  } catch {
    const message = 'not a cursor this API returned';
    throw new ApiError(400, 'invalid_request', `query.cursor: ${message}`, { issues: [{ field: 'query.cursor', message }] });
  }
}

export function registerRunRoutes(app: App, deps: RouteDeps): void {
  const { db, client } = deps;

  app.post('/v1/runs', { schema: { summary: 'Start a run (or, with dryRun, show what would run)', body: startRunBody, response: { 200: dryRunResponse, 202: startRunResponse, ...errors(429) } } }, async (request, reply) => {
    const body = request.body;
    const { definition, agents } = await checkRunRequest(deps, body);
    const runId = body.runId ?? randomUUID();
    if (body.dryRun) return reply.code(200).send(await dryRun(db, { runId, templateId: body.template, definition, agents, workspaceRoot: deps.workspaceRoot, scenarios: body.scenarios }));
    if (!(await deps.temporalReachable())) throw new ApiError(503, 'temporal_unavailable', 'Temporal is unreachable; nothing was started');
    await startRun(deps, body, runId, { agents });
    return reply.code(202).send({ runId, workflowId: workflowIds.run(runId) });
  });

  app.get('/v1/runs', { schema: { summary: 'List runs, newest first', querystring: listRunsQuery, response: { 200: runListResponse, ...errors() } } }, async (request) => {
    const { state, limit, cursor } = request.query;
    const after = cursor ? decodeCursor(cursor) : undefined;
    const rows = await db
      .select()
      .from(runs)
      // The cursor's time has milliseconds, Postgres microseconds: the run's own time, read back, keeps a page from skipping runs of the same millisecond.
      .where(and(state ? eq(runs.state, state) : undefined, after ? sql`(${runs.createdAt}, ${runs.id}) < (coalesce((select r.created_at from runs r where r.id = ${after[1]}::uuid), ${after[0]}::timestamptz), ${after[1]}::uuid)` : undefined))
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
    const flagged = sessionFlags(sessions, events);
    return {
      run,
      stop,
      phases: phases.map((p) => ({ ...p, stop: ofPhase.get(p.id) ?? null })),
      sessions: sessions.map((s) => ({ ...s, stop: ofSession.get(s.id) ?? null, flag: flagged.get(s.id) ?? null })),
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
