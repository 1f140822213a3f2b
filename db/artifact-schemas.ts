// Artifact schemas as registered: the JSON Schema an agent is shown, and the check its artifact
// must pass. Built-in zod schemas are checked with zod (their own messages); the others with a
// JSON Schema (draft 2020-12) validator, compiled once per schema hash.
import { eq } from 'drizzle-orm';
import { DevflowError } from '../lib/errors.ts';
import { artifactSchemas as zodSchemas, isArtifactSchemaId } from '../schemas/artifacts.ts';
import { jsonSchemaValidator } from '../schemas/definitions.ts';
import type { Executor } from './client.ts';
import { artifactSchemas, runs } from './schema.ts';

export interface RegisteredSchema {
  id: string;
  hash: string;
  definition: Record<string, unknown>;
}

/** The schema a run pinned: registered, and still the version (hash) the run started with. */
export async function pinnedSchema(executor: Executor, runId: string, schemaId: string): Promise<RegisteredSchema> {
  const [row] = await executor.select().from(artifactSchemas).where(eq(artifactSchemas.id, schemaId));
  if (!row) throw new DevflowError({ code: 'artifact_schema_unknown', message: `artifact schema ${schemaId} is not registered` });
  const [run] = await executor.select({ pins: runs.artifactSchemaHashes }).from(runs).where(eq(runs.id, runId));
  const pinned = run?.pins?.[schemaId];
  if (pinned && pinned !== row.hash) {
    throw new DevflowError({ code: 'template_hash_mismatch', message: `artifact schema ${schemaId} no longer has the hash run ${runId} pinned` });
  }
  return { id: row.id, hash: row.hash, definition: row.definition as Record<string, unknown> };
}

const validator = jsonSchemaValidator();

/** zod's issues as `path: message` lines. */
export function formatIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string[] {
  return issues.map((issue) => `${issue.path.length ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`);
}

/** The problems of a parsed artifact under its schema, each `path: message`; none when valid. */
export function artifactProblems(schema: RegisteredSchema, value: unknown): string[] {
  if (isArtifactSchemaId(schema.id)) {
    const result = zodSchemas[schema.id].safeParse(value);
    return result.success ? [] : formatIssues(result.error.issues);
  }
  const validate = validator.getSchema(schema.hash) ?? (validator.addSchema(schema.definition, schema.hash), validator.getSchema(schema.hash)!);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '(root)'}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
}
