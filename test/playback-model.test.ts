// The playback model: it reads devflow's prompt out of an agent's conversation (either wire
// format) and answers with what the scenario asks of the model, streamed as the agents expect.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleArtifact } from '../schemas/sample-artifacts.ts';
import { findPrompt, fromAnthropic, fromOpenAi } from '../sessions/playback-model/conversation.ts';
import { CRASH_COMMAND, INVALID_JSON_ARTIFACT, planReply } from '../sessions/playback-model/plan.ts';
import { DEFAULT_SIDE_USAGE, DEFAULT_TURN_USAGE, startPlaybackModel, type PlaybackModel } from '../sessions/playback-model/server.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'devflow-playback-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function prompt(scenario: string, options: { kind?: string; runId?: string; id?: string } = {}) {
  const id = options.id ?? randomUUID();
  const artifact = path.join(dir, `${id}.json`);
  const text = [
    `devflow prompt ${id}`,
    `Run: ${options.runId ?? randomUUID()}`,
    'Role: spec_writer',
    'Phase: spec',
    `Kind: ${options.kind ?? 'initial'}`,
    `Artifact-Path: ${artifact}`,
    'Artifact-Schema: dev/spec@1',
    `Scenario: ${scenario}`,
    '',
    'Write the spec.',
  ].join('\n');
  return { id, text, artifact };
}

const anthropicTools = [{ name: 'Write' }, { name: 'Bash' }];
const withPrompt = (text: string, extra: Record<string, unknown>[] = []) => ({ messages: [{ role: 'user', content: [{ type: 'text', text: '<system-reminder>context</system-reminder>' }, { type: 'text', text }] }, ...extra], tools: anthropicTools });

describe('reading the conversation', () => {
  it('finds the latest devflow prompt in Anthropic messages and counts the tool calls since', () => {
    const first = prompt('ok');
    const second = prompt('timeout', { kind: 'repair' });
    const conversation = fromAnthropic({
      tools: anthropicTools,
      messages: [
        { role: 'user', content: first.text },
        { role: 'assistant', content: [{ type: 'text', text: 'on it' }, { type: 'tool_use', id: 't1', name: 'Write', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }] },
        { role: 'user', content: [{ type: 'text', text: second.text }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't2', name: 'Bash', input: {} }] },
      ],
    });
    const found = findPrompt(conversation)!;
    expect(found).toMatchObject({ promptId: second.id, toolCallsSince: 1, earlierPromptIds: [first.id] });
    expect(found.directives).toMatchObject({ kind: 'repair', scenario: 'timeout', schemaId: 'dev/spec@1', artifactPath: second.artifact });
  });

  it('reads OpenAI Responses input: messages, function calls and their outputs', () => {
    const p = prompt('ok');
    const conversation = fromOpenAi({
      tools: [{ type: 'function', name: 'exec_command' }],
      input: [
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'rules' }] },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: p.text }] },
        { type: 'function_call', name: 'exec_command', arguments: '{}', call_id: 'c1' },
        { type: 'function_call_output', call_id: 'c1', output: 'done' },
      ],
    });
    expect(conversation.tools).toEqual(['exec_command']);
    expect(findPrompt(conversation)).toMatchObject({ promptId: p.id, toolCallsSince: 1 });
  });
});

describe('planning the answer', () => {
  const plan = (scenario: string, errorsServed = 0, extra: Record<string, unknown>[] = []) => {
    const p = prompt(scenario);
    const conversation = fromAnthropic(withPrompt(p.text, extra));
    return { p, reply: planReply(conversation, findPrompt(conversation), errorsServed) };
  };

  it('writes a valid, a broken or a schema-breaking artifact through the agent', () => {
    const ok = plan('ok');
    expect(ok.reply).toEqual({ kind: 'write', path: ok.p.artifact, content: `${JSON.stringify(sampleArtifact('dev/spec@1'), null, 2)}\n` });
    expect(plan('invalid_json').reply).toMatchObject({ kind: 'write', content: INVALID_JSON_ARTIFACT });
    expect(JSON.parse((plan('schema_invalid').reply as { content: string }).content)).toEqual({ unexpected: true });
  });

  it('answers without writing (timeout), never finishes (hang), ends the agent (crash)', () => {
    expect(plan('timeout').reply.kind).toBe('text');
    expect(plan('hang').reply.kind).toBe('hang');
    expect(plan('crash').reply).toMatchObject({ kind: 'shell', command: CRASH_COMMAND });
  });

  it('writes slowly in chunks with a shell command that leaves the valid artifact', () => {
    const { p, reply } = plan('slow');
    expect(reply.kind).toBe('shell');
    execFileSync('sh', ['-c', (reply as { command: string }).command.replaceAll('sleep 0.4', 'sleep 0')]);
    expect(JSON.parse(readFileSync(p.artifact, 'utf8'))).toEqual(sampleArtifact('dev/spec@1'));
  });

  it('refuses once with 429 or 529, then works; and says it is done after its tool call', () => {
    expect(plan('rate_limited').reply).toMatchObject({ kind: 'error', status: 429 });
    expect(plan('rate_limited', 1).reply.kind).toBe('write');
    expect(plan('overloaded').reply).toMatchObject({ kind: 'error', status: 529 });
    expect(plan('ok', 0, [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'Write', input: {} }] }]).reply).toMatchObject({ kind: 'text', text: expect.stringMatching(/^Done/) });
  });

  it('answers a side request (no tools: a title) with JSON', () => {
    const p = prompt('ok');
    const conversation = fromAnthropic({ messages: [{ role: 'user', content: `<session>\n${p.text}\n</session>` }] });
    expect(JSON.parse((planReply(conversation, findPrompt(conversation), 0) as { text: string }).text)).toEqual({ title: 'devflow dev/spec@1' });
  });
});

/** The events of a server-sent event stream, in order. */
function sseEvents(body: string): { event: string; data: Record<string, unknown> }[] {
  return body
    .split('\n\n')
    .filter((block) => block.trim())
    .map((block) => ({ event: /^event: (.+)$/m.exec(block)![1]!, data: JSON.parse(/^data: (.+)$/m.exec(block)![1]!) as Record<string, unknown> }));
}

describe('the playback model over HTTP', () => {
  let model: PlaybackModel;
  beforeAll(async () => {
    model = await startPlaybackModel();
  });
  afterAll(() => model.close());

  const post = (route: string, body: unknown) => fetch(`${model.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('streams an Anthropic tool call the agent turns into the artifact, in event order, with usage', async () => {
    const p = prompt('ok');
    const response = await post('/v1/messages?beta=true', { model: 'claude-x', stream: true, ...withPrompt(p.text) });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const events = sseEvents(await response.text());
    expect(events.map((e) => e.event)).toEqual([
      'message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop',
    ]);
    const input = events.filter((e) => (e.data.delta as { type?: string } | undefined)?.type === 'input_json_delta').map((e) => (e.data.delta as { partial_json: string }).partial_json).join('');
    expect(JSON.parse(input)).toEqual({ file_path: p.artifact, content: `${JSON.stringify(sampleArtifact('dev/spec@1'), null, 2)}\n` });
    expect(events.at(-2)!.data).toMatchObject({ delta: { stop_reason: 'tool_use' }, usage: { output_tokens: DEFAULT_TURN_USAGE.outputTokens } });
    expect((events[0]!.data.message as { usage: { input_tokens: number } }).usage.input_tokens).toBe(DEFAULT_TURN_USAGE.inputTokens);
  });

  it('streams an OpenAI exec_command call whose shell command writes the artifact atomically', async () => {
    const p = prompt('ok');
    const response = await post('/v1/responses', { model: 'm', stream: true, tools: [{ type: 'function', name: 'exec_command' }], input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: p.text }] }] });
    const events = sseEvents(await response.text());
    expect(events[0]!.event).toBe('response.created');
    expect(events.at(-1)).toMatchObject({ event: 'response.completed', data: { response: { usage: { input_tokens: DEFAULT_TURN_USAGE.inputTokens, output_tokens: DEFAULT_TURN_USAGE.outputTokens } } } });
    const call = events.find((e) => e.event === 'response.output_item.done' && (e.data.item as { type: string }).type === 'function_call')!.data.item as { name: string; arguments: string };
    expect(call.name).toBe('exec_command');
    execFileSync('bash', ['-c', (JSON.parse(call.arguments) as { cmd: string }).cmd]);
    expect(JSON.parse(readFileSync(p.artifact, 'utf8'))).toEqual(sampleArtifact('dev/spec@1'));
  });

  it('refuses with a 429 the agent can retry, answers its health checks, and records every request with the usage served', async () => {
    const runId = randomUUID();
    const p = prompt('rate_limited', { runId });
    const refused = await post('/v1/messages', withPrompt(p.text));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect((await post('/v1/messages', withPrompt(p.text))).status).toBe(200);
    await post('/v1/messages', { messages: [{ role: 'user', content: `<session>\n${p.text}\n</session>` }] }); // a title
    expect((await fetch(`${model.url}/api/hello`, { method: 'HEAD' })).status).toBe(200);
    expect(await (await post('/v1/messages/count_tokens', { messages: [] })).json()).toEqual({ input_tokens: DEFAULT_SIDE_USAGE.inputTokens });

    const mine = model.requests().filter((r) => r.runId === runId);
    expect(mine.map((r) => [r.kind, r.status, r.reply])).toEqual([['turn', 429, 'error'], ['turn', 200, 'write'], ['side', 200, 'text']]);
    expect(model.servedUsage(runId)).toEqual(DEFAULT_TURN_USAGE);
    expect(model.servedUsage(runId, 'side')).toEqual(DEFAULT_SIDE_USAGE);
    const listed = (await (await fetch(`${model.url}/_playback/requests`)).json()) as { requests: unknown[] };
    expect(listed.requests.length).toBe(model.requests().length);
  });

  it('keeps a hanging stream open until it is closed, having served no usage', async () => {
    const runId = randomUUID();
    const response = await post('/v1/messages', withPrompt(prompt('hang', { runId }).text));
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('event: message_start');
    const next = await Promise.race([reader.read().then(() => 'more'), new Promise((resolve) => setTimeout(() => resolve('silent'), 500))]);
    expect(next).toBe('silent');
    expect(model.servedUsage(runId)).toEqual({ inputTokens: 0, outputTokens: 0 });
    await reader.cancel();
  });

  it('answers bad input plainly', async () => {
    const response = await fetch(`${model.url}/v1/messages`, { method: 'POST', body: 'not json' });
    expect(response.status).toBe(400);
    expect((await fetch(`${model.url}/v2/other`)).status).toBe(404);
  });
});
