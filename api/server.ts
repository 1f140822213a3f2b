// The thin HTTP API. At this stage: liveness and readiness (Postgres and Temporal reachable).
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Connection } from '@temporalio/client';
import type pg from 'pg';
import { databaseReachable } from '../db/client.ts';
import type { Logger } from '../lib/logger.ts';

export interface ApiDeps {
  pool: pg.Pool;
  temporal: Connection;
  namespace: string;
  logger?: Logger;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

async function temporalReachable(temporal: Connection, namespace: string): Promise<boolean> {
  try {
    await temporal.withDeadline(Date.now() + 2_000, () => temporal.workflowService.describeNamespace({ namespace }));
    return true;
  } catch {
    return false;
  }
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const app = Fastify({ loggerInstance: deps.logger as FastifyBaseLogger | undefined, disableRequestLogging: true });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url}`));
  });
  app.setErrorHandler((error: { statusCode?: number; code?: string; message: string }, _request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) app.log.error(error);
    void reply.code(status).send(errorBody(status === 500 ? 'internal' : (error.code ?? 'bad_request').toLowerCase(), error.message));
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const [postgres, temporal] = await Promise.all([databaseReachable(deps.pool), temporalReachable(deps.temporal, deps.namespace)]);
    const checks = { postgres: postgres ? 'ok' : 'unreachable', temporal: temporal ? 'ok' : 'unreachable' };
    if (postgres && temporal) return { status: 'ready', checks };
    const down = Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k]) => k);
    return reply.code(503).send(errorBody('not_ready', `${down.join(' and ')} unreachable`, { checks }));
  });

  return app;
}
