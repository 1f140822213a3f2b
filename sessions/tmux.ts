// The tmux backends: one tmux server per devflow home (its own socket), a tmux session per run
// (`devflow-<runId8>`), a window per role. Prompts go through a tmux paste buffer fed on stdin,
// so no shell ever sees their text.
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { DevflowError } from '../lib/errors.ts';
import { processAlive, processGroupOf, waitForExit } from '../lib/processes.ts';
import type { ProbeResult, SessionDriver, SessionTarget, StartedSession, TranscriptChunk } from './driver.ts';
import type { AgentPreset } from './presets.ts';

export class TmuxError extends Error {}

/** A tmux server reached through one socket. Arguments are passed as-is, never through a shell. */
export class TmuxServer {
  private started: Promise<unknown> | undefined;

  constructor(readonly socket: string) {}

  /**
   * Starts the server once. Clients that each start a server on a fresh socket race, and the
   * loser's sessions end up on a server the socket no longer reaches; so one start, shared.
   * The server stays up without sessions (exit-empty off) so a run finishing cannot take it
   * down under another run's new session; it keeps long histories for transcripts and a dead
   * agent's pane for probing and capture.
   */
  ensureStarted(): Promise<unknown> {
    this.started ??= this.run([
      'start-server', ';',
      'set-option', '-s', 'exit-empty', 'off', ';',
      'set-option', '-g', 'history-limit', '100000', ';',
      'set-option', '-g', 'remain-on-exit', 'on',
    ]).catch((error) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  run(args: string[], input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile('tmux', ['-S', this.socket, '-f', '/dev/null', ...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) reject(new TmuxError(`tmux ${args[0]} failed: ${stderr.trim() || error.message}`));
        else resolve(stdout);
      });
      if (input !== undefined) child.stdin!.end(input);
      else child.stdin!.end();
    });
  }

  async tryRun(args: string[]): Promise<string | undefined> {
    try {
      return await this.run(args);
    } catch {
      return undefined;
    }
  }

  async sessionNames(): Promise<string[]> {
    const out = await this.tryRun(['list-sessions', '-F', '#{session_name}']);
    return out ? out.split('\n').filter(Boolean) : [];
  }

  /** Pane pids of every window of a tmux session. */
  async panePids(session: string): Promise<number[]> {
    const out = await this.tryRun(['list-panes', '-s', '-t', `=${session}`, '-F', '#{pane_pid}']);
    return out ? out.split('\n').filter(Boolean).map(Number) : [];
  }

  async killSession(session: string): Promise<void> {
    for (const pid of await this.panePids(session)) await killProcessGroup(pid);
    await this.tryRun(['kill-session', '-t', `=${session}`]);
  }

  async killServer(): Promise<void> {
    for (const session of await this.sessionNames()) await this.killSession(session);
    await this.tryRun(['kill-server']);
    this.started = undefined;
  }
}

export function tmuxSessionName(runId: string): string {
  return `devflow-${runId.slice(0, 8)}`;
}

/** The pane's process is a session leader: its pid is its process group. */
export async function killProcessGroup(pid: number, graceMs = 2_000): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      // already gone
    }
  };
  if (!processAlive(pid)) return;
  signal('SIGTERM');
  if (!(await waitForExit(pid, graceMs))) signal('SIGKILL');
}

interface PaneInfo {
  dead: boolean;
  pid: number;
  activity: number;
}

export interface TmuxDriverOptions {
  readyTimeoutMs?: number;
}

export class TmuxDriver implements SessionDriver {
  constructor(
    private readonly tmux: TmuxServer,
    private readonly preset: AgentPreset,
    private readonly options: TmuxDriverOptions = {},
  ) {}

  /** Exact session and window names: tmux would otherwise fall back to the current window. */
  private target(t: SessionTarget): string {
    return `=${tmuxSessionName(t.runId)}:=${t.roleId}`;
  }

  private async pane(t: SessionTarget): Promise<PaneInfo | undefined> {
    const out = await this.tmux.tryRun(['display-message', '-p', '-t', this.target(t), '#{window_name} #{pane_dead} #{pane_pid} #{window_activity}']);
    const [window, dead, pid, activity] = (out ?? '').trim().split(' ');
    if (window !== t.roleId) return undefined; // not this role's window
    return { dead: dead === '1', pid: Number(pid), activity: Number(activity) * 1000 };
  }

  private async waitReady(t: SessionTarget): Promise<StartedSession> {
    const pattern = new RegExp(this.preset.readyPattern, 'm');
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 20_000);
    let screen = '';
    while (Date.now() < deadline) {
      const pane = await this.pane(t);
      screen = (await this.tmux.tryRun(['capture-pane', '-p', '-J', '-t', this.target(t)])) ?? '';
      if (pane && !pane.dead && pattern.test(screen)) {
        return { tmuxSession: tmuxSessionName(t.runId), tmuxWindow: t.roleId, panePid: pane.pid, processGroup: processGroupOf(pane.pid) ?? pane.pid };
      }
      if (pane?.dead) break;
      await sleep(50);
    }
    throw new DevflowError({
      errorClass: 'recoverable',
      code: 'agent_start_failed',
      message: `the ${this.preset.name} agent for ${t.roleId} did not show /${this.preset.readyPattern}/; its screen:\n${screen.trimEnd().slice(-1500)}`,
    });
  }

  async start(t: SessionTarget): Promise<StartedSession> {
    const session = tmuxSessionName(t.runId);
    const command = ['--', ...this.preset.command];
    await this.tmux.ensureStarted();
    if ((await this.tmux.sessionNames()).includes(session)) {
      const existing = await this.pane(t);
      if (existing) {
        await killProcessGroup(existing.pid);
        await this.tmux.tryRun(['kill-window', '-t', this.target(t)]);
      }
      await this.tmux.run(['new-window', '-d', '-t', `=${session}:`, '-n', t.roleId, '-c', t.cwd, ...command]);
    } else {
      await this.tmux.run(['new-session', '-d', '-s', session, '-n', t.roleId, '-c', t.cwd, '-x', '220', '-y', '50', ...command]);
    }
    return this.waitReady(t);
  }

  async resume(t: SessionTarget): Promise<boolean> {
    const pane = await this.pane(t);
    return pane !== undefined && !pane.dead && processAlive(pane.pid);
  }

  async sendPrompt(t: SessionTarget, text: string): Promise<void> {
    const pane = await this.pane(t);
    if (!pane || pane.dead) {
      throw new DevflowError({ errorClass: 'recoverable', code: 'prompt_send_failed', message: `no live agent pane for ${t.roleId} in ${tmuxSessionName(t.runId)}` });
    }
    const buffer = `devflow-${t.sessionId}`;
    try {
      await this.tmux.run(['load-buffer', '-b', buffer, '-'], text);
      // -p: bracketed paste when the agent asked for it; -r: newlines stay newlines.
      await this.tmux.run(['paste-buffer', '-d', '-p', '-r', '-b', buffer, '-t', this.target(t)]);
      await this.tmux.run(['send-keys', '-t', this.target(t), ...this.preset.submitKeys]);
    } catch (error) {
      throw new DevflowError({ errorClass: 'recoverable', code: 'prompt_send_failed', message: (error as Error).message });
    }
  }

  async probe(t: SessionTarget): Promise<ProbeResult> {
    const pane = await this.pane(t);
    if (!pane || pane.dead || !processAlive(pane.pid)) return { alive: false, outputAgeMs: undefined };
    if (this.preset.livenessOnly) {
      return { alive: true, outputAgeMs: undefined, hint: `the ${this.preset.name} agent redraws its screen constantly, so silence cannot be measured; look at the pane (tmux -S ${this.tmux.socket} attach -t ${tmuxSessionName(t.runId)})` };
    }
    return { alive: true, outputAgeMs: Math.max(0, Date.now() - pane.activity) };
  }

  async rebootstrap(t: SessionTarget): Promise<StartedSession> {
    const pane = await this.pane(t);
    if (!pane) return this.start(t);
    await killProcessGroup(pane.pid);
    await this.tmux.run(['respawn-pane', '-k', '-t', this.target(t), '-c', t.cwd, '--', ...this.preset.command]);
    return this.waitReady(t);
  }

  /** The pane's whole history; a chunk's seq is the number of lines captured up to its end. */
  async captureTranscript(t: SessionTarget, afterSeq: number): Promise<TranscriptChunk[]> {
    const text = await this.tmux.tryRun(['capture-pane', '-p', '-J', '-S', '-', '-E', '-', '-t', this.target(t)]);
    if (text === undefined) return [];
    const lines = text.replace(/\n+$/, '').split('\n');
    if (lines.length <= afterSeq) return [];
    return [{ seq: lines.length, chunk: `${lines.slice(afterSeq).join('\n')}\n` }];
  }

  async dispose(t: SessionTarget): Promise<void> {
    const pane = await this.pane(t);
    if (!pane) return;
    await killProcessGroup(pane.pid);
    await this.tmux.tryRun(['kill-window', '-t', this.target(t)]);
  }
}
