// What devflow reads off the real agents' screens, checked against screens captured from the
// pinned CLIs in tmux (Claude Code 2.1.328, Codex 0.169.0): readiness, busy, known dialogs and
// the keys that answer them.
import { describe, expect, it } from 'vitest';
import { PRESETS } from '../sessions/presets.ts';
import { menuKeys, screenHash, tidyScreen } from '../sessions/screens.ts';

const RULE = '─'.repeat(80);
const NBSP = '\u00a0';

const claude = {
  trust: [
    RULE,
    ' Accessing workspace:',
    ' /tmp/workspaces/1b2c/main',
    " Quick safety check: Is this a project you created or one you trust? (Like your own code, a well-known open source project, or work from your team). If not, take a moment to review what's in this",
    ' folder first.',
    " Claude Code'll be able to read, edit, and execute files here.",
    ' Security guide',
    ' ❯ No, exit',
    '   Yes, I trust this folder',
    ' Enter to confirm · Esc to cancel',
  ].join('\n'),
  apiKey: [RULE, '  Detected a custom API key in your environment', '  ANTHROPIC_API_KEY: sk-ant-...0123456789abcdefghij', '  Do you want to use this API key?', '    Yes', '  ❯ No (recommended)', '  Enter to confirm · Esc to cancel'].join('\n'),
  bypass: [
    RULE,
    '  WARNING: Claude Code running in Bypass Permissions mode',
    '  In Bypass Permissions mode, Claude Code will not ask for your approval before running potentially dangerous commands.',
    '  ❯ No, exit',
    '    Yes, I accept',
    '  Enter to confirm · Esc to cancel',
  ].join('\n'),
  settingsError: [RULE, '  Settings Error', '  /tmp/repo/.claude/settings.json', '  └ Invalid or malformed JSON (line 2, column 1)', '  ❯ 1. Fix with Claude', '    2. Exit and fix manually', '    3. Continue without these settings'].join('\n'),
  ready: [' ▐▛███▛█   Claude Code v2.1.328', '❯ devflow prompt 7d0c…', '  Scenario: ok', '● Done: wrote /tmp/x/spec.json.', '✻ Baked for 0s · done 10:47 AM', RULE, `❯${NBSP}`, RULE, '  ⏵⏵ bypass permissions on (shift+tab to cycle)'].join('\n'),
  busy: ['❯ devflow prompt 7d0c…', '✢ Hashing… (2s · ↓ 6 tokens)', RULE, `❯${NBSP}`, RULE, '  ⏵⏵ bypass permissions on (shift+tab to cycle) · esc to interrupt'].join('\n'),
};

const codex = {
  trust: [
    '  Folder access',
    '  /tmp/workspaces/1b2c/main',
    '  Note: You’re in a subdirectory of a Git project. Trusting will apply to the repository root:',
    '  /tmp/repo',
    '  Trust this folder? Codex can read, edit, and run files here, subject to your permission settings.',
    '› 1. Trust and continue',
    '  2. Back to Agent Command Center',
    '  enter continue · esc back',
  ].join('\n'),
  announcement: ['  Meet GPT-6 Sol', '  Our latest Sol is more intelligent and more efficient so your usage limits go further.', '› 1. Try new model', '  2. Use existing model', '  enter/esc confirm · ^c quit'].join('\n'),
  // For a moment at start, before the trust dialog covers it.
  bare: ['  >_ OpenAI Codex (v0.169.0)', '     /tmp/wt', '› Ask Codex to do anything', '  ? for shortcuts'].join('\n'),
  ready: ['  >_ OpenAI Codex (v0.169.0)', '› Ask Codex to do anything', '  devflow-playback default · /tmp/wt', '  ← for agents · ? for shortcuts                     ⚠ 1 warning · f2 to view'].join('\n'),
  busy: ['› Ask Codex to do anything', '◦ Working (1s • esc to interrupt)', '  ← for agents · ? for shortcuts'].join('\n'),
};

describe('Claude Code screens', () => {
  const preset = PRESETS['claude-code'];
  it('is ready at its empty input box between two rules, and busy while it works', () => {
    expect(preset.isReady(claude.ready)).toBe(true);
    expect(preset.isBusy(claude.ready)).toBe(false);
    expect(preset.isReady(claude.busy)).toBe(false);
    expect(preset.isBusy(claude.busy)).toBe(true);
    // A prompt in the history starts with `❯` and a plain space: not the input box.
    expect(preset.isReady(claude.ready.replace(`❯${NBSP}`, '  '))).toBe(false);
    for (const dialog of [claude.trust, claude.apiKey, claude.bypass, claude.settingsError]) expect(preset.isReady(dialog)).toBe(false);
  });

  it('knows its first-run dialogs, and answers each with the keys that reach the accepting option', () => {
    const known = (screen: string) => preset.dialogs.find((d) => d.screen.test(screen));
    expect(known(claude.trust)).toMatchObject({ id: 'trust_folder', rule: 'trust_worktree' });
    expect(known(claude.apiKey)).toMatchObject({ id: 'use_api_key', rule: 'use_api_key' });
    expect(known(claude.bypass)).toMatchObject({ id: 'bypass_permissions', rule: 'bypass_permissions' });
    expect(known(claude.settingsError)).toBeUndefined();
    expect(menuKeys(claude.trust, known(claude.trust)!.accept)).toEqual(['Down', 'Enter']);
    expect(menuKeys(claude.apiKey, known(claude.apiKey)!.accept)).toEqual(['Up', 'Enter']);
    expect(menuKeys(claude.bypass, known(claude.bypass)!.accept)).toEqual(['Down', 'Enter']);
  });

  it('starts a new conversation with the id devflow gives, and continues it by that id', () => {
    const fresh = preset.launch({ binary: '/bin/claude', newConversationId: 'abc', resumeConversationId: null, bypassPermissions: true });
    expect(fresh.command).toEqual(['/bin/claude', '--session-id', 'abc', '--dangerously-skip-permissions']);
    expect(fresh.env.DISABLE_AUTOUPDATER).toBe('1');
    const resumed = preset.launch({ binary: '/bin/claude', newConversationId: 'abc', resumeConversationId: 'abc', bypassPermissions: false, playback: { url: 'http://127.0.0.1:1', apiKey: 'k', configDir: '/cfg' } });
    expect(resumed.command).toEqual(['/bin/claude', '--resume', 'abc']);
    expect(resumed.env).toMatchObject({ ANTHROPIC_BASE_URL: 'http://127.0.0.1:1', ANTHROPIC_API_KEY: 'k', CLAUDE_CONFIG_DIR: '/cfg' });
  });
});

describe('Codex screens', () => {
  const preset = PRESETS.codex;
  it('is ready only with its full footer, not the bare one it draws before its trust dialog', () => {
    expect(preset.isReady(codex.ready)).toBe(true);
    expect(preset.isReady(codex.bare)).toBe(false);
    expect(preset.isReady(codex.busy)).toBe(false);
    expect(preset.isBusy(codex.busy)).toBe(true);
    expect(preset.isReady(codex.trust)).toBe(false);
  });

  it('knows its trust dialog (the worktree form too) but not a model announcement', () => {
    const trust = preset.dialogs.find((d) => d.screen.test(codex.trust));
    expect(trust).toMatchObject({ id: 'trust_folder', rule: 'trust_worktree' });
    expect(menuKeys(codex.trust, trust!.accept)).toEqual(['Enter']);
    expect(preset.dialogs.find((d) => d.screen.test(codex.announcement))).toBeUndefined();
  });

  it('runs with no daemon, inline, and continues a conversation by its id', () => {
    const launch = preset.launch({ binary: '/bin/codex', newConversationId: 'x', resumeConversationId: 'r1', bypassPermissions: true, playback: { url: 'http://127.0.0.1:9', apiKey: 'k', configDir: '/ch' } });
    expect(launch.command.slice(0, 5)).toEqual(['/bin/codex', 'resume', 'r1', '--no-daemon', '--no-alt-screen']);
    expect(launch.command).toContain('--dangerously-bypass-approvals-and-sandbox');
    expect(launch.command.join(' ')).toContain('base_url = "http://127.0.0.1:9/v1"');
    expect(launch.env).toEqual({ CODEX_HOME: '/ch', DEVFLOW_PLAYBACK_KEY: 'k' });
  });
});

describe('screen helpers', () => {
  it('finds no keys when the wanted option is not on screen', () => {
    expect(menuKeys(claude.settingsError, /Yes, I trust/)).toBeUndefined();
  });

  it('hashes a screen the same while only its timer and spinner change', () => {
    expect(screenHash('✢ Hashing… (2s · ↓ 6 tokens)')).toBe(screenHash('✻ Hashing… (9s · ↓ 6 tokens)'));
    expect(screenHash('Choose a theme')).not.toBe(screenHash('Settings Error'));
  });

  it('tidies a screen for a person: no blank lines or trailing spaces, the end kept when long', () => {
    expect(tidyScreen('a   \n\n\n  b  \n')).toBe('a\n  b');
    expect(tidyScreen('x'.repeat(50), 10)).toBe(`…${'x'.repeat(10)}`);
  });
});
