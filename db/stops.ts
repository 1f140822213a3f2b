// Why a run, phase or session stopped, and what happens next: a machine-readable code, a
// sentence, and the next action a person or devflow takes. Read from the rows and events alone
// (the API, `devflow status` and the report all show the same), so it never disagrees with them.
import { runBranch } from '../lib/runs.ts';
import { ERROR_CODES } from '../lib/errors.ts';

export interface Stop {
  /** e.g. awaiting_approval, needs_person, completed, rejected, aborted, cancelled, stranded, retries_exhausted, process_lost, or an error code. */
  code: string;
  reason: string;
  next: string;
}

interface RunLike {
  id: string;
  state: string;
  repoPath: string;
  finalReportPath: string | null;
}
interface PendingGate {
  gateKey: string;
  state: string;
  phaseId: string | null;
  payload: Record<string, unknown>;
}
interface EventLike {
  type: string;
  payload: unknown;
}

const TERMINAL_EVENTS = new Set(['run.completed', 'run.failed', 'run.aborted']);
const SESSION_STOP_EVENTS = ['session.process_lost', 'session.crashed', 'artifact.timeout', 'session.failed', 'session.closed'];
/** A kept agent is flagged from its recovery until its phase is done (it goes idle). */
const FLAG_EVENTS = ['session.rebootstrapped', 'session.idle'];
/** The only events a stop or flag is read from: a reader fetches these, not a run's whole log. */
export const STOP_EVENT_TYPES: string[] = [...TERMINAL_EVENTS, 'phase.failed', ...SESSION_STOP_EVENTS, ...FLAG_EVENTS];

/** The code a failure's reason carries: its error code (`agent_start_failed: …`), or what its words say. */
export function codeOf(reason: string, fallback: string): string {
  const leading = /^([a-z_]+):/.exec(reason)?.[1];
  if (leading && leading in ERROR_CODES) return leading;
  if (reason.startsWith('rejected at')) return 'rejected';
  if (reason.startsWith('stranded:')) return 'stranded';
  if (reason.startsWith('cancellation requested from Temporal')) return 'cancelled';
  if (/needed a person \d+ times/.test(reason)) return 'retries_exhausted';
  return fallback;
}

/** A run's stop: its pending gate, or how it ended; null while it works. */
export function runStop(run: RunLike, approvals: PendingGate[], events: EventLike[], phaseKeyOf: (phaseId: string | null) => string | null): Stop | null {
  const gate = approvals.find((a) => a.state === 'pending');
  const decide = (gateKey: string) => `devflow approve ${run.id} --gate ${gateKey} (or reject, abort)`;
  if (gate && !['completed', 'failed', 'aborted'].includes(run.state)) {
    const phase = phaseKeyOf(gate.phaseId);
    const said = typeof gate.payload.reason === 'string' ? gate.payload.reason : undefined;
    // A human gate says so in its payload (`kind: human`); an approval gate is a phase's own.
    if (gate.payload.kind !== 'human') {
      return {
        code: 'awaiting_approval',
        reason: said ?? `the ${phase ?? 'phase'} artifact waits for a person's approval at ${gate.gateKey}`,
        next: `a person reads it and decides: approve and the run goes on, reject and it fails, abort and it stops; ${decide(gate.gateKey)}`,
      };
    }
    const hint = typeof gate.payload.hint === 'string' ? gate.payload.hint.split('\n')[0] : undefined;
    return {
      code: 'needs_person',
      reason: `${gate.gateKey}${phase ? ` at phase ${phase}` : ''}: ${said ?? 'devflow cannot go on by itself'}`,
      next: `${hint ? `${hint}; ` : ''}then approve to try the phase again: ${decide(gate.gateKey)}`,
    };
  }
  const terminal = [...events].reverse().find((e) => TERMINAL_EVENTS.has(e.type));
  if (!terminal) return null;
  const reason = (terminal.payload as { reason?: string } | null)?.reason ?? run.state;
  const report = run.finalReportPath ? `the report at ${run.finalReportPath}` : 'the report (being written)';
  if (run.state === 'completed') {
    return { code: 'completed', reason, next: `nothing: the work is on branch ${runBranch(run.id)} of ${run.repoPath}; read ${report}` };
  }
  if (run.state === 'aborted') return { code: codeOf(reason, 'aborted'), reason, next: `nothing: the run is over and its worktree is kept; read ${report}` };
  return { code: codeOf(reason, 'failed'), reason, next: `nothing more from devflow: read ${report}, fix the cause and start a new run` };
}

/** Each stopped phase's stop (failed, or waiting at its gate), by phase id, from its last events. */
export function phaseStops(phases: { id: string; phaseKey: string; state: string }[], events: (EventLike & { phaseId: string | null })[]): Map<string, Stop> {
  const stops = new Map<string, Stop>();
  for (const phase of phases) {
    if (phase.state !== 'failed' && phase.state !== 'awaiting_approval') continue;
    if (phase.state === 'awaiting_approval') {
      stops.set(phase.id, { code: 'awaiting_approval', reason: `its artifact waits for a person's approval`, next: 'a person approves, rejects or aborts' });
      continue;
    }
    const failed = [...events].reverse().find((e) => e.type === 'phase.failed' && e.phaseId === phase.id);
    const reason = String((failed?.payload as { reason?: string } | null)?.reason ?? 'failed');
    const next = (failed?.payload as { next?: string } | null)?.next;
    const code = codeOf(reason, reason === 'process_lost' || reason === 'session_recovery_required' ? reason : 'failed');
    stops.set(phase.id, { code, reason, next: next ?? (code === 'process_lost' ? 'devflow restarts the agent and tries the phase again' : 'the run decides: a gate for a person, another attempt, or the end of the run') });
  }
  return stops;
}

/** Each stopped session's stop (crashed, failed for good, closed), by session id, from its last events. */
export function sessionStops(sessions: { id: string; roleId: string; state: string }[], events: EventLike[]): Map<string, Stop> {
  const stops = new Map<string, Stop>();
  for (const session of sessions) {
    if (!['CRASHED', 'HUNG', 'ARTIFACT_TIMEOUT', 'FAILED_NEEDS_HUMAN', 'CLOSED'].includes(session.state)) continue;
    const mine = events.filter((e) => (e.payload as { sessionId?: string } | null)?.sessionId === session.id);
    const last = mine.reverse().find((e) => SESSION_STOP_EVENTS.includes(e.type));
    const payload = (last?.payload ?? {}) as { reason?: string; recovery?: string; classification?: string };
    if (session.state === 'CLOSED') {
      stops.set(session.id, { code: 'run_ended', reason: payload.reason ?? 'its run ended', next: 'nothing: its transcript and usage are kept' });
    } else if (session.state === 'FAILED_NEEDS_HUMAN') {
      stops.set(session.id, { code: payload.reason ?? 'needs_person', reason: `the ${session.roleId} agent failed for good (${payload.reason ?? 'see its gate'})`, next: 'a person decides at the run\'s gate; approving starts a new agent' });
    } else if (last?.type === 'session.process_lost') {
      stops.set(session.id, { code: 'process_lost', reason: `the ${session.roleId} agent's process is gone`, next: payload.recovery ?? 'devflow restarts it with its conversation' });
    } else {
      stops.set(session.id, { code: (payload.classification ?? session.state).toLowerCase(), reason: `the ${session.roleId} agent wrote no artifact in time (${session.state})`, next: 'devflow restarts it with its conversation and sends one repair prompt' });
    }
  }
  return stops;
}

/**
 * Each session flagged while it works: an agent probes agreed was alive but silent, kept (not
 * killed) and reminded by a repair prompt. The flag goes when its phase is done; if the agent
 * stays silent, the session fails and its stop says so instead.
 */
export function sessionFlags(sessions: { id: string; roleId: string; state: string }[], events: EventLike[]): Map<string, Stop> {
  const flags = new Map<string, Stop>();
  for (const session of sessions) {
    if (['FAILED_NEEDS_HUMAN', 'CLOSED'].includes(session.state)) continue;
    const last = [...events].reverse().find((e) => FLAG_EVENTS.includes(e.type) && (e.payload as { sessionId?: string } | null)?.sessionId === session.id);
    if ((last?.payload as { flagged?: string } | undefined)?.flagged !== 'silent') continue;
    flags.set(session.id, {
      code: 'silent',
      reason: `the ${session.roleId} agent is alive but was silent through every probe; devflow kept it rather than kill its work`,
      next: 'it got one repair prompt; if it still writes no artifact, the run waits for a person at artifact_timeout_exhausted',
    });
  }
  return flags;
}
