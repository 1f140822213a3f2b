// The session manager of one worker host (SPEC section 7): it holds the host's advisory lock,
// recovers the host's agent sessions at start (before the worker polls), reaps tmux sessions
// that belong to no active run, and tracks session operations so shutdown can drain them.
import { and, eq, inArray, ne, notInArray } from 'drizzle-orm';
import type pg from 'pg';
import type { Database } from '../db/client.ts';
import { runs, tuiSessions } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import type { TuiSession } from '../db/transitions.ts';
import { canonicalHash } from '../lib/canonical-json.ts';
import { DevflowError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { SessionDriver, SessionDrivers } from '../sessions/driver.ts';
import { failLostSession, markProcessLost, PROCESS_LOST_RECOVERIES, roleIsWorking, targetOf } from '../sessions/lifecycle.ts';
import { tmuxSessionName, type TmuxServer } from '../sessions/tmux.ts';

/** Backends whose sessions live in this host's tmux server. */
export const TMUX_BACKENDS = ['scripted', 'tmux', 'claude-code', 'codex'];
/** Session states the workflow is not already recovering from. */
const SETTLED = ['CREATED', 'BOOTSTRAPPING', 'READY', 'BUSY', 'WAITING_FOR_APPROVAL'] as const;

export interface RecoveredSession {
  sessionId: string;
  runId: string;
  roleId: string;
  /**
   * kept: its agent is still there. restarting: its agent is gone and its role is working, so
   * the run is told and devflow restarts it with its conversation. idle: its agent is gone and
   * its role is not working (at a gate, done); it is restarted when the role works again.
   * failed: gone once more after its automatic recovery; a person is asked if its role is working.
   */
  outcome: 'kept' | 'restarting' | 'idle' | 'failed';
  /** When the run was paused for it: the session_recovery_required request. */
  approvalRequestId?: string;
}

export interface SessionManagerOptions {
  db: Database;
  pool: pg.Pool;
  hostId: string;
  tmux: TmuxServer;
  drivers: SessionDrivers;
  log?: Logger;
  resumeAttempts?: number;
  resumeBackoffMs?: number;
  shutdownDrainMs?: number;
  /** Tells the run's workflow that a session was lost and a gate opened (a Temporal signal). */
  notifyRun?: (runId: string, lost: RecoveredSession) => Promise<void>;
  /**
   * The connection holding the host's lock broke (Postgres restarted, say): the lock is gone, so
   * another worker could take this host's sessions. The worker stops, and its supervisor starts
   * one that takes the lock again.
   */
  onLockLost?: (error: Error) => void;
}

export function sessionManagerLockKey(hostId: string): bigint {
  return BigInt.asIntN(64, BigInt(`0x${canonicalHash(`devflow-session-manager:${hostId}`).slice(0, 16)}`));
}

export class SessionManager {
  private inFlight = 0;
  private stopping = false;
  private idle: (() => void)[] = [];

  private constructor(
    private readonly options: SessionManagerOptions,
    private readonly lockClient: pg.PoolClient,
  ) {}

  /** Takes the host's lock; a second manager for the same host fails and touches nothing. */
  static async start(options: SessionManagerOptions): Promise<SessionManager> {
    const client = await options.pool.connect();
    const key = sessionManagerLockKey(options.hostId).toString();
    const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [key]);
    if (!rows[0]!.locked) {
      client.release();
      throw new DevflowError({
        code: 'session_manager_already_running',
        message: `another devflow worker already manages the sessions of host ${options.hostId}`,
        recoveryHint: 'stop the other worker, or give this one a different DEVFLOW_HOST_ID (and DEVFLOW_HOME)',
      });
    }
    // Without a listener, a broken connection's error would crash the process unannounced.
    client.on('error', (error) => options.onLockLost?.(error));
    return new SessionManager(options, client);
  }

  /** Runs a session operation, counted so shutdown can wait for it. */
  async track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.stopping) {
      throw new DevflowError({ code: 'session_manager_stopping', message: 'this worker is shutting down' });
    }
    this.inFlight += 1;
    try {
      return await operation();
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) for (const wake of this.idle.splice(0)) wake();
    }
  }

  /** The drivers, with every call tracked. */
  trackedDrivers(): SessionDrivers {
    return {
      forBackend: (backend) => {
        const driver = this.options.drivers.forBackend(backend);
        return new Proxy(driver, {
          get: (target, property, receiver) => {
            const value = Reflect.get(target, property, receiver) as unknown;
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) => this.track(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
          },
        }) as SessionDriver;
      },
    };
  }

  /**
   * Startup recovery: every settled session of this host whose run is still going is resumed
   * (with retries and backoff). One that cannot be resumed fails for good; if its run was
   * working on that role, the run pauses behind a `session_recovery_required` request.
   */
  async recover(): Promise<RecoveredSession[]> {
    const { db } = this.options;
    const candidates = await db
      .select({ session: tuiSessions, runState: runs.state, currentPhaseId: runs.currentPhaseId })
      .from(tuiSessions)
      .innerJoin(runs, eq(runs.id, tuiSessions.runId))
      .where(
        and(
          eq(tuiSessions.hostId, this.options.hostId),
          inArray(tuiSessions.backend, TMUX_BACKENDS),
          inArray(tuiSessions.state, [...SETTLED]),
          notInArray(runs.state, [...TERMINAL_RUN_STATES]),
        ),
      );
    const results: RecoveredSession[] = [];
    for (const { session, runState, currentPhaseId } of candidates) {
      const base = { sessionId: session.id, runId: session.runId, roleId: session.roleId };
      if (await this.resumeWithRetries(session)) {
        this.options.log?.info({ ...base, panePid: session.lastKnownPanePid }, 'kept live agent session');
        results.push({ ...base, outcome: 'kept' });
        continue;
      }
      // An agent that was starting: the step that starts it is retried by the workflow and starts it afresh.
      if (session.state === 'CREATED' || session.state === 'BOOTSTRAPPING') {
        this.options.log?.info(base, 'agent was starting; its start is retried by the run');
        results.push({ ...base, outcome: 'idle' });
        continue;
      }
      if (session.processLostRecoveries < PROCESS_LOST_RECOVERIES) {
        const working = await roleIsWorking(db, session.roleId, runState, currentPhaseId);
        const seen = await this.options.drivers.forBackend(session.backend).probe(targetOf(session)).catch(() => undefined);
        await markProcessLost(db, session, seen, { resumeTries: this.options.resumeAttempts ?? 3, noticedBy: 'worker start', working });
        const outcome: RecoveredSession = { ...base, outcome: working ? 'restarting' : 'idle' };
        this.options.log?.warn(outcome, working ? 'agent gone mid-phase: the run restarts it with its conversation' : 'agent gone while its role waits: restarted when the role works again');
        results.push(outcome);
        if (working) await this.options.notifyRun?.(session.runId, outcome).catch((error) => this.options.log?.warn({ error: String(error) }, 'could not tell the run'));
        continue;
      }
      const approvalRequestId = await failLostSession(this.options.db, session, { runState, currentPhaseId, resumeAttempts: this.options.resumeAttempts ?? 3 });
      const lost: RecoveredSession = { ...base, outcome: 'failed', ...(approvalRequestId ? { approvalRequestId } : {}) };
      this.options.log?.warn(lost, 'agent session could not be resumed');
      results.push(lost);
      if (approvalRequestId) await this.options.notifyRun?.(session.runId, lost).catch((error) => this.options.log?.warn({ error: String(error) }, 'could not tell the run'));
    }
    return results;
  }

  private async resumeWithRetries(session: TuiSession): Promise<boolean> {
    const attempts = this.options.resumeAttempts ?? 3;
    const driver = this.options.drivers.forBackend(session.backend);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (await driver.resume(targetOf(session)).catch(() => false)) return true;
      if (attempt < attempts) await new Promise((r) => setTimeout(r, (this.options.resumeBackoffMs ?? 200) * 2 ** (attempt - 1)));
    }
    return false;
  }

  /**
   * Kills tmux sessions (and their process groups) on this host's socket that belong to no
   * run still going; live ones of active runs are kept and noted.
   */
  async reapOrphans(): Promise<{ reaped: string[]; kept: string[] }> {
    const names = (await this.options.tmux.sessionNames()).filter((n) => n.startsWith('devflow-'));
    if (names.length === 0) return { reaped: [], kept: [] };
    const active = await this.options.db
      .select({ id: runs.id })
      .from(runs)
      .innerJoin(tuiSessions, eq(tuiSessions.runId, runs.id))
      .where(and(notInArray(runs.state, [...TERMINAL_RUN_STATES]), eq(tuiSessions.hostId, this.options.hostId), ne(tuiSessions.state, 'FAILED_NEEDS_HUMAN')));
    const activeNames = new Set(active.map((r) => tmuxSessionName(r.id)));
    const reaped: string[] = [];
    const kept: string[] = [];
    for (const name of names) {
      if (activeNames.has(name)) {
        kept.push(name);
        this.options.log?.info({ tmuxSession: name }, 'kept tmux session of an active run');
      } else {
        await this.options.tmux.killSession(name);
        reaped.push(name);
        this.options.log?.warn({ tmuxSession: name }, 'reaped orphan tmux session');
      }
    }
    return { reaped, kept };
  }

  /** Refuses new operations, waits for those in flight (bounded), then lets the lock go. */
  async shutdown(): Promise<{ drained: boolean }> {
    this.stopping = true;
    let drained = this.inFlight === 0;
    if (!drained) {
      const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), this.options.shutdownDrainMs ?? 10_000));
      drained = await Promise.race([new Promise<true>((resolve) => this.idle.push(() => resolve(true))), timeout]);
    }
    // Live agents of unfinished runs stay for the next worker to resume; an empty server goes.
    if ((await this.options.tmux.sessionNames()).length === 0) await this.options.tmux.killServer();
    await this.lockClient.query('select pg_advisory_unlock($1::bigint)', [sessionManagerLockKey(this.options.hostId).toString()]).catch(() => undefined);
    this.lockClient.release();
    return { drained };
  }

  get operationsInFlight(): number {
    return this.inFlight;
  }
}
