// The two streaming wire formats the playback model speaks: Anthropic Messages (Claude Code)
// and OpenAI Responses (Codex). Each writes one Reply as the server-sent events the agent
// expects, with the usage it was told to report.
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Reply } from './plan.ts';
import { shellQuote } from './plan.ts';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

type Json = Record<string, unknown>;

function sse(res: ServerResponse, event: string, data: Json): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
}

/** Splits text into a few deltas, as a model streams it. */
function pieces(text: string, count = 3): string[] {
  const size = Math.max(1, Math.ceil(text.length / count));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length ? out : [''];
}

/** Writes an atomic file write as a shell command: a temporary file, then a rename. */
export function atomicWriteCommand(path: string, content: string): string {
  const temporary = `${path}.tmp-${process.pid}`;
  let delimiter = 'DEVFLOW_ARTIFACT';
  while (content.includes(delimiter)) delimiter += '_';
  return `cat > ${shellQuote(temporary)} <<'${delimiter}'\n${content.replace(/\n$/, '')}\n${delimiter}\nmv ${shellQuote(temporary)} ${shellQuote(path)}`;
}

// ---- Anthropic Messages ----------------------------------------------------------------------

export function writeAnthropic(res: ServerResponse, reply: Exclude<Reply, { kind: 'error' }>, usage: Usage, model: string, tools: string[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  sse(res, 'message_start', {
    message: {
      id: `msg_${randomUUID().replaceAll('-', '')}`,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: usage.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
    },
  });
  const text = (index: number, body: string) => {
    sse(res, 'content_block_start', { index, content_block: { type: 'text', text: '' } });
    for (const piece of pieces(body)) sse(res, 'content_block_delta', { index, delta: { type: 'text_delta', text: piece } });
    sse(res, 'content_block_stop', { index });
  };
  if (reply.kind === 'hang') {
    sse(res, 'content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    sse(res, 'content_block_delta', { index: 0, delta: { type: 'text_delta', text: reply.text } });
    return; // never finished: the caller keeps the socket open
  }
  let stopReason = 'end_turn';
  if (reply.kind === 'text') text(0, reply.text);
  else {
    const call = anthropicToolCall(reply, tools);
    text(0, call.say);
    sse(res, 'content_block_start', { index: 1, content_block: { type: 'tool_use', id: `toolu_${randomUUID().replaceAll('-', '')}`, name: call.name, input: {} } });
    for (const piece of pieces(JSON.stringify(call.input))) sse(res, 'content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: piece } });
    sse(res, 'content_block_stop', { index: 1 });
    stopReason = 'tool_use';
  }
  sse(res, 'message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.outputTokens } });
  sse(res, 'message_stop', {});
  res.end();
}

function anthropicToolCall(reply: Extract<Reply, { kind: 'write' | 'shell' }>, tools: string[]): { name: string; input: Json; say: string } {
  if (reply.kind === 'write' && tools.includes('Write')) {
    return { name: 'Write', input: { file_path: reply.path, content: reply.content }, say: `I will write ${reply.path}.` };
  }
  const command = reply.kind === 'write' ? atomicWriteCommand(reply.path, reply.content) : reply.command;
  const description = reply.kind === 'write' ? 'Write the artifact' : reply.description;
  return { name: 'Bash', input: { command, description }, say: `${description}.` };
}

export function anthropicError(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '1' } : {}) });
  res.end(JSON.stringify({ type: 'error', error: { type, message } }));
}

// ---- OpenAI Responses ------------------------------------------------------------------------

export function writeOpenAi(res: ServerResponse, reply: Exclude<Reply, { kind: 'error' }>, usage: Usage, model: string, tools: string[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const responseId = `resp_${randomUUID().replaceAll('-', '')}`;
  const base = { id: responseId, object: 'response', created_at: Math.floor(Date.now() / 1000), model, status: 'in_progress', output: [] };
  let sequence = 0;
  const event = (name: string, data: Json) => sse(res, name, { sequence_number: sequence++, ...data });
  event('response.created', { response: base });
  const outputs: Json[] = [];

  const message = (index: number, text: string, finish: boolean) => {
    const id = `msg_${randomUUID().replaceAll('-', '')}`;
    event('response.output_item.added', { output_index: index, item: { id, type: 'message', role: 'assistant', status: 'in_progress', content: [] } });
    event('response.content_part.added', { item_id: id, output_index: index, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    for (const piece of pieces(text)) event('response.output_text.delta', { item_id: id, output_index: index, content_index: 0, delta: piece });
    if (!finish) return;
    event('response.output_text.done', { item_id: id, output_index: index, content_index: 0, text });
    event('response.content_part.done', { item_id: id, output_index: index, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
    const item = { id, type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] };
    event('response.output_item.done', { output_index: index, item });
    outputs.push(item);
  };

  if (reply.kind === 'hang') {
    message(0, reply.text, false);
    return; // never finished
  }
  if (reply.kind === 'text') message(0, reply.text, true);
  else {
    const call = openAiToolCall(reply, tools);
    message(0, call.say, true);
    const id = `fc_${randomUUID().replaceAll('-', '')}`;
    const callId = `call_${randomUUID().replaceAll('-', '')}`;
    const args = JSON.stringify(call.args);
    event('response.output_item.added', { output_index: 1, item: { id, type: 'function_call', status: 'in_progress', name: call.name, call_id: callId, arguments: '' } });
    for (const piece of pieces(args)) event('response.function_call_arguments.delta', { item_id: id, output_index: 1, delta: piece });
    event('response.function_call_arguments.done', { item_id: id, output_index: 1, arguments: args });
    const item = { id, type: 'function_call', status: 'completed', name: call.name, call_id: callId, arguments: args };
    event('response.output_item.done', { output_index: 1, item });
    outputs.push(item);
  }
  event('response.completed', {
    response: {
      ...base,
      status: 'completed',
      output: outputs,
      usage: {
        input_tokens: usage.inputTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: usage.outputTokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: usage.inputTokens + usage.outputTokens,
      },
    },
  });
  res.end();
}

function openAiToolCall(reply: Extract<Reply, { kind: 'write' | 'shell' }>, tools: string[]): { name: string; args: Json; say: string } {
  const command = reply.kind === 'write' ? atomicWriteCommand(reply.path, reply.content) : reply.command;
  const say = reply.kind === 'write' ? `I will write ${reply.path}.` : `${reply.description}.`;
  // Codex offers `exec_command` ({cmd}); older builds offered `shell` ({command: argv}).
  if (!tools.includes('exec_command') && tools.includes('shell')) return { name: 'shell', args: { command: ['bash', '-lc', command] }, say };
  return { name: 'exec_command', args: { cmd: command }, say };
}

export function openAiError(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '1' } : {}) });
  res.end(JSON.stringify({ error: { type, code: type, message } }));
}
