// The real agent CLIs devflow drives, pinned, and where their programs are found:
//   1. DEVFLOW_CLAUDE_CODE_PATH / DEVFLOW_CODEX_PATH
//   2. `claude` / `codex` on PATH
//   3. devflow's per-user cache ($XDG_CACHE_HOME/devflow/agents/<package>@<version>)
// `devflow agents install` (and the tests and the demo) install the pinned version into that
// cache with npm, so a project's `npm ci` never downloads the ~760 MB the two CLIs weigh.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { DevflowError } from '../lib/errors.ts';
import { devflowCacheDir, findOnPath, isExecutable, versionOf } from '../lib/executables.ts';

export const AGENT_CLIS = {
  'claude-code': { package: '@anthropic-ai/claude-code', version: '2.1.328', bin: 'claude', pathVariable: 'DEVFLOW_CLAUDE_CODE_PATH' },
  codex: { package: '@openai/codex', version: '0.169.0', bin: 'codex', pathVariable: 'DEVFLOW_CODEX_PATH' },
} as const;

export type RealAgent = keyof typeof AGENT_CLIS;
export const REAL_AGENTS = Object.keys(AGENT_CLIS) as RealAgent[];

export function isRealAgent(name: string): name is RealAgent {
  return Object.hasOwn(AGENT_CLIS, name);
}

export interface ResolvedAgentCli {
  agent: RealAgent;
  path: string;
  source: 'variable' | 'PATH' | 'cache';
  /** What `--version` printed. */
  version: string;
}

export interface AgentCliOptions {
  env?: NodeJS.ProcessEnv;
  /** Tests pin the exact version: they skip PATH and use (or fill) the cache. */
  searchPath?: boolean;
  log?: (line: string) => void;
}

export function agentCacheDir(agent: RealAgent, env: NodeJS.ProcessEnv = process.env): string {
  const cli = AGENT_CLIS[agent];
  return path.join(devflowCacheDir(env), 'agents', `${cli.package.replace('/', '+')}@${cli.version}`);
}

function cachedBinary(agent: RealAgent, env: NodeJS.ProcessEnv): string {
  return path.join(agentCacheDir(agent, env), 'node_modules', '.bin', AGENT_CLIS[agent].bin);
}

/** The agent's program, or undefined when it is not installed anywhere devflow looks. */
export async function findAgentCli(agent: RealAgent, options: AgentCliOptions = {}): Promise<ResolvedAgentCli | undefined> {
  const env = options.env ?? process.env;
  const cli = AGENT_CLIS[agent];
  const explicit = env[cli.pathVariable]?.trim();
  if (explicit) {
    const version = (await isExecutable(explicit)) ? versionOf(explicit, env) : undefined;
    if (version === undefined) {
      throw new DevflowError({
        code: 'agent_not_installed',
        message: `${cli.pathVariable}: ${explicit} is not a working ${agent} program`,
        recoveryHint: `point ${cli.pathVariable} at the ${cli.bin} program, or unset it`,
      });
    }
    return { agent, path: explicit, source: 'variable', version };
  }
  if (options.searchPath ?? true) {
    const onPath = await findOnPath(cli.bin, env);
    const version = onPath ? versionOf(onPath, env) : undefined;
    if (onPath && version !== undefined) return { agent, path: onPath, source: 'PATH', version };
  }
  const cached = cachedBinary(agent, env);
  const version = (await isExecutable(cached)) ? versionOf(cached, env) : undefined;
  return version === undefined ? undefined : { agent, path: cached, source: 'cache', version };
}

export function agentNotInstalled(agent: RealAgent, env: NodeJS.ProcessEnv = process.env): DevflowError {
  const cli = AGENT_CLIS[agent];
  return new DevflowError({
    code: 'agent_not_installed',
    message: `the ${agent} agent is not installed on this host (no ${cli.pathVariable}, no \`${cli.bin}\` on PATH, nothing in ${agentCacheDir(agent, env)})`,
    recoveryHint: `install it with \`npm run devflow -- agents install ${agent}\` (${cli.package}@${cli.version} into devflow's cache), or \`npm install -g ${cli.package}@${cli.version}\``,
  });
}

/** Finds the agent, or fails naming what to install. */
export async function requireAgentCli(agent: RealAgent, options: AgentCliOptions = {}): Promise<ResolvedAgentCli> {
  const found = await findAgentCli(agent, options);
  if (!found) throw agentNotInstalled(agent, options.env);
  return found;
}

/** Finds the agent, installing the pinned version into devflow's cache when it is missing. */
export async function ensureAgentCli(agent: RealAgent, options: AgentCliOptions = {}): Promise<ResolvedAgentCli> {
  return (await findAgentCli(agent, options)) ?? installAgentCli(agent, options);
}

/**
 * `npm install <package>@<version>` into a private folder, renamed into place when it works, so
 * an interrupted install never leaves a half-installed agent in the cache.
 */
export async function installAgentCli(agent: RealAgent, options: AgentCliOptions = {}): Promise<ResolvedAgentCli> {
  const env = options.env ?? process.env;
  const log = options.log ?? (() => undefined);
  const cli = AGENT_CLIS[agent];
  const target = agentCacheDir(agent, env);
  const staging = `${target}.installing-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const started = Date.now();
  log(`installing ${cli.package}@${cli.version} into ${target} (about 400 MB, once per machine)`);
  const ticker = setInterval(() => log(`  still installing ${agent} (${Math.round((Date.now() - started) / 1000)} s)`), 15_000);
  try {
    const output: string[] = [];
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('npm', ['install', '--prefix', staging, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', `${cli.package}@${cli.version}`], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const collect = (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean));
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      child.on('error', reject);
      child.on('close', resolve);
    });
    const binary = path.join(staging, 'node_modules', '.bin', cli.bin);
    if (code !== 0 || versionOf(binary, env) === undefined) {
      throw new DevflowError({
        code: 'agent_install_failed',
        message: `npm install ${cli.package}@${cli.version} failed (exit ${code}):\n${output.slice(-20).join('\n')}`,
        recoveryHint: `install it yourself (npm install -g ${cli.package}@${cli.version}) or set ${cli.pathVariable}`,
      });
    }
    if (existsSync(target)) await rm(target, { recursive: true, force: true });
    await rename(staging, target);
  } finally {
    clearInterval(ticker);
    await rm(staging, { recursive: true, force: true });
  }
  const installed = await findAgentCli(agent, { ...options, searchPath: false });
  if (!installed) throw agentNotInstalled(agent, env);
  log(`installed ${agent} ${installed.version} in ${Math.round((Date.now() - started) / 1000)} s`);
  return installed;
}
