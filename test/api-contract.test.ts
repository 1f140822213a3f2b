// The API's contract: GET /openapi.json declares a body for every route and status, and every
// real answer (a run started, read, decided, aborted, refused) matches what it declares.
import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApi } from '../api/server.ts';
import { waitFor } from '../lib/wait.ts';
import { makeRepo, useRunHarness } from './helpers/run-harness.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const h = useRunHarness('fake');
let api: FastifyInstance;
let temporal: Connection;
let doc: { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>> };
const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));

/** OpenAPI 3.0's `nullable` is not JSON Schema: spell it as `anyOf [..., null]` for the validator. */
function jsonSchemaOf(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(jsonSchemaOf);
  if (!node || typeof node !== 'object') return node;
  const { nullable, ...rest } = node as Record<string, unknown>;
  const converted = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, jsonSchemaOf(v)]));
  return nullable ? { anyOf: [converted, { type: 'null' }] } : converted;
}

const validators = new Map<string, ValidateFunction>();
const checked = new Set<string>();

/** Checks an answer against the document: its route and status must be declared, its body must match. */
function expectDeclared(method: string, route: string, response: LightMyRequestResponse): void {
  const operation = doc.paths[route]?.[method.toLowerCase()];
  expect(operation, `${method} ${route} is in the document`).toBeDefined();
  const declared = operation!.responses[String(response.statusCode)];
  expect(declared, `${method} ${route} declares ${response.statusCode} (${response.body.slice(0, 200)})`).toBeDefined();
  const pointer = `${method} ${route} ${response.statusCode}`;
  checked.add(pointer);
  const media = Object.keys(declared!.content ?? {})[0];
  expect(String(response.headers['content-type']), pointer).toContain(media);
  if (media !== 'application/json') return; // the report is markdown
  if (!validators.has(pointer)) {
    const escaped = route.replaceAll('~', '~0').replaceAll('/', '~1');
    validators.set(pointer, ajv.compile({ $ref: `openapi#/paths/${escaped}/${method.toLowerCase()}/responses/${response.statusCode}/content/application~1json/schema` }));
  }
  const validate = validators.get(pointer)!;
  const body = JSON.parse(response.body);
  expect(validate(body), `${pointer}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

beforeAll(async () => {
  // A worker that can start runs for a schedule's fire, as the real one can.
  await h.stopWorkers(() => true);
  await h.startWorker({ starts: { client: h.client, taskQueue: h.taskQueue, maxConcurrentRuns: 1_000 } });
  temporal = await Connection.connect({ address: inject('temporalAddress') });
  api = await buildApi({ db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, workspaceRoot: h.workspaceRoot });
  doc = JSON.parse((await api.inject({ url: '/openapi.json' })).body);
  ajv.addSchema(jsonSchemaOf(doc) as object, 'openapi');
});
afterAll(async () => {
  await api?.close();
  await temporal?.close();
});

async function call(method: 'GET' | 'POST' | 'DELETE', route: string, url: string, payload?: unknown) {
  const response = await api.inject({ method, url, ...(payload ? { payload: payload as object } : {}) });
  expectDeclared(method, route, response);
  return response;
}

describe('the API contract', () => {
  it('declares a response body for every route and status it has', () => {
    for (const [route, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const statuses = Object.keys(operation.responses);
        if (route.startsWith('/v1/')) expect(statuses, `${method} ${route}`).toEqual(expect.arrayContaining(['400', '404', '500', '503']));
        for (const status of statuses) expect(operation.responses[status]!.content, `${method} ${route} ${status} has a body`).toBeDefined();
      }
    }
  });

  it('answers every route as the document says, success and refusal alike', async () => {
    const start = { requirementsMd: '# Contract\n', repoPath: makeRepo(h.root), baseBranch: 'main', backend: 'fake', timing: h.timing };
    expect((await call('GET', '/healthz', '/healthz')).statusCode).toBe(200);
    expect((await call('GET', '/readyz', '/readyz')).statusCode).toBe(200);
    expect((await call('GET', '/v1/templates', '/v1/templates')).statusCode).toBe(200);
    expect((await call('POST', '/v1/definitions/reload', '/v1/definitions/reload', {})).statusCode).toBe(200);
    expect((await call('POST', '/v1/runs', '/v1/runs', { ...start, dryRun: true })).statusCode).toBe(200);

    const started = await call('POST', '/v1/runs', '/v1/runs', start);
    expect(started.statusCode).toBe(202);
    const { runId } = JSON.parse(started.body) as { runId: string };
    expect((await call('POST', '/v1/runs', '/v1/runs', { ...start, template: 'none@1' })).statusCode).toBe(400);

    let approvalId = '';
    await waitFor('the spec gate', 30_000, async () => {
      const body = JSON.parse((await api.inject({ url: `/v1/runs/${runId}/approvals` })).body) as { approvals: { id: string; state: string }[] };
      approvalId = body.approvals.find((a) => a.state === 'pending')?.id ?? '';
      return approvalId !== '';
    }, 50);
    const detail = JSON.parse((await call('GET', '/v1/runs/{runId}', `/v1/runs/${runId}`)).body) as { artifacts: { id: string }[]; sessions: { id: string }[] };
    expect((await call('GET', '/v1/runs/{runId}', `/v1/runs/${randomUUID()}`)).statusCode).toBe(404);
    expect((await call('GET', '/v1/approvals', '/v1/approvals')).statusCode).toBe(200);
    expect((await call('GET', '/v1/runs/{runId}/artifacts/{artifactId}', `/v1/runs/${runId}/artifacts/${detail.artifacts[0]!.id}`)).statusCode).toBe(200);
    expect((await call('GET', '/v1/runs/{runId}/artifacts/{artifactId}', `/v1/runs/${runId}/artifacts/${randomUUID()}`)).statusCode).toBe(404);
    expect((await call('GET', '/v1/runs/{runId}/sessions/{sessionId}/transcript', `/v1/runs/${runId}/sessions/${detail.sessions[0]!.id}/transcript`)).statusCode).toBe(200);
    expect((await call('GET', '/v1/runs', '/v1/runs?limit=2')).statusCode).toBe(200);
    expect((await call('GET', '/v1/runs', '/v1/runs?cursor=zzz')).statusCode).toBe(400);
    expect((await call('GET', '/v1/runs/{runId}/events', `/v1/runs/${runId}/events`)).statusCode).toBe(200);
    expect((await call('GET', '/v1/runs/{runId}/approvals', `/v1/runs/${runId}/approvals`)).statusCode).toBe(200);
    expect((await call('GET', '/v1/runs/{runId}/report', `/v1/runs/${runId}/report`)).statusCode).toBe(404);

    const route = '/v1/runs/{runId}/approvals/{approvalId}';
    const url = `/v1/runs/${runId}/approvals/${approvalId}`;
    expect((await call('POST', route, url, { action: 'approve', clientToken: 'a' })).statusCode).toBe(202);
    expect((await call('POST', route, url, { action: 'reject', clientToken: 'b' })).statusCode).toBe(409);
    expect((await call('POST', route, url, { action: 'dance', clientToken: 'c' })).statusCode).toBe(400);

    await waitFor('the run to end', 30_000, async () => (JSON.parse((await api.inject({ url: `/v1/runs/${runId}` })).body) as { run: { state: string } }).run.state === 'completed', 50);
    expect((await call('GET', '/v1/runs/{runId}', `/v1/runs/${runId}`)).statusCode).toBe(200);
    expect((await call('GET', '/v1/runs/{runId}/report', `/v1/runs/${runId}/report`)).statusCode).toBe(200);
    expect((await call('POST', '/v1/runs/{runId}/abort', `/v1/runs/${runId}/abort`, { clientToken: 'late' })).statusCode).toBe(200);
    expect((await call('POST', route, url, { action: 'approve', clientToken: 'a' })).statusCode).toBe(200);

    const other = JSON.parse((await call('POST', '/v1/runs', '/v1/runs', { ...start, repoPath: makeRepo(h.root) })).body) as { runId: string };
    expect((await call('POST', '/v1/runs/{runId}/abort', `/v1/runs/${other.runId}/abort`, { clientToken: 'stop' })).statusCode).toBe(202);

    // Schedules: created, refused, read, paused, resumed, fired, deleted.
    const schedule = { id: 'contract', cron: '0 3 * * *', request: { ...start, repoPath: makeRepo(h.root) } };
    expect((await call('POST', '/v1/schedules', '/v1/schedules', schedule)).statusCode).toBe(201);
    expect((await call('POST', '/v1/schedules', '/v1/schedules', schedule)).statusCode).toBe(200);
    expect((await call('POST', '/v1/schedules', '/v1/schedules', { ...schedule, cron: '0 4 * * *' })).statusCode).toBe(409);
    expect((await call('POST', '/v1/schedules', '/v1/schedules', { ...schedule, every: '1h' })).statusCode).toBe(400);
    expect((await call('GET', '/v1/schedules', '/v1/schedules')).statusCode).toBe(200);
    expect((await call('GET', '/v1/schedules/{scheduleId}', '/v1/schedules/contract')).statusCode).toBe(200);
    expect((await call('GET', '/v1/schedules/{scheduleId}', '/v1/schedules/none')).statusCode).toBe(404);
    expect((await call('POST', '/v1/schedules/{scheduleId}/pause', '/v1/schedules/contract/pause', {})).statusCode).toBe(200);
    expect((await call('POST', '/v1/schedules/{scheduleId}/resume', '/v1/schedules/contract/resume', { note: 'back' })).statusCode).toBe(200);
    expect((await call('POST', '/v1/schedules/{scheduleId}/trigger', '/v1/schedules/contract/trigger')).statusCode).toBe(202);
    let fired: { runId: string | null } | undefined;
    await waitFor('the fire', 30_000, async () => (fired = (JSON.parse((await api.inject({ url: '/v1/schedules/contract' })).body) as { fires: { runId: string | null }[] }).fires[0]) !== undefined, 50);
    expect((await call('POST', '/v1/runs/{runId}/abort', `/v1/runs/${fired!.runId}/abort`, { clientToken: 'stop' })).statusCode).toBe(202);
    expect((await call('DELETE', '/v1/schedules/{scheduleId}', '/v1/schedules/contract')).statusCode).toBe(200);
    expect((await call('DELETE', '/v1/schedules/{scheduleId}', '/v1/schedules/contract')).statusCode).toBe(404);

    // Every route of the document was answered for real at least once.
    const answered = new Set([...checked].map((c) => c.split(' ').slice(0, 2).join(' ')));
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(routes.filter((r) => !answered.has(r))).toEqual([]);
  });
});
