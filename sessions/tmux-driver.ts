// Agents in tmux panes, driven by their preset: launched with their own environment, started
// until their input prompt shows (answering known first-run dialogs by rule, and stopping at
// once on a screen nobody knows), prompted through a paste buffer, probed, restarted with
// their conversation, and their usage read from their own logs.
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DevflowError } from '../lib/errors.ts';
import { processAlive, processGroupMembers, processGroupOf } from '../lib/processes.ts';
import { printable } from '../lib/text.ts';
import { requireAgentCli, type RealAgent, type ResolvedAgentCli } from './agent-cli.ts';
import { logLines, sumUsage, type Conversation } from './agent-logs.ts';
import type { LaunchOptions, ProbeResult, SessionDriver, SessionTarget, SessionUsage, StartedSession, TranscriptChunk } from './driver.ts';
import type { PlaybackAgents } from './playback-model/agents.ts';
import type { AgentPreset, KnownDialog, Launch, LaunchContext } from './presets.ts';
import { menuKeys, screenHash, tidyScreen } from './screens.ts';
import { knownSecrets, redactSecrets } from './secrets.ts';
import { killProcessGroup, tmuxSessionName, type TmuxServer } from './tmux.ts';

/** How devflow answers agents' first-run dialogs and starts them; see the README's settings. */
export interface AgentSettings {
  /** Answer "trust this folder" for the run worktree (it was made from the user's own repository). */
  trustWorktree: boolean;
  /** Start agents without their permission prompts: nobody is there to answer them. */
  bypassPermissions: boolean;
}

export const DEFAULT_AGENT_SETTINGS: AgentSettings = { trustWorktree: true, bypassPermissions: true };

export interface TmuxDriverOptions {
  /** How long an agent may take to show its input prompt. */
  readyTimeoutMs?: number;
  /** A screen that is neither ready, busy nor a known dialog, unchanged this long, blocks the agent. */
  blockedAfterMs?: number;
  settings?: AgentSettings;
  /** The worker's environment: the agent's own variables (its key, its config folder) come from it. */
  env?: NodeJS.ProcessEnv;
  /** Finds a real agent's program (tests pin the cached version). */
  findCli?: (agent: RealAgent) => Promise<ResolvedAgentCli>;
  /** Serves sessions that run on devflow's playback model. */
  playback?: PlaybackAgents;
}

/** How long a screen must hold before devflow acts on it. */
const SETTLE_MS = 300;

/**
 * An agent may print without end: devflow reads at most this many rows of a pane's history at
 * once (the screen below them besides), so whatever an agent prints, a capture stays small.
 */
export const CAPTURE_ROWS = 5_000;
/** A transcript chunk keeps at most this many bytes, the newest, behind a marker saying so. */
export const TRANSCRIPT_CHUNK_BYTES = 1024 * 1024;

/** The newest `maxBytes` of a chunk, from a line start, behind a marker that says what was cut. */
export function cutTranscript(chunk: string, maxBytes = TRANSCRIPT_CHUNK_BYTES): string {
  const bytes = Buffer.from(chunk, 'utf8');
  if (bytes.length <= maxBytes) return chunk;
  let from = bytes.length - maxBytes;
  while (from < bytes.length && (bytes[from]! & 0xc0) === 0x80) from += 1; // not inside a character
  let kept = bytes.subarray(from).toString('utf8');
  const line = kept.indexOf('\n');
  if (line >= 0 && line < kept.length - 1) kept = kept.slice(line + 1);
  const dropped = bytes.length - Buffer.byteLength(kept, 'utf8');
  return `[devflow: transcript cut at ${maxBytes} bytes: the ${dropped} bytes before these were not kept]\n${kept}`;
}

interface PaneInfo {
  dead: boolean;
  pid: number;
  activity: number;
}

interface Prepared {
  launch: Launch;
  context: LaunchContext;
  cli: ResolvedAgentCli | undefined;
}

export class TmuxDriver implements SessionDriver {
  constructor(
    private readonly tmux: TmuxServer,
    private readonly preset: AgentPreset,
    private readonly options: TmuxDriverOptions = {},
  ) {}

  private get settings(): AgentSettings {
    return this.options.settings ?? DEFAULT_AGENT_SETTINGS;
  }

  /** Exact session and window names: tmux would otherwise fall back to the current window. */
  private target(t: SessionTarget): string {
    return `=${tmuxSessionName(t.runId)}:=${t.roleId}`;
  }

  private attachHint(t: SessionTarget): string {
    return `tmux -S ${this.tmux.socket} attach -t ${tmuxSessionName(t.runId)}`;
  }

  private async pane(t: SessionTarget): Promise<PaneInfo | undefined> {
    const out = await this.tmux.tryRun(['display-message', '-p', '-t', this.target(t), '#{window_name} #{pane_dead} #{pane_pid} #{window_activity}']);
    const [window, dead, pid, activity] = (out ?? '').trim().split(' ');
    if (window !== t.roleId) return undefined; // not this role's window
    return { dead: dead === '1', pid: Number(pid), activity: Number(activity) * 1000 };
  }

  /** What a pane shows, as devflow may keep it: any secret it knows (or a piece of one) blanked. */
  private redact(text: string): string {
    return redactSecrets(text, knownSecrets(this.options.env ?? process.env));
  }

  private async screen(t: SessionTarget): Promise<string> {
    return this.redact((await this.tmux.tryRun(['capture-pane', '-p', '-J', '-t', this.target(t)])) ?? '');
  }

  /** The agent's config folder, where its conversations are kept. */
  private configDir(t: SessionTarget): string | undefined {
    if (!this.preset.configDir || !this.preset.cli) return undefined;
    if (t.playback) return this.options.playback?.configDir(this.preset.cli);
    const env = this.options.env ?? process.env;
    return env[this.preset.configDir.variable] || path.join(env.HOME || os.homedir(), this.preset.configDir.defaultUnderHome);
  }

  private async conversations(t: SessionTarget): Promise<Conversation[]> {
    if (!this.preset.conversations) return [];
    return this.preset.conversations.find({
      configDir: this.configDir(t),
      // Claude Code takes the id devflow gives it: the session's own id.
      agentSessionId: t.agentSessionId ?? t.sessionId,
      runId: t.runId,
      roleId: t.roleId,
      since: t.createdAt ?? new Date(0),
    });
  }

  /** The agent's program; one that went missing is for a person to install (agent_not_installed). */
  private async findCli(agent: RealAgent): Promise<ResolvedAgentCli> {
    return (this.options.findCli ?? ((a: RealAgent) => requireAgentCli(a, { env: this.options.env })))(agent);
  }

  private async prepare(t: SessionTarget): Promise<Prepared> {
    const agent = this.preset.cli;
    const cli = agent ? await this.findCli(agent) : undefined;
    let playback: LaunchContext['playback'];
    if (t.playback && agent) {
      if (!this.options.playback) {
        throw new DevflowError({ code: 'playback_unavailable', message: 'this worker does not serve the playback model' });
      }
      playback = await this.options.playback.endpoint(agent);
    }
    const resume = (await this.conversations(t)).at(-1)?.id ?? null;
    const context: LaunchContext = {
      binary: cli?.path,
      newConversationId: t.sessionId,
      resumeConversationId: resume,
      bypassPermissions: this.settings.bypassPermissions,
      ...(playback ? { playback } : {}),
    };
    return { launch: this.preset.launch(context), context, cli };
  }

  /** `-e NAME=value` for the agent: its own variables from the worker, then the preset's. */
  private envFlags(launch: Launch): string[] {
    const env = this.options.env ?? process.env;
    const vars: Record<string, string> = {};
    for (const name of this.preset.passEnv) if (env[name] !== undefined) vars[name] = env[name]!;
    Object.assign(vars, launch.env);
    return Object.entries(vars).flatMap(([name, value]) => ['-e', `${name}=${value}`]);
  }

  async start(t: SessionTarget, options: LaunchOptions = {}): Promise<StartedSession> {
    const prepared = await this.prepare(t);
    const session = tmuxSessionName(t.runId);
    const command = [...this.envFlags(prepared.launch), '--', ...prepared.launch.command];
    await this.tmux.ensureStarted();
    if ((await this.tmux.sessionNames()).includes(session)) {
      const existing = await this.pane(t);
      if (existing) {
        // The role's window stays (killing a session's last window would end the session).
        await killProcessGroup(existing.pid);
        await this.tmux.run(['respawn-pane', '-k', '-t', this.target(t), '-c', t.cwd, ...command]);
      } else {
        await this.tmux.run(['new-window', '-d', '-t', `=${session}:`, '-n', t.roleId, '-c', t.cwd, ...command]);
      }
    } else {
      await this.tmux.run(['new-session', '-d', '-s', session, '-n', t.roleId, '-c', t.cwd, '-x', '220', '-y', '50', ...command]);
    }
    return this.waitReady(t, prepared, options);
  }

  async rebootstrap(t: SessionTarget, options: LaunchOptions = {}): Promise<StartedSession> {
    const pane = await this.pane(t);
    if (!pane) return this.start(t, options);
    await killProcessGroup(pane.pid);
    const prepared = await this.prepare(t);
    await this.tmux.run(['respawn-pane', '-k', '-t', this.target(t), '-c', t.cwd, ...this.envFlags(prepared.launch), '--', ...prepared.launch.command]);
    return this.waitReady(t, prepared, options);
  }

  /**
   * Watches the screen until the input prompt shows. Known dialogs are answered by their rule
   * (and reported first); a dialog whose rule says ask, or a screen nobody knows that stays put,
   * stops at once for a person; an agent that exits or never gets ready is a failed start.
   */
  private async waitReady(t: SessionTarget, prepared: Prepared, options: LaunchOptions): Promise<StartedSession> {
    const name = this.preset.name;
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 60_000);
    const blockedAfterMs = this.options.blockedAfterMs ?? 8_000;
    let screen = '';
    let steady = { hash: '', since: Date.now() };
    while (Date.now() < deadline) {
      const pane = await this.pane(t);
      screen = await this.screen(t);
      if (!pane || pane.dead || !processAlive(pane.pid)) {
        throw this.startError('agent_exited', t, `the ${name} agent for ${t.roleId} exited while starting`, screen);
      }
      // An agent may draw its prompt for a moment before a dialog covers it, or a dialog before
      // it reads keys: what it shows must hold for a moment before devflow acts on it.
      const dialog = this.preset.dialogs.find((d) => d.screen.test(screen));
      if (dialog || this.preset.isReady(screen)) {
        await sleep(SETTLE_MS);
        const settled = await this.screen(t);
        if (dialog && dialog.screen.test(settled)) {
          await this.answer(t, dialog, settled, options);
          steady = { hash: '', since: Date.now() };
          continue;
        }
        if (!dialog && this.preset.isReady(settled) && !this.preset.dialogs.some((d) => d.screen.test(settled))) {
          return {
            tmuxSession: tmuxSessionName(t.runId),
            tmuxWindow: t.roleId,
            panePid: pane.pid,
            processGroup: processGroupOf(pane.pid) ?? pane.pid,
            agentSessionId: prepared.context.resumeConversationId ?? (name === 'claude-code' ? prepared.context.newConversationId : null),
            resumed: prepared.context.resumeConversationId !== null,
            ...(prepared.cli ? { agent: { binary: prepared.cli.path, version: prepared.cli.version } } : {}),
          };
        }
        continue;
      }
      const hash = screenHash(screen);
      if (hash !== steady.hash) steady = { hash, since: Date.now() };
      else if (screen.trim() && !this.preset.isBusy(screen) && Date.now() - steady.since >= blockedAfterMs) {
        throw this.startError('agent_blocked', t, `the ${name} agent for ${t.roleId} is stopped at a screen devflow does not know`, screen,
          `look at it and answer it in the agent's pane (${this.attachHint(t)}), or fix what it complains about; then approve this gate to start the agent again`);
      }
      await sleep(100);
    }
    throw this.startError('agent_not_ready', t, `the ${name} agent for ${t.roleId} did not show its input prompt within ${Math.round((this.options.readyTimeoutMs ?? 60_000) / 1000)} s`, screen);
  }

  private async answer(t: SessionTarget, dialog: KnownDialog, screen: string, options: LaunchOptions): Promise<void> {
    const allowed = dialog.rule === 'trust_worktree' ? this.settings.trustWorktree : true;
    const keys = menuKeys(screen, dialog.accept);
    if (!allowed || !keys) {
      throw this.startError('agent_dialog_needs_person', t, `${dialog.describe}; ${allowed ? 'its accepting option is not on screen' : 'the rule for it is to ask a person (DEVFLOW_AGENT_TRUST_WORKTREE=ask)'}`, screen,
        `answer it in the agent's pane (${this.attachHint(t)}), then approve this gate`);
    }
    await options.onDialog?.({ dialog: dialog.id, rule: dialog.rule, answer: 'accept', describe: dialog.describe, screen: tidyScreen(screen) });
    await this.tmux.run(['send-keys', '-t', this.target(t), ...keys]);
    // Wait for the dialog to go, so it is not answered twice.
    const gone = Date.now() + 3_000;
    while (Date.now() < gone && dialog.screen.test(await this.screen(t))) await sleep(50);
  }

  private startError(code: 'agent_exited' | 'agent_not_ready' | 'agent_blocked' | 'agent_dialog_needs_person', t: SessionTarget, message: string, screen: string, recoveryHint?: string): DevflowError {
    const shown = tidyScreen(screen);
    return new DevflowError({
      code,
      message,
      recoveryHint: recoveryHint ?? `look at the agent's pane (${this.attachHint(t)}) and its logs`,
      details: { sessionId: t.sessionId, roleId: t.roleId, agent: this.preset.name, screen: shown },
    });
  }

  async resume(t: SessionTarget): Promise<boolean> {
    const pane = await this.pane(t);
    return pane !== undefined && !pane.dead && processAlive(pane.pid);
  }

  async sendPrompt(t: SessionTarget, text: string): Promise<void> {
    const pane = await this.pane(t);
    if (!pane || pane.dead) {
      throw new DevflowError({ code: 'prompt_send_failed', message: `no live agent pane for ${t.roleId} in ${tmuxSessionName(t.runId)}` });
    }
    const buffer = `devflow-${t.sessionId}`;
    const real = this.preset.cli !== undefined;
    try {
      // Quoted artifacts and errors reach prompts: an ESC in them could end the bracketed paste
      // early and type the rest as keys. The agent reads every control character as `\xNN`.
      const input = printable(text);
      const load = ['load-buffer', '-b', buffer, '-'];
      // -p: bracketed paste when the agent asked for it; -r: newlines stay newlines.
      const paste = ['paste-buffer', '-d', '-p', '-r', '-b', buffer, '-t', this.target(t)];
      const submit = ['send-keys', '-t', this.target(t), ...this.preset.submitKeys];
      if (!real) {
        // The scripted agent reads its input in order: load, paste and submit in one tmux call.
        await this.tmux.run([...load, ';', ...paste, ';', ...submit], input);
        return;
      }
      const before = await this.screen(t);
      await this.tmux.run(load, input);
      await this.tmux.run(paste);
      // A real agent reads a paste in its own time: let it show before submitting.
      const pasted = await this.screenChange(t, before, 2_000);
      await this.tmux.run(submit);
      // A submit key that arrived while the paste was still being read is lost: press it again.
      if ((await this.screenChange(t, pasted, 3_000)) === pasted) await this.tmux.run(submit);
    } catch (error) {
      throw new DevflowError({ code: 'prompt_send_failed', message: (error as Error).message });
    }
  }

  async received(t: SessionTarget, header: string): Promise<boolean> {
    const history = await this.tmux.tryRun(['capture-pane', '-p', '-J', '-S', `-${CAPTURE_ROWS}`, '-E', '-', '-t', this.target(t)]);
    if (history?.includes(header)) return true;
    // A real agent folds a long paste into `[Pasted text …]` on screen; its own log has the text.
    if (!this.preset.conversations) return false;
    for (const conversation of await this.conversations(t)) {
      for await (const line of logLines(conversation.file)) if (line.includes(header)) return true;
    }
    return false;
  }

  /** The screen once it differs from `from` (or `from` itself after `timeoutMs`). */
  private async screenChange(t: SessionTarget, from: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = await this.screen(t);
      if (now !== from || Date.now() >= deadline) return now;
      await sleep(50);
    }
  }

  async probe(t: SessionTarget): Promise<ProbeResult> {
    const pane = await this.pane(t);
    if (!pane || pane.dead || !processAlive(pane.pid)) return { alive: false, outputAgeMs: undefined, ...(pane ? { evidence: { pid: pane.pid, processGroupMembers: processGroupMembers(pane.pid).length } } : {}) };
    const screen = await this.screen(t);
    const evidence = {
      pid: pane.pid,
      processGroupMembers: processGroupMembers(pane.pid).length,
      screenHash: screenHash(screen),
      ...(this.preset.cli ? { busyMarker: this.preset.isBusy(screen) } : {}),
    };
    if (this.preset.cli && !this.preset.isReady(screen) && !evidence.busyMarker) {
      return { alive: true, outputAgeMs: undefined, evidence, hint: `the ${this.preset.name} agent is stopped at a screen that is neither its prompt nor work (${this.attachHint(t)}):\n${tidyScreen(screen)}` };
    }
    return { alive: true, outputAgeMs: Math.max(0, Date.now() - pane.activity), evidence };
  }

  /**
   * What the pane printed since row `afterSeq`: a chunk's seq is the pane's row count up to its
   * end. At most the last CAPTURE_ROWS rows of history are read, and a chunk keeps at most
   * TRANSCRIPT_CHUNK_BYTES; what is left out is said in the chunk, never silently dropped.
   */
  async captureTranscript(t: SessionTarget, afterSeq: number): Promise<TranscriptChunk[]> {
    const sizes = await this.tmux.tryRun(['display-message', '-p', '-t', this.target(t), '#{history_size} #{history_limit}']);
    const captured = await this.tmux.tryRun(['capture-pane', '-p', '-S', `-${CAPTURE_ROWS}`, '-E', '-', '-t', this.target(t)]);
    if (sizes === undefined || captured === undefined) return [];
    const text = this.redact(captured);
    const [history, limit] = sizes.trim().split(' ').map(Number) as [number, number];
    const rows = text.replace(/\n+$/, '').split('\n');
    const first = Math.max(0, history - CAPTURE_ROWS); // the row the capture starts at
    const end = first + rows.length;
    const notes: string[] = [];
    let fresh: string[];
    let seq: number;
    if (history >= limit * 0.9) {
      // tmux drops the oldest rows of a full history, so rows no longer count from the pane's
      // start: where the last capture ended is unknown, and the whole window is taken again.
      fresh = rows;
      seq = Math.max(end, afterSeq + 1);
      notes.push(`[devflow: the pane's history is full (${limit} rows); these are its last ${rows.length} rows, which may repeat earlier ones]`);
    } else {
      if (end <= afterSeq) return [];
      fresh = rows.slice(Math.max(0, afterSeq - first));
      seq = end;
      if (first > afterSeq) notes.push(`[devflow: ${first - afterSeq} rows of output not kept: a capture reads at most the last ${CAPTURE_ROWS} rows]`);
    }
    return [{ seq, chunk: [...notes, cutTranscript(`${fresh.join('\n')}\n`)].join('\n') }];
  }

  async usage(t: SessionTarget): Promise<SessionUsage | undefined> {
    if (!this.preset.conversations) return undefined;
    const conversations = await this.conversations(t);
    const phases = sumUsage(await Promise.all(conversations.map((c) => this.preset.conversations!.usage(c.file))));
    return { agentSessionId: conversations.at(-1)?.id ?? t.agentSessionId ?? null, phases };
  }

  async dispose(t: SessionTarget): Promise<void> {
    const pane = await this.pane(t);
    if (!pane) return;
    await killProcessGroup(pane.pid);
    await this.tmux.tryRun(['kill-window', '-t', this.target(t)]);
  }
}
