// Bad input, generated: every route of the API gets requests that are malformed, hostile or
// nearly right (wrong types, empty, huge and odd strings, NUL bytes, unpaired surrogates, extra
// and missing keys, negative numbers, ids that are not uuids) and must answer each one below 500,
// name the field it refuses, and write nothing for what it refuses. Then what a network does:
// bodies and headers over the server's limits, event streams whose clients leave, and a hundred
// simultaneous starts of one run.
//
// The generated requests go to an API on a database of this file's own (on the suite's Postgres),
// so counting every table's rows before and after a request is exact while other files write theirs.
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client, Connection, ScheduleNotFoundError } from '@temporalio/client';
import { and, count, eq } from 'drizzle-orm';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import fc from 'fast-check';
import pg from 'pg';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openEventStreams } from '../api/events.ts';
import { buildApi, type ApiDeps } from '../api/server.ts';
import { openApprovalRequest, recordDecision } from '../db/approvals.ts';
import { connectDatabase, type DatabaseHandle } from '../db/client.ts';
import { appendEvent } from '../db/events.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { createRun } from '../db/runs.ts';
import { approvalRequests, artifacts, runEvents, runPhases, runs, schedules, tuiSessions, tuiTranscripts } from '../db/schema.ts';
import { RUN_STATES } from '../db/state-machines.ts';
import { createLogger } from '../lib/logger.ts';
import { workflowIds } from '../lib/keys.ts';
import { waitFor } from '../lib/wait.ts';
import { createScheduleBody } from '../schemas/api.ts';
import { runWorkflowId } from '../workflows/messages.ts';
import { makeRepo, useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness('fake');
/** Requests per property: every route gets at least this many. */
const RUNS = 1_000;
const FUZZ_TIMEOUT = 180_000;

let own: DatabaseHandle & { url: string; drop(): Promise<void> };
let probe: DatabaseHandle;
let temporal: Connection;
let api: FastifyInstance;
let deps: ApiDeps;
const apps: FastifyInstance[] = [];
let tables: string[] = [];
let baseline: Record<string, number> = {};
const sent = new Map<string, number>();
/** What the API logged as an error: a 500's cause, shown with the request that met it. */
const apiErrors: string[] = [];

/** What the seeded database holds: ids a request can name, and what each answers. */
const seed = {
  repo: '',
  notGit: '',
  live: '', // awaiting approval, its workflow running (on a queue nobody polls): signals land
  orphan: '', // awaiting approval, no workflow at all
  done: '', // completed, with its report
  livePending: '',
  liveClosed: '',
  orphanPending: '',
  doneApproved: '',
  liveSession: '',
  liveArtifact: '',
  missingArtifact: '',
  cursor: '',
};
/**
 * Schedules the fuzz may name, each under this file's own prefix: Temporal Schedules live in the
 * suite's one namespace, which other files share. All are paused, with fires years away.
 */
const scheduleTag = `fuzz-${randomUUID().slice(0, 8)}`;
const sched = {
  live: [] as string[], // in Postgres and in Temporal
  lost: '', // its row stands, its Temporal Schedule was deleted underneath
  deleted: '', // deleted through the API
  doomed: [] as string[], // for the DELETE fuzz to delete
};
/** The decision that stands on each approval request the fuzz may decide. */
const decided = new Map<string, string>();
const idleQueue = `fuzz-nobody-${randomUUID()}`;

/** A database of this file's own on the suite's Postgres, migrated and with the built-in definitions. */
async function ownDatabase(): Promise<DatabaseHandle & { url: string; drop(): Promise<void> }> {
  const url = new URL(inject('databaseUrl'));
  const name = `devflow_fuzz_${randomUUID().slice(0, 8)}`;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    await client.query(statement).finally(() => client.end());
  };
  await admin(`create database ${name}`);
  const ownUrl = new URL(url);
  ownUrl.pathname = `/${name}`;
  const handle = connectDatabase(ownUrl.toString(), { max: 5 });
  await prepareDatabase(handle);
  return { ...handle, url: ownUrl.toString(), drop: () => admin(`drop database ${name} with (force)`) };
}

/** Every table's row count, in one query. */
async function rowCounts(): Promise<Record<string, number>> {
  const columns = tables.map((t) => `(select count(*) from "${t}")::int as "${t}"`).join(', ');
  const { rows } = await probe.pool.query({ name: 'fuzz-row-counts', text: `select ${columns}` });
  return rows[0] as Record<string, number>;
}

async function seedDatabase(): Promise<void> {
  const { db } = own;
  seed.repo = makeRepo(h.root);
  seed.notGit = path.join(h.root, 'not-a-repository');
  mkdirSync(seed.notGit, { recursive: true });
  const newRun = async (state: (typeof RUN_STATES)[number]) => {
    const { run } = await createRun(db, { id: randomUUID(), templateId: 'development@2', repoPath: seed.repo, baseBranch: 'main', requirementsMd: '# Seeded\n' });
    await db.update(runs).set({ state }).where(eq(runs.id, run.id));
    const [phase] = await db.insert(runPhases).values({ runId: run.id, phaseKey: 'spec', ordinal: 1, roleId: 'spec_writer', state: 'awaiting_approval' }).returning();
    return { runId: run.id, phaseId: phase!.id };
  };
  const gate = async (runId: string, phaseId: string, key: string) =>
    (await openApprovalRequest(db, { runId, phaseId, gateKey: 'spec_approved', kind: 'approval', key, payload: {} })).id;

  const live = await newRun('awaiting_approval');
  seed.live = live.runId;
  seed.livePending = await gate(live.runId, live.phaseId, `fuzz:${randomUUID()}`);
  seed.liveClosed = await gate(live.runId, live.phaseId, `fuzz:${randomUUID()}`);
  await db.update(approvalRequests).set({ state: 'closed' }).where(eq(approvalRequests.id, seed.liveClosed));
  const [session] = await db.insert(tuiSessions).values({ runId: live.runId, roleId: 'spec_writer', backend: 'fake', cwd: seed.repo, state: 'WAITING_FOR_APPROVAL' }).returning();
  seed.liveSession = session!.id;
  await db.insert(tuiTranscripts).values({ sessionId: session!.id, seq: 1, chunk: 'the agent said hello\n' });
  const artifactFile = path.join(h.root, `spec-${randomUUID()}.json`);
  writeFileSync(artifactFile, '{"title":"seeded"}');
  const [artifact] = await db.insert(artifacts).values({ runId: live.runId, phaseId: live.phaseId, path: artifactFile, schemaId: 'dev/spec@1', hash: 'not-the-hash', valid: true }).returning();
  seed.liveArtifact = artifact!.id;
  const [missing] = await db.insert(artifacts).values({ runId: live.runId, phaseId: live.phaseId, path: path.join(h.root, 'gone.json'), schemaId: 'dev/spec@1', hash: 'x', valid: false }).returning();
  seed.missingArtifact = missing!.id;
  const client = new Client({ connection: temporal });
  await client.workflow.start('devflowFuzzIdle', { workflowId: runWorkflowId(live.runId), taskQueue: idleQueue, args: [] });

  const orphan = await newRun('awaiting_approval');
  seed.orphan = orphan.runId;
  seed.orphanPending = await gate(orphan.runId, orphan.phaseId, `fuzz:${randomUUID()}`);

  const done = await newRun('completed');
  seed.done = done.runId;
  seed.doneApproved = await gate(done.runId, done.phaseId, `fuzz:${randomUUID()}`);
  await recordDecision(db, { approvalRequestId: seed.doneApproved, action: 'approve', clientToken: 'seeded' });
  decided.set(seed.doneApproved, 'approve');
  await appendEvent(db, { runId: done.runId, type: 'run.completed', idempotencyKey: `fuzz:${randomUUID()}`, payload: { reason: 'seeded' } });
  const report = path.join(h.root, `${done.runId}.report.md`);
  writeFileSync(report, '# Seeded report\n');
  await db.update(runs).set({ finalReportPath: report, endedAt: new Date() }).where(eq(runs.id, done.runId));

  const page = await api.inject({ url: '/v1/runs?limit=1' });
  seed.cursor = JSON.parse(page.body).nextCursor;
}

async function seedSchedules(): Promise<void> {
  const request = { template: 'development@1', requirementsMd: '# Seeded schedule\n', repoPath: seed.repo, baseBranch: 'main', backend: 'fake' };
  const create = async (name: string, spec: Record<string, unknown>) => {
    const id = `${scheduleTag}-s-${name}`;
    const response = await api.inject({ method: 'POST', url: '/v1/schedules', payload: { id, ...spec, paused: true, note: 'seeded', request } });
    if (response.statusCode !== 201) throw new Error(`seeding schedule ${id}: ${response.statusCode} ${response.body}`);
    return id;
  };
  sched.live.push(await create('leap-day', { cron: '0 0 29 2 *' }), await create('decades', { every: '40000d', overlap: 'allow' }));
  sched.lost = await create('lost', { cron: '0 0 29 2 *' });
  await new Client({ connection: temporal }).schedule.getHandle(workflowIds.schedule(sched.lost)).delete();
  sched.deleted = await create('deleted', { cron: '0 0 29 2 *' });
  const deleted = await api.inject({ method: 'DELETE', url: `/v1/schedules/${sched.deleted}` });
  if (deleted.statusCode !== 200) throw new Error(`deleting schedule ${sched.deleted}: ${deleted.statusCode} ${deleted.body}`);
  for (const n of [1, 2, 3]) sched.doomed.push(await create(`doomed-${n}`, { every: `${40_000 + n}d` }));
}

beforeAll(async () => {
  own = await ownDatabase();
  probe = connectDatabase(own.url, { max: 2 });
  const { rows } = await probe.pool.query(`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`);
  tables = rows.map((r: { table_name: string }) => r.table_name);
  temporal = await Connection.connect({ address: inject('temporalAddress') });
  deps = {
    db: own.db,
    pool: own.pool,
    temporal,
    namespace: 'default',
    taskQueue: idleQueue,
    maxConcurrentRuns: 1_000,
    workspaceRoot: path.join(h.root, 'fuzz-workspaces'),
    // Claude Code counts as installed and Codex not, without asking the host each time.
    findAgent: async (agent) => (agent === 'claude-code' ? { agent, path: '/bin/true', source: 'cache', version: 'test' } : undefined),
    logger: createLogger('api-fuzz', 'error', { write: (line: string) => apiErrors.push(line) }),
  };
  api = await buildApi(deps);
  apps.push(api);
  await seedDatabase();
  await seedSchedules();
  baseline = await rowCounts();
}, 120_000);

afterAll(async () => {
  await new Client({ connection: temporal }).workflow.getHandle(runWorkflowId(seed.live)).terminate('fuzz done').catch(() => undefined);
  await removeSchedules().catch((error) => console.warn(`leaving schedules behind: ${error}`));
  for (const app of apps) await app.close();
  await temporal?.close();
  await probe?.close();
  await own?.close();
  await own?.drop();
});

/**
 * Every Temporal Schedule this file made (a failed property may leave some of its own) and every
 * fire a trigger started: each waits, never run, on the queue nobody polls.
 */
async function removeSchedules(): Promise<void> {
  if (!own || !temporal) return;
  const client = new Client({ connection: temporal });
  for (const { id } of await own.db.select({ id: schedules.id }).from(schedules)) {
    await client.schedule.getHandle(workflowIds.schedule(id)).delete().catch(() => undefined);
  }
  const fires: Promise<unknown>[] = [];
  for await (const fire of client.workflow.list({ query: `TaskQueue = '${idleQueue}' AND ExecutionStatus = 'Running'` })) {
    fires.push(client.workflow.getHandle(fire.workflowId, fire.runId).terminate('fuzz done').catch(() => undefined));
  }
  await Promise.all(fires);
}

// ---- requests and what every answer must be ------------------------------------------------------

interface Probe {
  route: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  url: string;
  headers?: Record<string, string>;
  payload?: unknown;
}

const shown = (value: unknown) => {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text === undefined ? 'undefined' : text.length > 300 ? `${text.slice(0, 300)}… (${text.length} chars)` : text;
};

/**
 * Sends one request and checks what every answer must be: below 500, a JSON error body for a
 * refusal that names fields where they are, and no row written for a refusal.
 */
async function send(request: Probe): Promise<LightMyRequestResponse> {
  sent.set(request.route, (sent.get(request.route) ?? 0) + 1);
  const { route: _route, payload, ...options } = request;
  const logged = apiErrors.length;
  const response = await api.inject({ ...options, ...(payload === undefined ? {} : { payload: payload as string }) });
  const cause = apiErrors.slice(logged).join('');
  const what = `${request.method} ${shown(request.url)} ${shown(request.headers ?? {})} ${shown(payload)} → ${response.statusCode} ${shown(response.body)}${cause ? `; the API logged: ${cause}` : ''}`;
  // Rows are counted after every answer but a successful read (cheaper so; a write one made would
  // show at the next refusal), and the next request is judged against them, pass or fail.
  const before = baseline;
  if (request.method !== 'GET' || response.statusCode >= 400) baseline = await rowCounts();
  expect(response.statusCode, what).toBeLessThan(500);
  if (response.statusCode >= 400) {
    const written = tables.filter((table) => baseline[table] !== before[table]).map((table) => `${table} ${before[table]} → ${baseline[table]}`);
    expect(written, `rows written for a refused request: ${what}`).toEqual([]);
    const error = JSON.parse(response.body).error;
    expect(typeof error?.code, what).toBe('string');
    for (const issue of error.details?.issues ?? []) expect(issue.field, what).toMatch(/^(body|params|query|headers)\b/);
  }
  return response;
}

/** A 400 that names `field` (or a field inside it; or one of several) in its issues, or at least in its message. */
function expectNames(response: LightMyRequestResponse, field: string | string[], what: string): void {
  expect(response.statusCode, `${what}: ${shown(response.body)}`).toBe(400);
  const { error } = JSON.parse(response.body);
  const fields: string[] = (error.details?.issues ?? []).map((i: { field: string }) => i.field);
  const named = [field].flat().some((one) => fields.some((f) => f === one || f.startsWith(`${one}.`)) || error.message.includes(one));
  expect(named, `${what} should name ${field}: ${shown(response.body)}`).toBe(true);
}

const isUuid = (value: unknown) => z.uuid().safeParse(value).success;

/** What a request must get: a status, one of some, a 400 naming a field, or an error code. */
type Expected = { status: number } | { statusIn: number[] } | { names: string | string[] } | { code: string };

function expectOutcome(response: LightMyRequestResponse, expected: Expected): void {
  if ('names' in expected) return expectNames(response, expected.names, response.body);
  if ('code' in expected) return expect(JSON.parse(response.body).error?.code, response.body).toBe(expected.code);
  if ('status' in expected) return expect(response.statusCode, response.body).toBe(expected.status);
  expect(expected.statusIn, response.body).toContain(response.statusCode);
}

/**
 * How ids in the path are refused, in the order the server looks: the router first (a part
 * longer than 100 characters: 414; an empty one matches no route or is no id; `.` or `..`, a dot
 * segment the URL resolves away with what comes before, leaves a path another route or none
 * answers), then a raw body it cannot read, then each id that is not an id (a uuid unless
 * `valid` says otherwise), named.
 */
function idsFirst(ids: [string, string][], body?: { raw: unknown }, valid: (id: string) => boolean = isUuid): Expected | undefined {
  if (ids.some(([id]) => id.length > 100)) return { status: 414 };
  if (ids.some(([id]) => id === '')) return { statusIn: [400, 404, 415] };
  if (ids.some(([id]) => id === '.' || id === '..')) return { statusIn: [200, 400, 404, 415] };
  if (body?.raw) return { statusIn: [400, 415] };
  const bad = ids.find(([id]) => !valid(id));
  return bad ? { names: bad[1] } : undefined;
}

/** Unpaired surrogates become U+FFFD: what a URL or a header can carry. */
const wellFormed = (s: string) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
const segment = (s: string) => encodeURIComponent(wellFormed(s));

// ---- generators --------------------------------------------------------------------------------

const HUGE = 'x'.repeat(200_000);
const OVER_A_MILLION = 'r'.repeat(1_000_001);
const odd = fc.constantFrom('', ' ', '\t\n', '\u0000', 'a\u0000b', '\uD800', 'x\uDFFFy', '💥🧨', 'e\u0301', '\u202Eevil', '../../etc/passwd', '%00', '%zz', 'null', 'true', '0', '-1', '1e400', "'; drop table runs; --", '<script>', '${x}', 'ʎɐpsǝupǝʍ');
/** Strings of every kind: odd ones, any code points (lone surrogates and NUL included), long ones. */
const anyText = fc.oneof(
  { weight: 3, arbitrary: odd },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(HUGE, 'é'.repeat(20_000)) },
);
/**
 * A value of any JSON type. None has a `__proto__` key: Fastify refuses such a body as a whole
 * (rawBody sends those), so it could not show how a field is refused.
 */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  anyText,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(-1, 0, 1e300, -0, Number.MAX_SAFE_INTEGER + 2),
  fc.array(anyText, { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), anyText, { maxKeys: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
).filter((value) => !JSON.stringify(value)?.includes('"__proto__":'));
/** A value of any JSON type but `type`. */
const notA = (type: 'string' | 'boolean' | 'number' | 'object') =>
  anyJson.filter((v) => (type === 'object' ? v === null || typeof v !== 'object' || Array.isArray(v) : typeof v !== type));
/** Text with a NUL or an unpaired surrogate somewhere in it. */
const unstorable = fc
  .tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.constantFrom('\u0000', '\uD800', '\uDFFF'), fc.string({ maxLength: 20 }))
  .map(([a, bad, b]) => `${a}${bad}${b}`);
/** Header values a client can send (visible ASCII and Latin-1, tabs). */
const headerText = fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff }), fc.constant(0x09)).map((c) => String.fromCharCode(c)), maxLength: 60 });
const unknownKey = (known: string[]) => fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/).filter((k) => !known.includes(k) && k !== '__proto__');

/** Ids: the seeded rows, unknown uuids, and strings that are not uuids at all. */
const notUuid = fc.oneof(
  anyText.map(wellFormed).filter((s) => !isUuid(s)),
  fc.uuid().chain((u) => fc.constantFrom(u.slice(1), `${u}0`, u.replaceAll('-', ''), `{${u}}`, ` ${u}`, `${u}\u0000`, u.replace(/[0-9a-f]/, 'g'), u.toUpperCase().replace(/-/g, '_'))),
);
const idOf = (...known: string[]) => fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...known) }, { weight: 2, arbitrary: fc.uuid() }, { weight: 1, arbitrary: fc.uuid().map((u) => u.toUpperCase()) }, { weight: 4, arbitrary: notUuid });

/** Query strings: the route's own keys with values right and wrong, repeated keys, other keys. */
function queryOf(keys: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<[string, string][]> {
  const pair = fc.oneof(
    ...Object.entries(keys).map(([key, value]) => fc.tuple(fc.constant(key), fc.oneof(value, anyText.map(wellFormed)))),
    fc.tuple(fc.string({ maxLength: 10 }).map(wellFormed), anyText.map(wellFormed)),
  );
  return fc.array(pair, { maxLength: 4 });
}
const queryString = (pairs: [string, string][]) => {
  const text = new URLSearchParams(pairs).toString();
  return text ? `?${text}` : '';
};
/** The values a query key takes (the last one, or all of them when repeated). */
const valuesOf = (pairs: [string, string][], key: string) => pairs.filter(([k]) => k === key).map(([, v]) => v);
/** As the route reads a number: one value, Number() of it. */
const numberIn = (values: string[], min: number, max: number) => values.length === 0 || (values.length === 1 && Number.isInteger(Number(values[0])) && Number(values[0]) >= min && Number(values[0]) <= max);

/** Any body at all: the route's own fields (and other keys) with any values, any JSON, or raw bytes. */
function anyBody(fieldValue: fc.Arbitrary<[string, unknown]>) {
  return fc.oneof(
    fc.array(fc.oneof(fieldValue, fc.tuple(fc.string({ maxLength: 12 }), anyJson)), { maxLength: 8 }).map((entries) => ({ json: Object.fromEntries(entries) as unknown })),
    anyJson.map((json) => ({ json })),
    rawBody.map((raw) => ({ raw })),
  );
}

/** Raw bodies: not JSON, JSON of the wrong shape, and content types the route does not take. */
const rawBody = fc.oneof(
  fc.record({ payload: fc.constantFrom('', '{', '[1,', 'nul', '{"a":1}garbage', '\u0000', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', `${'['.repeat(20_000)}${']'.repeat(20_000)}`, '"just a string"', '42', 'null', '[]'), type: fc.constant('application/json') }),
  fc.record({ payload: fc.string({ maxLength: 40 }), type: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/octet-stream', 'application/jsonx') }),
);

// ---- the generated requests, route by route -------------------------------------------------------

const RUN_FIELDS = ['template', 'requirementsMd', 'repoPath', 'baseBranch', 'runId', 'backend', 'agents', 'playback', 'scenarios', 'dryRun', 'maxPhaseRetries', 'timing'];

/** A body that would pass: a dry run (so nothing starts) on a real repository. */
const validStart = () =>
  fc.record(
    {
      template: fc.constantFrom('development@2', 'development@1', 'bugfix@1'),
      requirementsMd: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }).map((s) => `# ${s}`),
      repoPath: fc.constant(seed.repo),
      baseBranch: fc.constant('main'),
      runId: fc.uuid(),
      backend: fc.constantFrom('fake', 'scripted', 'tmux'),
      playback: fc.boolean(),
      scenarios: fc.constantFrom({ spec: 'ok' }, { spec: ['timeout', 'ok'] }, {}),
      dryRun: fc.constant(true),
      maxPhaseRetries: fc.integer({ min: 0, max: 20 }),
      timing: fc.record({ artifactTimeoutMs: fc.integer({ min: 1, max: 10_000 }), stabilityMs: fc.nat(1_000) }, { requiredKeys: [] }),
    },
    { requiredKeys: ['requirementsMd', 'repoPath', 'baseBranch', 'dryRun'] },
  );

/** For each field, values that are certainly wrong for it. */
const wrongStart: Record<string, () => fc.Arbitrary<unknown>> = {
  template: () => fc.oneof(notA('string'), fc.string({ maxLength: 30 }).map((s) => `No such ${s}`), fc.constantFrom('nope@1', 'development@99', 'development@0', 'Development@2', '')),
  requirementsMd: () => fc.oneof(notA('string'), fc.constantFrom('', '   ', '\n\t ', OVER_A_MILLION), unstorable),
  repoPath: () => fc.oneof(notA('string'), fc.constantFrom('', 'relative/path', '.', seed.notGit, `${seed.notGit}\u0000`, `${seed.repo}\u0000`), anyText.map((s) => `/no/such/folder/${s}`), unstorable.map((s) => `${seed.repo}/${s}`)),
  baseBranch: () => fc.oneof(notA('string'), fc.constantFrom('', 'x'.repeat(256), 'main\u0000', '-x', '--help', 'main^{tree}', 'refs/heads/main/..', 'no such branch'), anyText.filter((s) => s.length > 0 && s.length <= 255).map((s) => `no-such-branch-${s}`.slice(0, 255))),
  runId: () => fc.oneof(notA('string'), notUuid),
  backend: () => fc.oneof(notA('string'), anyText.filter((s) => !['fake', 'scripted', 'tmux'].includes(s))),
  agents: () => fc.oneof(
    notA('object'),
    fc.constantFrom({ designer: 'fake' }, { spec_writer: 'vim' }, { spec_writer: 'codex' }, { 'Spec Writer': 'fake' }, { spec_writer: null }, { spec_writer: ['fake'] }),
    // A role no template has (the built-in ones have these).
    fc.stringMatching(/^[a-z][a-z0-9_]{0,15}$/).filter((k) => !['spec_writer', 'implementer', 'reviewer', 'reproducer', 'fixer', 'verifier'].includes(k)).map((k) => ({ [k]: 'fake' })),
  ),
  playback: () => notA('boolean'),
  scenarios: () => fc.oneof(notA('object'), fc.constantFrom({ spec: 'dance' }, { spec: [] }, { Spec: 'ok' }, { spec: ['ok', 'nope'] }, { spec: 7 })),
  // Never false or absent: a body that passes must stay a dry run.
  dryRun: () => notA('boolean'),
  maxPhaseRetries: () => fc.oneof(notA('number'), fc.constantFrom(-1, 21, 1.5, 1e300, -0.5, Number.MAX_SAFE_INTEGER + 2)),
  timing: () => fc.oneof(notA('object'), fc.constantFrom({ artifactTimeoutMs: 0 }, { pollMs: -1 }, { stabilityMs: 1.5 }, { extra: 1 }, { maxHungMs: '5' }, { artifactTimeoutMs: 1e300 })),
};

type Mutation = { kind: 'wrong'; field: string; value: unknown } | { kind: 'missing'; field: string } | { kind: 'extra'; field: string; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...RUN_FIELDS).chain((field) => wrongStart[field]!().map((value) => ({ kind: 'wrong' as const, field, value }))) },
  { weight: 1, arbitrary: fc.constantFrom('requirementsMd', 'repoPath', 'baseBranch').map((field) => ({ kind: 'missing' as const, field })) },
  { weight: 1, arbitrary: fc.tuple(unknownKey(RUN_FIELDS), anyJson).map(([field, value]) => ({ kind: 'extra' as const, field, value })) },
);

function mutate(body: Record<string, unknown>, change: Mutation): Record<string, unknown> {
  const out = { ...body };
  if (change.kind === 'missing') delete out[change.field];
  else out[change.field] = change.value;
  return out;
}

// ---- schedules ------------------------------------------------------------------------------------

const SCHEDULE_FIELDS = ['id', 'cron', 'every', 'overlap', 'catchupWindow', 'paused', 'note', 'request'];
/** What a schedule's fires ask for: a POST /v1/runs body without its run id or dry run. */
const REQUEST_FIELDS = RUN_FIELDS.filter((field) => field !== 'runId' && field !== 'dryRun');
const SCHEDULE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const DURATION = /^[1-9][0-9]*(s|m|h|d)$/;
const isScheduleId = (value: string) => SCHEDULE_ID.test(value);

/** Ids of schedules nobody made yet, under this file's prefix. */
const freshScheduleId = fc.stringMatching(/^[a-z0-9-]{1,24}$/).map((s) => `${scheduleTag}-g-${s}`);
/**
 * Schedule ids: the seeded ones (`exact` in ten; fewer where each costs Temporal work), unknown
 * ones of the right form, near misses of a seeded one, and strings that are no id at all.
 */
const scheduleIdOf = (known: string[], exact = 3) =>
  fc.oneof(
    { weight: exact, arbitrary: fc.constantFrom(...known) },
    { weight: 2, arbitrary: fc.oneof(fc.stringMatching(SCHEDULE_ID), fc.uuid()) },
    { weight: 1, arbitrary: fc.constantFrom(...known).chain((id) => fc.constantFrom(id.toUpperCase(), `${id}-`, `-${id}`, ` ${id}`, `${id}\u0000`, `${id}_x`, `${id}.`, `${id}/pause`, id.padEnd(63, 'x'), id.padEnd(64, 'x'))) },
    { weight: 7 - exact, arbitrary: notUuid },
  );

/** Specs that cannot fire while the suite runs: a leap day at the earliest, or an interval of over a hundred years. */
const farOff = fc.oneof(
  fc.constantFrom('0 0 29 2 *', '30 4 29 2 *', '59 23 29 2 *').map((cron) => ({ cron })),
  fc.integer({ min: 40_000, max: 100_000 }).chain((days) => fc.constantFrom(`${days}d`, `${days * 24}h`)).map((every) => ({ every })),
);
/** Notes Temporal keeps: NULs too, which it carries, and its whole 1,000 bytes. */
const noteRight = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.constantFrom('', 'a\u0000b', 'n'.repeat(500), '€'.repeat(333) + 'n'));
/** Text with half a surrogate pair in it. */
const unpaired = fc.tuple(fc.string({ maxLength: 20 }), fc.constantFrom('\uD800', '\uDBFF', '\uDFFF'), fc.string({ maxLength: 20 })).map(([a, half, b]) => `${a}${half}${b}`);
/** Too long in characters, or in the bytes Temporal counts (400 characters, 1,200 bytes). */
const noteWrong = fc.oneof(notA('string'), fc.constantFrom('n'.repeat(501), '€'.repeat(400)), unpaired);

/** A body that would pass: a schedule that cannot fire during the suite, asking for a run on a real repository. */
const validSchedule = (id: fc.Arbitrary<string>) =>
  fc
    .tuple(
      fc.record(
        {
          id,
          overlap: fc.constantFrom('skip', 'allow'),
          catchupWindow: fc.integer({ min: 1, max: 10_000 }).chain((n) => fc.constantFrom(`${n}s`, `${n}m`, `${n}h`, `${n}d`)),
          paused: fc.boolean(),
          note: noteRight,
          request: validStart().map(({ runId: _runId, dryRun: _dryRun, ...request }) => request),
        },
        { requiredKeys: ['id', 'request'] },
      ),
      farOff,
    )
    .map(([body, spec]): Record<string, unknown> => ({ ...body, ...spec }));

const durationWrong = () =>
  fc.oneof(notA('string'), fc.constantFrom('', '0s', '15', '1.5h', '90 minutes', '1w', '-1h', ' 1h', '1h ', '01h', '1H', '1h30m', 'PT1H'), anyText.filter((s) => !DURATION.test(s)));
/** For each field, values that are certainly wrong for it. */
const wrongSchedule: Record<string, () => fc.Arbitrary<unknown>> = {
  id: () => fc.oneof(notA('string'), fc.constantFrom('', 'Nightly', 'a_b', 'a.b', '-x', 'x'.repeat(64), 'é'), anyText.filter((s) => !isScheduleId(s))),
  // Strings Temporal refuses as well as ones the schema does: these reach it (after the request is checked).
  cron: () =>
    fc.oneof(
      notA('string'),
      fc.constantFrom('', '   ', 'c'.repeat(201), 'every day at noon', '61 * * * *', '* * *', '0 25 * * *', '* * * 13 *', '0 0 0 * *', '*/0 * * * *', '0 0 1 1 8', 'TZ=Nowhere/Atall 0 0 29 2 *', '* * * * * * * * *'),
      fc.string({ maxLength: 30 }).map((s) => `x ${s}`),
      unstorable,
      unstorable.map((s) => `0 0 29 2 *${s}`),
    ),
  every: durationWrong,
  overlap: () => fc.oneof(notA('string'), fc.constantFrom('', 'SKIP', 'buffer', 'allow_all', 'skip ')),
  catchupWindow: durationWrong,
  paused: () => notA('boolean'),
  note: () => noteWrong,
};

/**
 * A change that puts a schedule body one field away from right, and the fields its refusal may
 * name. A request's fields checked after validation (template, repository, branch, agents) are
 * named as POST /v1/runs names them: body.repoPath, not body.request.repoPath.
 */
const scheduleMutation = (): fc.Arbitrary<{ change: Mutation; named: string[] }> => {
  const ofRequest: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...REQUEST_FIELDS).chain((field) => wrongStart[field]!().map((value) => ({ kind: 'wrong' as const, field, value }))) },
    { weight: 1, arbitrary: fc.constantFrom('requirementsMd', 'repoPath', 'baseBranch').map((field) => ({ kind: 'missing' as const, field })) },
    // A run id or a dry run is no part of what a fire asks for.
    { weight: 1, arbitrary: fc.tuple(fc.oneof(fc.constantFrom('runId', 'dryRun'), unknownKey(RUN_FIELDS)), anyJson).map(([field, value]) => ({ kind: 'extra' as const, field, value })) },
  );
  const request = validStart().map(({ runId: _runId, dryRun: _dryRun, ...request }): Record<string, unknown> => request);
  return fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...Object.keys(wrongSchedule)).chain((field) => wrongSchedule[field]!().map((value) => ({ change: { kind: 'wrong' as const, field, value }, named: [`body.${field}`] }))) },
    { weight: 1, arbitrary: fc.oneof(notA('object'), fc.constant({})).map((value) => ({ change: { kind: 'wrong' as const, field: 'request', value }, named: ['body.request'] })) },
    {
      weight: 4,
      arbitrary: fc.tuple(request, ofRequest).map(([r, c]) => ({ change: { kind: 'wrong' as const, field: 'request', value: mutate(r, c) }, named: ['body.request', c.kind === 'extra' ? c.field : `body.${c.field}`] })),
    },
    // A missing cron: neither cron nor every (see the property).
    { weight: 1, arbitrary: fc.constantFrom('id', 'request', 'cron').map((field) => ({ change: { kind: 'missing' as const, field }, named: [`body.${field}`] })) },
    { weight: 1, arbitrary: fc.tuple(unknownKey(SCHEDULE_FIELDS), anyJson).map(([field, value]) => ({ change: { kind: 'extra' as const, field, value }, named: [field] })) },
  );
};

const scheduleHandle = (id: string) => new Client({ connection: temporal }).schedule.getHandle(workflowIds.schedule(id));

describe('generated requests: every route answers below 500, names what it refuses and writes nothing for it', () => {
  it('POST /v1/runs: a body one field away from right is refused naming that field', async () => {
    await fc.assert(
      fc.asyncProperty(validStart(), mutation, async (body, change) => {
        const payload = mutate(body, change);
        const response = await send({ route: 'POST /v1/runs', method: 'POST', url: '/v1/runs', payload });
        expectNames(response, change.kind === 'extra' ? change.field : `body.${change.field}`, `${change.kind} ${change.field}`);
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  it('POST /v1/runs: any body at all never starts a run, and a refusal names only body fields', async () => {
    const garbage = anyBody(fc.constantFrom(...RUN_FIELDS).chain((field) => fc.tuple(fc.constant(field), fc.oneof(anyJson, wrongStart[field]!()))));
    await fc.assert(
      fc.asyncProperty(garbage, async (body) => {
        const payload = 'raw' in body ? body.raw.payload : body.json;
        const headers = 'raw' in body ? { 'content-type': body.raw.type } : { 'content-type': 'application/json' };
        const json = 'raw' in body ? payload : JSON.stringify(payload ?? null);
        const response = await send({ route: 'POST /v1/runs', method: 'POST', url: '/v1/runs', headers, payload: json });
        // No body generated here names a git repository, so nothing can pass.
        expect([400, 413, 415], response.body).toContain(response.statusCode);
      }),
      { numRuns: RUNS / 2 },
    );
  }, FUZZ_TIMEOUT);

  it('GET /v1/runs: state, limit and cursor right and wrong', async () => {
    const cursorish = fc.oneof(
      fc.constant(seed.cursor),
      fc.string({ maxLength: 40 }),
      fc.tuple(fc.date({ noInvalidDate: true }), fc.uuid()).map(([d, u]) => Buffer.from(JSON.stringify([d.toISOString(), u])).toString('base64url')),
      anyJson.map((j) => Buffer.from(JSON.stringify(j) ?? 'undefined').toString('base64url')),
      fc.tuple(anyText, anyText).map((pair) => Buffer.from(JSON.stringify(pair)).toString('base64url')),
    );
    const validCursor = (c: string) => {
      if (c === '' || c === seed.cursor) return true;
      try {
        const decoded = JSON.parse(Buffer.from(c, 'base64url').toString());
        return Array.isArray(decoded) && decoded.length === 2 && z.iso.datetime().safeParse(decoded[0]).success && new Date(decoded[0]).getUTCFullYear() >= 1 && isUuid(decoded[1]);
      } catch {
        return false;
      }
    };
    const query = queryOf({ state: fc.constantFrom(...RUN_STATES, 'bogus', ''), limit: fc.oneof(fc.integer({ min: -5, max: 300 }).map(String), fc.constantFrom('1.5', '1e2', ' 7', '0x10', 'Infinity', '')), cursor: cursorish });
    await fc.assert(
      fc.asyncProperty(query, async (pairs) => {
        const response = await send({ route: 'GET /v1/runs', method: 'GET', url: `/v1/runs${queryString(pairs)}` });
        const states = valuesOf(pairs, 'state');
        const cursors = valuesOf(pairs, 'cursor');
        const bad = [
          ...(states.length > 1 || (states.length === 1 && !(RUN_STATES as readonly string[]).includes(states[0]!)) ? ['query.state'] : []),
          ...(numberIn(valuesOf(pairs, 'limit'), 1, 200) ? [] : ['query.limit']),
          ...(cursors.length > 1 || (cursors.length === 1 && !validCursor(cursors[0]!)) ? ['query.cursor'] : []),
        ];
        if (bad.length === 0) expect(response.statusCode, response.body).toBe(200);
        else expect(bad.some((field) => response.body.includes(field)), `${shown(pairs)} should name one of ${bad}: ${response.body}`).toBe(true);
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  /** A route under /v1/runs/:runId that only reads: its answer for each kind of id. */
  function readingRoute(name: string, suffix: string, found: (runId: string) => number) {
    it(`${name}: ids right and wrong`, async () => {
      await fc.assert(
        fc.asyncProperty(idOf(seed.live, seed.done, seed.orphan), queryOf({}), async (runId, pairs) => {
          const response = await send({ route: name, method: 'GET', url: `/v1/runs/${segment(runId)}${suffix}${queryString(pairs)}` });
          expectOutcome(response, idsFirst([[runId, 'params.runId']]) ?? { status: found(runId.toLowerCase()) });
        }),
        { numRuns: RUNS },
      );
    }, FUZZ_TIMEOUT);
  }
  const seeded = (ok: number) => (runId: string) => ([seed.live, seed.done, seed.orphan].includes(runId) ? ok : 404);
  readingRoute('GET /v1/runs/:runId', '', seeded(200));
  readingRoute('GET /v1/runs/:runId/approvals', '/approvals', seeded(200));
  readingRoute('GET /v1/runs/:runId/report', '/report', (runId) => (runId === seed.done ? 200 : 404));

  it('GET /v1/runs/:runId/events: ids, after, Accept and Last-Event-ID right and wrong', async () => {
    const request = fc.record({
      runId: idOf(seed.live, seed.done, seed.orphan),
      pairs: queryOf({ after: fc.oneof(fc.integer({ min: -3, max: 10 }).map(String), fc.constantFrom('1e3', '1.5', '99999999999', '2147483648', '2147483647', '-0', '')) }),
      // A live stream of a run that goes on never ends: streams are asked of the ended run only.
      stream: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
      lastEventId: fc.option(fc.oneof(headerText, fc.constantFrom('1e20', '99999999999', '-1', '3', 'NaN', '0x10')), { nil: undefined }),
      accept: fc.option(fc.oneof(headerText, fc.constantFrom('application/json', '*/*', 'text/html')), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(request, async ({ runId, pairs, stream, lastEventId, accept }) => {
        const streaming = stream && ![seed.live, seed.orphan].includes(runId.toLowerCase());
        const headers: Record<string, string> = {};
        if (streaming) headers.accept = 'text/event-stream';
        else if (accept !== undefined && !accept.includes('text/event-stream')) headers.accept = accept;
        if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
        const response = await send({ route: 'GET /v1/runs/:runId/events', method: 'GET', url: `/v1/runs/${segment(runId)}/events${queryString(pairs)}`, headers });
        expectOutcome(
          response,
          idsFirst([[runId, 'params.runId']]) ??
            (numberIn(valuesOf(pairs, 'after'), 0, 2 ** 31 - 1) ? { status: seeded(200)(runId.toLowerCase()) } : { names: 'query.after' }),
        );
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  it('GET /v1/runs/:runId/artifacts/:artifactId and …/sessions/:sessionId/transcript: ids right and wrong', async () => {
    for (const [name, what, ids, param] of [
      ['GET /v1/runs/:runId/artifacts/:artifactId', 'artifacts', [seed.liveArtifact, seed.missingArtifact], 'params.artifactId'],
      ['GET /v1/runs/:runId/sessions/:sessionId/transcript', 'sessions', [seed.liveSession], 'params.sessionId'],
    ] as const) {
      await fc.assert(
        fc.asyncProperty(idOf(seed.live, seed.done), idOf(...ids), async (runId, childId) => {
          const url = `/v1/runs/${segment(runId)}/${what}/${segment(childId)}${what === 'sessions' ? '/transcript' : ''}`;
          const response = await send({ route: name, method: 'GET', url });
          const found = runId.toLowerCase() === seed.live && (ids as readonly string[]).includes(childId.toLowerCase());
          expectOutcome(response, idsFirst([[runId, 'params.runId'], [childId, param]]) ?? { status: found ? 200 : 404 });
        }),
        { numRuns: RUNS },
      );
    }
  }, FUZZ_TIMEOUT);

  it('GET /v1/approvals: limit right and wrong', async () => {
    await fc.assert(
      fc.asyncProperty(queryOf({ limit: fc.oneof(fc.integer({ min: -5, max: 600 }).map(String), fc.constantFrom('1.5', '1e2', '', 'ten')) }), async (pairs) => {
        const response = await send({ route: 'GET /v1/approvals', method: 'GET', url: `/v1/approvals${queryString(pairs)}` });
        expectOutcome(response, numberIn(valuesOf(pairs, 'limit'), 1, 500) ? { status: 200 } : { names: 'query.limit' });
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  /** Bodies for the routes that take {clientToken, …}: right ones, ones a field away from right, and raw ones. */
  function bodyOf(fields: Record<string, { right: fc.Arbitrary<unknown>; wrong: fc.Arbitrary<unknown>; required?: boolean }>) {
    const names = Object.keys(fields);
    const right = fc.record(Object.fromEntries(names.map((n) => [n, fields[n]!.right])), { requiredKeys: names.filter((n) => fields[n]!.required) });
    const change: fc.Arbitrary<Mutation | undefined> = fc.oneof(
      { weight: 3, arbitrary: fc.constant(undefined) },
      { weight: 5, arbitrary: fc.constantFrom(...names).chain((field) => fields[field]!.wrong.map((value) => ({ kind: 'wrong' as const, field, value }))) },
      ...(names.some((n) => fields[n]!.required) ? [{ weight: 1, arbitrary: fc.constantFrom(...names.filter((n) => fields[n]!.required)).map((field) => ({ kind: 'missing' as const, field })) }] : []),
      { weight: 1, arbitrary: fc.tuple(unknownKey(names), anyJson).map(([field, value]) => ({ kind: 'extra' as const, field, value })) },
    );
    return fc.oneof(
      { weight: 9, arbitrary: fc.tuple(right, change).map(([body, c]) => ({ body: c ? mutate(body, c) : body, change: c, raw: undefined })) },
      { weight: 1, arbitrary: rawBody.map((raw) => ({ body: undefined, change: undefined, raw })) },
    );
  }
  type GeneratedBody = { body: unknown; change: Mutation | undefined; raw: { payload: string; type: string } | undefined };
  const token = fc.oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), fc.constantFrom('same', 'again'));
  const tokenWrong = fc.oneof(notA('string'), fc.constantFrom('', 'x'.repeat(201)), unstorable);
  const text = (max: number) => fc.string({ unit: 'grapheme', maxLength: 60 }).filter((s) => s.length <= max);
  const textWrong = (max: number) => fc.oneof(notA('string'), fc.constant('y'.repeat(max + 1)), unstorable);
  /** No body at all: what a route whose body is optional gets when a client sends none. */
  const noBody: GeneratedBody = { body: undefined, change: undefined, raw: undefined };
  const payloadOf = (b: GeneratedBody) =>
    b.raw
      ? { headers: { 'content-type': b.raw.type }, payload: b.raw.payload }
      : b.body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(b.body) };
  /** What a body is refused for before the route looks at it: unreadable, or a field away from right. */
  const bodyRefusal = (b: GeneratedBody): Expected | undefined =>
    b.raw ? { statusIn: [400, 415] } : b.change ? { names: b.change.kind === 'extra' ? b.change.field : `body.${b.change.field}` } : undefined;

  it('POST /v1/runs/:runId/abort: ids and bodies right and wrong', async () => {
    const body = bodyOf({ clientToken: { right: token, wrong: tokenWrong, required: true }, reason: { right: text(2_000), wrong: textWrong(2_000) } });
    await fc.assert(
      fc.asyncProperty(idOf(seed.live, seed.done, seed.orphan), body, async (runId, b) => {
        const response = await send({ route: 'POST /v1/runs/:runId/abort', method: 'POST', url: `/v1/runs/${segment(runId)}/abort`, ...payloadOf(b) });
        const id = runId.toLowerCase();
        // The live run's workflow takes the signal; the ended one has ended; the orphan has no workflow.
        const status = id === seed.live ? 202 : id === seed.done ? 200 : id === seed.orphan ? 409 : 404;
        expectOutcome(response, idsFirst([[runId, 'params.runId']], b) ?? bodyRefusal(b) ?? { status });
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  it('POST /v1/runs/:runId/approvals/:approvalId: ids and decisions right and wrong', async () => {
    const body = bodyOf({
      action: { right: fc.constantFrom('approve', 'reject', 'abort'), wrong: fc.oneof(notA('string'), fc.constantFrom('maybe', 'APPROVE', '')), required: true },
      clientToken: { right: token, wrong: tokenWrong, required: true },
      comment: { right: text(10_000), wrong: textWrong(10_000) },
      decidedBy: { right: text(200), wrong: textWrong(200) },
    });
    const runOf: Record<string, string> = { [seed.livePending]: seed.live, [seed.liveClosed]: seed.live, [seed.orphanPending]: seed.orphan, [seed.doneApproved]: seed.done };
    /** What a decision that passes validation gets, from what stands on the request. */
    const decisionOutcome = (run: string, approval: string, action: string): Expected => {
      if (runOf[approval] !== run) return { status: 404 };
      if (approval === seed.liveClosed) return { code: 'approval_closed' };
      // A run whose workflow is gone takes no decision (and records none).
      if (run === seed.orphan) return { code: 'run_not_running' };
      const standing = decided.get(approval);
      if (standing && standing !== action) return { code: 'decision_conflict' };
      decided.set(approval, action);
      return { status: run === seed.done ? 200 : 202 };
    };
    await fc.assert(
      fc.asyncProperty(idOf(seed.live, seed.done, seed.orphan), idOf(...Object.keys(runOf)), body, async (runId, approvalId, b) => {
        const url = `/v1/runs/${segment(runId)}/approvals/${segment(approvalId)}`;
        const response = await send({ route: 'POST /v1/runs/:runId/approvals/:approvalId', method: 'POST', url, ...payloadOf(b) });
        const refused = idsFirst([[runId, 'params.runId'], [approvalId, 'params.approvalId']], b) ?? bodyRefusal(b);
        expectOutcome(response, refused ?? decisionOutcome(runId.toLowerCase(), approvalId.toLowerCase(), (b.body as { action: string }).action));
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  /**
   * Bodies for a POST that takes none: ones neither JSON nor plain text, refused before the route
   * runs (`unreadable` of them to each JSON body, which is ignored, and each request without one).
   */
  function ignoredBody(unreadable: number): fc.Arbitrary<{ payload: string; type: string; read: boolean } | undefined> {
    const refused = fc.oneof(
      fc.record({ payload: fc.constantFrom('{', '[1,', 'nul', '{"a":1}garbage', '\u0000', '{"__proto__":{"x":1}}'), type: fc.constant('application/json') }),
      // Types read as JSON or text (whatever their charset) are not among these.
      rawBody.filter((b) => !/^(application\/json|text\/plain)(;|$)/.test(b.type)),
    );
    return fc.oneof(
      { weight: unreadable, arbitrary: refused.map((b) => ({ ...b, read: false })) },
      { weight: 1, arbitrary: anyJson.map((j) => ({ payload: JSON.stringify(j) ?? 'null', type: 'application/json', read: true })) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    );
  }

  /**
   * Routes that take no input: whatever query or headers they get, they answer as usual; a POST
   * body that is neither JSON nor plain text is refused before the route runs, and JSON is
   * ignored. A reload reads every definition again, so most of its bodies are ones refused first.
   */
  function inputless(name: string, method: 'GET' | 'POST', url: string, runs = RUNS) {
    it(`${name}: ignores what it does not take`, async () => {
      const extra = fc.record({
        pairs: queryOf({}),
        header: fc.option(fc.tuple(fc.stringMatching(/^x-[a-z-]{1,20}$/), headerText), { nil: undefined }),
        body: method === 'POST' ? ignoredBody(16) : fc.constant(undefined),
      });
      await fc.assert(
        fc.asyncProperty(extra, async ({ pairs, header, body }) => {
          const headers: Record<string, string> = header ? { [header[0]]: header[1] } : {};
          if (body) headers['content-type'] = body.type;
          const response = await send({ route: name, method, url: `${url}${queryString(pairs)}`, headers, ...(body ? { payload: body.payload } : {}) });
          expectOutcome(response, !body || body.read ? { status: 200 } : { statusIn: [400, 415] });
        }),
        { numRuns: runs },
      );
    }, FUZZ_TIMEOUT);
  }
  inputless('GET /healthz', 'GET', '/healthz');
  inputless('GET /readyz', 'GET', '/readyz');
  inputless('GET /v1/templates', 'GET', '/v1/templates');
  inputless('POST /v1/definitions/reload', 'POST', '/v1/definitions/reload');
  // Documents for people and tools, beyond the API's own routes: fewer requests.
  inputless('GET /openapi.json', 'GET', '/openapi.json', RUNS / 4);
  inputless('GET /', 'GET', '/', RUNS / 4);

  // Schedules: the seeded ones are paused with fires years away, and what a trigger fires waits on
  // the queue nobody polls; the generated creates that pass are of the same kind, deleted at once.
  // Each request naming a schedule Temporal has costs a call to it: those are a few in a hundred.

  it('POST /v1/schedules: a body one field away from right is refused naming that field, and makes no Temporal Schedule', async () => {
    await fc.assert(
      fc.asyncProperty(validSchedule(freshScheduleId), scheduleMutation(), async (body, { change, named }) => {
        const payload = mutate(body, change);
        if (change.kind === 'missing' && change.field === 'cron') delete payload.every;
        const response = await send({ route: 'POST /v1/schedules', method: 'POST', url: '/v1/schedules', payload });
        expectNames(response, named, `${change.kind} ${change.field}`);
        // Only a body the schema passes reaches the route, and so Temporal: such a refusal left nothing there either.
        if (createScheduleBody.safeParse(payload).success) await expect(scheduleHandle(payload.id as string).describe()).rejects.toThrow(ScheduleNotFoundError);
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  it('POST /v1/schedules: any body at all makes no schedule, and a refusal names only body fields', async () => {
    const garbage = anyBody(fc.constantFrom(...SCHEDULE_FIELDS).chain((field) => fc.tuple(fc.constant(field), wrongSchedule[field] ? fc.oneof(anyJson, wrongSchedule[field]()) : anyJson)));
    await fc.assert(
      fc.asyncProperty(garbage, async (body) => {
        const headers = 'raw' in body ? { 'content-type': body.raw.type } : { 'content-type': 'application/json' };
        const payload = 'raw' in body ? body.raw.payload : JSON.stringify(body.json ?? null);
        const response = await send({ route: 'POST /v1/schedules', method: 'POST', url: '/v1/schedules', headers, payload });
        // No body generated here asks for a run on a git repository, so nothing can pass.
        expect([400, 413, 415], response.body).toContain(response.statusCode);
      }),
      { numRuns: RUNS / 2 },
    );
  }, FUZZ_TIMEOUT);

  it('POST /v1/schedules: a right body makes one schedule; the same again gets the same; another under a taken id is refused', async () => {
    const made = new Set<string>();
    const create = (payload: Record<string, unknown>) => send({ route: 'POST /v1/schedules', method: 'POST', url: '/v1/schedules', payload });
    await fc.assert(
      fc.asyncProperty(validSchedule(fc.oneof(freshScheduleId, fc.constantFrom(...sched.live))), async (body) => {
        const id = body.id as string;
        const rows = baseline.schedules!;
        const response = await create(body);
        // A seeded schedule asks for another run than any generated one: its id is taken.
        if (sched.live.includes(id)) {
          expectOutcome(response, { code: 'schedule_exists' });
          return;
        }
        expect(response.statusCode, response.body).toBe(201);
        // One row more, or the deleted one of the same id back.
        expect(baseline.schedules).toBe(made.has(id) ? rows : rows + 1);
        made.add(id);
        expect(JSON.parse(response.body)).toMatchObject({ id, paused: body.paused ?? false, cron: body.cron ?? null, every: body.every ?? null, fires: [] });
        expect((await scheduleHandle(id).describe()).state.paused).toBe(body.paused ?? false);
        const again = await create(body);
        expect(again.statusCode, again.body).toBe(200);
        expect(JSON.parse(again.body).createdAt).toBe(JSON.parse(response.body).createdAt);
        expectOutcome(await create({ ...body, overlap: body.overlap === 'allow' ? 'skip' : 'allow' }), { code: 'schedule_exists' });
        const deleted = await send({ route: 'DELETE /v1/schedules/:scheduleId', method: 'DELETE', url: `/v1/schedules/${id}` });
        expect(JSON.parse(deleted.body)).toEqual({ id, deleted: true });
        await expect(scheduleHandle(id).describe()).rejects.toThrow(ScheduleNotFoundError);
      }),
      { numRuns: 20 },
    );
  }, FUZZ_TIMEOUT);

  it('GET /v1/schedules/:scheduleId: ids right, wrong, unknown and hostile', async () => {
    await fc.assert(
      fc.asyncProperty(scheduleIdOf([...sched.live, sched.lost, sched.deleted]), queryOf({}), async (id, pairs) => {
        const response = await send({ route: 'GET /v1/schedules/:scheduleId', method: 'GET', url: `/v1/schedules/${segment(id)}${queryString(pairs)}` });
        const found = [...sched.live, sched.lost].includes(id);
        expectOutcome(response, idsFirst([[id, 'params.scheduleId']], undefined, isScheduleId) ?? { status: found ? 200 : 404 });
        if (!found) return;
        // What Temporal no longer has, it says it has not: whether it is paused is not known. A
        // live one is never missing; it may go unanswered (busy), and then its state is not known either.
        const { temporal, paused } = JSON.parse(response.body);
        expect(id === sched.lost ? ['missing'] : ['found', 'unreachable'], response.body).toContain(temporal);
        expect(paused === null, response.body).toBe(temporal !== 'found');
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  it('POST /v1/schedules/:scheduleId/pause and …/resume: ids and notes right and wrong, or no body at all', async () => {
    const body = fc.oneof({ weight: 9, arbitrary: bodyOf({ note: { right: noteRight, wrong: noteWrong } }) }, { weight: 1, arbitrary: fc.constant(noBody) });
    // Each one that passes finds the schedule the other way round, and is undone: a pause or a
    // resume that changed nothing shows.
    for (const [action, undo] of [['resume', 'pause'], ['pause', 'resume']] as const) {
      for (const id of sched.live) expect((await api.inject({ method: 'POST', url: `/v1/schedules/${id}/${undo}`, payload: {} })).statusCode).toBe(200);
      await fc.assert(
        fc.asyncProperty(scheduleIdOf([...sched.live, sched.lost, sched.deleted], 2), body, async (id, b) => {
          const response = await send({ route: `POST /v1/schedules/:scheduleId/${action}`, method: 'POST', url: `/v1/schedules/${segment(id)}/${action}`, ...payloadOf(b) });
          // The lost one's Temporal Schedule is gone: nothing to pause or resume.
          expectOutcome(response, idsFirst([[id, 'params.scheduleId']], b, isScheduleId) ?? bodyRefusal(b) ?? { status: sched.live.includes(id) ? 200 : 404 });
          if (response.statusCode !== 200 || !sched.live.includes(id)) return;
          expect(JSON.parse(response.body).paused, `${shown(b.body)} → ${response.body}`).toBe(action === 'pause');
          await (undo === 'pause' ? scheduleHandle(id).pause('undone by the fuzz') : scheduleHandle(id).unpause('undone by the fuzz'));
        }),
        { numRuns: RUNS },
      );
    }
    // Paused again, as they were seeded.
    for (const id of sched.live) expect((await api.inject({ method: 'POST', url: `/v1/schedules/${id}/pause`, payload: {} })).statusCode).toBe(200);
  }, 2 * FUZZ_TIMEOUT);

  it('POST /v1/schedules/:scheduleId/trigger: ids right, wrong, unknown and hostile; a body is not read', async () => {
    // Each trigger of a schedule Temporal has starts a workflow (left waiting): one schedule takes them.
    const live = sched.live[0]!;
    await fc.assert(
      fc.asyncProperty(scheduleIdOf([live, sched.lost, sched.deleted], 2), ignoredBody(1), async (id, body) => {
        const response = await send({ route: 'POST /v1/schedules/:scheduleId/trigger', method: 'POST', url: `/v1/schedules/${segment(id)}/trigger`, ...(body ? { headers: { 'content-type': body.type }, payload: body.payload } : {}) });
        const refused = idsFirst([[id, 'params.scheduleId']], body && !body.read ? { raw: true } : undefined, isScheduleId);
        expectOutcome(response, refused ?? { status: id === live ? 202 : 404 });
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  it('DELETE /v1/schedules/:scheduleId: ids right, wrong, unknown and hostile; each schedule goes once', async () => {
    const known = [...sched.doomed, ...sched.live, sched.lost, sched.deleted];
    const listed = await send({ route: 'GET /v1/schedules', method: 'GET', url: '/v1/schedules' });
    expect(JSON.parse(listed.body).schedules.map((s: { id: string }) => s.id).sort()).toEqual(known.filter((id) => id !== sched.deleted).sort());
    const gone = new Set([sched.deleted]);
    await fc.assert(
      fc.asyncProperty(scheduleIdOf(known), queryOf({}), async (id, pairs) => {
        const response = await send({ route: 'DELETE /v1/schedules/:scheduleId', method: 'DELETE', url: `/v1/schedules/${segment(id)}${queryString(pairs)}` });
        const refused = idsFirst([[id, 'params.scheduleId']], undefined, isScheduleId);
        const found = known.includes(id) && !gone.has(id);
        expectOutcome(response, refused ?? { status: found ? 200 : 404 });
        if (refused || !found) return;
        gone.add(id);
        await expect(scheduleHandle(id).describe()).rejects.toThrow(ScheduleNotFoundError);
        expect((await api.inject({ url: `/v1/schedules/${id}` })).statusCode).toBe(404);
      }),
      { numRuns: RUNS },
    );
    expect([...gone].sort()).toEqual([...known].sort());
  }, FUZZ_TIMEOUT);

  // Listing asks Temporal about every schedule: by now all are deleted, and what is fuzzed is the
  // input the route does not take (the list itself was checked above, and by each create).
  inputless('GET /v1/schedules', 'GET', '/v1/schedules');

  it('any method on any path: never a 5xx, and every refusal in devflow\'s error shape', async () => {
    const pathPart = fc.oneof(fc.constantFrom('v1', 'runs', 'approvals', 'abort', 'events', 'report', '..', '.', '%2e%2e', '%', '%zz', '%00', ''), fc.uuid(), fc.string({ maxLength: 12 }).map(segment));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH') as fc.Arbitrary<Probe['method']>, fc.array(pathPart, { minLength: 1, maxLength: 6 }), async (method, parts) => {
        await send({ route: 'any', method, url: `/${parts.join('/')}`, ...(method === 'GET' || method === 'DELETE' ? {} : { headers: { 'content-type': 'application/json' }, payload: '{}' }) });
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT);

  it('sent at least a thousand requests to every route', () => {
    const routes = ['POST /v1/runs', 'GET /v1/runs', 'GET /v1/runs/:runId', 'GET /v1/runs/:runId/approvals', 'GET /v1/runs/:runId/report', 'GET /v1/runs/:runId/events', 'GET /v1/runs/:runId/artifacts/:artifactId', 'GET /v1/runs/:runId/sessions/:sessionId/transcript', 'GET /v1/approvals', 'POST /v1/runs/:runId/abort', 'POST /v1/runs/:runId/approvals/:approvalId', 'GET /healthz', 'GET /readyz', 'GET /v1/templates', 'POST /v1/definitions/reload',
      'POST /v1/schedules', 'GET /v1/schedules', 'GET /v1/schedules/:scheduleId', 'DELETE /v1/schedules/:scheduleId', 'POST /v1/schedules/:scheduleId/pause', 'POST /v1/schedules/:scheduleId/resume', 'POST /v1/schedules/:scheduleId/trigger'];
    for (const route of routes) expect(sent.get(route) ?? 0, route).toBeGreaterThanOrEqual(RUNS);
  });
});

// ---- over a real socket ----------------------------------------------------------------------------

/** One request on its own connection: the status and body, however the server ends it. */
function rawRequest(port: number, options: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: options.headers, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
      response.on('error', reject);
    });
    // The server may answer and close before it has read everything sent: that is its right.
    request.on('error', (error) => (request.writableFinished ? undefined : reject(error)));
    if (options.body !== undefined && options.chunked) {
      const body = Buffer.from(options.body);
      for (let at = 0; at < body.length; at += 64 * 1024) request.write(body.subarray(at, at + 64 * 1024));
    } else if (options.body !== undefined) request.write(options.body);
    request.end();
  });
}

describe('over a real socket', () => {
  let port = 0;
  let listening: FastifyInstance;
  beforeAll(async () => {
    listening = await buildApi(deps);
    apps.push(listening);
    await listening.listen({ host: '127.0.0.1', port: 0 });
    port = (listening.server.address() as AddressInfo).port;
  });

  it('answers a body over the limit with 413 and a header block over the limit with 431, writing nothing', async () => {
    const before = await rowCounts();
    const big = JSON.stringify({ requirementsMd: 'x'.repeat(2 * 1024 * 1024), repoPath: seed.repo, baseBranch: 'main', dryRun: true });
    const json = { 'content-type': 'application/json' };
    const routes = ['/v1/runs', `/v1/runs/${seed.live}/abort`, `/v1/runs/${seed.live}/approvals/${seed.livePending}`, '/v1/definitions/reload'];
    for (const path of routes) {
      for (const chunked of [false, true]) {
        const response = await rawRequest(port, { method: 'POST', path, headers: chunked ? { ...json, 'transfer-encoding': 'chunked' } : json, body: big, chunked });
        expect(response.status, `${path} (chunked: ${chunked}): ${response.body}`).toBe(413);
        expect(JSON.parse(response.body).error.details.issues[0].field).toBe('body');
      }
    }
    for (const headers of [{ 'x-padding': 'p'.repeat(64 * 1024) }, Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`x-h${i}`, 'v'.repeat(100)]))]) {
      for (const path of ['/v1/runs', '/healthz', `/v1/runs/${seed.live}/events`]) {
        expect((await rawRequest(port, { path, headers })).status, path).toBe(431);
      }
    }
    expect(await rowCounts()).toEqual(before);
    // The server goes on answering.
    expect((await rawRequest(port, { path: '/healthz' })).status).toBe(200);
  });

  it('leaves no stream, connection or database client behind when event-stream clients leave mid-stream', async () => {
    const clients = Array.from({ length: 20 }, (_, i) => {
      let received = '';
      const request = http.get({ host: '127.0.0.1', port, path: `/v1/runs/${seed.live}/events`, agent: false, headers: { accept: 'text/event-stream', ...(i % 2 ? { 'last-event-id': ['1', 'garbage', '1e20', '99999999999', '-4'][i % 5]! } : {}) } }, (response) => {
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (received += chunk));
      });
      request.on('error', () => undefined);
      return { request, received: () => received };
    });
    await waitFor('every stream to be served', 10_000, async () => openEventStreams() === clients.length && clients.every((c) => c.received().includes('event: approval.requested')), 50);
    for (const client of clients) client.request.destroy();
    await waitFor('every stream to end', 5_000, async () => openEventStreams() === 0, 50);
    await waitFor('every connection to close', 5_000, async () => (await new Promise<number>((resolve) => listening.server.getConnections((_e, n) => resolve(n)))) === 0, 50);
    // Every database client the streams used is back in the pool.
    await waitFor('the pool to get its clients back', 5_000, async () => own.pool.totalCount === own.pool.idleCount && own.pool.waitingCount === 0, 50);
    // A stream of an ended run ends by itself, having sent every event.
    const ended = await rawRequest(port, { path: `/v1/runs/${seed.done}/events`, headers: { accept: 'text/event-stream' } });
    expect(ended.status).toBe(200);
    expect(ended.body).toContain('event: run.completed');
    expect(openEventStreams()).toBe(0);
  });
});

// ---- a hundred starts of one run --------------------------------------------------------------------

describe('a hundred simultaneous starts of one runId', () => {
  it('make one run: one row, one run.created event, one workflow; the run is aborted and ends', async () => {
    const temporalClient = new Client({ connection: temporal });
    const shared = await buildApi({ db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, workspaceRoot: h.workspaceRoot });
    apps.push(shared);
    const runId = randomUUID();
    const body = { requirementsMd: '# Once\n', repoPath: makeRepo(h.root), baseBranch: 'main', backend: 'fake', runId, scenarios: { spec: 'timeout' }, timing: { ...h.timing, artifactTimeoutMs: 60_000 } };
    const started = JSON.stringify({ runId, workflowId: runWorkflowId(runId) });
    const start = () => shared.inject({ method: 'POST', url: '/v1/runs', payload: body });
    const answers = await Promise.all(Array.from({ length: 100 }, start));
    // Every start of one run waits its turn for the same lock, holding a database client: on a
    // busy machine some wait longer than a client may be waited for, and are told to retry (503).
    const busy = answers.filter((a) => a.statusCode === 503);
    expect(answers.filter((a) => a.statusCode !== 503).map((a) => `${a.statusCode} ${a.body}`)).toEqual(Array(100 - busy.length).fill(`202 ${started}`));
    for (const _ of busy) expect((await start()).body).toBe(started);
    expect(await h.db.select({ n: count() }).from(runs).where(eq(runs.id, runId))).toEqual([{ n: 1 }]);
    expect(await h.db.select({ n: count() }).from(runEvents).where(and(eq(runEvents.runId, runId), eq(runEvents.type, 'run.created')))).toEqual([{ n: 1 }]);
    // Temporal's list is eventually consistent: wait for the run to show, then count.
    const executions: string[] = [];
    await waitFor('the workflow to be listed', 10_000, async () => {
      executions.length = 0;
      for await (const execution of temporalClient.workflow.list({ query: `WorkflowId = '${runWorkflowId(runId)}'` })) executions.push(execution.runId);
      return executions.length > 0;
    }, 100);
    expect(executions).toHaveLength(1);

    const abort = await shared.inject({ method: 'POST', url: `/v1/runs/${runId}/abort`, payload: { clientToken: 'enough', reason: 'one run was enough' } });
    expect(abort.statusCode, abort.body).toBe(202);
    await temporalClient.workflow.getHandle(runWorkflowId(runId)).result();
    expect((await h.snapshot(runId)).run.state).toBe('aborted');
  }, 60_000);

  it('refuses text Postgres cannot store before anything is written or started', async () => {
    const shared = await buildApi({ db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, workspaceRoot: h.workspaceRoot });
    apps.push(shared);
    const repo = makeRepo(h.root);
    const temporalClient = new Client({ connection: temporal });
    await fc.assert(
      fc.asyncProperty(unstorable, fc.uuid(), async (requirementsMd, runId) => {
        const response = await shared.inject({ method: 'POST', url: '/v1/runs', payload: { requirementsMd, repoPath: repo, baseBranch: 'main', backend: 'fake', runId } });
        expectNames(response, 'body.requirementsMd', shown(requirementsMd));
        expect(await h.db.select({ n: count() }).from(runs).where(eq(runs.id, runId))).toEqual([{ n: 0 }]);
        await expect(temporalClient.workflow.getHandle(runWorkflowId(runId)).describe()).rejects.toThrow(/not found/i);
      }),
      { numRuns: 30 },
    );
  }, 60_000);
});
