// Waiting for an artifact and validating it (SPEC section 6).
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { and, eq } from 'drizzle-orm';
import { artifacts } from '../db/schema.ts';
import { transitionPhase } from '../db/transitions.ts';
import { DEFAULT_MAX_ARTIFACT_BYTES, inspectArtifact, makeFolderInside, readArtifact, type FileSignature } from '../lib/artifact-files.ts';
import { sha256 } from '../lib/canonical-json.ts';
import { DevflowError, isDevflowError } from '../lib/errors.ts';
import { promptKeys } from '../lib/keys.ts';
import { worktreeHolding, worktreePathFor } from '../lib/runs.ts';
import { storable } from '../lib/text.ts';
import { artifactProblems, pinnedSchema } from '../db/artifact-schemas.ts';
import { loadSession, targetOf } from '../sessions/lifecycle.ts';
import { checkpoint, type ActivityDeps } from './deps.ts';

export type { FileSignature } from '../lib/artifact-files.ts';

export interface AwaitArtifactInput {
  phaseKey: string;
  attempt: number;
  artifactPath: string;
  /** The file as it was before the prompt (null: absent); that exact file is ignored. */
  baseline: FileSignature | null;
  timeoutMs: number;
  stabilityMs: number;
  pollMs: number;
  /** The agent that is to write it: the wait ends early when its process is gone (absent in older histories). */
  sessionId?: string;
}

/** `agentGone`: the wait ended before its timeout because the agent's process was gone. */
export type AwaitArtifactResult = { status: 'found'; signature: FileSignature } | { status: 'timeout'; elapsedMs: number; agentGone?: true };

/** How often a wait asks whether its agent's process is still there. */
const AGENT_CHECK_MS = 2_000;

interface WaitDetails {
  phaseKey: string;
  attempt: number;
  elapsedMs: number;
}

/**
 * Not there yet (or no regular file): null. Something devflow refuses to read (a link out of the
 * worktree) has the signature of the entry at the path, so it is waited for like a file and then
 * refused by validation. Unreadable, a problem for a person: it will not go away by waiting.
 */
export async function signatureOf(worktree: string | undefined, file: string): Promise<FileSignature | null> {
  const found = await inspectArtifact(worktree, file);
  return found.state === 'absent' ? null : found.signature;
}

/** The file parses as a JSON object or array (anything devflow refuses to read, or too large, does not). */
async function isWholeJson(worktree: string | undefined, file: string, maxBytes: number): Promise<boolean> {
  try {
    const parsed: unknown = JSON.parse((await readArtifact(worktree, file, maxBytes)).toString('utf8'));
    return typeof parsed === 'object' && parsed !== null;
  } catch {
    return false;
  }
}

const same = (a: FileSignature | null, b: FileSignature | null) => a !== null && b !== null && a.size === b.size && a.mtimeMs === b.mtimeMs;

/** A field of a parsed artifact by its dotted path (`verdict`, `review.findings`). */
export function fieldAt(value: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((at, part) => (at && typeof at === 'object' ? (at as Record<string, unknown>)[part] : undefined), value);
}


/** True only when the probe saw the agent's process gone; a probe that fails says nothing. */
async function agentGone(deps: ActivityDeps, sessionId: string): Promise<boolean> {
  try {
    const session = await loadSession(deps, sessionId);
    return !(await deps.drivers.forBackend(session.backend).probe(targetOf(session))).alive;
  } catch {
    return false;
  }
}

export function createArtifactActivities(deps: ActivityDeps) {
  return {
    /**
     * Waits until the artifact exists and parses as JSON, or (while it does not) until its size
     * and mtime have held still for the stability window. Wakes on file-system events, polls as a fallback, heartbeats its
     * elapsed time (a retried attempt resumes the clock from it) and stops promptly when
     * cancelled.
     */
    async awaitArtifact(input: AwaitArtifactInput): Promise<AwaitArtifactResult> {
      const context = Context.current();
      const resumed = context.info.heartbeatDetails as WaitDetails | undefined;
      const startedAt = Date.now() - (resumed?.attempt === input.attempt ? resumed.elapsedMs : 0);
      const folder = path.dirname(input.artifactPath);
      const worktree = worktreeHolding(deps.workspaceRoot, input.artifactPath);
      // A folder that leads out of the worktree is neither made nor watched (the poll still sees the file).
      const inside = worktree !== undefined && (await makeFolderInside(worktree, folder));

      let wake: () => void = () => undefined;
      let watcher: FSWatcher | undefined;
      try {
        watcher = inside ? watch(folder, () => wake()) : undefined;
        watcher?.on('error', () => undefined); // the poll still works
      } catch {
        watcher = undefined;
      }
      try {
        let candidate: { signature: FileSignature; since: number } | undefined;
        let checkedAgentAt = Date.now();
        for (;;) {
          const now = Date.now();
          const signature = await signatureOf(worktree, input.artifactPath);
          if (signature && !same(signature, input.baseline)) {
            if (candidate && same(candidate.signature, signature)) {
              if (now - candidate.since >= input.stabilityMs) return { status: 'found', signature };
            } else if (await isWholeJson(worktree, input.artifactPath, deps.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES)) {
              // A file still being written is a prefix of its JSON, and a prefix of a JSON object is
              // never one: a file that parses is whole, and is taken at once.
              return { status: 'found', signature };
            } else {
              candidate = { signature, since: now };
            }
          } else {
            candidate = undefined;
          }
          const elapsedMs = now - startedAt;
          context.heartbeat({ phaseKey: input.phaseKey, attempt: input.attempt, elapsedMs } satisfies WaitDetails);
          if (elapsedMs >= input.timeoutMs) return { status: 'timeout', elapsedMs };
          // An agent that died (killed, its tmux server gone) writes nothing: no point waiting out the timeout.
          if (input.sessionId && !candidate && now - checkedAgentAt >= AGENT_CHECK_MS) {
            checkedAgentAt = now;
            if (await agentGone(deps, input.sessionId)) return { status: 'timeout', elapsedMs, agentGone: true };
          }
          // Re-check when the folder changes, when a pending file may have become stable, or
          // after the poll interval; context.sleep rejects as soon as the activity is cancelled.
          const nap = candidate ? Math.min(input.pollMs, input.stabilityMs) : input.pollMs;
          await Promise.race([context.sleep(nap), new Promise<void>((resolve) => (wake = resolve))]);
        }
      } finally {
        watcher?.close();
      }
    },

    /**
     * Hashes, parses and validates the artifact against its pinned schema; one row per distinct
     * content. With the phase's loop, says whether the artifact asks to go back (and what it quotes).
     */
    async validateArtifact(input: {
      runId: string;
      phaseId: string;
      attempt: number;
      artifactPath: string;
      schemaId: string;
      loop?: { field: string; equals: unknown; quote?: string };
    }): Promise<{ valid: boolean; hash: string; errors: string[]; loop?: { matched: boolean; quote?: unknown } }> {
      let bytes: Buffer;
      try {
        bytes = await readArtifact(worktreePathFor(deps.workspaceRoot, input.runId), input.artifactPath, deps.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES);
      } catch (error) {
        if (!isDevflowError(error, 'artifact_outside_worktree') && !isDevflowError(error, 'artifact_too_large')) throw error;
        return refuse(deps, input, error);
      }
      const hash = sha256(bytes);
      let errors: string[] = [];
      let parsed: unknown;
      try {
        parsed = JSON.parse(bytes.toString('utf8'));
      } catch (error) {
        errors = [`not valid JSON: ${(error as Error).message}`];
      }
      if (errors.length === 0) errors = artifactProblems(await pinnedSchema(deps.db, input.runId, input.schemaId), parsed);
      // Errors may quote the artifact (JSON.parse does): a NUL in it must not fail the write below.
      errors = storable(errors);
      const valid = errors.length === 0;
      checkpoint(deps, 'validateArtifact:checked');
      await deps.db.transaction(async (tx) => {
        await tx
          .insert(artifacts)
          .values({
            runId: input.runId,
            phaseId: input.phaseId,
            path: input.artifactPath,
            schemaId: input.schemaId,
            hash,
            valid,
            validationError: valid ? null : { errors },
          })
          .onConflictDoNothing();
        // The same bytes at the same path were recorded before: for this phase, with this verdict.
        const [row] = await tx.select().from(artifacts).where(and(eq(artifacts.runId, input.runId), eq(artifacts.path, input.artifactPath), eq(artifacts.hash, hash)));
        if (row!.phaseId !== input.phaseId || row!.schemaId !== input.schemaId || row!.valid !== valid) {
          throw new DevflowError({
            code: 'internal_state_corruption',
            message: `artifact ${input.artifactPath} (${hash.slice(0, 12)}) was recorded for phase ${row!.phaseId} as ${row!.schemaId} (valid ${row!.valid}), not for phase ${input.phaseId} as ${input.schemaId} (valid ${valid})`,
          });
        }
        checkpoint(deps, 'validateArtifact:row');
        await transitionPhase(tx, {
          phaseId: input.phaseId,
          to: 'validating',
          event: {
            type: valid ? 'artifact.validated' : 'artifact.invalid',
            idempotencyKey: promptKeys.artifactChecked(input.phaseId, input.attempt, hash),
            payload: { path: input.artifactPath, hash, valid, errors },
          },
        });
      });
      if (!valid || !input.loop) return { valid, hash, errors };
      const said = fieldAt(parsed, input.loop.field);
      // The quote is recorded with the loop (jsonb) and pasted into a prompt.
      return { valid, hash, errors, loop: { matched: said === input.loop.equals, ...(input.loop.quote ? { quote: storable(fieldAt(parsed, input.loop.quote) ?? null) } : {}) } };
    },
  };
}

/**
 * An artifact devflow will not read counts as an invalid one: the attempt records why (no
 * artifact row: no bytes were read, so there is no hash), and the run sends its repair prompt.
 */
async function refuse(deps: ActivityDeps, input: { phaseId: string; attempt: number; artifactPath: string }, error: DevflowError) {
  const errors = [`${error.code}: ${error.message}`];
  await transitionPhase(deps.db, {
    phaseId: input.phaseId,
    to: 'validating',
    event: {
      type: 'artifact.invalid',
      idempotencyKey: promptKeys.artifactChecked(input.phaseId, input.attempt, `refused-${error.code}`),
      payload: { path: input.artifactPath, hash: null, valid: false, errors, refused: error.code },
    },
  });
  return { valid: false, hash: '', errors };
}
