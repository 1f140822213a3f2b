// Hands each queued notification (notification_outbox: a gate opened, a run ended) to its run's
// delivery workflow, once, in order. Safe with several workers: a row is taken under
// `for update skip locked` and marked in the same transaction as it is handed over.
import type { Client } from '@temporalio/client';
import { and, asc, eq, inArray, isNull } from 'drizzle-orm';
import type { WebhookDelivery } from '../activities/webhooks.ts';
import type { Database } from '../db/client.ts';
import { notificationOutbox, runEvents } from '../db/schema.ts';
import { every } from '../lib/every.ts';
import { workflowIds } from '../lib/keys.ts';
import type { Logger } from '../lib/logger.ts';
import { notifyWorkflow, runEventSignal } from '../workflows/notify.ts';

export interface NotifierOptions {
  db: Database;
  client: Client;
  taskQueue: string;
  /** How many webhook targets are configured. */
  targets: number;
  maxAttempts: number;
  log?: Logger;
  /** Older notifications (queued while no webhook was configured, or all workers were down) are skipped (default 1 h). */
  maxAgeMs?: number;
  /** Only these runs' notifications (default: every run's); for a notifier sharing its database with others, as in tests. */
  onlyRuns?: () => string[];
}

export class Notifier {
  constructor(private readonly options: NotifierOptions) {}

  /** Hands over what is queued; returns how many were handed over (and how many skipped as too old). */
  async dispatch(): Promise<{ sent: number; skipped: number }> {
    const { db, client } = this.options;
    if (this.options.onlyRuns?.().length === 0) return { sent: 0, skipped: 0 };
    return db.transaction(async (tx) => {
      const rows = await tx
        .select({ eventId: runEvents.id, runId: runEvents.runId, seq: runEvents.seq, type: runEvents.type, payload: runEvents.payload, at: runEvents.createdAt })
        .from(notificationOutbox)
        .innerJoin(runEvents, eq(runEvents.id, notificationOutbox.eventId))
        .where(this.options.onlyRuns ? and(isNull(notificationOutbox.dispatchedAt), inArray(notificationOutbox.runId, this.options.onlyRuns())) : isNull(notificationOutbox.dispatchedAt))
        .orderBy(asc(notificationOutbox.eventId))
        .limit(100)
        .for('update', { of: notificationOutbox, skipLocked: true });
      let skipped = 0;
      for (const row of rows) {
        if (Date.now() - row.at.getTime() > (this.options.maxAgeMs ?? 3_600_000)) {
          skipped += 1;
          continue;
        }
        const delivery: WebhookDelivery = { eventId: row.eventId, runId: row.runId, seq: row.seq, type: row.type, at: row.at.toISOString(), payload: row.payload as Record<string, unknown> };
        await client.workflow.signalWithStart(notifyWorkflow, {
          workflowId: workflowIds.notify(row.runId),
          taskQueue: this.options.taskQueue,
          args: [{ runId: row.runId, targets: this.options.targets, maxAttempts: this.options.maxAttempts }],
          signal: runEventSignal,
          signalArgs: [delivery],
          staticSummary: `devflow webhooks of run ${row.runId}`,
        });
      }
      if (rows.length) await tx.update(notificationOutbox).set({ dispatchedAt: new Date() }).where(inArray(notificationOutbox.eventId, rows.map((r) => r.eventId)));
      return { sent: rows.length - skipped, skipped };
    });
  }
}

/** Dispatches now and every `intervalMs` until stopped. */
export function startNotifier(notifier: Notifier, intervalMs: number, log?: Logger): { stop(): Promise<void> } {
  return every(intervalMs, () => notifier.dispatch(), (error) => log?.warn({ error: String(error) }, 'webhook dispatch failed'));
}
