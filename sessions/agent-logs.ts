// Where the real agents keep their conversations, read for two things: the conversation to
// continue when an agent is restarted, and the tokens it used, per devflow phase. Usage is
// attributed to the devflow prompt the agent was answering (its `Phase:` line).
import { createReadStream, existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface Conversation {
  /** The agent's own id for it (what `--resume` / `codex resume` take). */
  id: string;
  file: string;
}

export interface PhaseUsage {
  phaseKey: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export interface ConversationQuery {
  /** The agent's config folder (CLAUDE_CONFIG_DIR / CODEX_HOME); undefined = the agent's default. */
  configDir: string | undefined;
  /** The conversation id devflow gave the agent, when it can give one (Claude Code). */
  agentSessionId: string | null;
  runId: string;
  roleId: string;
  /** Conversations started before this are not this session's. */
  since: Date;
}

export interface ConversationLogs {
  /** This session's conversations, oldest first; the last one is the one to continue. */
  find(query: ConversationQuery): Promise<Conversation[]>;
  usage(file: string): Promise<PhaseUsage[]>;
}

type Json = Record<string, unknown>;
const PROMPT_HEADER = /^devflow prompt [0-9a-f-]{36}$/m;

function phaseOf(text: string): string | undefined {
  if (!PROMPT_HEADER.test(text)) return undefined;
  return /^Phase: *(\S+)$/m.exec(text)?.[1];
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return (content as Json[]).map((c) => (typeof c.text === 'string' ? c.text : '')).join('\n');
}

/** A log line longer than this (a huge tool output, say) is skipped unread. */
export const MAX_LOG_LINE_BYTES = 16 * 1024 * 1024;

/**
 * The lines of an agent's log, one at a time, never the whole file: an agent decides how much it
 * logs, so a line over `maxLineBytes` is skipped, and memory holds one line at most.
 */
export async function* logLines(file: string, maxLineBytes = MAX_LOG_LINE_BYTES): AsyncGenerator<string> {
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let from = 0;
    for (let end = chunk.indexOf(10); ; end = chunk.indexOf(10, from)) {
      const piece = chunk.subarray(from, end < 0 ? chunk.length : end);
      if (!skipping && size + piece.length > maxLineBytes) {
        skipping = true;
        parts = [];
      }
      if (!skipping) {
        parts.push(piece);
        size += piece.length;
      }
      if (end < 0) break;
      if (!skipping) yield Buffer.concat(parts, size).toString('utf8');
      parts = [];
      size = 0;
      skipping = false;
      from = end + 1;
    }
  }
  if (!skipping && size > 0) yield Buffer.concat(parts, size).toString('utf8');
}

async function jsonLines(file: string): Promise<Json[]> {
  const out: Json[] = [];
  for await (const line of logLines(file)) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as Json);
    } catch {
      // a line being written as we read
    }
  }
  return out;
}

/** Sums usage records by the phase of the prompt before them; each record counted once by id. */
class UsageTally {
  private readonly byPhase = new Map<string, PhaseUsage>();
  private readonly seen = new Set<string>();
  private phase: string | undefined;

  prompt(text: string): void {
    this.phase = phaseOf(text) ?? this.phase;
  }

  add(id: string | undefined, usage: Omit<PhaseUsage, 'phaseKey'>): void {
    if (!this.phase || (id && this.seen.has(id))) return;
    if (id) this.seen.add(id);
    const sum = this.byPhase.get(this.phase) ?? { phaseKey: this.phase, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
    sum.inputTokens += usage.inputTokens;
    sum.outputTokens += usage.outputTokens;
    sum.cacheReadTokens += usage.cacheReadTokens;
    sum.cacheWriteTokens += usage.cacheWriteTokens;
    this.byPhase.set(this.phase, sum);
  }

  result(): PhaseUsage[] {
    return [...this.byPhase.values()];
  }
}

const num = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

// ---- Claude Code: <config>/projects/<folder slug>/<session id>.jsonl --------------------------

export const claudeCodeLogs: ConversationLogs = {
  async find(query) {
    if (!query.agentSessionId) return [];
    const projects = path.join(query.configDir ?? path.join(os.homedir(), '.claude'), 'projects');
    if (!existsSync(projects)) return [];
    const found: Conversation[] = [];
    for (const folder of await readdir(projects)) {
      const file = path.join(projects, folder, `${query.agentSessionId}.jsonl`);
      if (existsSync(file)) found.push({ id: query.agentSessionId, file });
    }
    return found;
  },
  async usage(file) {
    const tally = new UsageTally();
    for (const entry of await jsonLines(file)) {
      const message = entry.message as Json | undefined;
      if (entry.type === 'user' && message) tally.prompt(textOf(message.content));
      if (entry.type === 'assistant' && message?.usage) {
        // One line per content block, all carrying the same message and usage: count it once.
        const usage = message.usage as Json;
        tally.add(typeof message.id === 'string' ? message.id : undefined, {
          inputTokens: num(usage.input_tokens),
          outputTokens: num(usage.output_tokens),
          cacheReadTokens: num(usage.cache_read_input_tokens),
          cacheWriteTokens: num(usage.cache_creation_input_tokens),
        });
      }
    }
    return tally.result();
  },
};

// ---- Codex: <CODEX_HOME>/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl --------------------------

async function rolloutFiles(folder: string, since: Date): Promise<string[]> {
  if (!existsSync(folder)) return [];
  const files: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/^rollout-.*\.jsonl$/.test(entry.name)) continue;
    const file = path.join(entry.parentPath, entry.name);
    if ((await stat(file)).mtimeMs >= since.getTime() - 1_000) files.push(file);
  }
  return files;
}

export const codexLogs: ConversationLogs = {
  async find(query) {
    const home = query.configDir ?? path.join(os.homedir(), '.codex');
    const found: { conversation: Conversation; startedAt: string }[] = [];
    for (const file of await rolloutFiles(path.join(home, 'sessions'), query.since)) {
      // Roles of one run share a worktree: a conversation is this session's if it holds its prompts.
      const mark = `Run: ${query.runId}\\nRole: ${query.roleId}\\n`;
      let first: string | undefined;
      let holds = false;
      for await (const line of logLines(file)) {
        first ??= line;
        if ((holds = line.includes(mark))) break;
      }
      if (!holds || !first) continue;
      const meta = JSON.parse(first) as Json;
      const payload = meta.payload as Json | undefined;
      if (meta.type !== 'session_meta' || typeof payload?.id !== 'string') continue;
      found.push({ conversation: { id: payload.id, file }, startedAt: String(payload.timestamp ?? meta.timestamp ?? '') });
    }
    return found.sort((a, b) => a.startedAt.localeCompare(b.startedAt)).map((f) => f.conversation);
  },
  async usage(file) {
    const tally = new UsageTally();
    for (const entry of await jsonLines(file)) {
      const payload = entry.payload as Json | undefined;
      if (!payload) continue;
      if (entry.type === 'response_item' && payload.type === 'message' && payload.role === 'user') tally.prompt(textOf(payload.content));
      if (entry.type === 'token_usage_record') {
        const usage = (payload.usage ?? {}) as Json;
        const cached = num(usage.cached_input_tokens);
        tally.add(typeof payload.response_id === 'string' ? payload.response_id : undefined, {
          inputTokens: num(usage.input_tokens),
          outputTokens: num(usage.output_tokens),
          cacheReadTokens: cached,
          cacheWriteTokens: num(usage.cache_write_input_tokens),
        });
      }
    }
    return tally.result();
  },
};

/** Adds usage of several conversations (a session restarted without its conversation has two). */
export function sumUsage(parts: PhaseUsage[][]): PhaseUsage[] {
  const sums = new Map<string, PhaseUsage>();
  for (const usage of parts.flat()) {
    const sum = sums.get(usage.phaseKey) ?? { phaseKey: usage.phaseKey, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
    sum.inputTokens += usage.inputTokens;
    sum.outputTokens += usage.outputTokens;
    sum.cacheReadTokens += usage.cacheReadTokens;
    sum.cacheWriteTokens += usage.cacheWriteTokens;
    sums.set(usage.phaseKey, sum);
  }
  return [...sums.values()];
}
