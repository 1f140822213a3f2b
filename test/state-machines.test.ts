// Every pair of states of every machine: the allowed ones are written out here from SPEC
// section 4, independently of db/state-machines.ts, and every other pair must be refused.
import { describe, expect, it } from 'vitest';
import { isDevflowError } from '../lib/errors.ts';
import {
  APPROVAL_STATES,
  assertApprovalTransition,
  assertPhaseTransition,
  assertRunTransition,
  assertSessionTransition,
  canTransitionApproval,
  canTransitionPhase,
  canTransitionRun,
  canTransitionSession,
  PHASE_STATES,
  RUN_STATES,
  SESSION_STATES,
  type RunState,
} from '../db/state-machines.ts';

const pairs = <S extends string>(states: readonly S[]) => states.flatMap((from) => states.map((to) => [from, to] as const));
const set = (list: string[]) => new Set(list);

describe('run state machine', () => {
  // planning -> executing <-> awaiting_approval; executing|awaiting_approval -> paused;
  // terminal completed|failed|aborted, reached from the live states as the workflow allows.
  const allowed = set([
    'planning>executing', 'planning>failed', 'planning>aborted',
    'executing>awaiting_approval', 'executing>paused', 'executing>completed', 'executing>failed', 'executing>aborted',
    'awaiting_approval>executing', 'awaiting_approval>paused', 'awaiting_approval>failed', 'awaiting_approval>aborted',
    'paused>failed', 'paused>aborted',
  ]);

  // From `paused` it depends on paused_from_state: covered below.
  it.each(pairs(RUN_STATES).filter(([from]) => from !== 'paused'))('%s -> %s', (from, to) => {
    const expected = allowed.has(`${from}>${to}`);
    expect(canTransitionRun(from, to)).toBe(expected);
    if (expected) expect(() => assertRunTransition(from, to)).not.toThrow();
    else expect(() => assertRunTransition(from, to)).toThrow(/illegal run transition/);
  });

  it.each(['executing', 'awaiting_approval'] as RunState[])('paused returns only to the state it was paused from (%s)', (pausedFrom) => {
    for (const to of RUN_STATES) {
      const expected = to === pausedFrom || allowed.has(`paused>${to}`);
      expect(canTransitionRun('paused', to, pausedFrom), `paused(${pausedFrom}) -> ${to}`).toBe(expected);
    }
  });

  it('nothing leaves a terminal state', () => {
    for (const from of ['completed', 'failed', 'aborted'] as RunState[]) {
      for (const to of RUN_STATES) expect(canTransitionRun(from, to, 'executing')).toBe(false);
    }
  });

  it('throws a typed internal_state_corruption error', () => {
    try {
      assertRunTransition('completed', 'executing');
      expect.unreachable();
    } catch (error) {
      expect(isDevflowError(error, 'internal_state_corruption')).toBe(true);
      expect(error).toMatchObject({ errorClass: 'fatal', details: { machine: 'run', from: 'completed', to: 'executing' } });
    }
  });
});

describe('phase state machine', () => {
  // pending -> running -> awaiting_artifact -> validating -> (awaiting_approval) -> completed|failed;
  // a repair or retry re-enters running; a loop sends a completed phase back to running.
  const allowed = set([
    'pending>running',
    'running>awaiting_artifact', 'running>failed',
    'awaiting_artifact>validating', 'awaiting_artifact>running', 'awaiting_artifact>failed',
    'validating>awaiting_approval', 'validating>completed', 'validating>running', 'validating>failed',
    'awaiting_approval>completed', 'awaiting_approval>failed',
    'failed>running', 'completed>running',
  ]);

  it.each(pairs(PHASE_STATES))('%s -> %s', (from, to) => {
    const expected = allowed.has(`${from}>${to}`);
    expect(canTransitionPhase(from, to)).toBe(expected);
    if (expected) expect(() => assertPhaseTransition(from, to)).not.toThrow();
    else expect(() => assertPhaseTransition(from, to)).toThrow(/illegal phase transition/);
  });
});

describe('session state machine', () => {
  // CREATED -> BOOTSTRAPPING -> READY <-> BUSY; READY|BUSY -> WAITING_FOR_APPROVAL -> READY;
  // BUSY -> ARTIFACT_TIMEOUT|HUNG|CRASHED -> RESUMING -> REBOOTSTRAPPED -> READY;
  // READY|WAITING_FOR_APPROVAL -> CRASHED (its agent process found gone);
  // any non-terminal -> FAILED_NEEDS_HUMAN, or -> CLOSED when its run ended (both terminal).
  const nonTerminal = SESSION_STATES.filter((s) => s !== 'FAILED_NEEDS_HUMAN' && s !== 'CLOSED');
  const allowed = set([
    'CREATED>BOOTSTRAPPING', 'BOOTSTRAPPING>READY', 'READY>BUSY', 'BUSY>READY',
    'READY>WAITING_FOR_APPROVAL', 'BUSY>WAITING_FOR_APPROVAL', 'WAITING_FOR_APPROVAL>READY',
    'BUSY>ARTIFACT_TIMEOUT', 'BUSY>HUNG', 'BUSY>CRASHED', 'READY>CRASHED', 'WAITING_FOR_APPROVAL>CRASHED',
    'ARTIFACT_TIMEOUT>RESUMING', 'HUNG>RESUMING', 'CRASHED>RESUMING',
    'RESUMING>REBOOTSTRAPPED', 'REBOOTSTRAPPED>READY',
    ...nonTerminal.map((s) => `${s}>FAILED_NEEDS_HUMAN`),
    ...nonTerminal.map((s) => `${s}>CLOSED`),
  ]);

  it.each(pairs(SESSION_STATES))('%s -> %s', (from, to) => {
    const expected = allowed.has(`${from}>${to}`);
    expect(canTransitionSession(from, to)).toBe(expected);
    if (expected) expect(() => assertSessionTransition(from, to)).not.toThrow();
    else expect(() => assertSessionTransition(from, to)).toThrow(/illegal session transition/);
  });
});

describe('approval request state machine', () => {
  // pending -> approved | rejected | aborted (a decision) | closed (nobody decided; the run or phase moved on).
  const allowed = set(['pending>approved', 'pending>rejected', 'pending>aborted', 'pending>closed']);

  it.each(pairs(APPROVAL_STATES))('%s -> %s', (from, to) => {
    const expected = allowed.has(`${from}>${to}`);
    expect(canTransitionApproval(from, to)).toBe(expected);
    if (expected) expect(() => assertApprovalTransition(from, to)).not.toThrow();
    else expect(() => assertApprovalTransition(from, to)).toThrow(/illegal approval transition/);
  });
});
