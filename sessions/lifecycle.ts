// The life of an agent session, in one place the activities, the session manager and the tests
// all call: make sure a role has a ready agent, probe it when an artifact is late, rebootstrap
// it, keep its transcript and usage, close it when its run ends. Each step is a recorded state
// transition of the session machine, so a retry continues from the state the row is in.
import { setTimeout as sleep } from 'node:timers/promises';
import { and, eq, ne, sql } from 'drizzle-orm';
import type { Database, Executor } from '../db/client.ts';
import { appendEvent, findEventByKey } from '../db/events.ts';
import { agentUsage, runPhases, tuiSessions, tuiTranscripts } from '../db/schema.ts';
import { TERMINAL_SESSION_STATES, type RunState } from '../db/state-machines.ts';
import { openApprovalRequest } from '../db/approvals.ts';
import { transitionRun, transitionSession, type TuiSession } from '../db/transitions.ts';
import { DevflowError, isDevflowError } from '../lib/errors.ts';
import { sessionKeys } from '../lib/keys.ts';
import { storable } from '../lib/text.ts';
import { isRealAgent } from './agent-cli.ts';
import { classifyProbe, type LaunchOptions, type ProbeClassification, type ProbeResult, type SessionDrivers, type SessionTarget, type StartedSession } from './driver.ts';

/** What the session lifecycle needs: the database, this host's drivers, and test hooks. */
export interface SessionContext {
  db: Database;
  drivers: SessionDrivers;
  hostId: string;
  /** How many times a new agent is started before a person is asked (default 3), and the pause between. */
  agentStartTries?: number;
  agentStartPauseMs?: number;
  /** Probes that must agree before an agent is HUNG (default 3), and the pause between them (default 2 s). */
  hungProbes?: number;
  probeIntervalMs?: number;
  /** Test hook: called at named points between side effects (see activities/deps.ts). */
  checkpoint?: (point: string) => void | Promise<void>;
}

const checkpoint = (context: SessionContext, point: string) => void context.checkpoint?.(point);

export function targetOf(session: TuiSession): SessionTarget {
  return {
    sessionId: session.id,
    runId: session.runId,
    roleId: session.roleId,
    backend: session.backend,
    cwd: session.cwd,
    playback: session.playback,
    agentSessionId: session.agentSessionId,
    createdAt: session.createdAt,
  };
}

function startedColumns(started: StartedSession) {
  return {
    tmuxSession: started.tmuxSession ?? null,
    tmuxWindow: started.tmuxWindow ?? null,
    lastKnownPanePid: started.panePid ?? null,
    lastOutputAt: new Date(),
    ...(started.agentSessionId ? { agentSessionId: started.agentSessionId } : {}),
  };
}

export async function loadSession(deps: SessionContext, sessionId: string): Promise<TuiSession> {
  const [session] = await deps.db.select().from(tuiSessions).where(eq(tuiSessions.id, sessionId));
  if (!session) throw new DevflowError({ code: 'session_not_found', message: `session ${sessionId} does not exist` });
  return session;
}

/** The same error, naming the session it happened to (so a gate can be that session's). */
export function withSession(error: DevflowError, sessionId: string): DevflowError {
  return new DevflowError({ code: error.code, message: error.message, recoveryHint: error.recoveryHint, details: { ...error.details, sessionId }, cause: error.cause });
}

/** Probes that must agree before an agent counts as HUNG, and the pause between them. */
export const HUNG_PROBES = 3;
const PROBE_INTERVAL_MS = 2_000;

/** Phase states in which a role is working with its agent (not waiting at a gate, not done). */
export const WORKING_PHASE_STATES: readonly string[] = ['running', 'awaiting_artifact', 'validating'];

/** The run is working with this role now: it is executing, and its current phase is the role's and waits for its agent. */
export async function roleIsWorking(executor: Executor, roleId: string, runState: RunState, currentPhaseId: string | null): Promise<boolean> {
  if (runState !== 'executing' || !currentPhaseId) return false;
  const [phase] = await executor.select().from(runPhases).where(eq(runPhases.id, currentPhaseId));
  return phase?.roleId === roleId && WORKING_PHASE_STATES.includes(phase.state);
}

/** How many times devflow restarts a session whose agent process is gone before a person is asked. */
export const PROCESS_LOST_RECOVERIES = 1;

/**
 * The session's agent process is gone (found dead, or its tmux server went with a restart): the
 * session is CRASHED with what was seen, counted, and recovered with its conversation when its
 * role works next. Returns the session as it now is.
 */
export async function markProcessLost(db: Database, session: TuiSession, seen: ProbeResult | undefined, context: Record<string, unknown> = {}): Promise<TuiSession> {
  const n = session.processLostRecoveries + 1;
  const { row } = await transitionSession(db, {
    sessionId: session.id,
    to: 'CRASHED',
    event: {
      type: 'session.process_lost',
      idempotencyKey: sessionKeys.processLost(session.id, n),
      payload: {
        reason: 'process_lost',
        panePid: session.lastKnownPanePid,
        alive: seen?.alive ?? false,
        outputAgeMs: seen?.outputAgeMs ?? null,
        recovery: `restarted with its conversation when ${session.roleId} works next (${n} of ${PROCESS_LOST_RECOVERIES} automatic)`,
        ...context,
      },
    },
    set: { processLostRecoveries: n },
  });
  return row;
}

/** How many times a new agent is started before a person is asked, and the pause between. */
export const AGENT_START_TRIES = 3;
const AGENT_START_PAUSE_MS = 2_000;

/** How long a real agent that is still finishing its turn is given before the end of its run disposes it. */
const FINISH_TURN_MS = 10_000;

/** The session steps, bound to a context. */
export function sessionLifecycle(deps: SessionContext) {
  const { db } = deps;

  /**
   * A real agent may still be talking to its model after writing its artifact (its last words),
   * and its usage log has that request only once it ends: waits while the agent prints or shows
   * its busy marker, at most FINISH_TURN_MS.
   */
  async function finishTurn(session: TuiSession): Promise<void> {
    if (!isRealAgent(session.backend) || TERMINAL_SESSION_STATES.has(session.state)) return;
    const driver = deps.drivers.forBackend(session.backend);
    const until = Date.now() + FINISH_TURN_MS;
    while (Date.now() < until) {
      const seen = await driver.probe(targetOf(session)).catch(() => undefined);
      if (!seen?.alive || (!seen.evidence?.busyMarker && (seen.outputAgeMs ?? Infinity) >= 1_000)) return;
      await sleep(250);
    }
  }

  async function liveSession(runId: string, roleId: string): Promise<TuiSession | undefined> {
    const [row] = await db
      .select()
      .from(tuiSessions)
      .where(and(eq(tuiSessions.runId, runId), eq(tuiSessions.roleId, roleId), ne(tuiSessions.state, 'FAILED_NEEDS_HUMAN')));
    return row;
  }

  /** Each first-run dialog the driver answers is recorded, with its screen, before it is answered. */
  function recordDialogs(session: TuiSession, launch: string): LaunchOptions {
    return {
      onDialog: async (answered) => {
        await appendEvent(db, {
          runId: session.runId,
          type: 'session.dialog_answered',
          idempotencyKey: sessionKeys.dialog(session.id, answered.dialog, launch),
          payload: { sessionId: session.id, roleId: session.roleId, ...answered },
        });
      },
    };
  }

  /**
   * CREATED|BOOTSTRAPPING -> READY: (re)start the agent process. A start that fails is tried
   * again a few times, seconds apart, each failure recorded with the screen it left; then a
   * person is asked. A screen or dialog that needs a person stops at once.
   */
  async function bootstrap(session: TuiSession): Promise<void> {
    const driver = deps.drivers.forBackend(session.backend);
    if (session.state === 'CREATED') {
      await transitionSession(db, { sessionId: session.id, to: 'BOOTSTRAPPING', event: { type: 'session.bootstrapping', idempotencyKey: sessionKeys.bootstrapping(session.id) } });
    } else {
      await driver.dispose(targetOf(session)); // a start that crashed half-way
    }
    const tries = deps.agentStartTries ?? AGENT_START_TRIES;
    let started: StartedSession | undefined;
    for (let attempt = 1; !started; attempt++) {
      try {
        started = await driver.start(targetOf(session), recordDialogs(session, `start:${attempt}`));
      } catch (error) {
        if (!isDevflowError(error) || error.errorClass === 'fatal') throw error;
        // A person is needed: the gate marks this session failed and a new one starts after it.
        if (error.errorClass === 'human_required') throw withSession(error, session.id);
        await appendEvent(db, {
          runId: session.runId,
          type: 'session.start_failed',
          idempotencyKey: sessionKeys.startFailed(session.id, attempt),
          payload: { sessionId: session.id, roleId: session.roleId, attempt, of: tries, code: error.code, message: error.message, screen: error.details?.screen ?? null },
        });
        if (attempt >= tries) {
          throw new DevflowError({
            code: 'agent_start_failed',
            message: `the ${session.backend} agent for ${session.roleId} did not start (${tries} tries): ${error.message}`,
            recoveryHint: error.recoveryHint,
            details: { ...error.details, sessionId: session.id },
          });
        }
        await sleep(deps.agentStartPauseMs ?? AGENT_START_PAUSE_MS);
      }
    }
    checkpoint(deps, 'ensureSession:started');
    await transitionSession(db, {
      sessionId: session.id,
      to: 'READY',
      event: { type: 'session.ready', idempotencyKey: sessionKeys.ready(session.id), payload: { ...started } },
      set: startedColumns(started),
    });
  }

  /** ARTIFACT_TIMEOUT|HUNG|CRASHED -> RESUMING -> REBOOTSTRAPPED -> READY, keyed by `cycle`. */
  async function recover(session: TuiSession, cycle: string): Promise<void> {
    const key = (step: 'resuming' | 'rebootstrapped' | 'recovered') => sessionKeys.recovery(session.id, step, cycle);
    const driver = deps.drivers.forBackend(session.backend);
    let current = session;
    if (['ARTIFACT_TIMEOUT', 'HUNG', 'CRASHED'].includes(current.state)) {
      current = (await transitionSession(db, {
        sessionId: session.id,
        to: 'RESUMING',
        event: { type: 'session.resuming', idempotencyKey: key('resuming') },
        set: { recoveryAttempts: current.recoveryAttempts + 1 },
      })).row;
    }
    if (current.state === 'RESUMING') {
      // An agent whose process is alive is kept: the repair prompt goes to it as it is. One that
      // probes agreed is silent (HUNG) is flagged too: killing a live agent loses its work, so a
      // person decides if it stays silent. A crashed one is restarted, with its conversation
      // where the agent kept one; the event says which.
      // What the probe found, also when a retry finds the session RESUMING already.
      const found = session.state === 'RESUMING' ? ((await findEventByKey(db, key('resuming')))?.payload as { from?: string } | undefined)?.from : session.state;
      const alive = found !== 'CRASHED' && (await driver.resume(targetOf(current)).catch(() => false));
      const started = alive
        ? found === 'HUNG'
          ? { kept: true, flagged: 'silent', reason: 'alive but silent: kept and flagged; the repair prompt reminds it, and a person decides if it stays silent' }
          : { kept: true, reason: 'alive and not hung: kept, and reminded by the repair prompt' }
        : await driver.rebootstrap(targetOf(current), recordDialogs(current, cycle));
      checkpoint(deps, 'rebootstrap:restarted');
      current = (await transitionSession(db, {
        sessionId: session.id,
        to: 'REBOOTSTRAPPED',
        event: { type: 'session.rebootstrapped', idempotencyKey: key('rebootstrapped'), payload: { ...started } },
        set: 'kept' in started ? {} : startedColumns(started),
      })).row;
    }
    if (current.state === 'REBOOTSTRAPPED') {
      await transitionSession(db, { sessionId: session.id, to: 'READY', event: { type: 'session.recovered', idempotencyKey: key('recovered') } });
    }
  }

  /** Reads the agent's usage from its logs and rewrites this session's rows with it. */
  async function recordUsage(session: TuiSession): Promise<void> {
    const driver = deps.drivers.forBackend(session.backend);
    const usage = await driver.usage?.(targetOf(session));
    if (!usage) return;
    const phases = await db.select({ id: runPhases.id, key: runPhases.phaseKey }).from(runPhases).where(eq(runPhases.runId, session.runId));
    const phaseId = new Map(phases.map((p) => [p.key, p.id]));
    await db.transaction(async (tx) => {
      for (const phase of usage.phases) {
        const id = phaseId.get(phase.phaseKey);
        if (!id) continue;
        const values = { inputTokens: phase.inputTokens, outputTokens: phase.outputTokens, cacheReadTokens: phase.cacheReadTokens, cacheWriteTokens: phase.cacheWriteTokens };
        await tx
          .insert(agentUsage)
          .values({ sessionId: session.id, phaseId: id, runId: session.runId, ...values })
          .onConflictDoUpdate({ target: [agentUsage.sessionId, agentUsage.phaseId], set: { ...values, updatedAt: sql`now()` } });
      }
      if (usage.agentSessionId && usage.agentSessionId !== session.agentSessionId) {
        await tx.update(tuiSessions).set({ agentSessionId: usage.agentSessionId }).where(eq(tuiSessions.id, session.id));
      }
    });
  }

  const steps = {
    /**
     * A ready session for (run, role): the live one if its agent is still there, recovered if
     * it was left timed out or crashed, otherwise a new one (replacing one that is gone).
     */
    async ensureSession(input: { runId: string; roleId: string; backend: string; cwd: string; playback?: boolean }): Promise<{ sessionId: string }> {
      let session = await liveSession(input.runId, input.roleId);
      if (session && ['READY', 'BUSY', 'WAITING_FOR_APPROVAL'].includes(session.state)) {
        if (await deps.drivers.forBackend(session.backend).resume(targetOf(session))) {
          if (session.state === 'WAITING_FOR_APPROVAL') {
            await transitionSession(db, { sessionId: session.id, to: 'READY', event: { type: 'session.idle', idempotencyKey: sessionKeys.idleAfterResume(session.id, session.updatedAt) } });
          }
          return { sessionId: session.id };
        }
        // Its agent is gone: restarted with its conversation once; a second time, a person looks.
        if (session.processLostRecoveries >= PROCESS_LOST_RECOVERIES) {
          await transitionSession(db, {
            sessionId: session.id,
            to: 'FAILED_NEEDS_HUMAN',
            event: { type: 'session.failed', idempotencyKey: sessionKeys.lost(session.id), payload: { reason: 'process_lost', processLostRecoveries: session.processLostRecoveries } },
          });
          throw new DevflowError({
            code: 'agent_process_lost',
            message: `the ${session.backend} agent of ${session.roleId} is gone again after devflow restarted it once`,
            recoveryHint: 'look at why the agent keeps exiting (its transcript, its logs), then approve: a new agent starts',
            details: { sessionId: session.id },
          });
        }
        session = await markProcessLost(db, session, await deps.drivers.forBackend(session.backend).probe(targetOf(session)).catch(() => undefined));
      }
      if (!session) {
        await db
          .insert(tuiSessions)
          .values({ runId: input.runId, roleId: input.roleId, backend: input.backend, cwd: input.cwd, hostId: deps.hostId, playback: input.playback ?? false })
          .onConflictDoNothing();
        session = (await liveSession(input.runId, input.roleId))!;
        await appendEvent(db, {
          runId: input.runId,
          type: 'session.created',
          idempotencyKey: sessionKeys.created(session.id),
          payload: { sessionId: session.id, roleId: input.roleId, backend: input.backend, playback: session.playback },
        });
      }
      if (session.state === 'CREATED' || session.state === 'BOOTSTRAPPING') await bootstrap(session);
      else if (session.state !== 'READY') await recover(session, `ensure:${session.updatedAt.getTime()}`);
      return { sessionId: session.id };
    },

    /** Classifies a late artifact: the agent crashed, hung (silent), or is just slow. */
    async probeSession(input: { sessionId: string; cycle: string; maxHungMs: number }): Promise<{ classification: ProbeClassification; hint?: string }> {
      const key = sessionKeys.probe(input.sessionId, input.cycle);
      const prior = await findEventByKey(db, key);
      if (prior) return prior.payload as { classification: ProbeClassification; hint?: string };
      const session = await loadSession(deps, input.sessionId);
      const driver = deps.drivers.forBackend(session.backend);
      // HUNG takes several probes that agree (alive, silent, the same screen), never one; each is recorded with what it saw.
      const tries = deps.hungProbes ?? HUNG_PROBES;
      const seen: { probe: ProbeResult; classification: ProbeClassification }[] = [];
      for (let n = 1; n <= tries; n++) {
        if (n > 1) await sleep(deps.probeIntervalMs ?? PROBE_INTERVAL_MS);
        const probe = await driver.probe(targetOf(session));
        const said = classifyProbe(probe, input.maxHungMs);
        seen.push({ probe, classification: said });
        await appendEvent(db, {
          runId: session.runId,
          type: 'session.probed',
          idempotencyKey: `${key}:${n}`,
          payload: { sessionId: session.id, roleId: session.roleId, probe: n, of: tries, alive: probe.alive, outputAgeMs: probe.outputAgeMs ?? null, ...probe.evidence, classification: said },
        });
        if (said !== 'HUNG') break; // dead, a screen for a person, or working: no more probes needed
      }
      const { probe, classification: last } = seen.at(-1)!;
      // The loop stops at the first probe that is not HUNG: a last HUNG means every probe said so; they agree when the screen never changed.
      const agreed = last === 'HUNG' && new Set(seen.map((s) => s.probe.evidence?.screenHash)).size === 1;
      // Probes that disagree (one saw it silent, a later one saw output or a new screen): working, not hung.
      const classification: ProbeClassification = last === 'HUNG' && !agreed ? 'ARTIFACT_TIMEOUT' : last;
      const payload = { classification, ...(probe.hint ? { hint: probe.hint } : {}), outputAgeMs: probe.outputAgeMs ?? null, probes: seen.length, ...(seen.some((s) => s.classification === 'HUNG') ? { agreed } : {}) };
      if (classification === 'tmux_liveness_only') {
        await appendEvent(db, { runId: session.runId, type: 'artifact.timeout', idempotencyKey: key, payload });
      } else {
        await transitionSession(db, {
          sessionId: session.id,
          to: classification,
          event: { type: classification === 'CRASHED' ? 'session.crashed' : 'artifact.timeout', idempotencyKey: key, payload },
        });
      }
      return { classification, ...(probe.hint ? { hint: probe.hint } : {}) };
    },

    /** Keeps the agent when its process is alive, else restarts it; says which. */
    async rebootstrapSession(input: { sessionId: string; cycle: string }): Promise<{ kept: boolean }> {
      await recover(await loadSession(deps, input.sessionId), input.cycle);
      const done = await findEventByKey(db, sessionKeys.recovery(input.sessionId, 'rebootstrapped', input.cycle));
      return { kept: (done?.payload as { kept?: boolean } | undefined)?.kept === true };
    },

    /**
     * The run ended: the agent's last transcript and usage are kept, its process disposed, and a
     * live session closed (a session that failed for good keeps that state). Safe to repeat.
     */
    async closeSession(input: { sessionId: string }): Promise<void> {
      const session = await loadSession(deps, input.sessionId);
      await steps.captureTranscript({ sessionId: session.id });
      await deps.drivers.forBackend(session.backend).dispose(targetOf(session));
      checkpoint(deps, 'closeSession:disposed');
      if (!TERMINAL_SESSION_STATES.has(session.state)) {
        await transitionSession(db, { sessionId: session.id, to: 'CLOSED', event: { type: 'session.closed', idempotencyKey: sessionKeys.closed(session.id), payload: { reason: 'its run ended' } } });
      }
    },

    /** Stores what the session printed since the last capture, and the tokens its agent has used. */
    async captureTranscript(input: { sessionId: string }): Promise<{ captured: number }> {
      const session = await loadSession(deps, input.sessionId);
      // Taken as soon as its artifact parses, an agent may still be on its last turn: its usage is in its log once that ends.
      await finishTurn(session);
      await recordUsage(session);
      const chunks = await deps.drivers.forBackend(session.backend).captureTranscript(targetOf(session), session.lastCaptureSeq);
      if (chunks.length === 0) return { captured: 0 };
      await db.transaction(async (tx) => {
        // What an agent printed is stored as text, which cannot hold a NUL.
        await tx.insert(tuiTranscripts).values(chunks.map((c) => ({ sessionId: session.id, seq: c.seq, chunk: storable(c.chunk) }))).onConflictDoNothing();
        checkpoint(deps, 'captureTranscript:rows');
        await tx
          .update(tuiSessions)
          .set({ lastCaptureSeq: sql`greatest(${tuiSessions.lastCaptureSeq}, ${chunks.at(-1)!.seq})`, lastOutputAt: new Date() })
          .where(eq(tuiSessions.id, session.id));
      });
      return { captured: chunks.length };
    },
  };
  return steps;
}

/**
 * A session whose agent is gone for good (the session manager could not resume it): the session
 * fails, and if its run was working with it, the run pauses behind a `session_recovery_required`
 * request. Events in this order: session.failed, run.paused, approval.requested. Returns the
 * request, when one was opened.
 */
export async function failLostSession(
  db: Database,
  session: TuiSession,
  context: { runState: RunState; currentPhaseId: string | null; resumeAttempts: number },
): Promise<string | undefined> {
  const key = (what: 'failed' | 'paused' | 'gate') => sessionKeys.unrecoverable(session.id, what);
  return db.transaction(async (tx) => {
    await transitionSession(tx, {
      sessionId: session.id,
      to: 'FAILED_NEEDS_HUMAN',
      event: { type: 'session.failed', idempotencyKey: key('failed'), payload: { reason: 'session_recovery_required', resumeAttempts: context.resumeAttempts } },
      set: { recoveryAttempts: session.recoveryAttempts + 1 },
    });
    // A role whose phase waits at its gate does not need its agent until it works again: the gate stays as it is.
    if (!(await roleIsWorking(tx, session.roleId, context.runState, context.currentPhaseId))) return undefined;
    await transitionRun(tx, {
      runId: session.runId,
      to: 'paused',
      event: { type: 'run.paused', idempotencyKey: key('paused'), payload: { gateKey: 'session_recovery_required', sessionId: session.id, roleId: session.roleId } },
    });
    const request = await openApprovalRequest(tx, {
      runId: session.runId,
      phaseId: null,
      gateKey: 'session_recovery_required',
      kind: 'human',
      key: key('gate'),
      payload: { reason: `the ${session.roleId} agent session could not be resumed`, sessionId: session.id, roleId: session.roleId },
    });
    return request.id;
  });
}
