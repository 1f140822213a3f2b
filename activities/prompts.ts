// Starting an attempt and sending its prompt. The prompt event is keyed by (phase, attempt):
// once it is recorded, a retried activity does not send again.
import { realpath } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { and, desc, eq } from 'drizzle-orm';
import { appendEvent, findEventByKey } from '../db/events.ts';
import { artifacts, runPhases, runs, tuiSessions } from '../db/schema.ts';
import { transitionPhase, transitionSession } from '../db/transitions.ts';
import { DEFAULT_MAX_ARTIFACT_BYTES, makeFolderInside, readArtifact } from '../lib/artifact-files.ts';
import { DevflowError, isDevflowError } from '../lib/errors.ts';
import { phaseKeys, promptKeys, sessionKeys } from '../lib/keys.ts';
import { pinnedSchema } from '../db/artifact-schemas.ts';
import { PLACEHOLDER } from '../schemas/definitions.ts';
import type { Scenario } from '../sessions/scenarios.ts';
import { checkpoint, type ActivityDeps } from './deps.ts';
import { buildEnvelope, promptHeader, renderPrompt, type PromptKind, type Revision } from '../schemas/prompt.ts';
import { fieldAt, signatureOf, type FileSignature } from './artifacts.ts';
import { loadSession, sessionLifecycle, targetOf, withSession } from '../sessions/lifecycle.ts';
import type { SessionState } from '../db/state-machines.ts';


export interface SendPromptInput {
  runId: string;
  phaseId: string;
  phaseKey: string;
  /** The session to prompt; unset when `agent` is given and the step readies the role's agent itself. */
  sessionId?: string;
  /** Ready (find, start or recover) the role's agent first, as ensureSession does: one step instead of two (era 7 on). */
  agent?: { backend: string; cwd: string; playback?: boolean };
  roleId: string;
  attempt: number;
  kind: PromptKind;
  worktreePath: string;
  artifactPath: string;
  schemaId: string;
  instructions: string;
  personaInstructions: string;
  timeoutMs: number;
  errors?: string[];
  scenario?: Scenario;
  repairScenario?: Scenario;
  /** A later phase sent this one back: what it asked for, quoted in the prompt. */
  revision?: Revision;
}

/** Refuses an artifact path that leaves the worktree, by `..` or through a symlink. */
export async function assertInsideWorktree(worktreePath: string, artifactPath: string): Promise<void> {
  const outside = () =>
    new DevflowError({
      code: 'artifact_path_outside_worktree',
      message: `artifact path ${artifactPath} resolves outside the run worktree ${worktreePath}`,
    });
  const root = await realpath(worktreePath);
  const resolved = path.resolve(worktreePath, artifactPath);
  if (!resolved.startsWith(path.resolve(worktreePath) + path.sep)) throw outside();
  // Made only where it stays inside: `mkdir -p` through a folder that is a link would make folders outside.
  if (!(await makeFolderInside(worktreePath, path.dirname(resolved)))) throw outside();
  const parent = await realpath(path.dirname(resolved));
  if (parent !== root && !parent.startsWith(root + path.sep)) throw outside();
}


/**
 * Instructions that quote an earlier phase's artifact (`{{spec.title}}`) get its latest valid
 * value, read as validation reads it (never through a link out of the worktree, never too big).
 */
async function quoteEarlierArtifacts(deps: ActivityDeps, input: { runId: string; worktreePath: string; instructions: string }): Promise<string> {
  const { db } = deps;
  const { runId, instructions } = input;
  const wanted = [...instructions.matchAll(PLACEHOLDER)];
  if (wanted.length === 0) return instructions;
  const values = new Map<string, string>();
  for (const [whole, phaseKey, field] of wanted) {
    const [row] = await db
      .select({ path: artifacts.path })
      .from(artifacts)
      .innerJoin(runPhases, eq(runPhases.id, artifacts.phaseId))
      .where(and(eq(artifacts.runId, runId), eq(runPhases.phaseKey, phaseKey!), eq(artifacts.valid, true)))
      .orderBy(desc(artifacts.createdAt))
      .limit(1);
    let value: unknown;
    try {
      const bytes = row ? await readArtifact(input.worktreePath, row.path, deps.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES) : undefined;
      value = bytes ? fieldAt(JSON.parse(bytes.toString('utf8')), field!) : undefined;
    } catch {
      value = undefined;
    }
    values.set(whole, value === undefined ? `(no ${phaseKey}.${field} yet)` : typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  }
  return instructions.replace(PLACEHOLDER, (whole) => values.get(whole) ?? whole);
}

/** Session states of an agent found lost whose restart has not finished. */
const RESTARTING: readonly SessionState[] = ['CRASHED', 'RESUMING', 'REBOOTSTRAPPED'];

export function createPromptActivities(deps: ActivityDeps) {
  const { db } = deps;
  const steps = {
    /** Enters `running` for this attempt (first try, repair or retry). */
    async beginAttempt(input: { phaseId: string; attempt: number; kind: PromptKind }): Promise<void> {
      await db.transaction(async (tx) => {
        const { row } = await transitionPhase(tx, {
          phaseId: input.phaseId,
          to: 'running',
          event: { type: 'phase.started', idempotencyKey: phaseKeys.running(input.phaseId, input.attempt), payload: { kind: input.kind } },
        });
        await tx.update(runs).set({ currentPhaseId: row.id }).where(eq(runs.id, row.runId));
      });
    },

    /**
     * Sends the attempt's prompt at most once. The intent (its uuid, and the artifact already on
     * disk, which the wait will then ignore) is recorded before the paste; a retry after a crash
     * looks for that prompt at the agent (its pane or its own log) before pasting it again. No
     * artifact is deleted: an earlier prompt, or this one, may be producing it.
     */
    async sendPrompt(input: SendPromptInput): Promise<{ dedupKey: string; baseline: FileSignature | null; sessionId: string }> {
      const promptKey = promptKeys.sent(input.phaseId, input.attempt);
      const prior = await findEventByKey(db, promptKey);
      if (prior) {
        const recorded = prior.payload as { dedupKey: string; baseline?: FileSignature | null; sessionId: string };
        return { dedupKey: recorded.dedupKey, baseline: recorded.baseline ?? null, sessionId: recorded.sessionId };
      }
      const [, schema] = await Promise.all([assertInsideWorktree(input.worktreePath, input.artifactPath), pinnedSchema(db, input.runId, input.schemaId)]);
      // Readied only once the prompt can go out: a refused artifact path starts no agent, and none is left starting after this step fails.
      const { agent } = input;
      const sessionId = agent ? (await sessionLifecycle(deps).ensureSession({ runId: input.runId, roleId: input.roleId, ...agent })).sessionId : input.sessionId!;
      try {
        return await deliver(input, promptKey, schema, sessionId, agent !== undefined);
      } catch (error) {
        // The workflow learns from the failure which session this step readied: the gate is that session's.
        if (!agent) throw error;
        throw withSession(isDevflowError(error) ? error : new DevflowError({ code: 'prompt_send_failed', message: error instanceof Error ? error.message : String(error), cause: error }), sessionId);
      }
    },
  };

  /** The prompt to a ready session: recorded, pasted at most once, and the phase awaiting its artifact. */
  async function deliver(input: SendPromptInput, promptKey: string, schema: Awaited<ReturnType<typeof pinnedSchema>>, sessionId: string, readied: boolean): Promise<{ dedupKey: string; baseline: FileSignature | null; sessionId: string }> {
    const intentKey = promptKeys.delivering(input.phaseId, input.attempt);
    // What the prompt needs, read side by side: the session, an intent recorded before a crash, the artifact already on disk, earlier artifacts it quotes.
    const [loaded, intent, onDisk, instructions] = await Promise.all([
      loadSession(deps, sessionId), findEventByKey(db, intentKey), signatureOf(input.worktreePath, input.artifactPath), quoteEarlierArtifacts(deps, input),
    ]);
    let session = loaded;
    const driver = deps.drivers.forBackend(session.backend);
    // Its agent died since it started (killed, its tmux server gone), or a restart of it was cut
    // short: a lost agent, restarted with its conversation once (the second time a person looks),
    // and then prompted. Only an agent that is there but refuses the prompt makes this step fail.
    // (An agent this step readied was just found there.)
    const lost = RESTARTING.includes(session.state) || (!readied && ['READY', 'BUSY'].includes(session.state) && !(await driver.resume(targetOf(session))));
    if (lost) {
      await sessionLifecycle(deps).ensureSession({ runId: session.runId, roleId: session.roleId, backend: session.backend, cwd: session.cwd, playback: session.playback });
      session = await loadSession(deps, sessionId);
    }
    const intended = intent?.payload as { uuid: string; baseline: FileSignature | null; sessionId: string } | undefined;
    const uuid = intended?.uuid ?? randomUUID();
    const baseline = intended ? intended.baseline : onDisk;
    const envelope = buildEnvelope({
      uuid,
      runId: input.runId,
      roleId: input.roleId,
      phaseKey: input.phaseKey,
      attempt: input.attempt,
      expectedArtifact: input.artifactPath,
      expectedSchema: input.schemaId,
      instructions,
    });
    // The session taken for this prompt and the intent to paste it, in one transaction.
    session = await db.transaction(async (tx) => {
      let taken = session;
      if (taken.state === 'READY') {
        const busyKey = sessionKeys.busy(taken.id, input.phaseId, input.attempt);
        taken = (await transitionSession(tx, {
          sessionId: taken.id,
          to: 'BUSY',
          event: { type: 'session.busy', idempotencyKey: taken.processLostRecoveries > 0 ? `${busyKey}:restarted:${taken.processLostRecoveries}` : busyKey, payload: { phaseKey: input.phaseKey } },
        })).row;
      }
      if (taken.state !== 'BUSY') {
        throw new DevflowError({ code: 'internal_state_corruption', message: `cannot prompt session ${taken.id} in state ${taken.state}` });
      }
      if (!intended) {
        await appendEvent(tx, {
          runId: input.runId,
          phaseId: input.phaseId,
          type: 'prompt.delivering',
          idempotencyKey: intentKey,
          payload: { phaseKey: input.phaseKey, uuid, dedupKey: envelope.dedupKey, baseline, sessionId: taken.id },
        });
      }
      return taken;
    });
    const text = renderPrompt(envelope, {
      kind: input.kind,
      personaInstructions: input.personaInstructions,
      jsonSchema: schema.definition,
      ...(input.revision ? { revision: input.revision } : {}),
      errors: input.errors,
      scenario: input.scenario,
      repairScenario: input.repairScenario,
    });
    // The same session was sent this prompt before a crash: it must not get it twice.
    const delivered = intended?.sessionId === session.id && (await driver.received(targetOf(session), promptHeader(uuid)));
    checkpoint(deps, 'sendPrompt:before-delivery');
    if (!delivered) await driver.sendPrompt(targetOf(session), text);
    checkpoint(deps, 'sendPrompt:delivered');

    await db.transaction(async (tx) => {
      await appendEvent(tx, {
        runId: input.runId,
        phaseId: input.phaseId,
        type: input.kind === 'repair' ? 'prompt.repaired' : 'prompt.sent',
        idempotencyKey: promptKey,
        payload: { phaseKey: input.phaseKey, dedupKey: envelope.dedupKey, uuid: envelope.uuid, kind: input.kind, attempt: input.attempt, sessionId: session.id, errors: input.errors ?? [], baseline },
      });
      await transitionPhase(tx, {
        phaseId: input.phaseId,
        to: 'awaiting_artifact',
        event: {
          type: 'artifact.expected',
          idempotencyKey: phaseKeys.awaitingArtifact(input.phaseId, input.attempt),
          payload: { path: input.artifactPath, schemaId: input.schemaId, timeoutMs: input.timeoutMs },
        },
      });
      await tx
        .update(tuiSessions)
        .set({ expectedArtifactPath: input.artifactPath, expectedSchema: input.schemaId, lastPromptHash: envelope.dedupKey, lastPromptAt: new Date() })
        .where(eq(tuiSessions.id, session.id));
    });
    return { dedupKey: envelope.dedupKey, baseline, sessionId: session.id };
  }
  return steps;
}
