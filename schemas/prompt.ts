// The prompt envelope (SPEC section 2) and the text an agent reads. The dedupKey hashes the
// envelope without its uuid, so the same logical prompt always carries the same key.
import { canonicalHash } from '../lib/canonical-json.ts';
import type { Scenario } from '../sessions/scenarios.ts';

/**
 * A phase's first prompt, the one repair after an invalid or missing artifact, a retry after a
 * human gate, or a revision when a later phase sent the work back.
 */
export type PromptKind = 'initial' | 'repair' | 'retry' | 'revise';

/** What a later phase asked for when it sent the work back (a review's findings, say). */
export interface Revision {
  fromPhase: string;
  round: number;
  field: string | null;
  value: unknown;
}

export interface PromptEnvelope {
  uuid: string;
  runId: string;
  roleId: string;
  phaseKey: string;
  attempt: number;
  expectedArtifact: string;
  expectedSchema: string;
  instructions: string;
  dedupKey: string;
}

export function buildEnvelope(fields: Omit<PromptEnvelope, 'dedupKey'>): PromptEnvelope {
  const { uuid: _uuid, ...logical } = fields;
  return { ...fields, dedupKey: canonicalHash(logical) };
}

export interface PromptText {
  kind: PromptKind;
  personaInstructions: string;
  jsonSchema: Record<string, unknown>;
  /** Validation errors of the previous artifact, quoted in a repair prompt. */
  errors?: string[];
  scenario?: Scenario;
  repairScenario?: Scenario;
  /** A later phase sent the work back: quoted in a `revise` prompt. */
  revision?: Revision;
}

/** The first line of every prompt: how a prompt is recognised at the agent (its pane, its log). */
export function promptHeader(uuid: string): string {
  return `devflow prompt ${uuid}`;
}

export function renderPrompt(envelope: PromptEnvelope, text: PromptText): string {
  const lines = [
    promptHeader(envelope.uuid),
    `Run: ${envelope.runId}`,
    `Role: ${envelope.roleId}`,
    `Phase: ${envelope.phaseKey}`,
    `Attempt: ${envelope.attempt}`,
    `Kind: ${text.kind}`,
    `Dedup-Key: ${envelope.dedupKey}`,
    `Artifact-Path: ${envelope.expectedArtifact}`,
    `Artifact-Schema: ${envelope.expectedSchema}`,
    ...(text.scenario ? [`Scenario: ${text.scenario}`] : []),
    ...(text.repairScenario ? [`Repair-Scenario: ${text.repairScenario}`] : []),
    '',
    '## Your role',
    text.personaInstructions,
    '',
    '## Task',
    envelope.instructions,
  ];
  if (text.revision) {
    const { revision } = text;
    lines.push(
      '',
      `## Changes requested (round ${revision.round}, by ${revision.fromPhase})`,
      `The ${revision.fromPhase} phase sent this work back. Address what it asks, then write your artifact again.`,
      ...(revision.field ? [`${revision.field}:`, typeof revision.value === 'string' ? revision.value : JSON.stringify(revision.value, null, 2)] : []),
    );
  }
  if (text.kind === 'repair') {
    lines.push(
      '',
      '## Fix your artifact',
      'The artifact you wrote was not accepted. Write it again, fixing these problems:',
      ...(text.errors?.length ? text.errors.map((e) => `- ${e}`) : ['- no artifact was written in time']),
    );
  }
  lines.push(
    '',
    '## Output',
    `Write exactly one JSON file at ${envelope.expectedArtifact}.`,
    'Write it atomically: write a temporary file in the same folder, then rename it to that path.',
    `It must validate against this JSON Schema (${envelope.expectedSchema}):`,
    JSON.stringify(text.jsonSchema, null, 2),
    '',
  );
  return lines.join('\n');
}
