import type { StartRunDeps } from '../api/start-run.ts';
import type { Database } from '../db/client.ts';
import type { SessionDrivers } from '../sessions/driver.ts';

export interface ActivityDeps {
  db: Database;
  drivers: SessionDrivers;
  workspaceRoot: string;
  hostId: string;
  /** The task queue of this worker's host, where activities that touch its files and tmux run. */
  hostQueue: string;
  /** How many times a new agent is started before a person is asked (default 3), and the pause between. */
  agentStartTries?: number;
  agentStartPauseMs?: number;
  /** Probes that must agree before an agent is HUNG (default 3), and the pause between them. */
  hungProbes?: number;
  probeIntervalMs?: number;
  /** The most bytes an artifact may have (DEVFLOW_MAX_ARTIFACT_BYTES; default 4 MiB): a bigger one is refused unread. */
  maxArtifactBytes?: number;
  /** Webhook targets (their URLs and the signing secret never enter workflow history). */
  webhooks?: { urls: string[]; secret?: string | undefined };
  /** What a schedule's fire needs to start a run as POST /v1/runs does (a worker without it cannot fire schedules). */
  starts?: Omit<StartRunDeps, 'db'>;
  /**
   * Test hook: called at named points between the side effects of an activity, so a test can
   * make it fail half-way and check that a retry ends in the same rows.
   */
  checkpoint?: (point: string) => void | Promise<void>;
}

/** The hook at a named point; points a test may act at (not only crash at) are awaited. */
export function checkpoint(deps: ActivityDeps, point: string): void | Promise<void> {
  return deps.checkpoint?.(point);
}
