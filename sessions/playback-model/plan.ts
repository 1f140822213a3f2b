// What the playback model answers: it plays the devflow prompt's scenario at the model level, so
// the real agent does the work (writes the file through its own tools, retries its own API
// errors, shows its own screens). Pure: the server turns a Reply into a wire format.
import { SCHEMA_INVALID_ARTIFACT, sampleFor } from '../../schemas/sample-artifacts.ts';
import type { Scenario } from '../scenarios.ts';
import type { Conversation, PromptInConversation } from './conversation.ts';

export type Reply =
  | { kind: 'text'; text: string }
  /** Write `content` at `path` with the agent's file tool (or its shell, atomically). */
  | { kind: 'write'; path: string; content: string }
  /** Run a shell command with the agent's shell tool. */
  | { kind: 'shell'; command: string; description: string }
  /** Start answering, then never finish: a stream that stops mid-answer. */
  | { kind: 'hang'; text: string }
  /** An API error the agent is expected to retry by itself. */
  | { kind: 'error'; status: 429 | 529; type: string; message: string };

export const INVALID_JSON_ARTIFACT = '{"title": "cut off in the middle';

export function artifactText(schemaId: string, scenario: Scenario, jsonSchema?: Record<string, unknown>): string {
  if (scenario === 'invalid_json') return INVALID_JSON_ARTIFACT;
  if (scenario === 'schema_invalid') return `${JSON.stringify(SCHEMA_INVALID_ARTIFACT)}\n`;
  return `${JSON.stringify(sampleFor(schemaId, jsonSchema, scenario), null, 2)}\n`;
}

export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Writes in four chunks straight into the final path, a pause between them: a slow, careless write. */
export function slowWriteCommand(path: string, content: string, pauseSeconds = 0.4): string {
  const size = Math.ceil(content.length / 4);
  const parts: string[] = [];
  for (let offset = 0; offset < content.length; offset += size) parts.push(content.slice(offset, offset + size));
  const writes = parts.map((part, i) => `printf '%s' ${shellQuote(part)} ${i === 0 ? '>' : '>>'} ${shellQuote(path)}`);
  return writes.join(` && sleep ${pauseSeconds} && `);
}

/** The kill the `crash` scenario asks for: the agent's shell ends the agent process itself. */
export const CRASH_COMMAND = 'kill -KILL $PPID';

/**
 * Decides the answer. `errorsServed` counts the API errors already served for this prompt, so
 * `rate_limited` and `overloaded` fail once and then succeed.
 */
export function planReply(conversation: Conversation, prompt: PromptInConversation | undefined, errorsServed: number): Reply {
  if (conversation.tools.length === 0) return sideReply(prompt);
  if (!prompt) return { kind: 'text', text: 'devflow playback model: no devflow prompt in this conversation, nothing to do.' };
  const { directives } = prompt;
  const scenario = directives.scenario ?? 'ok';
  if (scenario === 'rate_limited' && errorsServed === 0) {
    return { kind: 'error', status: 429, type: 'rate_limit_error', message: 'devflow playback model: rate limited (scenario rate_limited)' };
  }
  if (scenario === 'overloaded' && errorsServed === 0) {
    return { kind: 'error', status: 529, type: 'overloaded_error', message: 'devflow playback model: overloaded (scenario overloaded)' };
  }
  if (prompt.toolCallsSince > 0) {
    return { kind: 'text', text: directives.artifactPath ? `Done: wrote ${directives.artifactPath}.` : 'Done.' };
  }
  if (!directives.artifactPath || !directives.schemaId) return { kind: 'text', text: 'The prompt names no artifact; nothing to write.' };

  switch (scenario) {
    case 'timeout':
      return { kind: 'text', text: 'I am still working out the details; the artifact is not written yet.' };
    case 'hang':
      return { kind: 'hang', text: 'Let me think about this' };
    case 'crash':
      return { kind: 'shell', command: CRASH_COMMAND, description: 'Stop the agent (scenario crash)' };
    case 'slow':
      return { kind: 'shell', command: slowWriteCommand(directives.artifactPath, artifactText(directives.schemaId, 'ok', directives.jsonSchema)), description: 'Write the artifact in chunks' };
    default:
      return { kind: 'write', path: directives.artifactPath, content: artifactText(directives.schemaId, scenario, directives.jsonSchema) };
  }
}

/** Side requests (a conversation title): plain answers, shaped as the agent asks. */
function sideReply(prompt: PromptInConversation | undefined): Reply {
  const title = prompt?.directives.schemaId ? `devflow ${prompt.directives.schemaId}` : 'devflow session';
  return { kind: 'text', text: JSON.stringify({ title }) };
}
