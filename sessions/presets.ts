// How devflow drives an agent CLI in a tmux pane: the command, the text that means it is ready
// for a prompt, and the keys that submit a pasted prompt. Only `scripted` runs on devflow's own
// machines and tests; the real agents' presets are configuration, kept small and honest.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface AgentPreset {
  name: string;
  command: string[];
  /** A regular expression matched against the pane's screen. */
  readyPattern: string;
  /** tmux key names sent after the prompt was pasted. */
  submitKeys: string[];
  /** The agent's screen changes even when idle, so output age says nothing: probes defer to a person. */
  livenessOnly: boolean;
}

const SCRIPTED_AGENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scripted-agent.ts');

export const PRESETS = {
  scripted: {
    name: 'scripted',
    command: [process.execPath, '--import', import.meta.resolve('tsx'), SCRIPTED_AGENT],
    readyPattern: '^devflow scripted agent ready',
    submitKeys: ['Enter'],
    livenessOnly: false,
  },
  // Claude Code's interactive TUI: accepts bracketed paste, submits on Enter.
  'claude-code': {
    name: 'claude-code',
    command: ['claude'],
    readyPattern: '(\\? for shortcuts|╭─)',
    submitKeys: ['Enter'],
    livenessOnly: false,
  },
  // Codex CLI's interactive TUI: accepts bracketed paste, submits on Enter.
  codex: {
    name: 'codex',
    command: ['codex'],
    readyPattern: '(send a message|Ctrl\\+C to quit|▌)',
    submitKeys: ['Enter'],
    livenessOnly: false,
  },
} as const satisfies Record<string, AgentPreset>;

export type PresetName = keyof typeof PRESETS;
