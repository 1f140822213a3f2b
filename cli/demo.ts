// `npm run demo`: from nothing to a completed run through the public API, with the scripted agent
// in real tmux or (`--agent claude-code|codex`) a real agent CLI that talks to devflow's local
// playback model, offline and with no key. The stack is brought up if needed, the agent installed
// into devflow's cache if missing, a throwaway git repository made, the spec gate approved, and
// the report path, usage and Web UI link printed. Exit 0 only if the run completed.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../lib/env.ts';
import { DEFAULT_TEMPLATE } from '../schemas/api.ts';
import { ensureAgentCli, isRealAgent, REAL_AGENTS } from '../sessions/agent-cli.ts';
import { DevflowApi, EXIT } from './api-client.ts';
import { decide, watch } from './commands.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function apiReady(api: DevflowApi): Promise<boolean> {
  try {
    return (await fetch(`${api.baseUrl}/readyz`)).ok;
  } catch {
    return false;
  }
}

/** Starts `devflow up` in the background and shows its output until the API is ready. */
async function bringUp(api: DevflowApi, logDir: string, say: (line: string) => void): Promise<ChildProcess> {
  mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, 'up.log');
  writeFileSync(logFile, '');
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'devflow.ts'), 'up'], { cwd: ROOT, detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  let shown = 0;
  const deadline = Date.now() + 20 * 60_000; // a cold machine builds the Temporal CLI first
  while (Date.now() < deadline) {
    const size = statSync(logFile).size;
    if (size > shown) {
      readFileSync(logFile, 'utf8').slice(shown).split('\n').filter(Boolean).forEach((l) => say(`  [up] ${l}`));
      shown = size;
    }
    if (child.exitCode !== null) throw new Error(`devflow up exited (${child.exitCode}); see ${logFile}`);
    if (await apiReady(api)) return child;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`devflow up did not become ready; see ${logFile}`);
}

function throwawayRepo(root: string): string {
  const repo = path.join(root, 'greeting');
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { stdio: 'ignore' });
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  writeFileSync(path.join(repo, 'README.md'), '# greeting\n');
  git('add', '.');
  git('-c', 'user.email=demo@devflow.invalid', '-c', 'user.name=devflow demo', 'commit', '-q', '-m', 'initial commit');
  return repo;
}

/** The template's every role, given to one agent. */
async function everyRole(api: DevflowApi, agent: string): Promise<Record<string, string>> {
  const { templates } = await api.get<{ templates: { id: string; definition: { roles: Record<string, unknown> } }[] }>('/v1/templates');
  const roles = Object.keys(templates.find((t) => t.id === DEFAULT_TEMPLATE)?.definition.roles ?? {});
  return Object.fromEntries(roles.map((role) => [role, agent]));
}

export async function runDemo(options: { stopAfter: boolean; agent?: string; say: (line: string) => void }): Promise<number> {
  const { say } = options;
  const agent = options.agent ?? 'scripted';
  if (agent !== 'scripted' && !isRealAgent(agent)) {
    say(`--agent: choose scripted, ${REAL_AGENTS.join(' or ')} (got ${agent})`);
    return EXIT.badInput;
  }
  const config = loadConfig();
  const api = new DevflowApi();
  if (isRealAgent(agent)) {
    const cli = await ensureAgentCli(agent, { log: say });
    say(`${agent} ${cli.version} from ${cli.path}; it will talk to devflow's playback model (offline, no key)`);
  }
  let stack: ChildProcess | undefined;
  if (await apiReady(api)) {
    say(`using the devflow API at ${api.baseUrl}`);
  } else {
    say('devflow is not running: starting it (devflow up) in the background');
    stack = await bringUp(api, config.logDir, say);
  }
  try {
    const repo = throwawayRepo(await mkdtemp(path.join(os.tmpdir(), 'devflow-demo-')));
    const requirementsMd = '# Greeting\n\nAdd a `hello.sh` script that prints "hello, world".\n';
    const choice = isRealAgent(agent) ? { agents: await everyRole(api, agent), playback: true } : { backend: 'scripted' };
    const { runId } = await api.post<{ runId: string }>('/v1/runs', { requirementsMd, repoPath: repo, baseBranch: 'main', ...choice });
    say(`run ${runId} started on ${repo}@main with ${isRealAgent(agent) ? `${agent} on the playback model` : 'the scripted agent'}`);
    say(`  watch the agents: tmux -S ${config.tmuxSocket} attach -t devflow-${runId.slice(0, 8)}`);

    const cursor = { seq: 0 };
    let code = await watch(api, runId, say, { cursor });
    if (code === EXIT.atGate) {
      await decide(api, runId, 'approve', { gate: 'spec_approved', comment: 'approved by the demo' }, say);
      code = await watch(api, runId, say, { untilEnd: true, cursor });
    }
    const detail = await api.get<{ run: { state: string }; finalReportPath: string | null; usage?: { total: { inputTokens: number; outputTokens: number } } }>(`/v1/runs/${runId}`);
    say('');
    say(`run ${runId}: ${detail.run.state}`);
    say(`report:  ${detail.finalReportPath}`);
    if (detail.usage?.total.inputTokens) say(`usage:   ${detail.usage.total.inputTokens} input and ${detail.usage.total.outputTokens} output tokens, from the agents' own logs`);
    if (config.temporal.address) say(`Web UI:  find it in your Temporal Web UI by DevflowRunId = "${runId}"`);
    else say(`Web UI:  http://127.0.0.1:${config.temporal.uiPort}/namespaces/${config.temporal.namespace}/workflows/devflow-run:${runId}`);
    return detail.run.state === 'completed' && code === EXIT.ok ? EXIT.ok : EXIT.runEnded;
  } finally {
    if (stack && options.stopAfter) {
      say('stopping the stack the demo started');
      process.kill(-stack.pid!, 'SIGINT');
      await new Promise((resolve) => (stack!.exitCode !== null ? resolve(undefined) : stack!.once('exit', resolve)));
    } else if (stack) {
      stack.unref();
      say(`the stack keeps running so you can look around (Web UI above); stop it with: kill -INT ${stack.pid}`);
    }
  }
}
