// Schedule routes (SPEC section 12): recurring runs on Temporal Schedules. Postgres holds each
// schedule (what it asks for) and each fire (the run it started, or why none); Temporal holds
// when it fires, whether it is paused, and fires it.
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleDescription } from '@temporalio/client';
import { and, desc, eq, isNull } from 'drizzle-orm';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { scheduleFires, schedules } from '../db/schema.ts';
import { workflowIds } from '../lib/keys.ts';
import {
  createScheduleBody,
  scheduleDeletedResponse,
  scheduleListResponse,
  scheduleNoteBody,
  scheduleParams,
  scheduleSchema,
  scheduleTriggeredResponse,
  type CreateScheduleBody,
} from '../schemas/api.ts';
import { scheduledRunWorkflow } from '../workflows/scheduled-run.ts';
import { errors, type App, type RouteDeps } from './context.ts';
import { ApiError, isUnavailable } from './server.ts';
import { checkRunRequest } from './start-run.ts';

type ScheduleRow = typeof schedules.$inferSelect;

/** How many of a schedule's latest fires its description carries. */
const FIRES_SHOWN = 20;
/** How long a route waits for Temporal's answer. */
const TEMPORAL_DEADLINE_MS = 5_000;
/**
 * How long one try of a call that may be made again waits. Now and then the dev server leaves one
 * call unanswered for seconds (here, one describe of ~17,000 in a row waited out 5 s) while the
 * same call a moment later is answered at once.
 */
const TRY_DEADLINE_MS = 2_000;
/** How long a route waits before asking a busy or unreachable Temporal again. */
const RETRY_MS = 250;

/**
 * Whether the same call may pass a moment later: Temporal unreachable or busy, or a schedule's
 * workflow not ready for it (FAILED_PRECONDITION: Temporal's "workflow not ready", a query that
 * meets its workflow task failing or not yet scheduled).
 */
const isTransient = (error: unknown): boolean => isUnavailable(error) || grpcCode(error) === 9;

function grpcCode(error: unknown): number | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause === e ? undefined : (e.cause as typeof e)) {
    if (typeof e.code === 'number') return e.code;
  }
  return undefined;
}

export function registerScheduleRoutes(app: App, deps: RouteDeps): void {
  const { db, client } = deps;
  const handleOf = (id: string) => client.schedule.getHandle(workflowIds.schedule(id));

  async function scheduleOr404(id: string): Promise<ScheduleRow> {
    const [row] = await db.select().from(schedules).where(and(eq(schedules.id, id), isNull(schedules.deletedAt)));
    if (!row) throw new ApiError(404, 'schedule_not_found', `schedule ${id} does not exist`);
    return row;
  }

  /**
   * What Temporal says of a schedule, asked again while it answers busy or not at all, until the
   * deadline: its description, or that it has none (`missing`: deleted there) or could not say.
   */
  async function askTemporal(id: string): Promise<{ temporal: 'found'; description: ScheduleDescription } | { temporal: 'missing' | 'unreachable' }> {
    try {
      return { temporal: 'found', description: await untilAnswered(() => handleOf(id).describe()) };
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) return { temporal: 'missing' };
      if (isTransient(error)) return { temporal: 'unreachable' };
      throw error;
    }
  }

  /**
   * A call that may be made twice (a describe, a pause, a delete), asked again while Temporal
   * answers that it may pass later, each try within its own deadline, until the route's.
   */
  async function untilAnswered<T>(call: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + TEMPORAL_DEADLINE_MS;
    for (;;) {
      try {
        return await deps.temporal.withDeadline(Math.min(deadline, Date.now() + TRY_DEADLINE_MS), call);
      } catch (error) {
        if (!isTransient(error) || Date.now() + RETRY_MS >= deadline) throw error;
        await sleep(RETRY_MS);
      }
    }
  }

  /** The row, what Temporal says of it (paused, next fires) and its latest fires. */
  async function describe(row: ScheduleRow) {
    const [asked, fires] = await Promise.all([
      askTemporal(row.id),
      db.select().from(scheduleFires).where(eq(scheduleFires.scheduleId, row.id)).orderBy(desc(scheduleFires.slot)).limit(FIRES_SHOWN),
    ]);
    const temporal = asked.temporal === 'found' ? asked.description : undefined;
    return {
      id: row.id,
      cron: row.spec.cron ?? null,
      every: row.spec.every ?? null,
      overlap: row.overlap as 'skip' | 'allow',
      catchupWindow: row.spec.catchupWindow ?? '5m',
      request: row.request,
      createdAt: row.createdAt,
      temporal: asked.temporal,
      paused: temporal ? temporal.state.paused : null,
      note: temporal?.state.note || null,
      nextFires: temporal?.info.nextActionTimes ?? [],
      fires,
    };
  }

  /**
   * Asks Temporal, answering 503 when it cannot be reached and 404 when it lost the schedule. A call
   * that may be made twice is asked again while Temporal is busy; a fire (`once`) is asked once.
   */
  async function inTemporal<T>(id: string, call: () => Promise<T>, tries: 'again' | 'once' = 'again'): Promise<T> {
    try {
      return await (tries === 'again' ? untilAnswered(call) : deps.temporal.withDeadline(Date.now() + TEMPORAL_DEADLINE_MS, call));
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) throw new ApiError(404, 'schedule_not_found', `schedule ${id} is not in Temporal (deleted there?); delete it here and create it again`);
      if (isTransient(error)) throw new ApiError(503, 'temporal_unavailable', 'Temporal is unreachable or busy; send the same request again');
      throw error;
    }
  }

  app.post('/v1/schedules', {
    schema: { summary: 'Create a schedule: a run request repeated on a cron or interval spec', body: createScheduleBody, response: { 200: scheduleSchema, 201: scheduleSchema, ...errors(409) } },
  }, async (request, reply) => {
    const body = request.body;
    await checkRunRequest(deps, body.request);
    if (!(await deps.temporalReachable())) throw new ApiError(503, 'temporal_unavailable', 'Temporal is unreachable; nothing was created');
    const spec = { ...(body.cron ? { cron: body.cron } : { every: body.every! }), catchupWindow: body.catchupWindow };
    const [existing] = await db.select().from(schedules).where(and(eq(schedules.id, body.id), isNull(schedules.deletedAt)));
    if (existing) {
      // The same schedule asked for again: the same answer. A different one under its id: refused.
      if (isDeepStrictEqual(existing.spec, spec) && isDeepStrictEqual(existing.request, body.request) && existing.overlap === body.overlap) return reply.code(200).send(await describe(existing));
      throw new ApiError(409, 'schedule_exists', `schedule ${body.id} exists with another spec or request; delete it first or choose another id`);
    }
    const row = await db.transaction(async (tx) => {
      const values = { id: body.id, spec, request: body.request, overlap: body.overlap, deletedAt: null, createdAt: new Date(), updatedAt: new Date() };
      const [saved] = await tx.insert(schedules).values(values).onConflictDoUpdate({ target: schedules.id, set: values }).returning();
      // Inside the transaction: if Temporal refuses (a bad cron), the row goes too.
      await createInTemporal(deps, body);
      return saved!;
    });
    return reply.code(201).send(await describe(row));
  });

  app.get('/v1/schedules', { schema: { summary: 'List schedules with their next and latest fires', response: { 200: scheduleListResponse, ...errors() } } }, async () => {
    const rows = await db.select().from(schedules).where(isNull(schedules.deletedAt)).orderBy(schedules.id);
    return { schedules: await Promise.all(rows.map(describe)) };
  });

  app.get('/v1/schedules/:scheduleId', { schema: { summary: 'A schedule with its next and latest fires', params: scheduleParams, response: { 200: scheduleSchema, ...errors() } } }, async (request) =>
    describe(await scheduleOr404(request.params.scheduleId)),
  );

  app.delete('/v1/schedules/:scheduleId', { schema: { summary: 'Delete a schedule (its runs and fires stay)', params: scheduleParams, response: { 200: scheduleDeletedResponse, ...errors() } } }, async (request) => {
    const row = await scheduleOr404(request.params.scheduleId);
    try {
      await inTemporal(row.id, () => handleOf(row.id).delete());
    } catch (error) {
      if (!(error instanceof ApiError && error.statusCode === 404)) throw error;
    }
    await db.update(schedules).set({ deletedAt: new Date(), updatedAt: new Date() }).where(eq(schedules.id, row.id));
    return { id: row.id, deleted: true as const };
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post(`/v1/schedules/:scheduleId/${action}`, {
      schema: { summary: action === 'pause' ? 'Pause a schedule: no fires until resumed' : 'Resume a paused schedule', params: scheduleParams, body: scheduleNoteBody, response: { 200: scheduleSchema, ...errors() } },
      // The body is optional, but Fastify validates a request without one as null, which its default ({}) does not cover.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    }, async (request) => {
      const row = await scheduleOr404(request.params.scheduleId);
      // Not `??`: Temporal reads an empty note as no pause (or unpause) asked for at all.
      const note = request.body.note || `${action === 'pause' ? 'paused' : 'resumed'} through the devflow API`;
      await inTemporal(row.id, () => (action === 'pause' ? handleOf(row.id).pause(note) : handleOf(row.id).unpause(note)));
      return describe(row);
    });
  }

  app.post('/v1/schedules/:scheduleId/trigger', {
    schema: { summary: 'Fire a schedule now (its overlap rule still applies)', params: scheduleParams, response: { 202: scheduleTriggeredResponse, ...errors() } },
  }, async (request, reply) => {
    const row = await scheduleOr404(request.params.scheduleId);
    // Temporal's own overlap rule lets every fire through: devflow's (skip or allow) is applied, and recorded, by the fire.
    await inTemporal(row.id, () => handleOf(row.id).trigger(ScheduleOverlapPolicy.ALLOW_ALL), 'once');
    return reply.code(202).send({ id: row.id, triggered: true as const });
  });
}

/** The Temporal Schedule: each fire starts a short workflow that starts (or skips) the run. */
async function createInTemporal(deps: RouteDeps, body: CreateScheduleBody): Promise<void> {
  const options = {
    scheduleId: workflowIds.schedule(body.id),
    spec: body.cron ? { cronExpressions: [body.cron] } : { intervals: [{ every: body.every! }] },
    action: { type: 'startWorkflow' as const, workflowType: scheduledRunWorkflow, args: [{ scheduleId: body.id }] as [{ scheduleId: string }], taskQueue: deps.taskQueue, workflowId: workflowIds.scheduledRun(body.id) },
    // Fires are short and devflow applies its own overlap rule, so Temporal lets each one through.
    policies: { overlap: ScheduleOverlapPolicy.ALLOW_ALL, catchupWindow: body.catchupWindow },
    state: { paused: body.paused, ...(body.note ? { note: body.note } : {}) },
  };
  try {
    await deps.client.schedule.create(options);
  } catch (error) {
    if (error instanceof ScheduleAlreadyRunning) {
      // Left in Temporal by a create whose row did not commit (or a deleted one coming back): replace it.
      await deps.client.schedule.getHandle(options.scheduleId).delete();
      await deps.client.schedule.create(options);
      return;
    }
    // The SDK refuses a malformed spec itself (TypeError); the server answers INVALID_ARGUMENT (3).
    if (error instanceof TypeError || (error as { code?: number }).code === 3) {
      throw new ApiError(400, 'invalid_request', `body.${body.cron ? 'cron' : 'every'}: Temporal refused the spec: ${(error as Error).message}`, {
        issues: [{ field: `body.${body.cron ? 'cron' : 'every'}`, message: (error as Error).message }],
      });
    }
    throw error;
  }
}
