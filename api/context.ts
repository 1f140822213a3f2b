// What every route module gets: the app (typed by the zod provider), its dependencies, and the
// small helpers they share.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { eq } from 'drizzle-orm';
import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { writeRunReport } from '../db/report.ts';
import { runs } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { errorResponse } from '../schemas/api.ts';
import { ApiError, type ApiDeps } from './server.ts';

export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, ZodTypeProvider>;

export interface RouteDeps extends ApiDeps {
  client: Client;
  temporalReachable: () => Promise<boolean>;
}

/** The error answers a route can give, each with the one error body. */
export function errors<S extends 400 | 401 | 404 | 409 | 429 | 500 | 503>(...statuses: S[]): Record<S, typeof errorResponse> {
  return Object.fromEntries([400, 401, 404, 500, 503, ...statuses].map((s) => [s, errorResponse])) as Record<S, typeof errorResponse>;
}

export type RunRow = typeof runs.$inferSelect;

export async function runOr404(deps: ApiDeps, runId: string): Promise<RunRow> {
  const [run] = await deps.db.select().from(runs).where(eq(runs.id, runId));
  if (!run) throw new ApiError(404, 'run_not_found', `run ${runId} does not exist`);
  return run;
}

/**
 * A terminal run has its report: written now if a reader gets there before the workflow's last
 * step (or after a crash between the two). Never changes sessions, phases or decisions.
 */
export async function ensureReport(deps: ApiDeps, run: RunRow): Promise<RunRow> {
  if (!TERMINAL_RUN_STATES.has(run.state)) return run;
  if (run.finalReportPath && existsSync(run.finalReportPath)) return run;
  await writeRunReport(deps.db, run.id, deps.workspaceRoot);
  return runOr404(deps, run.id);
}
