// The in-memory `fake` backend, for tests of logic: each session is an object that reacts to
// prompts per its Scenario line, writing real artifact files. It never runs a process.
import { DevflowError } from '../lib/errors.ts';
import { writeScenarioArtifact } from './artifact-writer.ts';
import type { ProbeResult, SessionDriver, SessionTarget, StartedSession, TranscriptChunk } from './driver.ts';
import { parsePromptDirectives, type Scenario } from './scenarios.ts';

interface FakeAgent {
  alive: boolean;
  /** When it stopped printing (hang); undefined while it keeps printing. */
  silentSince: number | undefined;
  pendingRepairScenario: Scenario | undefined;
  transcript: TranscriptChunk[];
  generation: number;
}

export interface FakeDriverOptions {
  writeDelayMs?: number;
  chunkDelayMs?: number;
}

export class FakeSessionDriver implements SessionDriver {
  readonly agents = new Map<string, FakeAgent>();
  /** Every prompt delivered, by session id, in order. */
  readonly prompts = new Map<string, string[]>();
  private readonly writes = new Set<Promise<unknown>>();
  /** Starts that fail, by role: each start takes the next error. */
  private readonly failingStarts = new Map<string, DevflowError[]>();

  constructor(private readonly options: FakeDriverOptions = {}) {}

  private spawn(target: SessionTarget, generation: number): StartedSession {
    // The pane's history survives a restarted agent, as it does in tmux.
    const transcript = this.agents.get(target.sessionId)?.transcript ?? [];
    const agent: FakeAgent = { alive: true, silentSince: undefined, pendingRepairScenario: undefined, transcript, generation };
    this.agents.set(target.sessionId, agent);
    this.say(agent, `fake agent ${target.roleId} ready (generation ${generation})`);
    return {};
  }

  private say(agent: FakeAgent, line: string): void {
    agent.transcript.push({ seq: agent.transcript.length + 1, chunk: `${line}\n` });
  }

  async start(target: SessionTarget): Promise<StartedSession> {
    const failure = this.failingStarts.get(target.roleId)?.shift();
    if (failure) throw failure;
    return this.spawn(target, 1);
  }

  /** The next starts of this role's agent fail with these errors, one each. */
  failNextStarts(roleId: string, ...errors: DevflowError[]): void {
    this.failingStarts.set(roleId, [...(this.failingStarts.get(roleId) ?? []), ...errors]);
  }

  async resume(target: SessionTarget): Promise<boolean> {
    return this.agents.get(target.sessionId)?.alive ?? false;
  }

  async sendPrompt(target: SessionTarget, text: string): Promise<void> {
    const agent = this.agents.get(target.sessionId);
    if (!agent?.alive) {
      throw new DevflowError({ code: 'session_not_running', message: `session ${target.sessionId} has no live agent` });
    }
    const directives = parsePromptDirectives(text);
    // A repair follows the previous prompt's Repair-Scenario; an agent restarted since then has
    // forgotten it and reads the repair prompt's own Scenario line, which says the same.
    const scenario = (directives.kind === 'repair' ? agent.pendingRepairScenario : undefined) ?? directives.scenario ?? 'ok';
    if (scenario === 'send_fail') {
      throw new DevflowError({ code: 'prompt_send_failed', message: 'the fake agent refused the prompt (scenario send_fail)' });
    }
    this.prompts.set(target.sessionId, [...(this.prompts.get(target.sessionId) ?? []), text]);
    agent.pendingRepairScenario = directives.repairScenario;
    this.say(agent, `received ${directives.kind} prompt ${directives.dedupKey ?? ''}; scenario ${scenario}`);

    if (scenario === 'crash') {
      agent.alive = false;
      return;
    }
    if (scenario === 'hang') {
      agent.silentSince = Date.now();
      return;
    }
    const { artifactPath, schemaId } = directives;
    if (!artifactPath || !schemaId) return;
    const write = (async () => {
      await new Promise((resolve) => setTimeout(resolve, this.options.writeDelayMs ?? 20));
      if (agent.alive && this.agents.get(target.sessionId) === agent) {
        await writeScenarioArtifact(scenario, artifactPath, schemaId, { chunkDelayMs: this.options.chunkDelayMs, jsonSchema: directives.jsonSchema });
      }
    })();
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
  }

  async received(target: SessionTarget, header: string): Promise<boolean> {
    return (this.prompts.get(target.sessionId) ?? []).some((p) => p.split('\n')[0] === header);
  }

  async probe(target: SessionTarget): Promise<ProbeResult> {
    const agent = this.agents.get(target.sessionId);
    if (!agent?.alive) return { alive: false, outputAgeMs: undefined };
    return { alive: true, outputAgeMs: agent.silentSince === undefined ? 0 : Date.now() - agent.silentSince };
  }

  async rebootstrap(target: SessionTarget): Promise<StartedSession> {
    const previous = this.agents.get(target.sessionId);
    return this.spawn(target, (previous?.generation ?? 0) + 1);
  }

  async captureTranscript(target: SessionTarget, afterSeq: number): Promise<TranscriptChunk[]> {
    return (this.agents.get(target.sessionId)?.transcript ?? []).filter((c) => c.seq > afterSeq);
  }

  async dispose(target: SessionTarget): Promise<void> {
    const agent = this.agents.get(target.sessionId);
    if (agent) agent.alive = false;
  }

  /** Waits for artifact writes still in flight (tests call this before cleaning up). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.writes]);
  }
}
