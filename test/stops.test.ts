// Why a run, phase or session stopped and what happens next, for each way it can stop.
import { describe, expect, it } from 'vitest';
import { codeOf, phaseStops, runStop, sessionFlags, sessionStops } from '../db/stops.ts';
import { CANCELLED_FROM_TEMPORAL } from '../workflows/run.ts';

const run = (state: string, finalReportPath: string | null = null) => ({ id: 'r1', state, repoPath: '/src/app', finalReportPath });
const ended = (type: string, reason: string) => [{ type: 'run.started', payload: {} }, { type, payload: { reason } }];
const phaseKey = (id: string | null) => (id === 'p1' ? 'spec' : null);

describe('stops', () => {
  it('names a pending approval gate, and what a person does there', () => {
    const stop = runStop(run('awaiting_approval'), [{ gateKey: 'spec_approved', state: 'pending', phaseId: 'p1', payload: { kind: 'approval' } }], [], phaseKey);
    expect(stop).toEqual({
      code: 'awaiting_approval',
      reason: "the spec artifact waits for a person's approval at spec_approved",
      next: 'a person reads it and decides: approve and the run goes on, reject and it fails, abort and it stops; devflow approve r1 --gate spec_approved (or reject, abort)',
    });
  });

  it('names a human gate with its reason, and its hint as the first thing to do', () => {
    const gate = { gateKey: 'session_recovery_required', state: 'pending', phaseId: null, payload: { kind: 'human', reason: 'the spec_writer agent session could not be resumed', hint: 'attach with tmux\nand look' } };
    expect(runStop(run('paused'), [gate], [], phaseKey)).toEqual({
      code: 'needs_person',
      reason: 'session_recovery_required: the spec_writer agent session could not be resumed',
      next: 'attach with tmux; then approve to try the phase again: devflow approve r1 --gate session_recovery_required (or reject, abort)',
    });
  });

  it.each([
    ['run.failed', 'rejected at gate spec_approved at phase spec', 'rejected'],
    ['run.failed', 'stranded: its workflow was terminated (from the Temporal Web UI or CLI); devflow settled the run', 'stranded'],
    ['run.failed', 'phase spec needed a person 4 times (x: y); it is retried at most 3 times', 'retries_exhausted'],
    ['run.failed', 'artifact_path_outside_worktree: the artifact folder leads out of the worktree', 'artifact_path_outside_worktree'],
    ['run.failed', 'something else broke', 'failed'],
    ['run.aborted', 'aborted at gate spec_approved at phase spec', 'aborted'],
    ['run.aborted', CANCELLED_FROM_TEMPORAL, 'cancelled'],
  ])('gives an ended run (%s "%s") the code %s, its reason, and nothing more to do', (type, reason, code) => {
    const state = type === 'run.failed' ? 'failed' : 'aborted';
    const stop = runStop(run(state, '/w/r1.report.md'), [], ended(type, reason), phaseKey);
    expect(stop).toMatchObject({ code, reason });
    expect(stop!.next).toMatch(/^nothing.*read the report at \/w\/r1\.report\.md/);
  });

  it('points a completed run at its branch and report; a working run has no stop', () => {
    expect(runStop(run('completed', '/w/r1.report.md'), [], ended('run.completed', 'every phase completed'), phaseKey)).toEqual({
      code: 'completed',
      reason: 'every phase completed',
      next: 'nothing: the work is on branch devflow/r1 of /src/app; read the report at /w/r1.report.md',
    });
    expect(runStop(run('executing'), [], [{ type: 'run.started', payload: {} }], phaseKey)).toBeNull();
  });

  it('gives a failed phase the reason of its last failure, and what the run does next', () => {
    const phases = [{ id: 'p1', phaseKey: 'spec', state: 'failed' }, { id: 'p2', phaseKey: 'implement', state: 'pending' }];
    const events = [
      { type: 'phase.failed', phaseId: 'p1', payload: { reason: 'session_recovery_required' } },
      { type: 'phase.failed', phaseId: 'p1', payload: { reason: 'process_lost', next: 'devflow restarts the agent with its conversation and tries the phase again' } },
    ];
    const stops = phaseStops(phases, events);
    expect(stops.get('p1')).toEqual({ code: 'process_lost', reason: 'process_lost', next: 'devflow restarts the agent with its conversation and tries the phase again' });
    expect(stops.has('p2')).toBe(false);
  });

  it('flags a session whose agent is gone, with the recovery devflow will make', () => {
    const sessions = [{ id: 's1', roleId: 'spec_writer', state: 'CRASHED' }, { id: 's2', roleId: 'implementer', state: 'READY' }, { id: 's3', roleId: 'reviewer', state: 'CLOSED' }];
    const events = [
      { type: 'session.process_lost', payload: { sessionId: 's1', reason: 'process_lost', recovery: 'restarted with its conversation when spec_writer works next (1 of 1 automatic)' } },
      { type: 'session.closed', payload: { sessionId: 's3', reason: 'its run ended' } },
    ];
    const stops = sessionStops(sessions, events);
    expect(stops.get('s1')).toEqual({ code: 'process_lost', reason: "the spec_writer agent's process is gone", next: 'restarted with its conversation when spec_writer works next (1 of 1 automatic)' });
    expect(stops.has('s2')).toBe(false);
    expect(stops.get('s3')).toMatchObject({ code: 'run_ended' });
  });

  it('flags an agent kept alive though silent until its phase is done; a late or restarted one is not flagged', () => {
    const sessions = [{ id: 's1', roleId: 'implementer', state: 'BUSY' }, { id: 's2', roleId: 'reviewer', state: 'BUSY' }];
    const kept = { type: 'session.rebootstrapped', payload: { sessionId: 's1', kept: true, flagged: 'silent' } };
    const late = { type: 'session.rebootstrapped', payload: { sessionId: 's2', kept: true } };
    const flags = sessionFlags(sessions, [kept, late]);
    expect([...flags.keys()]).toEqual(['s1']);
    expect(flags.get('s1')).toMatchObject({ code: 'silent', reason: expect.stringContaining('implementer agent is alive but was silent'), next: expect.stringContaining('artifact_timeout_exhausted') });
    expect(sessionFlags(sessions, [kept, { type: 'session.idle', payload: { sessionId: 's1' } }]).size).toBe(0);
    expect(sessionFlags([{ id: 's1', roleId: 'implementer', state: 'FAILED_NEEDS_HUMAN' }], [kept]).size).toBe(0);
  });

  it('reads a leading error code only when devflow knows it', () => {
    expect(codeOf('agent_start_failed: the codex agent did not start', 'failed')).toBe('agent_start_failed');
    expect(codeOf('note: not a code', 'failed')).toBe('failed');
  });
});
