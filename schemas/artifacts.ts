// Artifact schemas: what each phase's agent must write. Registered by id (`dev/spec@1`);
// the JSON Schema export is what the agent's prompt quotes.
import { z } from 'zod';

const nonEmpty = z.string().trim().min(1);

export const specArtifact = z
  .object({
    title: nonEmpty.describe('One-line name of the change'),
    summary: nonEmpty.describe('What will be built and why, in a paragraph'),
    requirements: z
      .array(z.object({ id: nonEmpty.describe('Stable id such as R1'), text: nonEmpty }).strict())
      .min(1)
      .describe('Numbered, testable requirements'),
    acceptanceCriteria: z.array(nonEmpty).min(1).describe('How a reviewer checks the work is done'),
    outOfScope: z.array(nonEmpty).default([]).describe('What this change deliberately leaves alone'),
    openQuestions: z.array(nonEmpty).default([]).describe('Anything the approver should decide'),
  })
  .strict();

export const implementationArtifact = z
  .object({
    summary: nonEmpty.describe('What was built'),
    filesChanged: z
      .array(z.object({ path: nonEmpty, change: z.enum(['added', 'modified', 'deleted']) }).strict())
      .describe('Files changed in the run worktree'),
    commits: z.array(nonEmpty).default([]).describe('Commit ids made on the run branch'),
    testsRun: z
      .array(z.object({ command: nonEmpty, passed: z.boolean() }).strict())
      .describe('Test commands run and whether they passed'),
    notes: z.string().default('').describe('Anything the reviewer should know'),
  })
  .strict();

export const reviewArtifact = z
  .object({
    verdict: z.enum(['approve', 'request_changes']).describe('The reviewer verdict'),
    summary: nonEmpty.describe('The review in a paragraph'),
    findings: z
      .array(
        z
          .object({
            severity: z.enum(['info', 'minor', 'major', 'critical']),
            file: nonEmpty.optional(),
            message: nonEmpty,
          })
          .strict(),
      )
      .describe('Individual findings, most severe first'),
  })
  .strict();

export const artifactSchemas = {
  'dev/spec@1': specArtifact,
  'dev/implementation@1': implementationArtifact,
  'dev/review@1': reviewArtifact,
} as const satisfies Record<string, z.ZodType>;

export type ArtifactSchemaId = keyof typeof artifactSchemas;

export function isArtifactSchemaId(id: string): id is ArtifactSchemaId {
  return Object.hasOwn(artifactSchemas, id);
}

/** The JSON Schema an agent is shown for an artifact (what it must write, not what we parse into). */
export function artifactJsonSchema(id: ArtifactSchemaId): Record<string, unknown> {
  return z.toJSONSchema(artifactSchemas[id], { io: 'input' }) as Record<string, unknown>;
}
