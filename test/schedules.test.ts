// Scheduled runs against the real dev server and Postgres: a schedule is created, fired by
// Temporal (on its interval and by trigger), paused, resumed and deleted through the API; each
// fire slot makes at most one run, even fired four times at once across two workers; a fire
// that cannot start a run (overlap, the repository's limit, a bad request) is recorded with why.
// The race: two fire workflows on the worker and two fires from a second instance of its own
// (another database pool and client), all for one slot at once.
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { count, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createScheduleActivities } from '../activities/schedules.ts';
import { buildApi } from '../api/server.ts';
import type { StartRunDeps } from '../api/start-run.ts';
import { runEvents, runs, scheduleFires, schedules, tuiSessions } from '../db/schema.ts';
import { workflowIds } from '../lib/keys.ts';
import { scheduledRunId } from '../lib/scheduled-run-id.ts';
import { waitFor } from '../lib/wait.ts';
import { scheduledRunWorkflow } from '../workflows/scheduled-run.ts';
import { useDatabase } from './helpers/database.ts';
import { recordHistory, SCHEDULED_RUN_ERA } from './helpers/histories.ts';
import { makeRepo, useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness('fake');
const other = useDatabase(4);
let starts: Omit<StartRunDeps, 'db'>;
let api: FastifyInstance;
let temporal: Connection;

beforeAll(async () => {
  starts = { client: h.client, taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, maxRunsPerRepo: 1 };
  // The file's worker, given what a fire needs to start runs.
  await h.stopWorkers(() => true);
  await h.startWorker({ starts });
  temporal = await Connection.connect({ address: inject('temporalAddress') });
  api = await buildApi({ db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, maxRunsPerRepo: 1, workspaceRoot: h.workspaceRoot });
});
afterAll(async () => {
  await api?.close();
  await temporal?.close();
});

type Fire = { slot: string; outcome: 'started' | 'skipped'; runId: string | null; reasonCode: string | null; reason: string | null };
const json = (response: { body: string }) => JSON.parse(response.body);
const request = (over: Record<string, unknown> = {}) => ({ template: 'development@1', requirementsMd: '# Nightly\n\nTidy the README.\n', repoPath: makeRepo(h.root), baseBranch: 'main', backend: 'fake', timing: h.timing, ...over });
const create = (body: Record<string, unknown>) => api.inject({ method: 'POST', url: '/v1/schedules', payload: body });
const get = async (id: string) => json(await api.inject({ method: 'GET', url: `/v1/schedules/${id}` }));
const fires = async (id: string): Promise<Fire[]> => (await get(id)).fires;
const scheduleCount = async () => (await h.db.select({ n: count() }).from(schedules))[0]!.n;

async function trigger(id: string, firesBefore: number): Promise<Fire> {
  // A fire's slot is its second (Temporal names the fire's workflow by it): two triggers within
  // one second are one slot, and the second starts nothing. Each trigger here gets a second of its own.
  await sleep(1_050 - (Date.now() % 1_000));
  expect((await api.inject({ method: 'POST', url: `/v1/schedules/${id}/trigger` })).statusCode).toBe(202);
  let latest: Fire[] = [];
  await waitFor(`fire ${firesBefore + 1} of ${id}`, 20_000, async () => (latest = await fires(id)).length > firesBefore, 100);
  return latest[0]!;
}

async function abortRun(runId: string) {
  await api.inject({ method: 'POST', url: `/v1/runs/${runId}/abort`, payload: { clientToken: `stop-${runId}` } });
  await waitFor(`run ${runId} to end`, 20_000, async () => ['aborted', 'completed', 'failed'].includes((await h.snapshot(runId)).run.state), 100);
}

describe('schedules through the API', () => {
  it('refuses bad input naming the field, writing nothing', async () => {
    const before = await scheduleCount();
    const cases: [Record<string, unknown>, string][] = [
      [{ id: 'both', cron: '0 3 * * *', every: '1h', request: request() }, 'body.cron'],
      [{ id: 'neither', request: request() }, 'body.cron'],
      [{ id: 'Bad Id', every: '1h', request: request() }, 'body.id'],
      [{ id: 'bad-every', every: '90 minutes', request: request() }, 'body.every'],
      [{ id: 'bad-cron', cron: 'every day at noon', request: request() }, 'body.cron'],
      [{ id: 'bad-cron-fields', cron: '61 * * * *', request: request() }, 'body.cron'],
      [{ id: 'no-template', every: '1h', request: request({ template: 'nope@1' }) }, 'body.template'],
      [{ id: 'no-repo', every: '1h', request: request({ repoPath: '/nowhere/at/all' }) }, 'body.repoPath'],
      [{ id: 'with-run-id', every: '1h', request: { ...request(), runId: '3f1a2b3c-1d2e-4f00-9abc-0123456789ab' } }, 'body.request'],
    ];
    for (const [body, field] of cases) {
      const response = await create(body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.body, JSON.stringify(body)).toContain(field);
    }
    expect(await scheduleCount()).toBe(before);
    await expect(temporal.workflowService.describeSchedule({ namespace: 'default', scheduleId: workflowIds.schedule('bad-cron') })).rejects.toThrow();
  });

  it('creates, fires on trigger, skips an overlapping fire with the reason, pauses, resumes and deletes', async () => {
    const body = { id: 'nightly-tidy', cron: '0 3 * * *', request: request() };
    const created = await create(body);
    expect(created.statusCode).toBe(201);
    expect(json(created)).toMatchObject({ id: 'nightly-tidy', cron: '0 3 * * *', every: null, overlap: 'skip', paused: false, fires: [] });
    expect(new Date(json(created).nextFires[0]).getUTCHours()).toBe(3);
    expect((await create(body)).statusCode).toBe(200); // the same schedule again: the same answer
    const conflict = await create({ ...body, cron: '0 4 * * *' });
    expect([conflict.statusCode, json(conflict).error.code]).toEqual([409, 'schedule_exists']);

    const first = await trigger('nightly-tidy', 0);
    expect(first).toMatchObject({ outcome: 'started', runId: scheduledRunId('nightly-tidy', new Date(first.slot)) });
    await h.waitForGate(first.runId!, 'spec_approved');

    // The last run is still going: overlap `skip` records the fire and starts nothing.
    const runsBefore = (await h.db.select({ n: count() }).from(runs))[0]!.n;
    const second = await trigger('nightly-tidy', 1);
    expect(second).toMatchObject({ outcome: 'skipped', runId: null, reasonCode: 'schedule_overlap', reason: expect.stringContaining(first.runId!) });
    expect((await h.db.select({ n: count() }).from(runs))[0]!.n).toBe(runsBefore);

    await abortRun(first.runId!);
    const third = await trigger('nightly-tidy', 2);
    expect(third.outcome).toBe('started');
    await h.waitForGate(third.runId!, 'spec_approved');
    await abortRun(third.runId!);

    const paused = json(await api.inject({ method: 'POST', url: '/v1/schedules/nightly-tidy/pause', payload: { note: 'release freeze' } }));
    expect(paused).toMatchObject({ paused: true, note: 'release freeze' });
    expect(json(await api.inject({ method: 'POST', url: '/v1/schedules/nightly-tidy/resume', payload: {} }))).toMatchObject({ paused: false });
    expect(json(await api.inject({ method: 'GET', url: '/v1/schedules' })).schedules.map((s: { id: string }) => s.id)).toContain('nightly-tidy');

    expect(json(await api.inject({ method: 'DELETE', url: '/v1/schedules/nightly-tidy' }))).toEqual({ id: 'nightly-tidy', deleted: true });
    expect((await api.inject({ method: 'GET', url: '/v1/schedules/nightly-tidy' })).statusCode).toBe(404);
    await expect(h.client.schedule.getHandle(workflowIds.schedule('nightly-tidy')).describe()).rejects.toThrow(/not found/i);
    // Its runs and fires stay, as facts.
    expect(await h.db.select({ outcome: scheduleFires.outcome }).from(scheduleFires).where(eq(scheduleFires.scheduleId, 'nightly-tidy'))).toHaveLength(3);
  });

  it('fires on its interval; a fire at the repository limit is recorded as skipped, naming the run that holds it', async () => {
    const repoPath = makeRepo(h.root);
    const holder = json(await api.inject({ method: 'POST', url: '/v1/runs', payload: request({ repoPath }) }));
    await h.waitForGate(holder.runId, 'spec_approved');
    expect((await create({ id: 'every-two-seconds', every: '2s', overlap: 'allow', request: request({ repoPath }) })).statusCode).toBe(201);
    await waitFor('two fires', 20_000, async () => (await fires('every-two-seconds')).length >= 2, 200);
    const recorded = await fires('every-two-seconds');
    expect(json(await api.inject({ method: 'DELETE', url: '/v1/schedules/every-two-seconds' })).deleted).toBe(true);
    for (const fire of recorded) expect(fire).toMatchObject({ outcome: 'skipped', runId: null, reasonCode: 'repo_busy', reason: expect.stringContaining(holder.runId) });
    // Temporal's slots are two seconds apart, each recorded once.
    const slots = recorded.map((f) => new Date(f.slot).getTime()).sort();
    expect(new Set(slots).size).toBe(slots.length);
    expect(slots[1]! - slots[0]!).toBe(2_000);
    await abortRun(holder.runId);
  });

  it("says whether Temporal has the schedule: found, missing (deleted there) or unreachable", async () => {
    expect((await create({ id: 'asked', cron: '0 0 29 2 *', paused: true, request: request() })).statusCode).toBe(201);
    expect(await get('asked')).toMatchObject({ temporal: 'found', paused: true, nextFires: expect.arrayContaining([expect.stringMatching(/-02-29T00:00:00\.000Z$/)]) });

    // Temporal not answering: it is asked again for 5 s, then the row is shown with what is not known.
    const down = await buildApi({ db: h.db, pool: h.pool, temporal: Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 500 }), namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, maxRunsPerRepo: 1, workspaceRoot: h.workspaceRoot });
    try {
      const unanswered = await down.inject({ method: 'GET', url: '/v1/schedules/asked' });
      expect(unanswered.statusCode).toBe(200);
      expect(json(unanswered)).toMatchObject({ id: 'asked', temporal: 'unreachable', paused: null, nextFires: [] });
    } finally {
      await down.close();
    }

    await h.client.schedule.getHandle(workflowIds.schedule('asked')).delete();
    expect(await get('asked')).toMatchObject({ temporal: 'missing', paused: null, note: null, nextFires: [] });
    expect(json(await api.inject({ method: 'DELETE', url: '/v1/schedules/asked' })).deleted).toBe(true);
  });

  it('asks a busy Temporal again for a resume, and answers 503 to a fire it could not make: a second try could fire twice', async () => {
    expect((await create({ id: 'blinking', cron: '0 0 29 2 *', paused: true, request: request() })).statusCode).toBe(201);
    // Temporal as under load: its next `busy` calls are refused (RESOURCE_EXHAUSTED), then it answers as itself.
    let busy = 0;
    const blinking = new Proxy(temporal, {
      get(target, key) {
        if (key === 'withDeadline') {
          return <R>(deadline: number, call: () => Promise<R>) =>
            busy-- > 0 ? Promise.reject(Object.assign(new Error('8 RESOURCE_EXHAUSTED: namespace rate limit exceeded'), { code: 8 })) : target.withDeadline(deadline, call);
        }
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const shaky = await buildApi({ db: h.db, pool: h.pool, temporal: blinking, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, maxRunsPerRepo: 1, workspaceRoot: h.workspaceRoot });
    try {
      busy = 2;
      const resumed = await shaky.inject({ method: 'POST', url: '/v1/schedules/blinking/resume', payload: { note: 'after two refusals' } });
      expect(resumed.statusCode, resumed.body).toBe(200);
      expect(json(resumed)).toMatchObject({ temporal: 'found', paused: false, note: 'after two refusals' });
      expect(busy).toBe(-2);

      busy = 1;
      const fired = await shaky.inject({ method: 'POST', url: '/v1/schedules/blinking/trigger' });
      expect(fired.statusCode, fired.body).toBe(503);
      expect(json(fired).error.code).toBe('temporal_unavailable');
      expect(busy).toBe(0);
    } finally {
      await shaky.close();
    }
    expect(await get('blinking')).toMatchObject({ temporal: 'found', paused: false, fires: [] });
    expect(json(await api.inject({ method: 'DELETE', url: '/v1/schedules/blinking' })).deleted).toBe(true);
  });

  it('one slot fired four times at once, by the worker and by another instance, makes one run and leaves nothing else', async () => {
    expect((await create({ id: 'raced', cron: '0 0 1 1 *', paused: true, request: request() })).statusCode).toBe(201);
    const slot = '2030-01-01T00:00:00.000Z';
    const runId = scheduledRunId('raced', new Date(slot));
    const elsewhere = createScheduleActivities({ db: other.db, drivers: h.drivers, workspaceRoot: h.workspaceRoot, hostId: 'elsewhere', hostQueue: 'devflow-host:elsewhere', starts });
    const results = await Promise.all([
      ...['a', 'b'].map((copy) =>
        h.client.workflow.execute(scheduledRunWorkflow, { workflowId: `${workflowIds.scheduledRun('raced')}-${slot}-${copy}`, taskQueue: h.taskQueue, args: [{ scheduleId: 'raced', slot }] }),
      ),
      elsewhere.fireSchedule({ scheduleId: 'raced', slot }),
      elsewhere.fireSchedule({ scheduleId: 'raced', slot }),
    ]);
    expect(results).toEqual(Array(4).fill({ outcome: 'started', runId }));
    await recordHistory(h.client.workflow.getHandle(`${workflowIds.scheduledRun('raced')}-${slot}-a`), 'fire-started', `scheduled-run-era-${SCHEDULED_RUN_ERA}`);
    await h.waitForGate(runId, 'spec_approved');

    const fired = await h.db.select().from(scheduleFires).where(eq(scheduleFires.scheduleId, 'raced'));
    expect(fired).toEqual([expect.objectContaining({ outcome: 'started', runId })]);
    expect(await h.db.select({ id: runs.id }).from(runs).where(eq(runs.id, runId))).toHaveLength(1);
    expect((await h.db.select({ type: runEvents.type }).from(runEvents).where(eq(runEvents.runId, runId))).filter((e) => e.type === 'run.created')).toHaveLength(1);
    // One run's sessions and one worktree folder: the lost races wrote nothing.
    // (At the spec gate: its spec writer, and the implementer started while the gate waits.)
    const sessions = await h.db.select({ roleId: tuiSessions.roleId }).from(tuiSessions).where(eq(tuiSessions.runId, runId));
    expect(sessions.map((s) => s.roleId).sort()).toEqual(['implementer', 'spec_writer']);
    expect(readdirSync(h.workspaceRoot).filter((d) => d === runId)).toHaveLength(1);
    await abortRun(runId);
    expect(json(await api.inject({ method: 'DELETE', url: '/v1/schedules/raced' })).deleted).toBe(true);
  });
});
