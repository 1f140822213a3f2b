// What a scripted or fake agent does with a prompt. Prompts carry `Scenario:` (what to do
// now) and `Repair-Scenario:` (what to do with the repair prompt that may follow).
import type { PromptKind } from '../schemas/prompt.ts';

export const SCENARIOS = [
  'ok', // write a valid artifact atomically
  'invalid_json', // write bytes that are not JSON
  'schema_invalid', // write JSON that breaks the artifact schema
  'timeout', // keep working (printing) but never write the artifact
  'hang', // stop printing anything
  'crash', // exit
  'slow', // write a valid artifact non-atomically, in chunks
  'send_fail', // fake backend only: prompt delivery fails
  // Real agents on the playback model only: the model API answers 429 (or 529 overloaded) once
  // and the agent retries by itself; every other agent treats them as `ok`.
  'rate_limited',
  'overloaded',
  // A valid artifact whose `verdict` asks for changes (a review sending the work back).
  'request_changes',
  // Scripted agent: print tens of megabytes to its pane first, then a valid artifact (the others: `ok`).
  'flood',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

export function isScenario(value: string): value is Scenario {
  return (SCENARIOS as readonly string[]).includes(value);
}

/** A phase's scenarios: one for every prompt, or a list by attempt (beyond it: `ok`). */
export type PhaseScenarios = Scenario | Scenario[];

export function scenarioForAttempt(scenarios: PhaseScenarios | undefined, attempt: number): Scenario | undefined {
  if (scenarios === undefined) return undefined;
  if (typeof scenarios === 'string') return attempt === 1 ? scenarios : 'ok';
  return scenarios[attempt - 1] ?? 'ok';
}

export interface PromptDirectives {
  kind: PromptKind;
  scenario: Scenario | undefined;
  repairScenario: Scenario | undefined;
  artifactPath: string | undefined;
  schemaId: string | undefined;
  dedupKey: string | undefined;
  /** The JSON Schema the prompt quotes (the artifact's), when it parses. */
  jsonSchema: Record<string, unknown> | undefined;
}

/** The JSON Schema a prompt quotes: everything after its `It must validate against this JSON Schema` line. */
function quotedSchema(text: string): Record<string, unknown> | undefined {
  const at = text.indexOf('It must validate against this JSON Schema');
  if (at < 0) return undefined;
  const start = text.indexOf('\n', at);
  try {
    return JSON.parse(text.slice(start + 1)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function header(text: string, name: string): string | undefined {
  return new RegExp(`^${name}: *(.+)$`, 'm').exec(text)?.[1]?.trim();
}

/** Reads the machine-readable header lines of a devflow prompt. */
export function parsePromptDirectives(text: string): PromptDirectives {
  const scenario = header(text, 'Scenario');
  const repairScenario = header(text, 'Repair-Scenario');
  const kind = header(text, 'Kind');
  return {
    kind: kind === 'repair' || kind === 'retry' || kind === 'revise' ? kind : 'initial',
    scenario: scenario && isScenario(scenario) ? scenario : undefined,
    repairScenario: repairScenario && isScenario(repairScenario) ? repairScenario : undefined,
    artifactPath: header(text, 'Artifact-Path'),
    schemaId: header(text, 'Artifact-Schema'),
    dedupKey: header(text, 'Dedup-Key'),
    jsonSchema: quotedSchema(text),
  };
}
