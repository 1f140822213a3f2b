import { eq, inArray } from 'drizzle-orm';
import { DevflowError } from '../lib/errors.ts';
import { runKeys } from '../lib/keys.ts';
import type { Executor } from './client.ts';
import { appendEvent } from './events.ts';
import { artifactSchemas, runs, workflowTemplates } from './schema.ts';
import type { Run } from './transitions.ts';

export interface NewRun {
  id: string;
  templateId: string;
  repoPath: string;
  baseBranch: string;
  requirementsMd: string;
}

/**
 * Creates the run row in `planning`, pinned to the template's current hash, with its
 * `run.created` event. Creating the same run id again returns the existing row unchanged.
 */
export async function createRun(executor: Executor, input: NewRun): Promise<{ run: Run; created: boolean }> {
  return executor.transaction(async (tx) => {
    const [template] = await tx.select().from(workflowTemplates).where(eq(workflowTemplates.id, input.templateId));
    if (!template) {
      throw new DevflowError({
        code: 'template_not_found',
        message: `template ${input.templateId} is not registered`,
        recoveryHint: 'use one of the templates listed by GET /v1/templates',
      });
    }
    // The run pins its template and each artifact schema it uses: definitions never change under it.
    const schemaIds = [...new Set((template.definition as { phases: { artifact: { schema: string } }[] }).phases.map((p) => p.artifact.schema))];
    const pinned = schemaIds.length ? await tx.select({ id: artifactSchemas.id, hash: artifactSchemas.hash }).from(artifactSchemas).where(inArray(artifactSchemas.id, schemaIds)) : [];
    const missing = schemaIds.filter((id) => !pinned.some((s) => s.id === id));
    if (missing.length) {
      throw new DevflowError({ code: 'template_not_found', message: `template ${input.templateId} uses artifact schemas that are not registered: ${missing.join(', ')}` });
    }
    const inserted = await tx
      .insert(runs)
      .values({ ...input, templateHash: template.hash, artifactSchemaHashes: Object.fromEntries(pinned.map((s) => [s.id, s.hash])), state: 'planning' })
      .onConflictDoNothing({ target: runs.id })
      .returning();
    const run = inserted[0] ?? (await tx.select().from(runs).where(eq(runs.id, input.id)))[0]!;
    await appendEvent(tx, {
      runId: run.id,
      type: 'run.created',
      idempotencyKey: runKeys.created(run.id),
      payload: { templateId: run.templateId, templateHash: run.templateHash, repoPath: run.repoPath, baseBranch: run.baseBranch },
    });
    return { run, created: inserted.length > 0 };
  });
}
