// The HTTP API against the real Temporal dev server, Postgres and a worker (fake sessions):
// every route, bad input, auth, and the 409/429/503 answers.
import { rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Connection } from '@temporalio/client';
import { count, eq, notInArray, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { repairMissingReports } from '../api/runs.ts';
import { writeRunReport } from '../db/report.ts';
import { createRun } from '../db/runs.ts';
import { buildApi, type ApiDeps } from '../api/server.ts';
import { connectDatabase } from '../db/client.ts';
import { approvalDecisions, runPhases, runs, tuiSessions } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { waitFor } from '../lib/wait.ts';
import { runWorkflowId } from '../workflows/messages.ts';
import { makeRepo, useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness('fake');
let api: FastifyInstance;
let deps: ApiDeps;
let temporal: Connection;
const extraApps: FastifyInstance[] = [];

beforeAll(async () => {
  temporal = await Connection.connect({ address: inject('temporalAddress') });
  deps = { db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, workspaceRoot: h.workspaceRoot };
  api = await buildApi(deps);
});
afterAll(async () => {
  for (const app of [api, ...extraApps]) await app?.close();
  await temporal?.close();
});

const json = (r: { body: string }) => JSON.parse(r.body);
const runCount = async () => (await h.db.select({ n: count() }).from(runs))[0]!.n;

function startBody(over: Record<string, unknown> = {}) {
  return { requirementsMd: '# Hello\n', repoPath: makeRepo(h.root), baseBranch: 'main', backend: 'fake', timing: h.timing, ...over };
}

async function startRun(over: Record<string, unknown> = {}) {
  const response = await api.inject({ method: 'POST', url: '/v1/runs', payload: startBody(over) });
  expect(response.statusCode, response.body).toBe(202);
  return json(response) as { runId: string; workflowId: string };
}

async function pendingApproval(runId: string, gateKey: string) {
  let approval: { id: string } | undefined;
  await waitFor(`approval ${gateKey}`, 30_000, async () => {
    approval = json(await api.inject({ url: `/v1/runs/${runId}/approvals` })).approvals.find((a: { gateKey: string; state: string }) => a.gateKey === gateKey && a.state === 'pending');
    return approval !== undefined;
  }, 50);
  return approval!.id;
}

async function runState(runId: string) {
  return json(await api.inject({ url: `/v1/runs/${runId}` })).run.state as string;
}

/** The run reads `state` with its report, and its workflow has finished its last step. */
async function waitForState(runId: string, state: string) {
  await waitFor(`run ${runId} to be ${state}`, 30_000, async () => (await runState(runId)) === state && existsSync(json(await api.inject({ url: `/v1/runs/${runId}` })).finalReportPath ?? '/nonexistent'), 50);
  await h.client.workflow.getHandle(runWorkflowId(runId)).result().catch(() => undefined);
}

describe('health and documents', () => {
  it('answers /healthz, /readyz and /openapi.json', async () => {
    expect(json(await api.inject({ url: '/healthz' }))).toEqual({ status: 'ok' });
    expect(json(await api.inject({ url: '/readyz' }))).toEqual({ status: 'ready', checks: { postgres: 'ok', temporal: 'ok' } });
    const doc = json(await api.inject({ url: '/openapi.json' }));
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz', '/readyz', '/v1/approvals', '/v1/definitions/reload', '/v1/runs', '/v1/runs/{runId}', '/v1/runs/{runId}/abort', '/v1/runs/{runId}/approvals', '/v1/runs/{runId}/approvals/{approvalId}', '/v1/runs/{runId}/artifacts/{artifactId}',
      '/v1/runs/{runId}/events', '/v1/runs/{runId}/report', '/v1/runs/{runId}/sessions/{sessionId}/transcript', '/v1/schedules', '/v1/schedules/{scheduleId}',
      '/v1/schedules/{scheduleId}/pause', '/v1/schedules/{scheduleId}/resume', '/v1/schedules/{scheduleId}/trigger', '/v1/templates',
    ]);
    expect(doc.paths['/v1/runs'].post.requestBody.content['application/json'].schema.required).toEqual(['requirementsMd', 'repoPath', 'baseBranch']);
  });

  it('lists templates and personas', async () => {
    const body = json(await api.inject({ url: '/v1/templates' }));
    expect(body.templates.map((t: { id: string }) => t.id)).toContain('development@1');
    expect(body.personas.map((p: { id: string }) => p.id)).toEqual(expect.arrayContaining(['spec-writer@1', 'implementer@1', 'reviewer@1']));
  });

  it('answers unknown routes with a JSON 404', async () => {
    const response = await api.inject({ url: '/v1/nothing' });
    expect(response.statusCode).toBe(404);
    expect(json(response)).toEqual({ error: { code: 'not_found', message: 'no route GET /v1/nothing' } });
  });
});

describe('POST /v1/runs', () => {
  it('starts a run that goes to completion through the API, and the same runId again gives the same answer', async () => {
    const runId = randomUUID();
    const body = startBody({ runId });
    const first = await api.inject({ method: 'POST', url: '/v1/runs', payload: body });
    expect(first.statusCode).toBe(202);
    expect(json(first)).toEqual({ runId, workflowId: `devflow-run:${runId}` });
    const again = await api.inject({ method: 'POST', url: '/v1/runs', payload: { ...body, requirementsMd: '# Something else\n' } });
    expect(again.statusCode).toBe(202);
    expect(json(again)).toEqual(json(first));
    expect(await h.db.select().from(runs).where(eq(runs.id, runId))).toHaveLength(1);

    const approvalId = await pendingApproval(runId, 'spec_approved');
    const decided = await api.inject({ method: 'POST', url: `/v1/runs/${runId}/approvals/${approvalId}`, payload: { action: 'approve', clientToken: 'c1', comment: 'ok', decidedBy: 'alice' } });
    expect(decided.statusCode).toBe(202);
    expect(json(decided)).toMatchObject({ approvalRequestId: approvalId, gateKey: 'spec_approved', action: 'approve' });
    await waitForState(runId, 'completed');
    const detail = json(await api.inject({ url: `/v1/runs/${runId}` }));
    expect(detail.phases.map((p: { state: string }) => p.state)).toEqual(['completed', 'completed', 'completed']);
    expect(detail.sessions).toHaveLength(3);
    expect(detail.artifacts).toHaveLength(3);
    expect(detail.approvals[0]).toMatchObject({ state: 'approved', decisions: [{ action: 'approve', comment: 'ok', decidedBy: 'alice' }] });
    expect(json(await api.inject({ method: 'POST', url: '/v1/runs', payload: body }))).toEqual({ runId, workflowId: `devflow-run:${runId}` });
  });

  it.each([
    ['a missing requirementsMd', { requirementsMd: undefined }, 'body.requirementsMd'],
    ['an empty requirementsMd', { requirementsMd: '  ' }, 'body.requirementsMd'],
    ['a relative repoPath', { repoPath: 'repo' }, 'body.repoPath'],
    ['a repoPath that is not a git repository', { repoPath: '/tmp' }, 'body.repoPath'],
    ['a base branch the repository lacks', { baseBranch: 'nope' }, 'body.baseBranch'],
    ['an unknown template', { template: 'other@9' }, 'body.template'],
    ['an unknown backend', { backend: 'vim' }, 'body.backend'],
    ['a runId that is not a uuid', { runId: '42' }, 'body.runId'],
    ['an unknown scenario', { scenarios: { spec: 'dance' } }, 'body.scenarios'],
    ['an unknown field', { colour: 'blue' }, 'body'],
  ])('refuses %s with 400 naming the field, and writes nothing', async (_what, over, field) => {
    const before = await runCount();
    const response = await api.inject({ method: 'POST', url: '/v1/runs', payload: startBody(over) });
    expect(response.statusCode, response.body).toBe(400);
    const body = json(response);
    expect(body.error.code).toMatch(/invalid_request|repo_not_git|repo_path_invalid|base_branch_not_found|template_not_found/);
    expect(body.error.details.issues.map((i: { field: string }) => i.field).join(' ')).toContain(field);
    expect(await runCount()).toBe(before);
  });

  it('refuses a real agent that is not installed on this host, naming what to install, and writes nothing', async () => {
    const missing = await buildApi({ ...deps, findAgent: async () => undefined });
    extraApps.push(missing);
    const before = await runCount();
    const response = await missing.inject({ method: 'POST', url: '/v1/runs', payload: startBody({ backend: undefined, agents: { spec_writer: 'fake', implementer: 'codex', reviewer: 'fake' } }) });
    expect(response.statusCode, response.body).toBe(400);
    const body = json(response);
    expect(body.error.code).toBe('agent_not_installed');
    expect(body.error.message).toContain('devflow -- agents install codex');
    expect(body.error.details.issues).toEqual([{ field: 'body.agents.implementer', message: expect.stringContaining('codex agent is not installed') }]);
    expect(await runCount()).toBe(before);
  });

  it('refuses an agent for a role the template does not have, and writes nothing', async () => {
    const before = await runCount();
    const response = await api.inject({ method: 'POST', url: '/v1/runs', payload: startBody({ agents: { designer: 'fake' } }) });
    expect(response.statusCode).toBe(400);
    expect(json(response).error.details.issues).toEqual([{ field: 'body.agents.designer', message: 'not a role of development@2' }]);
    expect(await runCount()).toBe(before);
  });

  it('answers 429 at DEVFLOW_MAX_CONCURRENT_RUNS and writes nothing', async () => {
    const [active] = await h.db.select({ n: count() }).from(runs).where(notInArray(runs.state, [...TERMINAL_RUN_STATES]));
    const limited = await buildApi({ ...deps, maxConcurrentRuns: active!.n });
    extraApps.push(limited);
    const before = await runCount();
    const response = await limited.inject({ method: 'POST', url: '/v1/runs', payload: startBody() });
    expect(response.statusCode).toBe(429);
    expect(json(response).error.code).toBe('too_many_runs');
    expect(await runCount()).toBe(before);
  });

  it('answers 429 at DEVFLOW_MAX_RUNS_PER_REPO naming the run that holds the slot, writes nothing, and lets other repositories start', async () => {
    const limited = await buildApi({ ...deps, maxRunsPerRepo: 1 });
    extraApps.push(limited);
    const repo = makeRepo(h.root);
    const first = await limited.inject({ method: 'POST', url: '/v1/runs', payload: startBody({ repoPath: repo }) });
    expect(first.statusCode, first.body).toBe(202);
    const holder = json(first).runId;
    const before = await runCount();
    // The same folder, spelled another way.
    const response = await limited.inject({ method: 'POST', url: '/v1/runs', payload: startBody({ repoPath: `${repo}/./` }) });
    expect(response.statusCode, response.body).toBe(429);
    const error = json(response).error;
    expect(error.code).toBe('repo_busy');
    expect(error.message).toContain(`${repo} has 1 active run (the limit is 1, DEVFLOW_MAX_RUNS_PER_REPO): ${holder} (`);
    expect(error.details).toEqual({ runIds: [holder] });
    expect(await runCount()).toBe(before);
    const elsewhere = await limited.inject({ method: 'POST', url: '/v1/runs', payload: startBody() });
    expect(elsewhere.statusCode, elsewhere.body).toBe(202);
    // Once the holder ends, the repository takes a run again.
    await limited.inject({ method: 'POST', url: `/v1/runs/${holder}/abort`, payload: { clientToken: 'free-the-slot' } });
    await waitFor('the holder to end', 30_000, async () => ['aborted', 'failed', 'completed'].includes((await h.snapshot(holder)).run.state), 100);
    const again = await limited.inject({ method: 'POST', url: '/v1/runs', payload: startBody({ repoPath: repo }) });
    expect(again.statusCode, again.body).toBe(202);
  });
});

describe('reading runs', () => {
  it('lists runs newest first, filtered by state, a page at a time', async () => {
    const a = await startRun();
    const b = await startRun();
    const page1 = json(await api.inject({ url: '/v1/runs?limit=1' }));
    expect(page1.runs.map((r: { id: string }) => r.id)).toEqual([b.runId]);
    const page2 = json(await api.inject({ url: `/v1/runs?limit=1&cursor=${page1.nextCursor}` }));
    expect(page2.runs.map((r: { id: string }) => r.id)).toEqual([a.runId]);
    const filtered = json(await api.inject({ url: '/v1/runs?state=completed&limit=200' }));
    expect(filtered.runs.every((r: { state: string }) => r.state === 'completed')).toBe(true);
    expect((await api.inject({ url: '/v1/runs?state=bogus' })).statusCode).toBe(400);
    expect((await api.inject({ url: '/v1/runs?cursor=zzz' })).statusCode).toBe(400);
    for (const { runId } of [a, b]) await api.inject({ method: 'POST', url: `/v1/runs/${runId}/abort`, payload: { clientToken: 'cleanup' } });
  });

  it('skips no run created in the same millisecond as the last of a page', async () => {
    // Two ended runs 100 µs apart, in one millisecond long ago; the cursor after the later names the earlier next.
    const [later, earlier] = [randomUUID(), randomUUID()];
    for (const [id, at] of [[later, '2001-02-03 04:05:06.000500+00'], [earlier, '2001-02-03 04:05:06.000400+00']] as const) {
      await createRun(deps.db, { id, templateId: 'development@1', repoPath: '/nowhere', baseBranch: 'main', requirementsMd: '# Old\n' });
      await deps.db.update(runs).set({ state: 'aborted', createdAt: sql`${at}::timestamptz`, endedAt: sql`${at}::timestamptz` }).where(eq(runs.id, id));
    }
    const cursor = Buffer.from(JSON.stringify(['2001-02-03T04:05:06.000Z', later])).toString('base64url');
    expect(json(await api.inject({ url: `/v1/runs?limit=1&cursor=${cursor}` })).runs.map((r: { id: string }) => r.id)).toEqual([earlier]);
  });

  it('answers 404 for an unknown run and 400 for a malformed id', async () => {
    expect(json(await api.inject({ url: `/v1/runs/${randomUUID()}` })).error.code).toBe('run_not_found');
    expect((await api.inject({ url: '/v1/runs/not-a-uuid' })).statusCode).toBe(400);
    expect((await api.inject({ url: `/v1/runs/${randomUUID()}/report` })).statusCode).toBe(404);
  });

  it('returns events in seq order, after a seq, and as an SSE stream resuming from Last-Event-ID', async () => {
    const { runId } = await startRun();
    await api.inject({ method: 'POST', url: `/v1/runs/${runId}/approvals/${await pendingApproval(runId, 'spec_approved')}`, payload: { action: 'reject', clientToken: 'r' } });
    await waitForState(runId, 'failed');
    const all = json(await api.inject({ url: `/v1/runs/${runId}/events` })).events;
    expect(all.map((e: { seq: number }) => e.seq)).toEqual(all.map((_: unknown, i: number) => i + 1));
    expect(json(await api.inject({ url: `/v1/runs/${runId}/events?after=5` })).events[0].seq).toBe(6);

    const stream = await api.inject({ url: `/v1/runs/${runId}/events`, headers: { accept: 'text/event-stream', 'last-event-id': '5' } });
    expect(stream.headers['content-type']).toBe('text/event-stream');
    const ids = [...stream.body.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids).toEqual(all.slice(5).map((e: { seq: number }) => e.seq));
    expect(stream.body).toContain('event: run.failed');

    const report = await api.inject({ url: `/v1/runs/${runId}/report` });
    expect(report.headers['content-type']).toMatch(/^text\/markdown/);
    expect(report.body).toContain('**Outcome:** failed');
  });
});

describe('decisions and abort', () => {
  it('records a decision once: the same clientToken gets the same answer, a contrary decision 409', async () => {
    const { runId } = await startRun();
    const approvalId = await pendingApproval(runId, 'spec_approved');
    const url = `/v1/runs/${runId}/approvals/${approvalId}`;
    const first = await api.inject({ method: 'POST', url, payload: { action: 'abort', clientToken: 'same' } });
    const again = await api.inject({ method: 'POST', url, payload: { action: 'abort', clientToken: 'same' } });
    expect(first.statusCode).toBe(202);
    expect([200, 202]).toContain(again.statusCode);
    expect(json(again)).toMatchObject({ approvalRequestId: approvalId, action: 'abort', decisionId: json(first).decisionId });
    const contrary = await api.inject({ method: 'POST', url, payload: { action: 'approve', clientToken: 'other' } });
    expect(contrary.statusCode).toBe(409);
    expect(json(contrary).error).toMatchObject({ code: 'decision_conflict', details: { decided: 'abort' } });
    await waitForState(runId, 'aborted');
    expect(await h.db.select().from(approvalDecisions).where(eq(approvalDecisions.approvalRequestId, approvalId))).toHaveLength(1);
    expect((await api.inject({ method: 'POST', url: `/v1/runs/${runId}/approvals/${randomUUID()}`, payload: { action: 'approve', clientToken: 'x' } })).statusCode).toBe(404);
    expect((await api.inject({ method: 'POST', url, payload: { action: 'maybe', clientToken: 'x' } })).statusCode).toBe(400);
  });

  it('aborts a run on request, and answers 200 once it has ended', async () => {
    const { runId } = await startRun({ scenarios: { spec: 'timeout' }, timing: { ...h.timing, artifactTimeoutMs: 60_000 } });
    await waitFor('the spec prompt', 20_000, async () => json(await api.inject({ url: `/v1/runs/${runId}/events` })).events.some((e: { type: string }) => e.type === 'artifact.expected'), 50);
    const aborted = await api.inject({ method: 'POST', url: `/v1/runs/${runId}/abort`, payload: { clientToken: 'stop', reason: 'enough' } });
    expect(aborted.statusCode).toBe(202);
    await waitForState(runId, 'aborted');
    const again = await api.inject({ method: 'POST', url: `/v1/runs/${runId}/abort`, payload: { clientToken: 'stop' } });
    expect(again.statusCode).toBe(200);
    expect(json(again)).toEqual({ runId, state: 'aborted' });
    expect((await api.inject({ url: `/v1/runs/${runId}/report` })).body).toContain('enough');
    expect((await api.inject({ method: 'POST', url: `/v1/runs/${runId}/abort`, payload: {} })).statusCode).toBe(400);
  });
});

describe('auth', () => {
  it('requires the bearer token on every route but health when DEVFLOW_API_TOKEN is set', async () => {
    const guarded = await buildApi({ ...deps, token: 's3cret' });
    extraApps.push(guarded);
    expect((await guarded.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await guarded.inject({ url: '/readyz' })).statusCode).toBe(200);
    const refused = await guarded.inject({ url: '/v1/runs' });
    expect(refused.statusCode).toBe(401);
    expect(json(refused).error.code).toBe('unauthorized');
    expect((await guarded.inject({ url: '/v1/runs', headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401);
    expect((await guarded.inject({ url: '/v1/runs', headers: { authorization: 'Bearer s3cret' } })).statusCode).toBe(200);
    expect((await guarded.inject({ method: 'POST', url: '/v1/runs', payload: startBody() })).statusCode).toBe(401);
  });
});

describe('unreachable services', () => {
  it('answers 503 and writes nothing when Temporal is unreachable; a decision recorded meanwhile is delivered on retry', async () => {
    const { runId } = await startRun();
    const approvalId = await pendingApproval(runId, 'spec_approved');
    const deadTemporal = Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 500 });
    const down = await buildApi({ ...deps, temporal: deadTemporal });
    extraApps.push(down);

    expect((await down.inject({ url: '/readyz' })).statusCode).toBe(503);
    expect(json(await down.inject({ url: '/readyz' })).error.details.checks).toEqual({ postgres: 'ok', temporal: 'unreachable' });
    const before = await runCount();
    const start = await down.inject({ method: 'POST', url: '/v1/runs', payload: startBody() });
    expect(start.statusCode).toBe(503);
    expect(await runCount()).toBe(before);

    const url = `/v1/runs/${runId}/approvals/${approvalId}`;
    const undelivered = await down.inject({ method: 'POST', url, payload: { action: 'approve', clientToken: 'retry-me' } });
    expect(undelivered.statusCode).toBe(503);
    expect(json(undelivered).error.code).toBe('temporal_unavailable');
    const delivered = await api.inject({ method: 'POST', url, payload: { action: 'approve', clientToken: 'retry-me' } });
    expect(delivered.statusCode).toBe(202);
    await waitForState(runId, 'completed');
  });

  it('answers 503 when Postgres is unreachable', async () => {
    const deadDb = connectDatabase('postgres://postgres:postgres@127.0.0.1:1/devflow');
    const down = await buildApi({ ...deps, db: deadDb.db, pool: deadDb.pool });
    extraApps.push(down);
    expect((await down.inject({ url: '/readyz' })).statusCode).toBe(503);
    const response = await down.inject({ url: '/v1/runs' });
    expect(response.statusCode).toBe(503);
    expect(json(response).error.code).toBe('service_unavailable');
    await deadDb.close();
  });
});

describe('final report repair', () => {
  it.each(['reject', 'abort'] as const)('rewrites a missing report at API start (%s outcome) without touching sessions, phases or decisions', async (action) => {
    const { runId } = await startRun();
    await api.inject({ method: 'POST', url: `/v1/runs/${runId}/approvals/${await pendingApproval(runId, 'spec_approved')}`, payload: { action, clientToken: 'end' } });
    await waitForState(runId, action === 'reject' ? 'failed' : 'aborted');
    const snapshot = async () => ({
      phases: await h.db.select().from(runPhases).where(eq(runPhases.runId, runId)),
      sessions: await h.db.select().from(tuiSessions).where(eq(tuiSessions.runId, runId)),
      decisions: json(await api.inject({ url: `/v1/runs/${runId}/approvals` })).approvals,
    });
    const before = await snapshot();
    const [run] = await h.db.select().from(runs).where(eq(runs.id, runId));
    // A crash between the terminal write and the report:
    await rm(run!.finalReportPath!);
    await h.db.update(runs).set({ finalReportPath: null }).where(eq(runs.id, runId));

    expect(await repairMissingReports(h.db, h.workspaceRoot)).toContain(runId);
    const report = await api.inject({ url: `/v1/runs/${runId}/report` });
    expect(report.statusCode).toBe(200);
    expect(report.body).toContain(`**Outcome:** ${action === 'reject' ? 'failed' : 'aborted'}`);
    expect(await snapshot()).toEqual(before);
  });

  it('rewrites a missing report when a decision is replayed for an ended run', async () => {
    const { runId } = await startRun();
    const approvalId = await pendingApproval(runId, 'spec_approved');
    const url = `/v1/runs/${runId}/approvals/${approvalId}`;
    await api.inject({ method: 'POST', url, payload: { action: 'reject', clientToken: 'once' } });
    await waitForState(runId, 'failed');
    const [run] = await h.db.select().from(runs).where(eq(runs.id, runId));
    await rm(run!.finalReportPath!);
    const decisionsBefore = await h.db.select().from(approvalDecisions).where(eq(approvalDecisions.approvalRequestId, approvalId));

    const replay = await api.inject({ method: 'POST', url, payload: { action: 'reject', clientToken: 'once' } });
    expect(replay.statusCode).toBe(200);
    expect(json(replay)).toMatchObject({ action: 'reject', runState: 'failed' });
    expect(existsSync(run!.finalReportPath!)).toBe(true);
    expect(await h.db.select().from(approvalDecisions).where(eq(approvalDecisions.approvalRequestId, approvalId))).toEqual(decisionsBefore);
  });

  it('writes a report from many readers at once (the run ending, the API repairing it) without an error', async () => {
    const { runId } = await startRun();
    const approvalId = await pendingApproval(runId, 'spec_approved');
    await api.inject({ method: 'POST', url: `/v1/runs/${runId}/approvals/${approvalId}`, payload: { action: 'abort', clientToken: 'stop' } });
    await waitForState(runId, 'aborted');
    const written = await Promise.all(Array.from({ length: 8 }, () => writeRunReport(h.db, runId, h.workspaceRoot)));
    expect(new Set(written).size).toBe(1);
    expect(readFileSync(written[0]!, 'utf8')).toContain('**Outcome:** aborted');
    expect(readdirSync(h.workspaceRoot).filter((f) => f.startsWith(runId) && f.endsWith('.tmp'))).toEqual([]);
  });
});
