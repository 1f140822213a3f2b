// The thin HTTP API (SPEC section 9): it validates, starts workflows, records decisions and
// signals them, and reads Postgres. It never drives tmux and never runs phase logic.
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import { Client, type Connection } from '@temporalio/client';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type pg from 'pg';
import { databaseReachable, type Database } from '../db/client.ts';
import { isDevflowError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { healthResponse, readyResponse } from '../schemas/api.ts';
import type { Problem } from '../schemas/definitions.ts';
import type { RealAgent, ResolvedAgentCli } from '../sessions/agent-cli.ts';
import { registerApprovalRoutes } from './approvals.ts';
import { errors, type RouteDeps } from './context.ts';
import { registerEventRoutes } from './events.ts';
import { registerDefinitionRoutes } from './definitions.ts';
import { registerReadingRoutes } from './reading.ts';
import { registerRunRoutes } from './runs.ts';
import { registerScheduleRoutes } from './schedules.ts';
import { registerUi, isUiAsset } from './ui.ts';

export interface ApiDeps {
  db: Database;
  pool: pg.Pool;
  temporal: Connection;
  namespace: string;
  taskQueue: string;
  maxConcurrentRuns: number;
  /** Active runs allowed on one repository (0 or unset: no limit of its own). */
  maxRunsPerRepo?: number;
  workspaceRoot: string;
  /** The most bytes of an artifact the API reads back (DEVFLOW_MAX_ARTIFACT_BYTES; default 4 MiB). */
  maxArtifactBytes?: number;
  /** When set, every route but health needs `Authorization: Bearer <token>`. */
  token?: string;
  /** The real agent roles use when neither the request nor their persona names one (default claude-code). */
  configuredAgent?: RealAgent;
  /** The user's definitions folder, and the problems that keep templates from running (from the last load). */
  definitions?: { dir: string | undefined; problems: Problem[]; problemsOf: Map<string, Problem[]> };
  /** The Temporal Web UI's base URL, for links from the page to a run's execution. */
  temporalWebUi?: string;
  /** Finds a real agent's program on this host (default: as the worker does). */
  findAgent?: (agent: RealAgent) => Promise<ResolvedAgentCli | undefined>;
  logger?: Logger;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

/** An error the API answers with its own status and code. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** Temporal or Postgres could not be reached (gRPC UNAVAILABLE/DEADLINE, refused connections). */
export function isUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: string; cause?: unknown } | undefined;
  if (!e) return false;
  // gRPC UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED (Temporal's rate limit under load): the same request later may pass.
  if (e.code === 14 || e.code === 4 || e.code === 8 || e.code === 'ECONNREFUSED' || e.code === '57P01') return true;
  if (/failed to connect|ECONNREFUSED|UNAVAILABLE|RESOURCE_EXHAUSTED|deadline|Connection terminated|timeout exceeded when trying to connect/i.test(e.message ?? '')) return true;
  return e.cause !== undefined && e.cause !== error && isUnavailable(e.cause);
}

const FIELD_OF_CODE: Record<string, string> = { repo_path_invalid: 'repoPath', repo_not_git: 'repoPath', base_branch_not_found: 'baseBranch' };

/** Fastify calls the query string `querystring`; devflow's answers call it `query`, as its documents do. */
const FIELD_CONTEXTS: Record<string, string> = { querystring: 'query' };

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Whether the Authorization header carries the token. Digests all have one length, so the
 * comparison takes as long whatever was sent: how much of a guess matched never shows.
 */
function carriesToken(authorization: string | undefined, expected: Buffer): boolean {
  return timingSafeEqual(digest(authorization ?? ''), expected);
}

const URL_REFUSALS: Record<string, string> = { FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is longer than 100 characters', FST_ERR_BAD_URL: 'the URL cannot be decoded' };

/** A URL the router refuses before any route sees it: devflow's error shape, without echoing the URL back. */
function frameworkError(error: FastifyError, _request: unknown, reply: FastifyReply): void {
  void reply.code(error.statusCode ?? 400).send(errorBody('invalid_url', URL_REFUSALS[error.code] ?? error.message));
}

/** The error under the wrappers: a failed query's driver error, not the query and its parameters. */
function rootCause(error: unknown): Error {
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error && cause !== error ? rootCause(cause) : (error as Error);
}

async function temporalReachable(temporal: Connection, namespace: string): Promise<boolean> {
  try {
    await temporal.withDeadline(Date.now() + 2_000, () => temporal.workflowService.describeNamespace({ namespace }));
    return true;
  } catch {
    return false;
  }
}

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.logger as FastifyBaseLogger | undefined, logController: new LogController({ disableRequestLogging: true }), frameworkErrors: frameworkError }).withTypeProvider<ZodTypeProvider>();
  const tokenDigest = deps.token ? digest(`Bearer ${deps.token}`) : undefined;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, {
    openapi: {
      info: { title: 'devflow API', version: '1.0.0', description: 'Start runs, deliver decisions, read what happened.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: deps.token ? [{ bearer: [] }] : [],
    },
    transform: jsonSchemaTransform,
    // Schemas with a `meta({ id })` (the row shapes) become components the routes refer to.
    transformObject: jsonSchemaTransformObject,
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
  app.setErrorHandler((error, _request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const context = FIELD_CONTEXTS[error.validationContext ?? ''] ?? error.validationContext;
      const issues = error.validation.map((v) => ({ field: `${context}.${v.instancePath.replace(/^\//, '').replaceAll('/', '.') || (v.params as { issue?: { path?: string[] } }).issue?.path?.join('.') || ''}`.replace(/\.$/, ''), message: v.message }));
      return reply.code(400).send(errorBody('invalid_request', issues.map((i) => `${i.field}: ${i.message}`).join('; '), { issues }));
    }
    if (error instanceof ApiError) return reply.code(error.statusCode).send(errorBody(error.code, error.message, error.details));
    if (isDevflowError(error) && FIELD_OF_CODE[error.code]) {
      const field = FIELD_OF_CODE[error.code]!;
      return reply.code(400).send(errorBody(error.code, error.message, { issues: [{ field: `body.${field}`, message: error.message }] }));
    }
    if (isUnavailable(error)) return reply.code(503).send(errorBody('service_unavailable', `a service devflow needs is unreachable: ${rootCause(error).message}`));
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      // What Fastify refuses before validation is the body as a whole: not JSON, too large, a content type no route takes.
      const ofBody = (error as { code?: string }).code?.startsWith('FST_ERR_CTP_') || error instanceof SyntaxError;
      return reply.code(status).send(errorBody('bad_request', (error as Error).message, ofBody ? { issues: [{ field: 'body', message: (error as Error).message }] } : undefined));
    }
    app.log.error(error);
    return reply.code(500).send(errorBody('internal', 'internal error; see the API log'));
  });

  app.addHook('onRequest', async (request, reply) => {
    // The page and its assets hold no data; the page asks for the token and sends it with every call.
    if (!tokenDigest || request.url === '/healthz' || request.url === '/readyz' || isUiAsset(request.url)) return;
    if (!carriesToken(request.headers.authorization, tokenDigest)) {
      return reply.code(401).send(errorBody('unauthorized', 'a bearer token is required (Authorization: Bearer <DEVFLOW_API_TOKEN>)'));
    }
  });

  app.get('/healthz', { schema: { summary: 'Liveness', response: { 200: healthResponse } } }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', { schema: { summary: 'Readiness: Postgres and Temporal reachable', response: { 200: readyResponse, ...errors() } } }, async (_request, reply) => {
    const [postgres, temporal] = await Promise.all([databaseReachable(deps.pool), temporalReachable(deps.temporal, deps.namespace)]);
    const checks = { postgres: postgres ? 'ok' : 'unreachable', temporal: temporal ? 'ok' : 'unreachable' };
    if (postgres && temporal) return { status: 'ready' as const, checks };
    const down = Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k]) => k);
    return reply.code(503).send(errorBody('not_ready', `${down.join(' and ')} unreachable`, { checks }));
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const routeDeps: RouteDeps = { ...deps, client: new Client({ connection: deps.temporal, namespace: deps.namespace }), temporalReachable: () => temporalReachable(deps.temporal, deps.namespace) };
  registerRunRoutes(app, routeDeps);
  registerEventRoutes(app, routeDeps);
  registerApprovalRoutes(app, routeDeps);
  registerReadingRoutes(app, routeDeps);
  registerDefinitionRoutes(app, routeDeps);
  registerScheduleRoutes(app, routeDeps);
  registerUi(app, { temporalWebUi: deps.temporalWebUi, namespace: deps.namespace, tokenRequired: Boolean(deps.token) });
  return app;
}
