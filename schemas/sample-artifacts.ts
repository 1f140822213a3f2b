// Valid example artifacts, written by the scripted and fake agents (and shown nowhere else).
import type { ArtifactSchemaId } from './artifacts.ts';

export function sampleArtifact(schemaId: string): Record<string, unknown> {
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
  const sample = samples[schemaId as ArtifactSchemaId];
  if (!sample) throw new Error(`no sample artifact for schema ${schemaId}`);
  return sample;
}

/** JSON that parses but breaks every artifact schema (no required fields, an unknown one). */
export const SCHEMA_INVALID_ARTIFACT = { unexpected: true };
