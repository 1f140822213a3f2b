// One fire of a devflow schedule (Temporal's Schedule starts this workflow at each slot): start
// the run the schedule asks for, at most one per slot, or record why none was started.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';

/** Set by Temporal on every workflow a Schedule starts: the time the fire was meant for. */
const SCHEDULED_START_TIME = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

export interface ScheduledRunInput {
  scheduleId: string;
  /** The fire slot; by default the one Temporal scheduled this workflow for. */
  slot?: string;
}

export type FireResult = { outcome: 'started'; runId: string } | { outcome: 'skipped'; code: string; reason: string };

const { fireSchedule } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  // Temporal or Postgres away for a while: keep trying for an hour, then say the fire failed.
  scheduleToCloseTimeout: '1 hour',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
const { recordFireFailure } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 30 } });

export async function scheduledRunWorkflow(input: ScheduledRunInput): Promise<FireResult> {
  const info = workflowInfo();
  const slot = input.slot ?? (info.typedSearchAttributes.get(SCHEDULED_START_TIME) ?? info.startTime).toISOString();
  try {
    return await fireSchedule({ scheduleId: input.scheduleId, slot });
  } catch (error) {
    const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    await recordFireFailure({ scheduleId: input.scheduleId, slot, reason });
    return { outcome: 'skipped', code: 'fire_failed', reason };
  }
}
