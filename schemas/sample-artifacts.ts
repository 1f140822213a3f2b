// Valid example artifacts, written by the scripted and fake agents and the playback model: the
// built-in schemas' own, or the first of a JSON Schema's `examples`.
import type { ArtifactSchemaId } from './artifacts.ts';

/**
 * A valid artifact for the schema. `request_changes` asks for the work to go back: a JSON
 * Schema's second example, or a built-in review whose verdict requests changes.
 */
export function sampleFor(schemaId: string, jsonSchema: Record<string, unknown> | undefined, scenario?: string): Record<string, unknown> {
  const examples = (Array.isArray(jsonSchema?.examples) ? jsonSchema.examples : []).filter((e): e is Record<string, unknown> => !!e && typeof e === 'object' && !Array.isArray(e));
  const builtIn = builtInSample(schemaId);
  if (scenario === 'request_changes') {
    if (builtIn) return { ...builtIn, verdict: 'request_changes' };
    if (examples[1]) return examples[1];
  }
  const sample = builtIn ?? examples[0];
  if (!sample) throw new Error(`no sample artifact for schema ${schemaId}: give its JSON Schema an \`examples\` entry`);
  return sample;
}

export function sampleArtifact(schemaId: string): Record<string, unknown> {
  const sample = builtInSample(schemaId);
  if (!sample) throw new Error(`no sample artifact for schema ${schemaId}`);
  return sample;
}

function builtInSample(schemaId: string): Record<string, unknown> | undefined {
  const samples: Record<ArtifactSchemaId, Record<string, unknown>> = {
    'dev/spec@1': {
      title: 'Scripted specification',
      summary: 'A specification written by the scripted agent.',
      requirements: [{ id: 'R1', text: 'The change does what the requirements document asks.' }],
      acceptanceCriteria: ['The tests pass.'],
      outOfScope: [],
      openQuestions: [],
    },
    'dev/implementation@1': {
      summary: 'An implementation reported by the scripted agent.',
      filesChanged: [],
      commits: [],
      testsRun: [{ command: 'true', passed: true }],
      notes: '',
    },
    'dev/review@1': {
      verdict: 'approve',
      summary: 'A review written by the scripted agent.',
      findings: [{ severity: 'info', message: 'Nothing to report.' }],
    },
  };
  return samples[schemaId as ArtifactSchemaId];
}

/** JSON that parses but breaks every artifact schema (no required fields, an unknown one). */
export const SCHEMA_INVALID_ARTIFACT = { unexpected: true };
