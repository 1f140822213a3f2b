// The life of one devflow run, top to bottom (SPEC section 5). The workflow only sequences;
// each step is a small idempotent activity, so Temporal's history says where a run is.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { PreparedPhase, PreparedRun } from '../activities/prepare-run.ts';
import type { PromptKind } from '../activities/prompts.ts';
import type { DecisionAction } from '../db/state-machines.ts';
import { scenarioForAttempt } from '../sessions/scenarios.ts';
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

// ---- activity options ---------------------------------------------------------------------
const retry = {
  initialInterval: '200 milliseconds',
  backoffCoefficient: 2,
  maximumInterval: '10 seconds',
  nonRetryableErrorTypes: ['fatal', 'human_required'],
};
/** Database steps: short, retried until they go through. */
const STEP: ActivityOptions = { startToCloseTimeout: '1 minute', retry: { ...retry, maximumAttempts: 20 } };
/** Talking to an agent: a few tries, then a human gate. */
const DELIVERY: ActivityOptions = { startToCloseTimeout: '1 minute', retry: { ...retry, maximumAttempts: 3 } };
/** Waiting for an artifact: long, heartbeating, resumable; on abort it stops and cleans up first. */
const WAIT: ActivityOptions = {
  startToCloseTimeout: '1 day',
  heartbeatTimeout: '10 seconds',
  retry: { ...retry, maximumAttempts: 10 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
};

type Name = keyof Activities;
const proxies = new Map<ActivityOptions, Record<string, unknown>>();
/** Runs an activity with a summary the Web UI shows next to it. */
function act<K extends Name>(options: ActivityOptions, name: K, summary: string, input: Parameters<Activities[K]>[0]): ReturnType<Activities[K]> {
  if (!proxies.has(options)) proxies.set(options, proxyActivities<Activities>(options));
  const fn = proxies.get(options)![name] as { executeWithOptions(o: ActivityOptions, args: unknown[]): ReturnType<Activities[K]> };
  return fn.executeWithOptions({ ...options, summary }, [input]);
}

const DEFAULT_TIMING = { stabilityMs: 500, pollMs: 250, maxHungMs: 5 * 60_000 };

// Changes to the command sequence, each behind its patch so runs started before it replay.
/** An agent that cannot be started (after bounded tries) or is stopped at a screen: a human gate, not a failed run. */
const GATE_ON_AGENT_START = 'gate-on-agent-start-failure';
/** The agent's transcript and usage are kept before an approval gate, so a person sees them while deciding. */
const CAPTURE_BEFORE_APPROVAL = 'capture-before-approval-gate';

type AttemptResult =
  | { kind: 'valid'; attempt: number }
  | { kind: 'gate'; attempt: number; gateKey: string; reason: string; hint?: string; sessionTo: 'CRASHED' | 'FAILED_NEEDS_HUMAN'; sessionId?: string };

export async function runWorkflow(input: RunInput): Promise<RunOutcome> {
  const { runId } = input;
  const timing = { ...DEFAULT_TIMING, ...input.timing };
  const status: RunStatus = { runId, state: 'planning', phaseKey: null, attempt: 0, pendingGate: null };
  const decisions: Decision[] = [];
  let abortRequest: AbortRequest | undefined;
  const work = new CancellationScope();
  // The run's host (its worktree and tmux sessions live there), chosen by its first activity.
  let hostQueue: string | undefined;
  const hostOptions = new Map<ActivityOptions, ActivityOptions>();
  const onHost = (options: ActivityOptions): ActivityOptions => {
    if (!hostOptions.has(options)) hostOptions.set(options, { ...options, taskQueue: hostQueue! });
    return hostOptions.get(options)!;
  };

  // ---- messages -----------------------------------------------------------------------------
  setHandler(statusQuery, () => status);
  setHandler(decisionSignal, (decision) => void decisions.push(decision));
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

  function show(patch: Partial<RunStatus>): void {
    Object.assign(status, patch);
    upsertSearchAttributes([{ key: RUN_STATE, value: status.state }]);
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
      ({ hostQueue } = await act(STEP, 'selectHost', 'pick the worker host for this run', undefined));
      plan = await act(onHost(STEP), 'prepareRun', 'create the run, its phases and its worktree', input);
      show({ state: 'executing' });
      for (const phase of plan.phases) {
        const ended = await runPhase(plan, phase);
        if (ended) return ended;
      }
      return { state: 'completed' as const, reason: 'every phase completed' };
    });
  } catch (error) {
    if (abortRequest && isCancellation(error)) {
      outcome = { state: 'aborted', reason: abortRequest.reason ?? 'aborted on request' };
    } else {
      failure = error;
      outcome = { state: 'failed', reason: describe(error) };
    }
  }
  const finalized = await CancellationScope.nonCancellable(() =>
    act(hostQueue ? onHost(STEP) : STEP, 'finalizeRun', `finish the run: ${outcome.state}, write the report`, { runId, outcome }),
  );
  // Nothing was recorded (the input was refused before the run existed): fail the workflow.
  if (!finalized.reportPath && failure) throw failure;
  show({ state: outcome.state, pendingGate: null });
  return outcome;

  // ---- one phase: attempts until a valid artifact (and its gate), or the run ends -------------
  async function runPhase(run: PreparedRun, phase: PreparedPhase): Promise<RunOutcome | undefined> {
    const attempts = { count: 0 };
    const agent = input.agents?.[phase.roleId] ?? input.backend;
    const ensure = () =>
      act(onHost(STEP), 'ensureSession', `${phase.key}: ready a ${agent} session for ${phase.roleId}`, {
        runId, roleId: phase.roleId, backend: agent, cwd: run.worktreePath, ...(input.playback ? { playback: true } : {}),
      });
    /** A ready session, or (an agent that needs a person to start) a failed attempt at a human gate. */
    const ensureOrGate = async (kind: PromptKind): Promise<{ sessionId: string } | AttemptResult> => {
      try {
        return await ensure();
      } catch (error) {
        const failure = failureOf(error);
        if (isCancellation(error) || failure?.errorClass !== 'human_required' || !patched(GATE_ON_AGENT_START)) throw error;
        const attempt = ++attempts.count;
        show({ phaseKey: phase.key, attempt });
        await act(STEP, 'beginAttempt', `${phase.key}: attempt ${attempt} (${kind}): the agent did not start`, { phaseId: phase.id, attempt, kind });
        const sessionId = typeof failure.details.sessionId === 'string' ? failure.details.sessionId : undefined;
        return { kind: 'gate', attempt, gateKey: 'session_recovery_required', reason: failure.summary, hint: failure.hint, sessionTo: 'FAILED_NEEDS_HUMAN', ...(sessionId ? { sessionId } : {}) };
      }
    };
    let sessionId = '';
    let kind: PromptKind = 'initial';
    for (;;) {
      const current: NonNullable<typeof inFlight> = { roleId: phase.roleId, scope: new CancellationScope() };
      inFlight = current;
      let result: AttemptResult | 'passed' | { end: RunOutcome };
      try {
        result = await current.scope.run(async () => {
          const ensured = await ensureOrGate(kind);
          if ('kind' in ensured) return ensured;
          ({ sessionId } = ensured);
          const attempt = await attemptPhase(run, phase, sessionId, kind, attempts);
          return attempt.kind === 'valid' && phase.gate ? await approvalGate(phase, sessionId, attempt.attempt) : attempt;
        });
      } catch (error) {
        if (!current.lost || abortRequest || !isCancellation(error)) throw error;
        // The session manager lost this role's agent and already paused the run behind a gate.
        const { approvalRequestId } = current.lost;
        await act(STEP, 'failPhaseForLostSession', `${phase.key}: agent session lost`, { phaseId: phase.id, approvalRequestId });
        const action = await decide({ approvalRequestId, gateKey: 'session_recovery_required', kind: 'human', phaseKey: phase.key }, 'paused');
        if (action !== 'approve') return ended(action, `human gate session_recovery_required at phase ${phase.key}`);
        await act(STEP, 'resumeAfterHumanGate', `${phase.key}: retry approved`, { runId, approvalRequestId });
        show({ state: 'executing' });
        kind = 'retry';
        continue;
      } finally {
        inFlight = undefined;
      }
      if (result === 'passed') return undefined;
      if ('end' in result) return result.end;
      if (result.kind === 'valid') {
        await act(onHost(STEP), 'completePhase', `${phase.key}: complete`, { phaseId: phase.id, sessionId, attempt: result.attempt });
        return undefined;
      }
      // Keep what the agent printed before its session is marked failed (and maybe replaced).
      const gated = result.sessionId ?? sessionId;
      if (gated) await act(onHost(STEP), 'captureTranscript', `${phase.key}: keep the ${phase.roleId} transcript`, { sessionId: gated });
      const { approvalRequestId } = await act(STEP, 'openHumanGate', `${phase.key}: human gate ${result.gateKey}`, {
        runId, phaseId: phase.id, sessionId: gated || null, sessionTo: gated ? result.sessionTo : null, gateKey: result.gateKey, attempt: result.attempt, reason: result.reason, hint: result.hint,
      });
      const action = await decide({ approvalRequestId, gateKey: result.gateKey, kind: 'human', phaseKey: phase.key }, 'paused');
      if (action !== 'approve') return ended(action, `human gate ${result.gateKey} at phase ${phase.key} (${result.reason})`);
      await act(STEP, 'resumeAfterHumanGate', `${phase.key}: retry approved`, { runId, approvalRequestId });
      show({ state: 'executing' });
      kind = 'retry';
    }
  }

  /** A valid artifact on a gated phase: a person approves (phase done) or ends the run. */
  async function approvalGate(phase: PreparedPhase, sessionId: string, attempt: number): Promise<'passed' | { end: RunOutcome }> {
    const gateKey = phase.gate!;
    if (patched(CAPTURE_BEFORE_APPROVAL)) {
      await act(onHost(STEP), 'captureTranscript', `${phase.key}: keep the ${phase.roleId} transcript and usage`, { sessionId });
    }
    const { approvalRequestId } = await act(STEP, 'openApprovalGate', `${phase.key}: ask for ${gateKey}`, { runId, phaseId: phase.id, sessionId, gateKey, attempt });
    const action = await decide({ approvalRequestId, gateKey, kind: 'approval', phaseKey: phase.key }, 'awaiting_approval');
    if (action !== 'approve') return { end: ended(action, `gate ${gateKey} at phase ${phase.key}`) };
    await act(STEP, 'passApprovalGate', `${phase.key}: ${gateKey} approved`, { runId, phaseId: phase.id, sessionId, approvalRequestId });
    show({ state: 'executing' });
    return 'passed';
  }

  // ---- one attempt: prompt, wait, validate; one repair; then a human gate ---------------------
  async function attemptPhase(run: PreparedRun, phase: PreparedPhase, sessionId: string, kind: PromptKind, attempts: { count: number }): Promise<AttemptResult> {
    const timeoutMs = timing.artifactTimeoutMs ?? phase.artifactTimeoutMs;
    const scenarios = input.scenarios?.[phase.key];
    let promptKind = kind;
    let errors: string[] | undefined;
    for (;;) {
      const attempt = ++attempts.count;
      const gate = (gateKey: string, reason: string, sessionTo: 'CRASHED' | 'FAILED_NEEDS_HUMAN', hint?: string): AttemptResult =>
        ({ kind: 'gate', attempt, gateKey, reason, sessionTo, ...(hint ? { hint } : {}) });
      show({ phaseKey: phase.key, attempt });
      await act(STEP, 'beginAttempt', `${phase.key}: attempt ${attempt} (${promptKind})`, { phaseId: phase.id, attempt, kind: promptKind });
      try {
        await act(onHost(DELIVERY), 'sendPrompt', `${phase.key}: send the ${promptKind} prompt to ${phase.roleId}`, {
          runId, phaseId: phase.id, phaseKey: phase.key, sessionId, roleId: phase.roleId, attempt, kind: promptKind,
          worktreePath: run.worktreePath, artifactPath: phase.artifactPath, schemaId: phase.schemaId,
          instructions: phase.instructions, personaInstructions: run.personas[phase.roleId]?.instructions ?? '',
          timeoutMs, errors, scenario: scenarioForAttempt(scenarios, attempt), repairScenario: scenarioForAttempt(scenarios, attempt + 1),
        });
      } catch (error) {
        if (isCancellation(error)) throw error;
        return gate('prompt_send_exhausted', describe(error), 'CRASHED');
      }

      const waited = await act(onHost(WAIT), 'awaitArtifact', `${phase.key}: wait for ${phase.schemaId}`, {
        phaseKey: phase.key, attempt, artifactPath: phase.artifactPath, baseline: null, timeoutMs, stabilityMs: timing.stabilityMs, pollMs: timing.pollMs,
      });
      const repaired = promptKind === 'repair';
      if (waited.status === 'found') {
        const validation = await act(onHost(STEP), 'validateArtifact', `${phase.key}: validate against ${phase.schemaId}`, {
          runId, phaseId: phase.id, attempt, artifactPath: phase.artifactPath, schemaId: phase.schemaId,
        });
        if (validation.valid) return { kind: 'valid', attempt };
        if (repaired) return gate('artifact_invalid_after_repair', validation.errors.join('; '), 'FAILED_NEEDS_HUMAN');
        errors = validation.errors;
      } else {
        if (repaired) return gate('artifact_timeout_exhausted', `no artifact within ${timeoutMs} ms after the repair prompt`, 'FAILED_NEEDS_HUMAN');
        const cycle = `${phase.id}:${attempt}`;
        const probe = await act(onHost(STEP), 'probeSession', `${phase.key}: probe the silent session`, { sessionId, cycle, maxHungMs: timing.maxHungMs });
        if (probe.classification === 'tmux_liveness_only') {
          return gate('artifact_timeout_exhausted', `no artifact within ${timeoutMs} ms; the probe cannot tell why`, 'FAILED_NEEDS_HUMAN', probe.hint);
        }
        try {
          await act(onHost(DELIVERY), 'rebootstrapSession', `${phase.key}: restart the ${probe.classification} session`, { sessionId, cycle });
        } catch (error) {
          if (isCancellation(error)) throw error;
          return gate('session_recovery_required', describe(error), 'FAILED_NEEDS_HUMAN', failureOf(error)?.hint);
        }
        errors = [`no artifact was written within ${timeoutMs} ms (session ${probe.classification}); the session was restarted`];
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
    const winner = await act(STEP, 'recordDecision', `${gate.phaseKey}: record ${decision.action} on ${gate.gateKey}`, decision);
    // Later signals for this request (repeats, contrary ones) change nothing.
    for (let i = decisions.length - 1; i >= 0; i--) if (decisions[i]!.approvalRequestId === gate.approvalRequestId) decisions.splice(i, 1);
    show({ pendingGate: null });
    return winner.action;
  }
}

function ended(action: DecisionAction, where: string): RunOutcome {
  return action === 'abort' ? { state: 'aborted', reason: `aborted at ${where}` } : { state: 'failed', reason: `rejected at ${where}` };
}

interface FailureInfo {
  errorClass: string;
  code: string | undefined;
  /** `code: message`, as a gate's reason. */
  summary: string;
  /** What a person sees at the gate: the agent's screen when there is one, and what to do. */
  hint: string | undefined;
  details: Record<string, unknown>;
}

/** What an activity's DevflowError carried across Temporal (see activities/failures.ts). */
function failureOf(error: unknown): FailureInfo | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (!(cause instanceof ApplicationFailure)) return undefined;
  const carried = (cause.details?.[0] ?? {}) as { code?: string; recoveryHint?: string | null; details?: Record<string, unknown> | null };
  const details = carried.details ?? {};
  const screen = typeof details.screen === 'string' ? details.screen : undefined;
  const parts = [screen, carried.recoveryHint ? `What to do: ${carried.recoveryHint}` : undefined].filter(Boolean);
  return { errorClass: cause.type ?? 'unknown', code: carried.code, summary: describe(error), hint: parts.length ? parts.join('\n\n') : undefined, details };
}

function describe(error: unknown): string {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure) {
    const code = (cause.details?.[0] as { code?: string } | undefined)?.code;
    return code ? `${code}: ${cause.message}` : cause.message;
  }
  return error instanceof Error ? error.message : String(error);
}
