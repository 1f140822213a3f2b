// The session manager of a worker host, against real tmux and Postgres: its lock, startup
// recovery, orphan reaping and draining on shutdown.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../activities/index.ts';
import { listEvents } from '../db/events.ts';
import { approvalRequests, runs, tuiSessions } from '../db/schema.ts';
import { transitionPhase, transitionRun, transitionSession } from '../db/transitions.ts';
import { processAlive } from '../lib/processes.ts';
import { waitFor } from '../lib/wait.ts';
import type { SessionDriver, SessionDrivers } from '../sessions/driver.ts';
import { sessionDrivers } from '../sessions/index.ts';
import { sessionLifecycle } from '../sessions/lifecycle.ts';
import { PRESETS } from '../sessions/presets.ts';
import { TmuxDriver } from '../sessions/tmux-driver.ts';
import { killProcessGroup, TmuxServer, tmuxSessionName } from '../sessions/tmux.ts';
import { SessionManager, type RecoveredSession } from '../worker/session-manager.ts';
import { useDatabase } from './helpers/database.ts';
import { makeRepo } from './helpers/run-harness.ts';

const handle = useDatabase(10);
const { db } = handle;
let root = '';
let tmux: TmuxServer;
let driver: TmuxDriver;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'devflow-sm-'));
  tmux = new TmuxServer(path.join(root, 'tmux.sock'));
  driver = new TmuxDriver(tmux, PRESETS.scripted);
});
afterAll(async () => {
  await tmux.killServer();
  await rm(root, { recursive: true, force: true });
});

const alive = processAlive;

/** A run of `hostId` working on its spec phase, with a live scripted agent in tmux. */
async function workingRun(hostId: string) {
  const activities = createActivities({ db, drivers: sessionDrivers({ scripted: driver }), workspaceRoot: path.join(root, 'ws'), hostId, hostQueue: `devflow-host:${hostId}` });
  const runId = randomUUID();
  const plan = await activities.prepareRun({ runId, templateId: 'development@1', repoPath: makeRepo(root), baseBranch: 'main', requirementsMd: '# R\n', backend: 'scripted' });
  const { sessionId } = await activities.ensureSession({ runId, roleId: 'spec_writer', backend: 'scripted', cwd: plan.worktreePath });
  await activities.beginAttempt({ phaseId: plan.phases[0]!.id, attempt: 1, kind: 'initial' });
  const [session] = await db.select().from(tuiSessions).where(eq(tuiSessions.id, sessionId));
  return { runId, sessionId, plan, session: session! };
}

/** Drivers whose `resume` says no `failures` times before asking tmux. */
function flakyResume(failures: number): { drivers: SessionDrivers; calls: () => number } {
  let calls = 0;
  const flaky: SessionDriver = Object.assign(Object.create(driver) as TmuxDriver, {
    resume: async (target: Parameters<SessionDriver['resume']>[0]) => {
      calls += 1;
      return calls <= failures ? false : driver.resume(target);
    },
  });
  return { drivers: sessionDrivers({ scripted: flaky }), calls: () => calls };
}

function manager(hostId: string, drivers: SessionDrivers = sessionDrivers({ scripted: driver }), notified: RecoveredSession[] = [], shutdownDrainMs = 5_000) {
  return SessionManager.start({
    db, pool: handle.pool, hostId, tmux, drivers, resumeBackoffMs: 20, shutdownDrainMs,
    notifyRun: async (_runId, lost) => void notified.push(lost),
  });
}

describe('session manager', () => {
  it('holds its host lock: a second manager fails with session_manager_already_running and touches nothing', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const { runId } = await workingRun(hostId);
    const first = await manager(hostId);
    const eventsBefore = await listEvents(db, runId);
    const sessionsBefore = await tmux.sessionNames();

    await expect(manager(hostId)).rejects.toMatchObject({ code: 'session_manager_already_running' });
    expect(await listEvents(db, runId)).toEqual(eventsBefore);
    expect(await tmux.sessionNames()).toEqual(sessionsBefore);

    await first.shutdown();
    const again = await manager(hostId);
    await again.shutdown();
  });

  it('restarts nobody by hand: an agent gone mid-phase is marked CRASHED with what was seen, and its run told to restart it', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const { runId, sessionId, session } = await workingRun(hostId);
    await killProcessGroup(session.lastKnownPanePid!);
    const flaky = flakyResume(0);
    const notified: RecoveredSession[] = [];
    const sm = await manager(hostId, flaky.drivers, notified);
    const before = (await listEvents(db, runId)).length;

    const recovered = await sm.recover();
    await sm.shutdown();
    expect(flaky.calls()).toBe(3);
    expect(recovered).toEqual([{ sessionId, runId, roleId: 'spec_writer', outcome: 'restarting' }]);
    expect(notified).toEqual(recovered);
    expect(await db.select().from(approvalRequests).where(eq(approvalRequests.runId, runId))).toEqual([]);
    const after = (await listEvents(db, runId)).slice(before);
    expect(after.map((e) => e.type)).toEqual(['session.process_lost']);
    expect(after[0]!.payload).toMatchObject({ reason: 'process_lost', alive: false, working: true, resumeTries: 3, panePid: session.lastKnownPanePid });
    const [row] = await db.select().from(tuiSessions).where(eq(tuiSessions.id, sessionId));
    expect(row).toMatchObject({ state: 'CRASHED', processLostRecoveries: 1 });
    expect((await db.select().from(runs).where(eq(runs.id, runId)))[0]).toMatchObject({ state: 'executing' });
  });

  it('leaves an agent gone while its role waits at a gate for when the role works again: no gate, nobody told', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const { runId, sessionId, session, plan } = await workingRun(hostId);
    const phaseId = plan.phases[0]!.id;
    await transitionPhase(db, { phaseId, to: 'awaiting_artifact', event: { type: 'artifact.expected', idempotencyKey: `t:${phaseId}:a` } });
    await transitionPhase(db, { phaseId, to: 'validating', event: { type: 'artifact.validated', idempotencyKey: `t:${phaseId}:v` } });
    await transitionPhase(db, { phaseId, to: 'awaiting_approval', event: { type: 'approval.requested', idempotencyKey: `t:${phaseId}:g` } });
    await transitionRun(db, { runId, to: 'awaiting_approval', event: { type: 'run.paused', idempotencyKey: `t:${runId}:g` } });
    await transitionSession(db, { sessionId, to: 'WAITING_FOR_APPROVAL', event: { type: 'session.waiting', idempotencyKey: `t:${sessionId}:w` } });
    await killProcessGroup(session.lastKnownPanePid!);
    const notified: RecoveredSession[] = [];
    const sm = await manager(hostId, undefined, notified);
    expect(await sm.recover()).toEqual([{ sessionId, runId, roleId: 'spec_writer', outcome: 'idle' }]);
    await sm.shutdown();
    expect(notified).toEqual([]);
    expect((await listEvents(db, runId)).at(-1)).toMatchObject({ type: 'session.process_lost', payload: { working: false } });
    expect((await db.select().from(runs).where(eq(runs.id, runId)))[0]).toMatchObject({ state: 'awaiting_approval' });
  });

  it('asks a person when the agent is gone again after its automatic recovery: session.failed, run.paused, approval.requested', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const { runId, sessionId, session } = await workingRun(hostId);
    await db.update(tuiSessions).set({ processLostRecoveries: 1 }).where(eq(tuiSessions.id, sessionId));
    await killProcessGroup(session.lastKnownPanePid!);
    const notified: RecoveredSession[] = [];
    const sm = await manager(hostId, undefined, notified);
    const before = (await listEvents(db, runId)).length;

    const recovered = await sm.recover();
    await sm.shutdown();
    const [request] = await db.select().from(approvalRequests).where(eq(approvalRequests.runId, runId));
    expect(recovered).toEqual([{ sessionId, runId, roleId: 'spec_writer', outcome: 'failed', approvalRequestId: request!.id }]);
    expect(notified).toEqual(recovered);
    expect(request).toMatchObject({ gateKey: 'session_recovery_required', phaseId: null, state: 'pending' });
    expect((await listEvents(db, runId)).slice(before).map((e) => e.type)).toEqual(['session.failed', 'run.paused', 'approval.requested']);
    const [row] = await db.select().from(tuiSessions).where(eq(tuiSessions.id, sessionId));
    expect(row).toMatchObject({ state: 'FAILED_NEEDS_HUMAN', recoveryAttempts: 1 });
    expect((await db.select().from(runs).where(eq(runs.id, runId)))[0]).toMatchObject({ state: 'paused', pausedFromState: 'executing' });
  });

  it('keeps a session whose resume succeeds on the 3rd try, writing nothing', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const { runId, sessionId, session } = await workingRun(hostId);
    const flaky = flakyResume(2);
    const sm = await manager(hostId, flaky.drivers);
    const before = await listEvents(db, runId);
    expect(await sm.recover()).toEqual([{ sessionId, runId, roleId: 'spec_writer', outcome: 'kept' }]);
    await sm.shutdown();
    expect(flaky.calls()).toBe(3);
    expect(await listEvents(db, runId)).toEqual(before);
    expect(alive(session.lastKnownPanePid!)).toBe(true);
  });

  it('leaves a CREATED reservation with no live agent to the run, whose retried step starts it: nothing written', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const { runId, sessionId, session } = await workingRun(hostId);
    await killProcessGroup(session.lastKnownPanePid!);
    // A reservation for the next role, made by a worker that died before starting its agent.
    await db.update(tuiSessions).set({ state: 'CREATED', tmuxSession: null, lastKnownPanePid: null }).where(eq(tuiSessions.id, sessionId));
    const before = await listEvents(db, runId);
    const sm = await manager(hostId);
    const recovered = await sm.recover();
    await sm.shutdown();
    expect(recovered).toEqual([{ sessionId, runId, roleId: 'spec_writer', outcome: 'idle' }]);
    expect(await listEvents(db, runId)).toEqual(before);
  });

  it('ignores the sessions of terminal runs', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const { runId, sessionId, session } = await workingRun(hostId);
    await killProcessGroup(session.lastKnownPanePid!);
    await transitionRun(db, { runId, to: 'aborted', event: { type: 'run.aborted', idempotencyKey: `run:${runId}:terminal` } });
    const before = await listEvents(db, runId);
    const sm = await manager(hostId);
    expect(await sm.recover()).toEqual([]);
    await sm.shutdown();
    expect(await listEvents(db, runId)).toEqual(before);
    expect((await db.select().from(tuiSessions).where(eq(tuiSessions.id, sessionId)))[0]!.state).toBe('READY');
  });

  it('calls an agent HUNG only when several probes agree; probes that disagree (new output, a new screen) say it works', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const silent = (screenHash: string) => ({ alive: true, outputAgeMs: 60_000, evidence: { pid: 4242, processGroupMembers: 3, screenHash, busyMarker: true } });
    const cases = [
      { seen: [silent('a'), silent('a'), silent('a')], classification: 'HUNG', probes: 3, agreed: true },
      { seen: [silent('a'), { alive: true, outputAgeMs: 50, evidence: { pid: 4242, screenHash: 'b' } }], classification: 'ARTIFACT_TIMEOUT', probes: 2, agreed: false },
      { seen: [silent('a'), silent('a'), silent('b')], classification: 'ARTIFACT_TIMEOUT', probes: 3, agreed: false },
    ];
    for (const c of cases) {
      const { runId, sessionId } = await workingRun(hostId);
      await transitionSession(db, { sessionId, to: 'BUSY', event: { type: 'session.busy', idempotencyKey: `t:${sessionId}:busy` } });
      const queue = [...c.seen];
      const stub = Object.assign(Object.create(driver) as TmuxDriver, { probe: async () => queue.shift()! });
      const lifecycle = sessionLifecycle({ db, drivers: sessionDrivers({ scripted: stub }), hostId, probeIntervalMs: 10 });
      const result = await lifecycle.probeSession({ sessionId, cycle: 'c1', maxHungMs: 30_000 });
      expect(result.classification).toBe(c.classification);
      const events = await listEvents(db, runId);
      const probed = events.filter((e) => e.type === 'session.probed');
      expect(probed.map((e) => e.payload)).toEqual(c.seen.map((p, i) => expect.objectContaining({ probe: i + 1, of: 3, alive: true, outputAgeMs: p.outputAgeMs, ...p.evidence })));
      expect(events.find((e) => e.type === 'artifact.timeout')?.payload).toMatchObject({ classification: c.classification, probes: c.probes, agreed: c.agreed });
      expect((await db.select().from(tuiSessions).where(eq(tuiSessions.id, sessionId)))[0]!.state).toBe(c.classification);
    }
  });

  it('reaps tmux sessions of no active run with their processes, and keeps those of active runs', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const active = await workingRun(hostId);
    const strayRun = randomUUID();
    const stray = await driver.start({ sessionId: randomUUID(), runId: strayRun, roleId: 'reviewer', backend: 'scripted', cwd: root });
    const finished = await workingRun(hostId);
    await transitionRun(db, { runId: finished.runId, to: 'failed', event: { type: 'run.failed', idempotencyKey: `run:${finished.runId}:terminal` } });

    const sm = await manager(hostId);
    const { reaped, kept } = await sm.reapOrphans();
    await sm.shutdown();
    expect(reaped).toEqual(expect.arrayContaining([tmuxSessionName(strayRun), tmuxSessionName(finished.runId)]));
    expect(kept).toContain(tmuxSessionName(active.runId));
    const names = await tmux.sessionNames();
    expect(names).not.toContain(tmuxSessionName(strayRun));
    expect(names).toContain(tmuxSessionName(active.runId));
    await waitFor('reaped agents to exit', 5_000, async () => !alive(stray.panePid!) && !alive(finished.session.lastKnownPanePid!));
    expect(alive(active.session.lastKnownPanePid!)).toBe(true);
  });

  it('drains in-flight session operations on shutdown, holding the lock until done', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const sm = await manager(hostId);
    const target = { sessionId: randomUUID(), runId: randomUUID(), roleId: 'implementer', backend: 'scripted', cwd: root };
    const starting = sm.trackedDrivers().forBackend('scripted').start(target); // a real agent start, ~0.3 s
    expect(sm.operationsInFlight).toBe(1);
    const stopping = sm.shutdown();
    await expect(sm.trackedDrivers().forBackend('scripted').probe(target)).rejects.toMatchObject({ code: 'session_manager_stopping' });
    await expect(manager(hostId)).rejects.toMatchObject({ code: 'session_manager_already_running' });
    expect(await stopping).toEqual({ drained: true });
    expect((await starting).panePid).toBeGreaterThan(0);
    const next = await manager(hostId);
    await next.shutdown();
    await tmux.killSession(tmuxSessionName(target.runId));
  });

  it('gives up draining after shutdownDrainMs and lets the lock go', async () => {
    const hostId = `host-${randomUUID().slice(0, 8)}`;
    const sm = await manager(hostId, undefined, [], 200);
    void sm.track(() => new Promise((resolve) => setTimeout(resolve, 3_000)));
    const started = Date.now();
    expect(await sm.shutdown()).toEqual({ drained: false });
    expect(Date.now() - started).toBeLessThan(1_000);
    const next = await manager(hostId);
    await next.shutdown();
  });
});

