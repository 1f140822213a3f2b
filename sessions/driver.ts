// How devflow drives one agent session. Backends: `fake` (in memory, tests), and the tmux
// backends (`scripted` for devflow's own scripted agent, `claude-code` and `codex` for the real
// agents, `tmux` for the host's configured real agent). Activities only talk to this interface.
import type { PhaseUsage } from './agent-logs.ts';

export interface SessionTarget {
  sessionId: string;
  runId: string;
  roleId: string;
  backend: string;
  cwd: string;
  /** The agent talks to devflow's playback model instead of its own. */
  playback?: boolean;
  /** The agent's own id for its conversation, once known. */
  agentSessionId?: string | null;
  /** When the session was created: conversations older than this are not its own. */
  createdAt?: Date;
}

/** A first-run dialog devflow answered by rule, reported so it is recorded with its screen. */
export interface AnsweredDialog {
  dialog: string;
  rule: string;
  answer: string;
  describe: string;
  screen: string;
}

export interface LaunchOptions {
  /** Called before each dialog is answered; a failure here leaves the dialog unanswered. */
  onDialog?: (answered: AnsweredDialog) => Promise<void>;
}

export interface StartedSession {
  tmuxSession?: string;
  tmuxWindow?: string;
  panePid?: number;
  /** The agent's process group (tmux makes the pane process a session leader: same as its pid). */
  processGroup?: number;
  /** The agent's conversation id, when known at start. */
  agentSessionId?: string | null;
  /** True when the agent continued an earlier conversation. */
  resumed?: boolean;
  /** The agent program and its version, for real agents. */
  agent?: { binary: string; version: string };
}

export type ProbeClassification = 'ARTIFACT_TIMEOUT' | 'HUNG' | 'CRASHED' | 'tmux_liveness_only';

export interface ProbeResult {
  alive: boolean;
  /** Milliseconds since the session last printed anything; undefined when unknown. */
  outputAgeMs: number | undefined;
  /** Set when the probe cannot tell a hang from slow work; becomes the human gate's hint. */
  hint?: string;
  /** What else was seen, recorded with the probe: the pane's pid, its process group's members, the screen's hash, a busy marker on it. */
  evidence?: { pid?: number; processGroupMembers?: number; screenHash?: string; busyMarker?: boolean };
}

export interface TranscriptChunk {
  seq: number;
  chunk: string;
}

export interface SessionUsage {
  /** The agent's conversation id, found in its logs. */
  agentSessionId: string | null;
  phases: PhaseUsage[];
}

export interface SessionDriver {
  /** Starts the agent process; resolves when it is ready for a prompt. */
  start(target: SessionTarget, options?: LaunchOptions): Promise<StartedSession>;
  /** True if the session's process is still there and usable (after a worker restart). */
  resume(target: SessionTarget): Promise<boolean>;
  /** Delivers a prompt verbatim; throws a recoverable DevflowError when delivery fails. */
  sendPrompt(target: SessionTarget, text: string): Promise<void>;
  /** True when the agent already has a prompt with this first line (on its screen or in its own log). */
  received(target: SessionTarget, header: string): Promise<boolean>;
  probe(target: SessionTarget): Promise<ProbeResult>;
  /** Replaces a timed-out, hung or crashed agent process, continuing its conversation if it can. */
  rebootstrap(target: SessionTarget, options?: LaunchOptions): Promise<StartedSession>;
  /** Output captured since `afterSeq`. */
  captureTranscript(target: SessionTarget, afterSeq: number): Promise<TranscriptChunk[]>;
  /** Tokens the agent used, per phase, read from its own logs; undefined when it keeps none. */
  usage?(target: SessionTarget): Promise<SessionUsage | undefined>;
  dispose(target: SessionTarget): Promise<void>;
}

export interface SessionDrivers {
  forBackend(backend: string): SessionDriver;
}

export function classifyProbe(probe: ProbeResult, maxHungMs: number): ProbeClassification {
  if (!probe.alive) return 'CRASHED';
  if (probe.hint) return 'tmux_liveness_only';
  if (probe.outputAgeMs !== undefined && probe.outputAgeMs >= maxHungMs) return 'HUNG';
  return 'ARTIFACT_TIMEOUT';
}
