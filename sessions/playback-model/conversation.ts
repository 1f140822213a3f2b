// What the playback model reads from a request: the conversation as a list of turns, whatever
// the wire format (Anthropic Messages or OpenAI Responses), and the devflow prompt in it.
import { parsePromptDirectives, type PromptDirectives } from '../scenarios.ts';

export interface Turn {
  role: 'user' | 'assistant' | 'tool';
  text: string;
  /** Tool calls the assistant made in this turn. */
  toolCalls: number;
}

export interface Conversation {
  turns: Turn[];
  /** Tool names the agent offers; none on side requests such as a title. */
  tools: string[];
}

export interface PromptInConversation {
  directives: PromptDirectives;
  runId: string | undefined;
  promptId: string | undefined;
  /** Tool calls the assistant made since this prompt. */
  toolCallsSince: number;
  /** Every devflow prompt in the conversation, oldest first (a resumed conversation holds several). */
  earlierPromptIds: string[];
}

const PROMPT_HEADER = /^devflow prompt ([0-9a-f-]{36})$/m;

function header(text: string, name: string): string | undefined {
  return new RegExp(`^${name}: *(.+)$`, 'm').exec(text)?.[1]?.trim();
}

/** The latest devflow prompt a user turn carries, and what the assistant did since. */
export function findPrompt(conversation: Conversation): PromptInConversation | undefined {
  const promptTurns = conversation.turns.map((turn, index) => ({ turn, index })).filter(({ turn }) => turn.role === 'user' && PROMPT_HEADER.test(turn.text));
  const last = promptTurns.at(-1);
  if (!last) return undefined;
  const text = last.turn.text;
  return {
    directives: parsePromptDirectives(text),
    runId: header(text, 'Run'),
    promptId: PROMPT_HEADER.exec(text)?.[1],
    toolCallsSince: conversation.turns.slice(last.index + 1).reduce((n, t) => n + (t.role === 'assistant' ? t.toolCalls : 0), 0),
    earlierPromptIds: promptTurns.slice(0, -1).map(({ turn }) => PROMPT_HEADER.exec(turn.text)![1]!),
  };
}

type Json = Record<string, unknown>;
const asArray = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);
const textOf = (value: unknown): string => (typeof value === 'string' ? value : '');

/** Anthropic Messages: `messages[]` of string or content blocks (text, tool_use, tool_result). */
export function fromAnthropic(body: Json): Conversation {
  const turns: Turn[] = [];
  for (const message of asArray(body.messages)) {
    const role = message.role === 'assistant' ? 'assistant' : message.role === 'user' ? 'user' : undefined;
    if (!role) continue; // system messages carry no prompt
    if (typeof message.content === 'string') {
      turns.push({ role, text: message.content, toolCalls: 0 });
      continue;
    }
    const blocks = asArray(message.content);
    const results = blocks.filter((b) => b.type === 'tool_result');
    if (results.length > 0) turns.push({ role: 'tool', text: results.map((b) => JSON.stringify(b.content ?? '')).join('\n'), toolCalls: 0 });
    const text = blocks.filter((b) => b.type === 'text').map((b) => textOf(b.text)).join('\n');
    const toolCalls = blocks.filter((b) => b.type === 'tool_use').length;
    if (text || toolCalls) turns.push({ role, text, toolCalls });
  }
  return { turns, tools: asArray(body.tools).map((t) => textOf(t.name)).filter(Boolean) };
}

/** OpenAI Responses: `input[]` of messages, function calls and their outputs. */
export function fromOpenAi(body: Json): Conversation {
  const turns: Turn[] = [];
  const input = typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : asArray(body.input);
  for (const item of input) {
    const type = typeof item.type === 'string' ? item.type : 'message';
    if (type === 'message') {
      const role = item.role === 'assistant' ? 'assistant' : item.role === 'user' ? 'user' : undefined;
      if (!role) continue; // developer and system messages carry no prompt
      const text = typeof item.content === 'string' ? item.content : asArray(item.content).map((c) => textOf(c.text)).join('\n');
      turns.push({ role, text, toolCalls: 0 });
    } else if (type === 'function_call' || type === 'custom_tool_call' || type === 'local_shell_call') {
      const previous = turns.at(-1);
      if (previous?.role === 'assistant') previous.toolCalls += 1;
      else turns.push({ role: 'assistant', text: '', toolCalls: 1 });
    } else if (type.endsWith('_output')) {
      turns.push({ role: 'tool', text: textOf(item.output) || JSON.stringify(item.output ?? ''), toolCalls: 0 });
    }
  }
  const tools = asArray(body.tools).map((t) => textOf(t.name) || textOf((t.function as Json | undefined)?.name) || textOf(t.type)).filter(Boolean);
  return { turns, tools };
}
