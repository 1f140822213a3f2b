// The webhook deliveries of one run, in the order its events happened: each event to every
// target at once, each target retried with backoff by Temporal. A target that keeps failing
// only delays the later notifications of this run, never the run itself (a separate workflow).
import { condition, defineSignal, proxyActivities, setHandler, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { WebhookDelivery } from '../activities/webhooks.ts';

export const runEventSignal = defineSignal<[WebhookDelivery]>('runEvent');

export interface NotifyInput {
  runId: string;
  /** How many targets are configured (their URLs stay in the workers' configuration). */
  targets: number;
  /** Tries per target and event before it is recorded as failed. */
  maxAttempts: number;
}

const ENDED = new Set(['run.completed', 'run.failed', 'run.aborted']);

export async function notifyWorkflow(input: NotifyInput): Promise<void> {
  const delivery: ActivityOptions = {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: input.maxAttempts },
  };
  const { deliverWebhook } = proxyActivities<Activities>(delivery);
  const { recordWebhookFailure } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 20 } });
  const queue: WebhookDelivery[] = [];
  const seen = new Set<number>();
  setHandler(runEventSignal, (event) => {
    if (seen.has(event.eventId)) return; // handed over twice: delivered once
    seen.add(event.eventId);
    queue.push(event);
    queue.sort((a, b) => a.seq - b.seq);
  });
  for (;;) {
    // Idle for a day (a run parked at a gate): this workflow ends; the next event starts another.
    if (!(await condition(() => queue.length > 0, '1 day'))) return;
    const event = queue.shift()!;
    await Promise.all(
      Array.from({ length: input.targets }, async (_, target) => {
        try {
          await deliverWebhook({ target, delivery: event });
        } catch (error) {
          await recordWebhookFailure({ target, delivery: event, error: (error as Error).cause instanceof Error ? (error as Error).cause!.toString() : String(error) });
        }
      }),
    );
    if (ENDED.has(event.type) && queue.length === 0) return;
  }
}
