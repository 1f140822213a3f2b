// Every activity the worker hosts, built from their dependencies (database, session drivers,
// workspace root). DevflowErrors reach Temporal typed by their class (see failures.ts).
import { createArtifactActivities } from './artifacts.ts';
import type { ActivityDeps } from './deps.ts';
import { mapFailures } from './failures.ts';
import { createFinalizeActivities } from './finalize.ts';
import { createGateActivities } from './gates.ts';
import { createPhaseActivities } from './phases.ts';
import { createPrepareRunActivities } from './prepare-run.ts';
import { createPromptActivities } from './prompts.ts';
import { createScheduleActivities } from './schedules.ts';
import { createSettleActivities } from './settle.ts';
import { createSessionActivities } from './sessions.ts';
import { createStackCheckActivities } from './stack-check.ts';
import { createWebhookActivities } from './webhooks.ts';

export type { ActivityDeps } from './deps.ts';

export function createActivities(deps: ActivityDeps) {
  return mapFailures({
    ...createStackCheckActivities(deps),
    /** Pins a run to the host whose worker picked this up: its worktree and sessions live there. */
    async selectHost(): Promise<{ hostQueue: string }> {
      return { hostQueue: deps.hostQueue };
    },
    ...createPrepareRunActivities(deps),
    ...createSessionActivities(deps),
    ...createPromptActivities(deps),
    ...createArtifactActivities(deps),
    ...createSettleActivities(deps),
    ...createGateActivities(deps),
    ...createPhaseActivities(deps),
    ...createFinalizeActivities(deps),
    ...createWebhookActivities(deps),
    ...createScheduleActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
