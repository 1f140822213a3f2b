import { DevflowError } from '../lib/errors.ts';
import { REAL_AGENTS, type RealAgent } from './agent-cli.ts';
import type { SessionDriver, SessionDrivers } from './driver.ts';
import type { PlaybackAgents } from './playback-model/agents.ts';
import { PRESETS } from './presets.ts';
import { TmuxDriver, type TmuxDriverOptions } from './tmux-driver.ts';
import type { TmuxServer } from './tmux.ts';

/** The backends this worker can drive, by name. */
export function sessionDrivers(drivers: Record<string, SessionDriver>): SessionDrivers {
  return {
    forBackend(backend: string): SessionDriver {
      const driver = drivers[backend];
      if (!driver) {
        throw new DevflowError({
          code: 'backend_unavailable',
          message: `session backend ${backend} is not available on this worker (available: ${Object.keys(drivers).join(', ')})`,
        });
      }
      return driver;
    },
  };
}

export interface AgentDriverOptions {
  tmux: TmuxServer;
  /** The real agent `tmux` sessions (and runs that name no agent) use. */
  configured: RealAgent;
  driver?: Omit<TmuxDriverOptions, 'playback'>;
  playback?: PlaybackAgents;
  fake?: SessionDriver;
}

/** Every backend a worker drives: the scripted agent, each real agent, `tmux` (the configured one) and the fake. */
export function agentDrivers(options: AgentDriverOptions): SessionDrivers {
  const driverOptions: TmuxDriverOptions = { ...options.driver, ...(options.playback ? { playback: options.playback } : {}) };
  const real = Object.fromEntries(REAL_AGENTS.map((agent) => [agent, new TmuxDriver(options.tmux, PRESETS[agent], driverOptions)]));
  return sessionDrivers({
    ...(options.fake ? { fake: options.fake } : {}),
    scripted: new TmuxDriver(options.tmux, PRESETS.scripted, driverOptions),
    ...real,
    tmux: real[options.configured]!,
  });
}
