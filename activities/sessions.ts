// Session activities: make sure a role has a ready agent, probe it when an artifact is late,
// rebootstrap it, keep its transcript. Each step is a recorded state transition, so a retry
// continues from the state the row is in.
import { and, eq, ne, sql } from 'drizzle-orm';
import { appendEvent, findEventByKey } from '../db/events.ts';
import { tuiSessions, tuiTranscripts } from '../db/schema.ts';
import { transitionSession, type TuiSession } from '../db/transitions.ts';
import { DevflowError } from '../lib/errors.ts';
import { classifyProbe, type ProbeClassification, type SessionTarget, type StartedSession } from '../sessions/driver.ts';
import { checkpoint, type ActivityDeps } from './deps.ts';

export function targetOf(session: TuiSession): SessionTarget {
  return { sessionId: session.id, runId: session.runId, roleId: session.roleId, backend: session.backend, cwd: session.cwd };
}

function startedColumns(started: StartedSession) {
  return {
    tmuxSession: started.tmuxSession ?? null,
    tmuxWindow: started.tmuxWindow ?? null,
    lastKnownPanePid: started.panePid ?? null,
    lastOutputAt: new Date(),
  };
}

export async function loadSession(deps: ActivityDeps, sessionId: string): Promise<TuiSession> {
  const [session] = await deps.db.select().from(tuiSessions).where(eq(tuiSessions.id, sessionId));
  if (!session) throw new DevflowError({ errorClass: 'fatal', code: 'session_not_found', message: `session ${sessionId} does not exist` });
  return session;
}

export function createSessionActivities(deps: ActivityDeps) {
  const { db } = deps;

  async function liveSession(runId: string, roleId: string): Promise<TuiSession | undefined> {
    const [row] = await db
      .select()
      .from(tuiSessions)
      .where(and(eq(tuiSessions.runId, runId), eq(tuiSessions.roleId, roleId), ne(tuiSessions.state, 'FAILED_NEEDS_HUMAN')));
    return row;
  }

  /** CREATED|BOOTSTRAPPING -> READY: (re)start the agent process. */
  async function bootstrap(session: TuiSession): Promise<void> {
    const driver = deps.drivers.forBackend(session.backend);
    if (session.state === 'CREATED') {
      await transitionSession(db, { sessionId: session.id, to: 'BOOTSTRAPPING', event: { type: 'session.bootstrapping', idempotencyKey: `session:${session.id}:bootstrapping` } });
    } else {
      await driver.dispose(targetOf(session)); // a start that crashed half-way
    }
    const started = await driver.start(targetOf(session));
    checkpoint(deps, 'ensureSession:started');
    await transitionSession(db, {
      sessionId: session.id,
      to: 'READY',
      event: { type: 'session.ready', idempotencyKey: `session:${session.id}:ready`, payload: { ...started } },
      set: startedColumns(started),
    });
  }

  /** ARTIFACT_TIMEOUT|HUNG|CRASHED -> RESUMING -> REBOOTSTRAPPED -> READY, keyed by `cycle`. */
  async function recover(session: TuiSession, cycle: string): Promise<void> {
    const key = (step: string) => `session:${session.id}:${step}:${cycle}`;
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
      const started = await driver.rebootstrap(targetOf(current));
      checkpoint(deps, 'rebootstrap:restarted');
      current = (await transitionSession(db, {
        sessionId: session.id,
        to: 'REBOOTSTRAPPED',
        event: { type: 'session.rebootstrapped', idempotencyKey: key('rebootstrapped'), payload: { ...started } },
        set: startedColumns(started),
      })).row;
    }
    if (current.state === 'REBOOTSTRAPPED') {
      await transitionSession(db, { sessionId: session.id, to: 'READY', event: { type: 'session.recovered', idempotencyKey: key('recovered') } });
    }
  }

  return {
    /**
     * A ready session for (run, role): the live one if its agent is still there, recovered if
     * it was left timed out or crashed, otherwise a new one (replacing one that is gone).
     */
    async ensureSession(input: { runId: string; roleId: string; backend: string; cwd: string }): Promise<{ sessionId: string }> {
      let session = await liveSession(input.runId, input.roleId);
      if (session && ['READY', 'BUSY', 'WAITING_FOR_APPROVAL'].includes(session.state)) {
        if (await deps.drivers.forBackend(session.backend).resume(targetOf(session))) {
          if (session.state === 'WAITING_FOR_APPROVAL') {
            await transitionSession(db, { sessionId: session.id, to: 'READY', event: { type: 'session.idle', idempotencyKey: `session:${session.id}:idle:resume:${session.updatedAt.getTime()}` } });
          }
          return { sessionId: session.id };
        }
        await transitionSession(db, {
          sessionId: session.id,
          to: 'FAILED_NEEDS_HUMAN',
          event: { type: 'session.failed', idempotencyKey: `session:${session.id}:failed`, payload: { reason: 'process_lost' } },
        });
        session = undefined;
      }
      if (!session) {
        await db.insert(tuiSessions).values({ runId: input.runId, roleId: input.roleId, backend: input.backend, cwd: input.cwd, hostId: deps.hostId }).onConflictDoNothing();
        session = (await liveSession(input.runId, input.roleId))!;
        await appendEvent(db, {
          runId: input.runId,
          type: 'session.created',
          idempotencyKey: `session:${session.id}:created`,
          payload: { sessionId: session.id, roleId: input.roleId, backend: input.backend },
        });
      }
      if (session.state === 'CREATED' || session.state === 'BOOTSTRAPPING') await bootstrap(session);
      else if (session.state !== 'READY') await recover(session, `ensure:${session.updatedAt.getTime()}`);
      return { sessionId: session.id };
    },

    /** Classifies a late artifact: the agent crashed, hung (silent), or is just slow. */
    async probeSession(input: { sessionId: string; cycle: string; maxHungMs: number }): Promise<{ classification: ProbeClassification; hint?: string }> {
      const key = `session:${input.sessionId}:probe:${input.cycle}`;
      const prior = await findEventByKey(db, key);
      if (prior) return prior.payload as { classification: ProbeClassification; hint?: string };
      const session = await loadSession(deps, input.sessionId);
      const probe = await deps.drivers.forBackend(session.backend).probe(targetOf(session));
      const classification = classifyProbe(probe, input.maxHungMs);
      const payload = { classification, ...(probe.hint ? { hint: probe.hint } : {}), outputAgeMs: probe.outputAgeMs ?? null };
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

    async rebootstrapSession(input: { sessionId: string; cycle: string }): Promise<void> {
      await recover(await loadSession(deps, input.sessionId), input.cycle);
    },

    /** Stores what the session printed since the last capture. */
    async captureTranscript(input: { sessionId: string }): Promise<{ captured: number }> {
      const session = await loadSession(deps, input.sessionId);
      const chunks = await deps.drivers.forBackend(session.backend).captureTranscript(targetOf(session), session.lastCaptureSeq);
      if (chunks.length === 0) return { captured: 0 };
      await db.transaction(async (tx) => {
        await tx.insert(tuiTranscripts).values(chunks.map((c) => ({ sessionId: session.id, seq: c.seq, chunk: c.chunk }))).onConflictDoNothing();
        checkpoint(deps, 'captureTranscript:rows');
        await tx
          .update(tuiSessions)
          .set({ lastCaptureSeq: sql`greatest(${tuiSessions.lastCaptureSeq}, ${chunks.at(-1)!.seq})`, lastOutputAt: new Date() })
          .where(eq(tuiSessions.id, session.id));
      });
      return { captured: chunks.length };
    },
  };
}
