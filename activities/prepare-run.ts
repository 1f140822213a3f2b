// prepareRun: the run row, its pinned template, phase rows, the worktree and the requirements
// file. Every step finds what an earlier attempt did and keeps it.
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { createRun } from '../db/runs.ts';
import { agentPersonas, runPhases, runs, workflowTemplates } from '../db/schema.ts';
import { transitionRun } from '../db/transitions.ts';
import { DevflowError } from '../lib/errors.ts';
import { git, gitOk } from '../lib/git.ts';
import { checkRunSource, runBranch, worktreePathFor } from '../lib/runs.ts';
import { runKeys } from '../lib/keys.ts';
import type { LoopDefinition, PersonaDefinition, TemplateDefinition } from '../schemas/definitions.ts';
import type { RunInput } from '../workflows/messages.ts';
import { checkpoint, type ActivityDeps } from './deps.ts';

export const DEFAULT_ARTIFACT_TIMEOUT_MS = 15 * 60_000;

export interface PreparedPhase {
  id: string;
  key: string;
  ordinal: number;
  roleId: string;
  title: string;
  instructions: string;
  schemaId: string;
  /** Absolute path inside the worktree. */
  artifactPath: string;
  gate: string | null;
  artifactTimeoutMs: number;
  /** Back to an earlier phase when this phase's artifact says so (absent in runs prepared before loops). */
  loop?: LoopDefinition | null;
}

export interface PreparedRun {
  runId: string;
  templateId: string;
  worktreePath: string;
  phases: PreparedPhase[];
  personas: Record<string, { id: string; instructions: string }>;
}

async function ensureWorktree(repoPath: string, worktreePath: string, branch: string, baseBranch: string): Promise<void> {
  if (existsSync(path.join(worktreePath, '.git'))) return;
  await mkdir(path.dirname(worktreePath), { recursive: true });
  // A crash after `worktree add` registered the folder but before it was filled leaves a stale entry.
  await git(repoPath, ['worktree', 'prune']);
  const branchExists = await gitOk(repoPath, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]);
  await git(repoPath, branchExists ? ['worktree', 'add', worktreePath, branch] : ['worktree', 'add', '-b', branch, worktreePath, baseBranch]);
}

async function writeFileAtomically(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, file);
}

export function createPrepareRunActivities(deps: ActivityDeps) {
  return {
    async prepareRun(input: RunInput): Promise<PreparedRun> {
      await checkRunSource(input.repoPath, input.baseBranch);
      const { db } = deps;
      const { run } = await createRun(db, {
        id: input.runId,
        templateId: input.templateId,
        repoPath: input.repoPath,
        baseBranch: input.baseBranch,
        requirementsMd: input.requirementsMd,
      });
      const [template] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, run.templateId));
      if (template!.hash !== run.templateHash) {
        throw new DevflowError({ code: 'template_hash_mismatch', message: `template ${run.templateId} no longer has the hash run ${run.id} pinned` });
      }
      const definition = template!.definition as TemplateDefinition;
      await db
        .insert(runPhases)
        .values(definition.phases.map((phase, ordinal) => ({ runId: run.id, phaseKey: phase.key, ordinal, roleId: phase.role })))
        .onConflictDoNothing();
      checkpoint(deps, 'prepareRun:rows');

      const worktreePath = worktreePathFor(deps.workspaceRoot, run.id);
      await ensureWorktree(run.repoPath, worktreePath, runBranch(run.id), run.baseBranch);
      await writeFileAtomically(path.join(worktreePath, '.devflow', 'requirements.md'), run.requirementsMd);
      checkpoint(deps, 'prepareRun:worktree');

      // Started once, from `planning` (read under the row lock: an abort may have ended the run meanwhile).
      await db.transaction(async (tx) => {
        const [current] = await tx.select({ state: runs.state }).from(runs).where(eq(runs.id, run.id)).for('update');
        if (current!.state !== 'planning') return;
        await transitionRun(tx, {
          runId: run.id,
          to: 'executing',
          event: { type: 'run.started', idempotencyKey: runKeys.started(run.id), payload: { worktreePath, branch: runBranch(run.id) } },
          set: { worktreeRoot: path.dirname(worktreePath) },
        });
      });

      const phaseRows = await db.select().from(runPhases).where(eq(runPhases.runId, run.id)).orderBy(runPhases.ordinal);
      const personaIds = [...new Set(Object.values(definition.roles).map((r) => r.persona))];
      const personas = await db.select().from(agentPersonas);
      const instructionsById = new Map(personas.filter((p) => personaIds.includes(p.id)).map((p) => [p.id, (p.definition as PersonaDefinition).instructions]));
      return {
        runId: run.id,
        templateId: run.templateId,
        worktreePath,
        phases: definition.phases.map((phase, ordinal) => ({
          id: phaseRows[ordinal]!.id,
          key: phase.key,
          ordinal,
          roleId: phase.role,
          title: phase.title,
          instructions: phase.instructions,
          schemaId: phase.artifact.schema,
          artifactPath: path.join(worktreePath, phase.artifact.path),
          gate: phase.gate ?? null,
          artifactTimeoutMs: phase.artifactTimeoutMs ?? DEFAULT_ARTIFACT_TIMEOUT_MS,
          loop: phase.loop ?? null,
        })),
        personas: Object.fromEntries(
          Object.entries(definition.roles).map(([roleId, role]) => [roleId, { id: role.persona, instructions: instructionsById.get(role.persona) ?? '' }]),
        ),
      };
    },
  };
}
