// Prompt envelopes, the text agents read, scenarios and probe classification: pure logic.
import { describe, expect, it } from 'vitest';
import { buildEnvelope, renderPrompt } from '../schemas/prompt.ts';
import { classifyProbe } from '../sessions/driver.ts';
import { parsePromptDirectives, scenarioForAttempt } from '../sessions/scenarios.ts';

const fields = { runId: 'r1', roleId: 'spec_writer', phaseKey: 'spec', attempt: 1, expectedArtifact: '/w/.devflow/artifacts/spec.json', expectedSchema: 'dev/spec@1', instructions: 'Write the spec.' };

describe('prompt envelope', () => {
  it('has the same dedupKey for the same logical prompt, whatever its uuid', () => {
    const a = buildEnvelope({ uuid: 'u1', ...fields });
    const b = buildEnvelope({ uuid: 'u2', ...fields });
    expect(a.dedupKey).toMatch(/^[0-9a-f]{64}$/);
    expect(b.dedupKey).toBe(a.dedupKey);
    expect(buildEnvelope({ uuid: 'u1', ...fields, attempt: 2 }).dedupKey).not.toBe(a.dedupKey);
  });

  it('renders headers an agent and devflow can read back, with the schema and the errors to fix', () => {
    const envelope = buildEnvelope({ uuid: 'u1', ...fields });
    const text = renderPrompt(envelope, {
      kind: 'repair', personaInstructions: 'Be precise.', jsonSchema: { type: 'object' }, errors: ['title: Required'], scenario: 'ok', repairScenario: 'hang',
    });
    expect(parsePromptDirectives(text)).toEqual({
      kind: 'repair', scenario: 'ok', repairScenario: 'hang', artifactPath: fields.expectedArtifact, schemaId: 'dev/spec@1', dedupKey: envelope.dedupKey, jsonSchema: { type: 'object' },
    });
    expect(text).toContain('Be precise.');
    expect(text).toContain('- title: Required');
    expect(text).toContain('"type": "object"');
    expect(text).toContain('then rename it to that path');
  });
});

describe('scenarios', () => {
  it('apply one scenario to the first prompt, or a list by attempt, then ok', () => {
    expect([1, 2].map((n) => scenarioForAttempt('timeout', n))).toEqual(['timeout', 'ok']);
    expect([1, 2, 3, 4].map((n) => scenarioForAttempt(['invalid_json', 'schema_invalid', 'ok'], n))).toEqual(['invalid_json', 'schema_invalid', 'ok', 'ok']);
    expect(scenarioForAttempt(undefined, 1)).toBeUndefined();
  });

  it('ignore unknown scenario names in a prompt', () => {
    expect(parsePromptDirectives('Scenario: explode\nKind: initial').scenario).toBeUndefined();
  });
});

describe('probe classification', () => {
  it('tells crashed, hung, slow and undecidable apart', () => {
    expect(classifyProbe({ alive: false, outputAgeMs: undefined }, 1000)).toBe('CRASHED');
    expect(classifyProbe({ alive: true, outputAgeMs: 1000 }, 1000)).toBe('HUNG');
    expect(classifyProbe({ alive: true, outputAgeMs: 10 }, 1000)).toBe('ARTIFACT_TIMEOUT');
    expect(classifyProbe({ alive: true, outputAgeMs: undefined, hint: 'pane alive, no output signal' }, 1000)).toBe('tmux_liveness_only');
  });
});
