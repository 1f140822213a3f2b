// The tmux server agents live in: one per devflow home (its own socket), a tmux session per run
// (`devflow-<runId8>`), a window per role. Arguments go to tmux as-is, never through a shell.
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive, processGroupMembers } from '../lib/processes.ts';
import { agentEnvironment } from './secrets.ts';

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
  async ensureStarted(): Promise<unknown> {
    // A server that died since (killed by hand, say) or was started by someone else comes back
    // with devflow's options, never tmux's defaults (a short history, dead panes gone).
    if (this.started && !(await this.tryRun(['show-options', '-s', 'exit-empty']))?.includes('off')) this.started = undefined;
    this.started ??= this.run([
      'start-server', ';',
      'set-option', '-s', 'exit-empty', 'off', ';',
      'set-option', '-g', 'history-limit', '100000', ';',
      'set-option', '-g', 'remain-on-exit', 'on', ';',
      // Agents that track focus (Claude Code) otherwise print a hint about it in their footer.
      'set-option', '-g', 'focus-events', 'on',
    ]).catch((error) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  /**
   * Runs a tmux command. The server inherits the environment of the client that starts it, and
   * every agent the server's: so no client gets devflow's secrets or an agent's key (each agent
   * gets its own with `-e`). A failure names the command, never its arguments, which carry them.
   */
  run(args: string[], input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile('tmux', ['-S', this.socket, '-f', '/dev/null', ...args], { maxBuffer: 64 * 1024 * 1024, env: agentEnvironment() }, (error, stdout, stderr) => {
        const ended = error && ((error as { signal?: string }).signal ?? `exit code ${String(error.code)}`);
        if (error) reject(new TmuxError(`tmux ${args[0]} failed: ${stderr.trim() || ended}`));
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

/**
 * The pane's process is a session leader: its pid is its process group, which holds everything
 * the agent started (Codex's native binary under its Node wrapper, say). The whole group goes,
 * even when its leader is already gone.
 */
export async function killProcessGroup(pid: number, graceMs = 2_000): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      // already gone
    }
  };
  if (!processAlive(pid) && processGroupMembers(pid).length === 0) return;
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (processGroupMembers(pid).length > 0 && Date.now() < deadline) await sleep(50);
  if (processGroupMembers(pid).length > 0) signal('SIGKILL');
}
