// How devflow drives one agent session. Backends: `fake` (in memory, tests), and the tmux
// backends (`tmux` for real agents, `scripted` for devflow's own scripted agent).
// Activities only talk to this interface, so it is kept narrow.

export interface SessionTarget {
  sessionId: string;
  runId: string;
  roleId: string;
  backend: string;
  cwd: string;
}

export interface StartedSession {
  tmuxSession?: string;
  tmuxWindow?: string;
  panePid?: number;
  /** The agent's process group (tmux makes the pane process a session leader: same as its pid). */
  processGroup?: number;
}

export type ProbeClassification = 'ARTIFACT_TIMEOUT' | 'HUNG' | 'CRASHED' | 'tmux_liveness_only';

export interface ProbeResult {
  alive: boolean;
  /** Milliseconds since the session last printed anything; undefined when unknown. */
  outputAgeMs: number | undefined;
  /** Set when the probe cannot tell a hang from slow work; becomes the human gate's hint. */
  hint?: string;
}

export interface TranscriptChunk {
  seq: number;
  chunk: string;
}

export interface SessionDriver {
  /** Starts the agent process; resolves when it is ready for a prompt. */
  start(target: SessionTarget): Promise<StartedSession>;
  /** True if the session's process is still there and usable (after a worker restart). */
  resume(target: SessionTarget): Promise<boolean>;
  /** Delivers a prompt verbatim; throws a recoverable DevflowError when delivery fails. */
  sendPrompt(target: SessionTarget, text: string): Promise<void>;
  probe(target: SessionTarget): Promise<ProbeResult>;
  /** Replaces a timed-out, hung or crashed agent process with a fresh one. */
  rebootstrap(target: SessionTarget): Promise<StartedSession>;
  /** Output captured since `afterSeq`. */
  captureTranscript(target: SessionTarget, afterSeq: number): Promise<TranscriptChunk[]>;
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
