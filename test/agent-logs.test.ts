// Reading the real agents' own logs: which conversation belongs to a session (to continue it)
// and the tokens used per devflow phase. The lines are shaped as the pinned CLIs write them.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { claudeCodeLogs, codexLogs, logLines, sumUsage } from '../sessions/agent-logs.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'devflow-agent-logs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const promptText = (runId: string, role: string, phase: string) => `devflow prompt ${randomUUID()}\nRun: ${runId}\nRole: ${role}\nPhase: ${phase}\nAttempt: 1\nKind: initial\n\n## Task\n…`;
const lines = (entries: unknown[]) => `${entries.map((e) => JSON.stringify(e)).join('\n')}\n`;

describe('Claude Code logs', () => {
  const config = path.join(root, 'claude');
  const sessionId = randomUUID();
  const runId = randomUUID();
  const file = path.join(config, 'projects', '-tmp-workspaces-x-main', `${sessionId}.jsonl`);
  mkdirSync(path.dirname(file), { recursive: true });
  const assistant = (id: string, input: number, output: number, block: string) => ({
    type: 'assistant',
    sessionId,
    message: { id, role: 'assistant', content: [{ type: block }], usage: { input_tokens: input, output_tokens: output, cache_read_input_tokens: 7, cache_creation_input_tokens: 3 } },
  });
  writeFileSync(
    file,
    lines([
      { type: 'permission-mode', sessionId },
      { type: 'user', sessionId, message: { role: 'user', content: promptText(runId, 'spec_writer', 'spec') } },
      // One line per content block of the same message, each with its usage: counted once.
      assistant('msg_1', 1200, 80, 'text'),
      assistant('msg_1', 1200, 80, 'tool_use'),
      { type: 'user', sessionId, message: { role: 'user', content: [{ type: 'tool_result', content: 'ok' }] } },
      assistant('msg_2', 1300, 20, 'text'),
      { type: 'user', sessionId, message: { role: 'user', content: [{ type: 'text', text: promptText(runId, 'spec_writer', 'revise') }] } },
      assistant('msg_3', 500, 5, 'text'),
    ]) + '{"type":"assistant","message":{"id":"msg_4","usa', // a line still being written
  );

  it('finds the conversation by the id devflow gave it', async () => {
    const query = { configDir: config, agentSessionId: sessionId, runId, roleId: 'spec_writer', since: new Date(0) };
    expect(await claudeCodeLogs.find(query)).toEqual([{ id: sessionId, file }]);
    expect(await claudeCodeLogs.find({ ...query, agentSessionId: randomUUID() })).toEqual([]);
    expect(await claudeCodeLogs.find({ ...query, configDir: path.join(root, 'nowhere') })).toEqual([]);
  });

  it('sums usage per phase, each message once, by the prompt it answered', async () => {
    expect(await claudeCodeLogs.usage(file)).toEqual([
      { phaseKey: 'spec', inputTokens: 2500, outputTokens: 100, cacheReadTokens: 14, cacheWriteTokens: 6 },
      { phaseKey: 'revise', inputTokens: 500, outputTokens: 5, cacheReadTokens: 7, cacheWriteTokens: 3 },
    ]);
  });
});

describe('Codex logs', () => {
  const home = path.join(root, 'codex');
  const runId = randomUUID();
  const rollout = (id: string, at: string, role: string, usage: [string, number, number][]) => {
    const file = path.join(home, 'sessions', '2026', '11', '23', `rollout-${at.replaceAll(':', '-')}-${id}.jsonl`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(
      file,
      lines([
        { type: 'session_meta', timestamp: at, payload: { id, session_id: id, timestamp: at, cwd: '/tmp/workspaces/x/main' } },
        { type: 'response_item', payload: { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'rules' }] } },
        { type: 'response_item', payload: { type: 'message', role: 'user', content: [{ type: 'input_text', text: promptText(runId, role, 'implement') }] } },
        ...usage.flatMap(([responseId, input, output]) => [
          { type: 'token_usage_record', payload: { response_id: responseId, usage: { input_tokens: input, cached_input_tokens: 100, output_tokens: output } } },
          // Codex repeats the last usage in its running totals; only the records count.
          { type: 'event_msg', payload: { type: 'token_count', info: { last_token_usage: { input_tokens: input } } } },
        ]),
      ]),
    );
    return file;
  };
  const first = rollout('01a20806-0000-7000-8000-000000000001', '2026-11-23T10:49:05.665Z', 'implementer', [['resp_1', 1200, 80], ['resp_2', 1200, 80], ['resp_2', 1200, 80]]);
  const second = rollout('01a20806-0000-7000-8000-000000000002', '2026-11-23T10:55:00.000Z', 'implementer', [['resp_3', 900, 10]]);
  rollout('01a20806-0000-7000-8000-000000000003', '2026-11-23T10:56:00.000Z', 'reviewer', [['resp_4', 1, 1]]);
  const old = rollout('01a20806-0000-7000-8000-000000000004', '2026-11-20T10:00:00.000Z', 'implementer', [['resp_5', 5, 5]]);
  utimesSync(old, new Date('2026-11-20T10:00:00Z'), new Date('2026-11-20T10:00:00Z'));

  it("finds a session's conversations by the prompts in them (roles share a worktree), oldest first", async () => {
    const found = await codexLogs.find({ configDir: home, agentSessionId: null, runId, roleId: 'implementer', since: new Date('2026-11-22T00:00:00Z') });
    expect(found).toEqual([
      { id: '01a20806-0000-7000-8000-000000000001', file: first },
      { id: '01a20806-0000-7000-8000-000000000002', file: second },
    ]);
  });

  it('sums token usage records per phase, each response once', async () => {
    const usage = sumUsage([await codexLogs.usage(first), await codexLogs.usage(second)]);
    expect(usage).toEqual([{ phaseKey: 'implement', inputTokens: 3300, outputTokens: 170, cacheReadTokens: 300, cacheWriteTokens: 0 }]);
  });
});

describe('reading an agent log', () => {
  it('goes a line at a time and skips a line over its limit, whatever the agent logged', async () => {
    const file = path.join(root, 'huge-line.jsonl');
    // Lines across read chunks (64 KiB), one far over the limit, and a last line without its newline.
    writeFileSync(file, ['first', 'y'.repeat(200_000), 'z'.repeat(300_000), 'x'.repeat(5_000_000), 'after the huge one', 'last'].join('\n'));
    const read: string[] = [];
    for await (const line of logLines(file, 1_000_000)) read.push(line);
    expect(read.map((l) => (l.length > 20 ? `${l[0]}×${l.length}` : l))).toEqual(['first', 'y×200000', 'z×300000', 'after the huge one', 'last']);
  });
});
