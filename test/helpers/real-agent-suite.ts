// The real agents, end to end: runs started and decided through the HTTP API (on a real port,
// with devflow's own API client), a worker driving the pinned Claude Code or Codex CLI in real
// tmux, and the playback model playing each phase's scenario at the model level, so the agent
// itself writes the artifacts, retries its API errors and shows its own screens.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { buildApi } from '../../api/server.ts';
import { DevflowApi } from '../../cli/api-client.ts';
import { syncRegistries } from '../../db/registries.ts';
import { waitFor } from '../../lib/wait.ts';
import { requireAgentCli, type RealAgent } from '../../sessions/agent-cli.ts';
import type { PlaybackModel, ServedRequest } from '../../sessions/playback-model/server.ts';
import { PRESETS } from '../../sessions/presets.ts';
import { killProcessGroup } from '../../sessions/tmux.ts';
import { TRIAGE_NOTES, triageFolder } from './definitions.ts';
import { makeRepo, useRunHarness } from './run-harness.ts';

interface Tokens {
  inputTokens: number;
  outputTokens: number;
}
interface Detail {
  run: { state: string; finalReportPath: string | null };
  phases: { phaseKey: string; state: string; attempts: number }[];
  sessions: { id: string; roleId: string; backend: string; state: string; agentSessionId: string | null; lastKnownPanePid: number | null; playback: boolean }[];
  approvals: { id: string; gateKey: string; state: string; payload: { kind?: string; reason?: string; hint?: string } }[];
  usage: { total: Tokens; phases: (Tokens & { phaseKey: string })[] };
  finalReportPath: string | null;
}
interface Event {
  seq: number;
  type: string;
  payload: Record<string, unknown>;
}

const ROLES = ['spec_writer', 'implementer', 'reviewer'];
/** Real agents take a few seconds to start and answer: a phase gets 12 s before it counts as late. */
const TIMING = { artifactTimeoutMs: 12_000, stabilityMs: 200, pollMs: 100, maxHungMs: 60_000 };
/** A whole run with real agents takes half a minute here; under a loaded suite, more. */
const RUN_TEST_MS = 240_000;

export function realAgentSuite(agent: RealAgent): void {
  const h = useRunHarness('fake', { realAgents: true, driver: { readyTimeoutMs: 45_000, blockedAfterMs: 6_000 }, deps: { agentStartPauseMs: 500 } });
  let app: FastifyInstance;
  let temporal: Connection;
  let api: DevflowApi;

  beforeAll(async () => {
    temporal = await Connection.connect({ address: inject('temporalAddress') });
    app = await buildApi({
      db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 100, workspaceRoot: h.workspaceRoot,
      configuredAgent: agent, findAgent: (a) => requireAgentCli(a, { searchPath: false }),
    });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    api = new DevflowApi({ baseUrl: address });
  });
  afterAll(async () => {
    await app?.close();
    await temporal?.close();
  });

  const model = async (): Promise<PlaybackModel> => (await h.playback!.running())!;
  const detail = (runId: string) => api.get<Detail>(`/v1/runs/${runId}`);
  const events = async (runId: string) => (await api.get<{ events: Event[] }>(`/v1/runs/${runId}/events`)).events;
  const served = async (runId: string): Promise<ServedRequest[]> => (await model()).requests().filter((r) => r.runId === runId);

  async function start(scenarios: Record<string, string | string[]>, repoPath = makeRepo(h.root), template?: string): Promise<string> {
    const { runId } = await api.post<{ runId: string }>('/v1/runs', {
      ...(template ? { template } : {}),
      requirementsMd: '# Greeting\n\nAdd a script that prints hello.\n',
      repoPath,
      baseBranch: 'main',
      // No agents named: the personas name none, so every role gets the configured agent.
      playback: true,
      scenarios,
      timing: TIMING,
    });
    return runId;
  }

  async function pendingGate(runId: string, gateKey: string, timeoutMs = 90_000): Promise<Detail['approvals'][number]> {
    let gate: Detail['approvals'][number] | undefined;
    await waitFor(`gate ${gateKey} on run ${runId}`, timeoutMs, async () => {
      const d = await detail(runId);
      if (['completed', 'failed', 'aborted'].includes(d.run.state)) throw new Error(`run ended ${d.run.state} before ${gateKey}`);
      gate = d.approvals.find((a) => a.gateKey === gateKey && a.state === 'pending');
      return gate !== undefined;
    }, 250);
    return gate!;
  }

  async function decide(runId: string, gateId: string, action: 'approve' | 'reject' | 'abort') {
    await api.post(`/v1/runs/${runId}/approvals/${gateId}`, { action, clientToken: `${action}-${gateId}`, decidedBy: 'test' });
  }

  async function ended(runId: string, timeoutMs = 120_000): Promise<Detail> {
    let d: Detail | undefined;
    await waitFor(`run ${runId} to end`, timeoutMs, async () => {
      d = await detail(runId);
      return ['completed', 'failed', 'aborted'].includes(d.run.state) && d.finalReportPath !== null;
    }, 250);
    return d!;
  }

  it(`runs ${agent} through every phase to completed: a repair, a late agent kept and reminded in its conversation, its own API retries, and the usage it logged`, async () => {
    const runId = await start({ spec: ['invalid_json', 'ok'], implement: ['timeout', 'ok'], review: agent === 'claude-code' ? 'rate_limited' : 'overloaded' });
    const gate = await pendingGate(runId, 'spec_approved');
    await decide(runId, gate.id, 'approve');
    const done = await ended(runId);
    expect(done.run.state).toBe('completed');
    expect(done.phases.map((p) => [p.phaseKey, p.state, p.attempts])).toEqual([['spec', 'completed', 2], ['implement', 'completed', 2], ['review', 'completed', 1]]);
    expect(done.sessions.map((s) => [s.roleId, s.backend, s.playback])).toEqual(ROLES.map((r) => [r, agent, true]));
    expect(done.sessions.every((s) => s.agentSessionId)).toBe(true);

    const log = await events(runId);
    const types = log.map((e) => e.type);
    // The worktree is new to the agent: it asked whether to trust it, and devflow's rule answered, on record with the screen.
    const trust = log.find((e) => e.type === 'session.dialog_answered' && e.payload.dialog === 'trust_folder');
    expect(trust?.payload).toMatchObject({ rule: 'trust_worktree', answer: 'accept' });
    expect(String(trust?.payload.screen)).toMatch(/trust/i);
    expect(types.indexOf('session.dialog_answered')).toBeLessThan(types.indexOf('session.ready'));

    // spec: invalid JSON, one repair prompt quoting the error, then valid.
    const requests = await served(runId);
    const repair = requests.find((r) => r.promptKind === 'repair' && r.kind === 'turn');
    expect(log.filter((e) => e.type === 'artifact.invalid')).toHaveLength(1);
    expect(repair).toBeDefined();

    // implement: no artifact in time, probed (alive, idle at its prompt: not hung), kept as it is, and the repair prompt sent to it.
    const implement = (e: Event) => e.payload.roleId === 'implementer' || e.payload.phaseKey === 'implement';
    const implementTypes = log.filter(implement).map((e) => e.type);
    expect(implementTypes).toEqual(expect.arrayContaining(['session.probed', 'artifact.timeout', 'session.resuming', 'session.rebootstrapped', 'prompt.repaired', 'artifact.validated']));
    expect(log.find((e) => e.type === 'artifact.timeout' && e.payload.roleId === 'implementer')?.payload).toMatchObject({ classification: 'ARTIFACT_TIMEOUT' });
    const kept = log.find((e) => e.type === 'session.rebootstrapped');
    expect(kept?.payload).toMatchObject({ kept: true });
    const timedOut = requests.find((r) => r.scenario === 'timeout' && r.kind === 'turn')!.promptId!;
    const resumedRepair = requests.find((r) => r.promptKind === 'repair' && r.kind === 'turn' && r.earlierPromptIds.includes(timedOut));
    expect(resumedRepair, 'the repair prompt arrived in the same conversation as the first implement prompt').toBeDefined();

    // review: the model API refused once; the agent retried by itself and the phase needed no repair.
    expect(requests.filter((r) => r.status === 429 || r.status === 529)).toHaveLength(1);

    // Usage: what the agents logged, per phase and in all, equals what the playback model served them.
    const playback = await model();
    expect(done.usage.total).toMatchObject(playback.servedUsage(runId));
    for (const phase of done.usage.phases) {
      const promptIds = new Set(log.filter((e) => e.type === 'prompt.sent' || e.type === 'prompt.repaired').filter((e) => e.payload.phaseKey === phase.phaseKey).map((e) => e.payload.uuid));
      const servedToPhase = requests.filter((r) => r.kind === 'turn' && promptIds.has(r.promptId)).reduce((sum, r) => sum + r.usage.inputTokens, 0);
      expect(phase.inputTokens, `input tokens of ${phase.phaseKey}`).toBe(servedToPhase);
    }
    expect(done.usage.total.inputTokens).toBeGreaterThan(0);
    const report = readFileSync(done.finalReportPath!, 'utf8');
    expect(report).toContain('## Agents and usage');
    expect(report).toContain(`| **run** | | ${done.usage.total.inputTokens} | ${done.usage.total.outputTokens} |`);
  }, RUN_TEST_MS);

  it(`runs a team's own template with ${agent}: a JSON Schema artifact from a definitions folder, a quote, one loop back`, async () => {
    const folder = await triageFolder(h.root);
    const synced = await syncRegistries(h.db, { userRoot: folder.root });
    expect(synced.problems).toEqual([]);
    const runId = await start({ triage: 'ok', check: ['request_changes', 'ok'] }, makeRepo(h.root), folder.id);
    const done = await ended(runId);
    expect(done.run.state).toBe('completed');
    expect(done.phases.map((p) => [p.phaseKey, p.state, p.attempts])).toEqual([['triage', 'completed', 2], ['check', 'completed', 2]]);
    expect(done.sessions.map((s) => [s.roleId, s.backend])).toEqual([['triager', agent], ['checker', agent]]);
    const log = await events(runId);
    expect(log.filter((e) => e.type === 'phase.looped')).toHaveLength(1);
    // The agent wrote what the JSON Schema asks for, and the check's prompt quoted it.
    const triages = log.filter((e) => e.type === 'artifact.validated' && e.payload.phaseKey === 'triage');
    expect(triages).toHaveLength(2);
    const checker = done.sessions.find((s) => s.roleId === 'checker')!;
    const logged = await PRESETS[agent].conversations!.find({ configDir: h.playback!.configDir(agent), agentSessionId: checker.agentSessionId, runId, roleId: 'checker', since: new Date(0) });
    expect(logged.map((c) => readFileSync(c.file, 'utf8')).join('\n')).toContain(`Check the triage notes: ${TRIAGE_NOTES}.`);
    // The triager got the findings back in the same conversation.
    expect((await served(runId)).some((r) => r.kind === 'turn' && r.promptKind === 'revise')).toBe(true);
  }, RUN_TEST_MS);

  it(`recovers ${agent} killed mid-phase: restarted with its conversation, the phase finished`, async () => {
    const runId = await start({ spec: ['hang', 'ok'] });
    // Wait until the agent is busy on the model's answer that never ends, then kill it.
    await waitFor('the spec prompt to reach the model', 60_000, async () => (await served(runId)).some((r) => r.scenario === 'hang' && r.kind === 'turn'), 200);
    const session = (await detail(runId)).sessions[0]!;
    // ...and until the agent has written the prompt to its own log, so there is a conversation to continue.
    await waitFor('the agent to log the prompt', 30_000, async () => {
      const found = await PRESETS[agent].conversations!.find({ configDir: h.playback!.configDir(agent), agentSessionId: session.agentSessionId, runId, roleId: 'spec_writer', since: new Date(0) });
      return found.length > 0 && readFileSync(found[0]!.file, 'utf8').includes('Scenario: hang');
    }, 200);
    await killProcessGroup(session.lastKnownPanePid!, 0);
    const gate = await pendingGate(runId, 'spec_approved');
    const log = await events(runId);
    expect(log.map((e) => e.type)).toEqual(expect.arrayContaining(['session.crashed', 'session.rebootstrapped', 'prompt.repaired', 'artifact.validated']));
    expect(log.find((e) => e.type === 'session.crashed')?.payload).toMatchObject({ classification: 'CRASHED' });
    expect(log.find((e) => e.type === 'session.rebootstrapped')?.payload).toMatchObject({ resumed: true });
    const after = await detail(runId);
    expect(after.sessions[0]!.lastKnownPanePid).not.toBe(session.lastKnownPanePid);
    await decide(runId, gate.id, 'abort');
    expect((await ended(runId)).run.state).toBe('aborted');
  }, RUN_TEST_MS);

  it(`stops at once for a person when ${agent} shows a screen devflow does not know, with the screen as the hint`, async () => {
    const repo = makeRepo(h.root);
    const [file, content, expected] = agent === 'claude-code'
      ? ['.claude/settings.json', '{"permissions": {"allow": "oops"}, "broken": [\n', /Settings Error/]
      : ['.codex/config.toml', 'model = "gpt-5.5"\n', /Meet|Try new model/];
    mkdirSync(path.dirname(path.join(repo, file)), { recursive: true });
    writeFileSync(path.join(repo, file), content);
    execFileSync('git', ['-C', repo, 'add', '.']);
    execFileSync('git', ['-C', repo, 'commit', '-q', '-m', `a ${file} the agent will complain about`]);
    const startedAt = Date.now();
    const runId = await start({}, repo);
    const gate = await pendingGate(runId, 'session_recovery_required');
    expect(Date.now() - startedAt, 'the gate opens in seconds, not after minutes of retries').toBeLessThan(40_000);
    expect(gate.payload.kind).toBe('human');
    expect(gate.payload.hint).toMatch(expected);
    expect(gate.payload.hint).toMatch(/tmux -S .* attach -t devflow-/);
    const d = await detail(runId);
    expect(d.run.state).toBe('paused');
    expect(d.sessions.map((s) => s.state)).toEqual(['FAILED_NEEDS_HUMAN']);
    expect((await events(runId)).filter((e) => e.type === 'session.start_failed')).toEqual([]);
    await decide(runId, gate.id, 'abort');
    expect((await ended(runId)).run.state).toBe('aborted');
  }, RUN_TEST_MS);

  if (agent === 'codex') {
    it('tries a Codex that exits at start a few times, then asks a person with what it printed', async () => {
      const repo = makeRepo(h.root);
      mkdirSync(path.join(repo, '.codex'));
      writeFileSync(path.join(repo, '.codex', 'config.toml'), 'model = [oops\n');
      execFileSync('git', ['-C', repo, 'add', '.']);
      execFileSync('git', ['-C', repo, 'commit', '-q', '-m', 'a project config Codex cannot read']);
      const runId = await start({}, repo);
      const gate = await pendingGate(runId, 'session_recovery_required');
      const failures = (await events(runId)).filter((e) => e.type === 'session.start_failed');
      expect(failures.map((e) => [e.payload.attempt, e.payload.code])).toEqual([[1, 'agent_exited'], [2, 'agent_exited'], [3, 'agent_exited']]);
      expect(gate.payload.reason).toMatch(/agent_start_failed: the codex agent for spec_writer did not start \(3 tries\)/);
      expect(gate.payload.hint).toMatch(/expected `\]`|unclosed array/);
      await decide(runId, gate.id, 'abort');
      expect((await ended(runId)).run.state).toBe('aborted');
    }, RUN_TEST_MS);
  }
}
