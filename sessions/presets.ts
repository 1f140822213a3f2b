// How devflow drives each agent in a tmux pane: the command line, the screen that means it is
// ready for a prompt (and the one that means it is busy), the keys that submit a pasted prompt,
// the first-run dialogs it answers by rule, and where the agent keeps its conversations.
// Claude Code and Codex were read off the real CLIs (versions pinned in agent-cli.ts).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { claudeCodeLogs, codexLogs, type ConversationLogs } from './agent-logs.ts';
import type { RealAgent } from './agent-cli.ts';

export const AGENT_NAMES = ['claude-code', 'codex', 'scripted'] as const;
export type AgentName = (typeof AGENT_NAMES)[number];

/** Which setting decides a known dialog (see DEVFLOW_AGENT_TRUST_WORKTREE and friends). */
export type DialogRule = 'trust_worktree' | 'use_api_key' | 'bypass_permissions';

export interface KnownDialog {
  id: string;
  /** Matches the dialog's screen. */
  screen: RegExp;
  /** The option a `yes` rule picks. */
  accept: RegExp;
  rule: DialogRule;
  describe: string;
}

export interface LaunchContext {
  /** The agent's program (real agents); undefined for the scripted agent. */
  binary: string | undefined;
  /** A new conversation's id, when the agent lets devflow choose it (Claude Code). */
  newConversationId: string;
  /** The conversation to continue, if any. */
  resumeConversationId: string | null;
  bypassPermissions: boolean;
  /** Set when the agent talks to devflow's playback model instead of its own. */
  playback?: { url: string; apiKey: string; configDir: string };
}

export interface Launch {
  command: string[];
  env: Record<string, string>;
}

export interface AgentPreset {
  name: AgentName;
  /** The CLI to find (and its version to record); none for the scripted agent. */
  cli?: RealAgent;
  launch(context: LaunchContext): Launch;
  /** The input prompt is shown and nothing is running. */
  isReady(screen: string): boolean;
  isBusy(screen: string): boolean;
  dialogs: readonly KnownDialog[];
  /** tmux key names sent after the prompt was pasted. */
  submitKeys: string[];
  /** Variables of the worker's environment the agent reads (its own key and config). */
  passEnv: readonly string[];
  /** The agent's config folder variable, and its default under $HOME. */
  configDir?: { variable: string; defaultUnderHome: string };
  /** Where it keeps conversations; agents without one start fresh after a restart. */
  conversations?: ConversationLogs;
}

const SCRIPTED_AGENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scripted-agent.ts');
const BUSY_FOOTER = /esc to interrupt/;

/** Claude Code's input box: `❯` and a no-break space on a line between two horizontal rules. */
function claudeInputShown(screen: string): boolean {
  const lines = screen.split('\n');
  const input = lines.findLastIndex((l) => l.startsWith('❯\u00a0'));
  if (input < 1) return false;
  const rule = (l: string | undefined) => l !== undefined && /^─{10,}/.test(l);
  return rule(lines[input - 1]) && lines.slice(input + 1).some(rule);
}

const claudeCode: AgentPreset = {
  name: 'claude-code',
  cli: 'claude-code',
  launch(context) {
    const conversation = context.resumeConversationId ? ['--resume', context.resumeConversationId] : ['--session-id', context.newConversationId];
    const env: Record<string, string> = { DISABLE_AUTOUPDATER: '1' };
    // As root, Claude Code refuses to skip permissions unless it is told it runs in a sandbox.
    if (context.bypassPermissions && process.getuid?.() === 0) env.IS_SANDBOX = '1';
    if (context.playback) {
      Object.assign(env, { ANTHROPIC_BASE_URL: context.playback.url, ANTHROPIC_API_KEY: context.playback.apiKey, CLAUDE_CONFIG_DIR: context.playback.configDir });
    }
    return { command: [context.binary!, ...conversation, ...(context.bypassPermissions ? ['--dangerously-skip-permissions'] : [])], env };
  },
  isReady: (screen) => claudeInputShown(screen) && !BUSY_FOOTER.test(screen),
  isBusy: (screen) => BUSY_FOOTER.test(screen),
  dialogs: [
    {
      id: 'trust_folder',
      screen: /Is this a project you created or one you trust\?/,
      accept: /Yes, I trust this folder/,
      rule: 'trust_worktree',
      describe: 'Claude Code asks whether to trust the run worktree',
    },
    {
      id: 'use_api_key',
      screen: /Detected a custom API key in your environment/,
      accept: /^\s*[❯›]?\s*Yes\s*$/,
      rule: 'use_api_key',
      describe: 'Claude Code asks whether to use the API key in its environment',
    },
    {
      id: 'bypass_permissions',
      screen: /running in Bypass Permissions mode/,
      accept: /Yes, I accept/,
      rule: 'bypass_permissions',
      describe: 'Claude Code asks to confirm running without permission prompts',
    },
  ],
  submitKeys: ['Enter'],
  passEnv: ['CLAUDE_CONFIG_DIR', 'ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'ANTHROPIC_BASE_URL', 'ANTHROPIC_MODEL', 'CLAUDE_CODE_USE_BEDROCK', 'CLAUDE_CODE_USE_VERTEX'],
  configDir: { variable: 'CLAUDE_CONFIG_DIR', defaultUnderHome: '.claude' },
  conversations: claudeCodeLogs,
};

/** Codex's own provider for the playback model, given on the command line (the port varies). */
function codexPlaybackArgs(url: string): string[] {
  return [
    '-c', 'model_provider="devflow_playback"',
    '-c', `model_providers.devflow_playback={ name = "devflow playback", base_url = "${url}/v1", env_key = "DEVFLOW_PLAYBACK_KEY", wire_api = "responses" }`,
  ];
}

const codex: AgentPreset = {
  name: 'codex',
  cli: 'codex',
  launch(context) {
    const env: Record<string, string> = {};
    if (context.playback) Object.assign(env, { CODEX_HOME: context.playback.configDir, DEVFLOW_PLAYBACK_KEY: context.playback.apiKey });
    return {
      command: [
        context.binary!,
        ...(context.resumeConversationId ? ['resume', context.resumeConversationId] : []),
        // Without --no-daemon Codex leaves an app-server daemon that outlives the pane.
        '--no-daemon',
        '--no-alt-screen',
        ...(context.bypassPermissions ? ['--dangerously-bypass-approvals-and-sandbox'] : []),
        '-c', 'check_for_update_on_startup=false',
        ...(context.playback ? codexPlaybackArgs(context.playback.url) : []),
      ],
      env,
    };
  },
  // The composer line stays visible while Codex works, so it is no sign of readiness; and for a
  // moment at start Codex draws a bare `? for shortcuts` before its trust dialog. Ready is the
  // full footer, which comes once the session is set up.
  isReady: (screen) => /for agents · \? for shortcuts/.test(screen) && !BUSY_FOOTER.test(screen),
  isBusy: (screen) => BUSY_FOOTER.test(screen),
  dialogs: [
    {
      id: 'trust_folder',
      screen: /Trust this folder\?|subdirectory of a Git project/,
      accept: /Trust and continue|Yes, continue|Yes, allow/,
      rule: 'trust_worktree',
      describe: 'Codex asks whether to trust the run worktree (for a worktree: its repository)',
    },
  ],
  submitKeys: ['Enter'],
  passEnv: ['CODEX_HOME', 'OPENAI_API_KEY', 'OPENAI_BASE_URL', 'CODEX_API_KEY'],
  configDir: { variable: 'CODEX_HOME', defaultUnderHome: '.codex' },
  conversations: codexLogs,
};

const scripted: AgentPreset = {
  name: 'scripted',
  launch: () => ({ command: [process.execPath, '--import', import.meta.resolve('tsx'), SCRIPTED_AGENT], env: {} }),
  isReady: (screen) => /^devflow scripted agent ready/m.test(screen),
  isBusy: () => false,
  dialogs: [],
  submitKeys: ['Enter'],
  passEnv: [],
};

export const PRESETS: Record<AgentName, AgentPreset> = { 'claude-code': claudeCode, codex, scripted };

export function isAgentName(name: string): name is AgentName {
  return (AGENT_NAMES as readonly string[]).includes(name);
}
