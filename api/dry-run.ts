// A dry run: what a run would do, phase by phase (role, agent, artifact, gate, loop and the exact
// first prompt its agent would receive), from the registered definitions; nothing is written.
import path from 'node:path';
import { inArray } from 'drizzle-orm';
import type { Database } from '../db/client.ts';
import { agentPersonas, artifactSchemas } from '../db/schema.ts';
import { DEFAULT_ARTIFACT_TIMEOUT_MS } from '../activities/prepare-run.ts';
import { worktreePathFor } from '../lib/runs.ts';
import { PLACEHOLDER, type PersonaDefinition, type TemplateDefinition } from '../schemas/definitions.ts';
import { buildEnvelope, renderPrompt } from '../schemas/prompt.ts';
import { scenarioForAttempt, type PhaseScenarios } from '../sessions/scenarios.ts';

/** The envelope's uuid is made when the prompt is sent; a dry run shows this one in its place. */
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

export async function dryRun(
  db: Database,
  input: { runId: string; templateId: string; definition: TemplateDefinition; agents: Record<string, string>; workspaceRoot: string; scenarios: Record<string, PhaseScenarios> | undefined },
) {
  const { definition } = input;
  const worktree = worktreePathFor(input.workspaceRoot, input.runId);
  const personaIds = Object.values(definition.roles).map((r) => r.persona);
  const personas = new Map((await db.select().from(agentPersonas).where(inArray(agentPersonas.id, personaIds))).map((p) => [p.id, p.definition as PersonaDefinition]));
  const schemaIds = definition.phases.map((p) => p.artifact.schema);
  const schemas = new Map((await db.select().from(artifactSchemas).where(inArray(artifactSchemas.id, schemaIds))).map((s) => [s.id, s.definition as Record<string, unknown>]));
  return {
    dryRun: true as const,
    runId: input.runId,
    template: input.templateId,
    worktree,
    phases: definition.phases.map((phase) => {
      const envelope = buildEnvelope({
        uuid: NIL_UUID,
        runId: input.runId,
        roleId: phase.role,
        phaseKey: phase.key,
        attempt: 1,
        expectedArtifact: path.join(worktree, phase.artifact.path),
        expectedSchema: phase.artifact.schema,
        // A quote of an earlier artifact is filled in when the prompt is sent; here it says what goes there.
        instructions: phase.instructions.replace(PLACEHOLDER, (_, phaseKey: string, field: string) => `<${field} from the ${phaseKey} artifact>`),
      });
      const scenarios = input.scenarios?.[phase.key];
      return {
        key: phase.key,
        title: phase.title,
        role: phase.role,
        agent: input.agents[phase.role] ?? 'configured',
        artifact: { schema: phase.artifact.schema, path: envelope.expectedArtifact, timeoutMs: phase.artifactTimeoutMs ?? DEFAULT_ARTIFACT_TIMEOUT_MS },
        gate: phase.gate ?? null,
        loop: phase.loop ? { field: phase.loop.when.field, equals: phase.loop.when.equals, to: phase.loop.to, maxRounds: phase.loop.maxRounds } : null,
        prompt: renderPrompt(envelope, {
          kind: 'initial',
          personaInstructions: personas.get(definition.roles[phase.role]!.persona)?.instructions ?? '',
          jsonSchema: schemas.get(phase.artifact.schema) ?? {},
          scenario: scenarioForAttempt(scenarios, 1),
          repairScenario: scenarioForAttempt(scenarios, 2),
        }),
      };
    }),
  };
}
