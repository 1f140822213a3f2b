// The life of one devflow run, top to bottom (SPEC section 5). The workflow only sequences;
// each step is a small idempotent activity, so Temporal's history says where a run is.
// Runs wait at gates for days: every change to the sequence of steps goes behind patched().
import {
  CancellationScope,
  condition,
  isCancellation,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { PreparedPhase, PreparedRun } from '../activities/prepare-run.ts';
import type { DecisionAction, RunState } from '../db/state-machines.ts';
import type { PromptKind, Revision } from '../schemas/prompt.ts';
import { scenarioForAttempt } from '../sessions/scenarios.ts';
import { describe, failedBecause, failureOf } from './failures.ts';
import {
  abortSignal,
  decisionSignal,
  sessionLostSignal,
  statusQuery,
  type AbortRequest,
  type Decision,
  type PendingGate,
  type RunInput,
  type RunOutcome,
  type RunStatus,
  type SessionLost,
} from './messages.ts';
import { REPO, RUN_ID, RUN_STATE, TEMPLATE } from './search-attributes.ts';
import type { Activities } from '../activities/index.ts';
import type { GateOpened } from '../activities/gates.ts';
import { act, actLocal, DELIVERY, LOCAL_STEP, STEP, WAIT } from './steps.ts';

const DEFAULT_TIMING = { stabilityMs: 500, pollMs: 250, maxHungMs: 5 * 60_000 };
/** How many times a person may send a phase back for another try before the run gives up. */
export const DEFAULT_MAX_PHASE_RETRIES = 3;

// Changes to the sequence of steps, each behind its patch so runs started before it replay.
/** An agent that cannot be started (after bounded tries) or is stopped at a screen: a human gate, not a failed run. */
const GATE_ON_AGENT_START = 'gate-on-agent-start-failure';
/** The agent's transcript and usage are kept before an approval gate, so a person sees them while deciding. */
const CAPTURE_BEFORE_APPROVAL = 'capture-before-approval-gate';
/** Failures go by their class: fatal ends the run, human_required opens its own gate, recoverable the step's. */
const ROUTE_BY_CLASS = 'route-failures-by-class';
/** A phase is retried after a human gate at most `maxPhaseRetries` times. */
const BOUNDED_RETRIES = 'bounded-phase-retries';
/** The state search attribute is written when the state changes, not at every status change. */
const UPSERT_ON_CHANGE = 'upsert-state-on-change';
/** The end of a run as steps: terminal state, each session closed, the report. */
const FINALIZE_IN_STEPS = 'finalize-in-steps';
/** A phase's artifact may send the work back to an earlier phase, for at most the rounds its template allows. */
const VERDICT_LOOPS = 'verdict-loops';
/** An agent lost mid-phase (a restart of the stack or host) is restarted by devflow and the phase tried again, no gate. */
const AUTOMATIC_RECOVERY = 'automatic-agent-recovery';
/** A cancellation requested from Temporal (its Web UI, `temporal workflow cancel`) is an abort. */
const CANCEL_IS_ABORT = 'temporal-cancel-is-abort';
/**
 * Fewer trips through Temporal per phase: the artifact is waited for, validated and settled (the
 * phase completed or its gate opened) in one step on the host; short database steps are local
 * activities; while a gate waits for a person the next role's agent is started.
 */
const SETTLE_IN_ONE_STEP = 'settle-in-one-step';
/**
 * One trip through Temporal fewer per phase and at the end: the prompt's step readies the role's
 * agent itself (no ensureSession before it; the agent a gate starts early stays), and the
 * sessions are closed and the report written in one step.
 */
const READY_IN_PROMPT = 'ready-agent-in-prompt-step';
/** The reason recorded when a run is cancelled from Temporal rather than aborted through devflow. */
export const CANCELLED_FROM_TEMPORAL = 'cancellation requested from Temporal (Web UI or `temporal workflow cancel`): the run is aborted';

type Gate = { kind: 'gate'; attempt: number; gateKey: string; reason: string; hint?: string; sessionTo: 'CRASHED' | 'FAILED_NEEDS_HUMAN'; sessionId?: string };
type LoopSaid = { matched: boolean; quote?: unknown };
/** What the settling step recorded past validation (SETTLE_IN_ONE_STEP): the phase completed, or its gate opened. */
type Settled = { completed: { pausedBy?: string } } | { gate: GateOpened };
type AttemptResult = { kind: 'valid'; attempt: number; loop?: LoopSaid; settled?: Settled } | Gate;
/** A valid artifact that sends the work back (rounds left). */
type LoopBack = { kind: 'loop'; attempt: number; quote: unknown };
/** Where a phase left the run: ended, done (next phase), or sent back to an earlier phase. */
type PhaseEnd = RunOutcome | undefined | { back: string; revision: Revision };
/** The session manager paused the run under a step: the phase waits at the gate it opened. */
type Lost = { kind: 'lost'; approvalRequestId: string };
/** The phase's agent was lost and devflow restarts it: the attempt is tried again. */
type Restart = { kind: 'restart'; sessionId: string };

export async function runWorkflow(input: RunInput): Promise<RunOutcome> {
  const { runId } = input;
  const timing = { ...DEFAULT_TIMING, ...input.timing };
  const maxPhaseRetries = input.maxPhaseRetries ?? DEFAULT_MAX_PHASE_RETRIES;
  const status: RunStatus = { runId, state: 'planning', phaseKey: null, attempt: 0, pendingGate: null };
  const decisions: Decision[] = [];
  const decided = new Set<string>();
  let abortRequest: AbortRequest | undefined;
  /** Per phase, across the rounds a loop runs it again: attempts, passes, and loops taken from it. */
  const attemptsOf = new Map<string, { count: number }>();
  const passesOf = new Map<string, number>();
  const loopsFrom = new Map<string, number>();
  const work = new CancellationScope();
  // The run's host (its worktree and tmux sessions live there), chosen by its first activity.
  let hostQueue: string | undefined;
  const hostOptions = new Map<ActivityOptions, ActivityOptions>();
  const onHost = (options: ActivityOptions): ActivityOptions => {
    if (!hostOptions.has(options)) hostOptions.set(options, { ...options, taskQueue: hostQueue! });
    return hostOptions.get(options)!;
  };

  // Decided once per run, where it first matters, so a run keeps one way of working to its end.
  let oneStep: boolean | undefined;
  const settleInOneStep = () => (oneStep ??= patched(SETTLE_IN_ONE_STEP));
  let inPrompt: boolean | undefined;
  const readyInPrompt = () => (inPrompt ??= settleInOneStep() && patched(READY_IN_PROMPT));
  /** A short database step: a local activity from era 6 on, a queued one before. */
  const dbStep = <K extends keyof Activities>(name: K, summary: string, stepInput: Parameters<Activities[K]>[0]): ReturnType<Activities[K]> =>
    settleInOneStep() ? actLocal(LOCAL_STEP, name, summary, stepInput) : act(STEP, name, summary, stepInput);
  /**
   * Per role, an agent started while a gate waits (SETTLE_IN_ONE_STEP): its phase waits for that
   * start, and a start that failed fails the phase's own (a person is asked once, not after
   * another round of tries).
   */
  const prestarted = new Map<string, Promise<{ failed?: unknown }>>();
  /** The phase after the one running, whose agent a gate may start early. */
  let upcoming: PreparedPhase | undefined;

  // ---- messages -----------------------------------------------------------------------------
  setHandler(statusQuery, () => status);
  // A decision for a request already decided (a late repeat) is dropped, not kept forever.
  setHandler(decisionSignal, (decision) => void (decided.has(decision.approvalRequestId) || decisions.push(decision)));
  setHandler(abortSignal, (request) => {
    abortRequest ??= request;
    work.cancel();
  });
  // The phase in flight, so a lost session of its role can interrupt it.
  let inFlight: { roleId: string; scope: CancellationScope; lost?: SessionLost } | undefined;
  setHandler(sessionLostSignal, (lost) => {
    if (inFlight?.roleId === lost.roleId && !inFlight.lost) {
      inFlight.lost = lost;
      inFlight.scope.cancel();
    }
  });

  let shownState: RunState | undefined;
  function show(patch: Partial<RunStatus>): void {
    Object.assign(status, patch);
    if (status.state !== shownState || !patched(UPSERT_ON_CHANGE)) upsertSearchAttributes([{ key: RUN_STATE, value: status.state }]);
    shownState = status.state;
    const gate = status.pendingGate ? ` — waiting at gate **${status.pendingGate.gateKey}** (${status.pendingGate.kind})` : '';
    setCurrentDetails(`**${status.state}**${status.phaseKey ? `, phase **${status.phaseKey}** attempt ${status.attempt}` : ''}${gate}`);
  }
  upsertSearchAttributes([
    { key: RUN_ID, value: runId },
    { key: TEMPLATE, value: input.templateId },
    { key: REPO, value: input.repoPath },
  ]);
  show({});

  // ---- the run ------------------------------------------------------------------------------
  let plan: PreparedRun | undefined;
  let outcome: RunOutcome;
  let failure: unknown;
  try {
    outcome = await work.run(async () => {
      // (A local activity runs on the worker that runs this workflow task: its host takes the run, as with a queued one.)
      const pick = 'pick the worker host for this run';
      ({ hostQueue } = await dbStep('selectHost', pick, undefined));
      plan = await act(onHost(STEP), 'prepareRun', 'create the run, its phases and its worktree', input);
      show({ state: 'executing' });
      const { phases } = plan;
      let revision: Revision | undefined;
      for (let i = 0; i < phases.length; ) {
        upcoming = phases[i + 1];
        const ended = await runPhase(plan, phases[i]!, revision);
        revision = undefined;
        if (ended && 'back' in ended) {
          i = phases.findIndex((p) => p.key === ended.back);
          revision = ended.revision;
          continue;
        }
        if (ended) return ended;
        i += 1;
      }
      return { state: 'completed' as const, reason: 'every phase completed' };
    });
  } catch (error) {
    if (abortRequest && isCancellation(error)) {
      outcome = { state: 'aborted', reason: abortRequest.reason ?? 'aborted on request' };
    } else if (isCancellation(error) && CancellationScope.current().consideredCancelled && patched(CANCEL_IS_ABORT)) {
      // Whoever cancels a run means to stop it: it ends aborted, its sessions closed and its report written.
      outcome = { state: 'aborted', reason: CANCELLED_FROM_TEMPORAL };
    } else {
      failure = error;
      outcome = { state: 'failed', reason: failedBecause(error) };
    }
  }
  const recorded = await CancellationScope.nonCancellable(() => finish(outcome));
  // Nothing was recorded (the input was refused before the run existed): fail the workflow.
  if (!recorded && failure) throw failure;
  show({ state: outcome.state, pendingGate: null });
  return outcome;

  /** Every terminal path: the terminal state, the sessions closed, the report. */
  async function finish(end: RunOutcome): Promise<boolean> {
    const host = hostQueue ? onHost(STEP) : STEP;
    // An agent started early at a gate is closed with the others: its start finishes first.
    await Promise.all(prestarted.values());
    if (!patched(FINALIZE_IN_STEPS)) {
      return (await act(host, 'finalizeRun', `finish the run: ${end.state}, write the report`, { runId, outcome: end })).reportPath !== null;
    }
    const ending = { runId, outcome: end };
    const ended = await dbStep('endRun', `end the run: ${end.state}`, ending);
    if (!ended.recorded) return false;
    if (readyInPrompt()) {
      await act(host, 'closeRun', 'keep the transcripts and usage, dispose the agents, write the report', { runId, sessionIds: ended.sessionIds });
      return true;
    }
    if (settleInOneStep()) {
      if (ended.sessionIds.length) await act(host, 'closeSessions', 'keep the transcripts and usage, dispose the agents', { sessionIds: ended.sessionIds });
    } else {
      for (const sessionId of ended.sessionIds) await act(host, 'closeSession', 'keep the transcript and usage, dispose the agent', { sessionId });
    }
    await act(host, 'writeReport', 'write the report', { runId });
    return true;
  }

  // ---- one phase: attempts until a valid artifact (and its gate), or the run ends -------------
  async function runPhase(run: PreparedRun, phase: PreparedPhase, revision?: Revision): Promise<PhaseEnd> {
    if (!attemptsOf.has(phase.id)) attemptsOf.set(phase.id, { count: 0 });
    const attempts = attemptsOf.get(phase.id)!;
    // Which pass over this phase: 1 unless a later phase sent the work back.
    const round = (passesOf.get(phase.id) ?? 0) + 1;
    passesOf.set(phase.id, round);
    let retries = 0;
    const ensure = async () => {
      // An agent started early for this role (at the last gate) is ready, or failed: this start sees which.
      const early = await prestarted.get(phase.roleId);
      prestarted.delete(phase.roleId);
      if (early?.failed) throw early.failed;
      // From era 7 the prompt's step readies the agent, and says which session it readied.
      return readyInPrompt() ? { sessionId } : startAgent(run, phase);
    };
    /** A ready session, or (an agent that needs a person to start) a failed attempt at a human gate. */
    const ensureOrGate = async (kind: PromptKind): Promise<{ sessionId: string } | Gate> => {
      try {
        return await ensure();
      } catch (error) {
        const failure = failureOf(error);
        if (isCancellation(error) || failure?.errorClass !== 'human_required' || !patched(GATE_ON_AGENT_START)) throw error;
        const attempt = ++attempts.count;
        show({ phaseKey: phase.key, attempt });
        await act(STEP, 'beginAttempt', `${phase.key}: attempt ${attempt} (${kind}): the agent did not start`, { phaseId: phase.id, attempt, kind });
        const sessionId = typeof failure.details.sessionId === 'string' ? failure.details.sessionId : undefined;
        return { kind: 'gate', attempt, gateKey: failure.gate ?? 'session_recovery_required', reason: failure.summary, hint: failure.hint, sessionTo: 'FAILED_NEEDS_HUMAN', ...(sessionId ? { sessionId } : {}) };
      }
    };
    /** After a gate: approve retries the phase (true); reject or abort ends the run. */
    const retryAfter = async (approvalRequestId: string, gateKey: string, why: string): Promise<RunOutcome | true> => {
      const action = await decide({ approvalRequestId, gateKey, kind: 'human', phaseKey: phase.key }, 'paused');
      if (action !== 'approve') return ended(action, `human gate ${gateKey} at phase ${phase.key}${why}`);
      await act(STEP, 'resumeAfterHumanGate', `${phase.key}: retry approved`, { runId, approvalRequestId });
      show({ state: 'executing' });
      retries += 1;
      return true;
    };
    /** The session manager lost this role's agent and already paused the run behind a gate. */
    const afterLost = async (approvalRequestId: string): Promise<RunOutcome | true> => {
      await act(STEP, 'failPhaseForLostSession', `${phase.key}: agent session lost`, { phaseId: phase.id, approvalRequestId });
      return retryAfter(approvalRequestId, 'session_recovery_required', '');
    };

    let sessionId = '';
    let kind: PromptKind = revision ? 'revise' : 'initial';
    for (;;) {
      const current: NonNullable<typeof inFlight> = { roleId: phase.roleId, scope: new CancellationScope() };
      inFlight = current;
      let result: AttemptResult | LoopBack | Lost | Restart | 'passed' | { end: RunOutcome };
      try {
        result = await current.scope.run(async () => {
          const ensured = await ensureOrGate(kind);
          if ('kind' in ensured) return ensured;
          ({ sessionId } = ensured);
          const attempt = await attemptPhase(run, phase, sessionId, (id) => (sessionId = id), kind, attempts, round, revision);
          if (attempt.kind !== 'valid') return attempt;
          if (phase.loop && attempt.loop?.matched && patched(VERDICT_LOOPS)) {
            const taken = loopsFrom.get(phase.id) ?? 0;
            if (taken < phase.loop.maxRounds) return { kind: 'loop', attempt: attempt.attempt, quote: attempt.loop.quote } satisfies LoopBack;
            // Out of rounds: a person decides whether the work goes on as it is.
            const why = `${phase.key} said ${phase.loop.when.field} = ${JSON.stringify(phase.loop.when.equals)} again after ${taken} round(s) back to ${phase.loop.to}; the template allows ${phase.loop.maxRounds}`;
            return await approvalGate(phase, sessionId, attempt.attempt, `${phase.key}_rounds_exhausted`, why);
          }
          const opened = attempt.settled && 'gate' in attempt.settled ? attempt.settled.gate : undefined;
          return phase.gate ? await approvalGate(phase, sessionId, attempt.attempt, phase.gate, undefined, opened) : attempt;
        });
      } catch (error) {
        if (!current.lost || abortRequest || !isCancellation(error)) throw error;
        const { approvalRequestId } = current.lost;
        result = approvalRequestId === undefined && patched(AUTOMATIC_RECOVERY) ? { kind: 'restart', sessionId: current.lost.sessionId } : { kind: 'lost', approvalRequestId: approvalRequestId! };
      } finally {
        inFlight = undefined;
      }
      if (result === 'passed') return undefined;
      if ('end' in result) return result.end;
      if (result.kind === 'restart') {
        // No person needed: the attempt fails with process_lost, and the next ensureSession restarts the agent with its conversation.
        await act(STEP, 'failAttemptForLostAgent', `${phase.key}: the ${phase.roleId} agent was lost; restart it and try again`, { phaseId: phase.id, attempt: attempts.count, sessionId: result.sessionId });
        kind = 'retry';
        continue;
      }
      let next: RunOutcome | true;
      if (result.kind === 'lost') {
        next = await afterLost(result.approvalRequestId);
      } else if (result.kind === 'valid' || result.kind === 'loop') {
        // (Histories from before the guard recorded no result here.) The settling step may have completed it already.
        const settled = result.kind === 'valid' && result.settled && 'completed' in result.settled ? result.settled.completed : undefined;
        const completed = settled ?? await act(onHost(STEP), 'completePhase', `${phase.key}: complete`, {
          phaseId: phase.id, sessionId, attempt: result.attempt, ...(round > 1 ? { round } : {}),
        });
        if (!completed?.pausedBy) return result.kind === 'loop' ? await loopBack(phase, result.quote) : undefined;
        next = await afterLost(completed.pausedBy);
      } else {
        // Keep what the agent printed before its session is marked failed (and maybe replaced).
        const gated = result.sessionId ?? sessionId;
        if (gated) await act(onHost(STEP), 'captureTranscript', `${phase.key}: keep the ${phase.roleId} transcript`, { sessionId: gated });
        if (retries >= maxPhaseRetries && patched(BOUNDED_RETRIES)) {
          return { state: 'failed', reason: `phase ${phase.key} needed a person ${retries + 1} times (${result.gateKey}: ${result.reason}); it is retried at most ${maxPhaseRetries} times` };
        }
        const opened = await act(STEP, 'openHumanGate', `${phase.key}: human gate ${result.gateKey}`, {
          runId, phaseId: phase.id, sessionId: gated || null, sessionTo: gated ? result.sessionTo : null, gateKey: result.gateKey, attempt: result.attempt, reason: result.reason, hint: result.hint,
        });
        next = 'pausedBy' in opened ? await afterLost(opened.pausedBy) : await retryAfter(opened.approvalRequestId, result.gateKey, ` (${result.reason})`);
      }
      if (next !== true) return next;
      kind = 'retry';
    }
  }

  /** A ready agent for the phase's role (its session created, started or resumed). */
  function startAgent(run: PreparedRun, phase: PreparedPhase) {
    const agent = agentFor(run, phase);
    return act(onHost(STEP), 'ensureSession', `${phase.key}: ready a ${agent.backend} session for ${phase.roleId}`, { runId, roleId: phase.roleId, ...agent });
  }

  /** The agent a phase's role works with: its backend, where it works, and whether it plays back a recording. */
  function agentFor(run: PreparedRun, phase: PreparedPhase) {
    return { backend: input.agents?.[phase.roleId] ?? input.backend, cwd: run.worktreePath, ...(input.playback ? { playback: true } : {}) };
  }

  /** The phase's artifact sent the work back: recorded, and the run goes on from the phase it names. */
  async function loopBack(phase: PreparedPhase, quote: unknown): Promise<PhaseEnd> {
    const loop = phase.loop!;
    const taken = (loopsFrom.get(phase.id) ?? 0) + 1;
    loopsFrom.set(phase.id, taken);
    await act(STEP, 'recordLoop', `${phase.key}: back to ${loop.to} (round ${taken} of ${loop.maxRounds})`, {
      runId, phaseId: phase.id, fromPhase: phase.key, toPhase: loop.to, round: taken, maxRounds: loop.maxRounds,
      field: loop.when.field, equals: loop.when.equals, quoted: loop.quote ?? null, value: quote ?? null,
    });
    return { back: loop.to, revision: { fromPhase: phase.key, round: taken, field: loop.quote ?? null, value: quote ?? null } };
  }

  /**
   * A valid artifact on a gated phase (or one whose loop is out of rounds): a person approves
   * (phase done, the run goes on) or ends the run.
   */
  async function approvalGate(phase: PreparedPhase, sessionId: string, attempt: number, gateKey = phase.gate!, reason?: string, settled?: GateOpened): Promise<'passed' | Lost | { end: RunOutcome }> {
    let opened = settled;
    if (!opened) {
      if (patched(CAPTURE_BEFORE_APPROVAL)) {
        await act(onHost(STEP), 'captureTranscript', `${phase.key}: keep the ${phase.roleId} transcript and usage`, { sessionId });
      }
      opened = await act(STEP, 'openApprovalGate', `${phase.key}: ask for ${gateKey}`, { runId, phaseId: phase.id, sessionId, gateKey, attempt, ...(reason ? { reason } : {}) });
    }
    if ('pausedBy' in opened) return { kind: 'lost', approvalRequestId: opened.pausedBy };
    const { approvalRequestId } = opened;
    // While a person decides, the next role's agent starts, so an approval does not wait for it
    // to boot. A run that ends here closes it with its other sessions.
    const next = upcoming;
    const run = plan;
    if (settleInOneStep() && next && run && next.roleId !== phase.roleId && !prestarted.has(next.roleId)) {
      // Not cancellable: an abort waits for it, so the run's end sees (and closes) the session it makes.
      prestarted.set(next.roleId, CancellationScope.nonCancellable(() => startAgent(run, next)).then(() => ({}), (failed: unknown) => ({ failed })));
    }
    const action = await decide({ approvalRequestId, gateKey, kind: 'approval', phaseKey: phase.key }, 'awaiting_approval');
    if (action !== 'approve') return { end: ended(action, `gate ${gateKey} at phase ${phase.key}`) };
    const pass = { runId, phaseId: phase.id, sessionId, approvalRequestId };
    await dbStep('passApprovalGate', `${phase.key}: ${gateKey} approved`, pass);
    show({ state: 'executing' });
    return 'passed';
  }

  // ---- one attempt: prompt, wait, validate; one repair; then a human gate ---------------------
  async function attemptPhase(run: PreparedRun, phase: PreparedPhase, readied: string, onSession: (id: string) => void, kind: PromptKind, attempts: { count: number }, round: number, revision?: Revision): Promise<AttemptResult> {
    // The phase's session: readied before (eras 1–6), or by the prompt's step (era 7 on), which says which.
    let sessionId = readied;
    const timeoutMs = timing.artifactTimeoutMs ?? phase.artifactTimeoutMs;
    const scenarios = input.scenarios?.[phase.key];
    let promptKind = kind;
    let errors: string[] | undefined;
    for (;;) {
      const attempt = ++attempts.count;
      const gate = (gateKey: string, reason: string, sessionTo: 'CRASHED' | 'FAILED_NEEDS_HUMAN', hint?: string): Gate =>
        ({ kind: 'gate', attempt, gateKey, reason, sessionTo, ...(hint ? { hint } : {}) });
      /**
       * A step's failure by its class: recoverable (retries used up) opens the step's own gate,
       * human_required the gate it names, fatal ends the run (a gate could not help).
       */
      const gateFor = (error: unknown, stepGate: string, sessionTo: 'CRASHED' | 'FAILED_NEEDS_HUMAN'): Gate => {
        if (isCancellation(error)) throw error;
        const failure = failureOf(error);
        if (!patched(ROUTE_BY_CLASS)) return gate(stepGate, describe(error), sessionTo, stepGate === 'prompt_send_exhausted' ? undefined : failure?.hint);
        if (failure?.errorClass === 'fatal') throw error;
        if (failure?.errorClass === 'human_required') return gate(failure.gate ?? stepGate, failure.summary, 'FAILED_NEEDS_HUMAN', failure.hint);
        return gate(stepGate, describe(error), sessionTo, failure?.hint);
      };
      show({ phaseKey: phase.key, attempt });
      const begin = { phaseId: phase.id, attempt, kind: promptKind };
      await dbStep('beginAttempt', `${phase.key}: attempt ${attempt} (${promptKind})`, begin);
      let sent: { baseline: { size: number; mtimeMs: number } | null; sessionId?: string };
      const agent = agentFor(run, phase);
      const toAgent = readyInPrompt() ? { agent } : { sessionId };
      const readying = readyInPrompt() ? `ready a ${agent.backend} session for ${phase.roleId} and send it the ${promptKind} prompt` : `send the ${promptKind} prompt to ${phase.roleId}`;
      try {
        sent = await act(onHost(DELIVERY), 'sendPrompt', `${phase.key}: ${readying}`, {
          runId, phaseId: phase.id, phaseKey: phase.key, ...toAgent, roleId: phase.roleId, attempt, kind: promptKind,
          worktreePath: run.worktreePath, artifactPath: phase.artifactPath, schemaId: phase.schemaId,
          instructions: phase.instructions, personaInstructions: run.personas[phase.roleId]?.instructions ?? '',
          timeoutMs, errors, scenario: scenarioForAttempt(scenarios, attempt), repairScenario: scenarioForAttempt(scenarios, attempt + 1),
          ...(revision ? { revision } : {}),
        });
      } catch (error) {
        const gated = gateFor(error, 'prompt_send_exhausted', 'CRASHED');
        // The prompt's step may have failed to ready a new agent (era 7 on): the gate is that session's.
        const failedSession = readyInPrompt() ? failureOf(error)?.details.sessionId : undefined;
        return typeof failedSession === 'string' ? { ...gated, sessionId: failedSession } : gated;
      }
      if (sent.sessionId && readyInPrompt()) onSession((sessionId = sent.sessionId));

      const loop = phase.loop ? { field: phase.loop.when.field, equals: phase.loop.when.equals, ...(phase.loop.quote ? { quote: phase.loop.quote } : {}) } : undefined;
      const waitFor = { phaseKey: phase.key, attempt, artifactPath: phase.artifactPath, baseline: sent.baseline ?? null, timeoutMs, stabilityMs: timing.stabilityMs, pollMs: timing.pollMs, sessionId };
      let waited: { status: 'timeout'; agentGone?: true } | { status: 'found'; valid?: boolean; errors?: string[]; loop?: LoopSaid; settled?: Settled };
      try {
        waited = settleInOneStep()
          ? await act(onHost(WAIT), 'settleArtifact', `${phase.key}: wait for ${phase.schemaId}, validate, record`, {
            ...waitFor, runId, phaseId: phase.id, schemaId: phase.schemaId, ...(loop ? { loop } : {}), ...(round > 1 ? { round } : {}), ...(phase.gate ? { gateKey: phase.gate } : {}),
          })
          : await act(onHost(WAIT), 'awaitArtifact', `${phase.key}: wait for ${phase.schemaId}`, waitFor);
      } catch (error) {
        if (failureOf(error)?.errorClass !== 'human_required' || !patched(ROUTE_BY_CLASS)) throw error;
        return gateFor(error, 'artifact_unreadable', 'FAILED_NEEDS_HUMAN');
      }
      const repaired = promptKind === 'repair';
      if (waited.status === 'found') {
        // Validated by the settling step, or here.
        const validation = waited.valid !== undefined
          ? { valid: waited.valid, errors: waited.errors ?? [], ...(waited.loop ? { loop: waited.loop } : {}) }
          : await act(onHost(STEP), 'validateArtifact', `${phase.key}: validate against ${phase.schemaId}`, {
            runId, phaseId: phase.id, attempt, artifactPath: phase.artifactPath, schemaId: phase.schemaId, ...(loop ? { loop } : {}),
          });
        if (validation.valid) return { kind: 'valid', attempt, ...(validation.loop ? { loop: validation.loop } : {}), ...(waited.settled ? { settled: waited.settled } : {}) };
        if (repaired) return gate('artifact_invalid_after_repair', validation.errors.join('; '), 'FAILED_NEEDS_HUMAN');
        errors = validation.errors;
      } else {
        if (repaired) return gate('artifact_timeout_exhausted', `no artifact within ${timeoutMs} ms after the repair prompt`, 'FAILED_NEEDS_HUMAN');
        const cycle = `${phase.id}:${attempt}`;
        const probe = await act(onHost(STEP), 'probeSession', `${phase.key}: probe the silent session`, { sessionId, cycle, maxHungMs: timing.maxHungMs });
        if (probe.classification === 'tmux_liveness_only') {
          return gate('artifact_timeout_exhausted', `no artifact within ${timeoutMs} ms; the probe cannot tell why`, 'FAILED_NEEDS_HUMAN', probe.hint);
        }
        let recovered: { kept: boolean } | undefined;
        try {
          recovered = await act(onHost(DELIVERY), 'rebootstrapSession', `${phase.key}: restart the ${probe.classification} session`, { sessionId, cycle });
        } catch (error) {
          return gateFor(error, 'session_recovery_required', 'FAILED_NEEDS_HUMAN');
        }
        // Histories from before the activity said which: only a late (not hung) agent was kept then.
        const kept = recovered ? recovered.kept : probe.classification === 'ARTIFACT_TIMEOUT';
        const done = kept ? 'your session was kept as it is' : 'your session was restarted';
        const late = 'agentGone' in waited && waited.agentGone ? `the agent's process ended before it wrote the artifact` : `no artifact was written within ${timeoutMs} ms`;
        errors = [`${late} (session ${probe.classification}); ${done}`];
      }
      promptKind = 'repair';
    }
  }

  // ---- gates ----------------------------------------------------------------------------------
  /** Waits for the first decision on this request; the database says which decision won. */
  async function decide(gate: PendingGate, state: 'awaiting_approval' | 'paused'): Promise<DecisionAction> {
    show({ state, pendingGate: gate });
    await condition(() => decisions.some((d) => d.approvalRequestId === gate.approvalRequestId));
    const decision = decisions.find((d) => d.approvalRequestId === gate.approvalRequestId)!;
    const summary = `${gate.phaseKey}: record ${decision.action} on ${gate.gateKey}`;
    const winner = await dbStep('recordDecision', summary, decision);
    // Later signals for this request (repeats, contrary ones) change nothing.
    decided.add(gate.approvalRequestId);
    for (let i = decisions.length - 1; i >= 0; i--) if (decisions[i]!.approvalRequestId === gate.approvalRequestId) decisions.splice(i, 1);
    show({ pendingGate: null });
    return winner.action;
  }
}

function ended(action: DecisionAction, where: string): RunOutcome {
  return action === 'abort' ? { state: 'aborted', reason: `aborted at ${where}` } : { state: 'failed', reason: `rejected at ${where}` };
}
