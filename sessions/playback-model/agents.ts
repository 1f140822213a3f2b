// Real agents on the playback model: one playback model per worker, started when the first
// playback session needs it, and a config folder per agent that devflow owns (never the user's
// own ~/.claude or ~/.codex). The folders are set up like those of a person who has run the
// agent once; the dialogs every new folder or key brings are left for devflow's rules to answer.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RealAgent } from '../agent-cli.ts';
import { startPlaybackModel, type PlaybackModel } from './server.ts';

/** Any key works with the playback model; Claude Code asks about it once per config folder. */
export const PLAYBACK_API_KEY = 'devflow-playback-key-not-secret-0000';

export interface PlaybackEndpoint {
  url: string;
  apiKey: string;
  configDir: string;
}

export class PlaybackAgents {
  private model: Promise<PlaybackModel> | undefined;

  /** `root` holds one config folder per agent (`<root>/claude-code`, `<root>/codex`). */
  constructor(readonly root: string, private readonly options: { port?: number } = {}) {}

  configDir(agent: RealAgent): string {
    return path.join(this.root, agent);
  }

  async endpoint(agent: RealAgent): Promise<PlaybackEndpoint> {
    this.model ??= startPlaybackModel({ port: this.options.port }).catch((error: unknown) => {
      this.model = undefined;
      throw error;
    });
    const model = await this.model;
    const configDir = this.configDir(agent);
    await seedConfig(agent, configDir);
    return { url: model.url, apiKey: PLAYBACK_API_KEY, configDir };
  }

  /** The running playback model, if a session started it. */
  async running(): Promise<PlaybackModel | undefined> {
    return this.model;
  }

  async close(): Promise<void> {
    const model = await this.model?.catch(() => undefined);
    this.model = undefined;
    await model?.close();
  }
}

/** Writes a first config only when there is none: a person's answers in it are kept. */
async function seedConfig(agent: RealAgent, configDir: string): Promise<void> {
  await mkdir(configDir, { recursive: true });
  if (agent === 'claude-code') {
    const file = path.join(configDir, '.claude.json');
    // Onboarding checks the network, which the playback model cannot answer: mark it done.
    if (!existsSync(file)) await writeFile(file, `${JSON.stringify({ hasCompletedOnboarding: true, theme: 'dark' }, null, 2)}\n`);
  } else {
    const file = path.join(configDir, 'config.toml');
    // Codex rewrites this file, so it stays writable; the provider (and its port) comes on the command line.
    if (!existsSync(file)) await writeFile(file, 'model = "devflow-playback"\ncheck_for_update_on_startup = false\n');
  }
}
