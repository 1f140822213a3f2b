// Webhook deliveries: one signed POST of one run event to one configured target. The URL and the
// secret come from this worker's configuration (never through workflow history); what happened
// is recorded on the run as an event.
import { createHmac } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { appendEvent } from '../db/events.ts';
import type { ActivityDeps } from './deps.ts';

/** A run event a person is told of (`approval.requested`, `run.completed`, `run.failed`, `run.aborted`). */
export interface WebhookDelivery {
  eventId: number;
  runId: string;
  seq: number;
  type: string;
  at: string;
  payload: Record<string, unknown>;
}

/** The JSON body a target receives (documented in the README). */
export function webhookBody(delivery: WebhookDelivery): Record<string, unknown> {
  const p = delivery.payload;
  const summary =
    delivery.type === 'approval.requested'
      ? `run ${delivery.runId} waits for a person at ${String(p.gateKey)} (${String(p.kind ?? 'approval')})${typeof p.reason === 'string' ? `: ${p.reason}` : ''}`
      : `run ${delivery.runId} ended ${delivery.type.slice('run.'.length)}${typeof p.reason === 'string' ? `: ${p.reason}` : ''}`;
  return { delivery: delivery.eventId, event: delivery.type, runId: delivery.runId, seq: delivery.seq, at: delivery.at, summary, data: p };
}

/** `sha256=<hex>`: HMAC-SHA256 of the exact body with the secret. */
export function signatureOf(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const hostOf = (url: string) => new URL(url).host;

export function createWebhookActivities(deps: ActivityDeps) {
  return {
    /** POSTs the event to target `target`; a non-2xx answer or no answer throws (Temporal retries with backoff). */
    async deliverWebhook(input: { target: number; delivery: WebhookDelivery }): Promise<{ status: number }> {
      const url = deps.webhooks?.urls[input.target];
      if (!url) throw ApplicationFailure.nonRetryable(`webhook target ${input.target} is not configured on this worker`, 'webhook_not_configured');
      const body = JSON.stringify(webhookBody(input.delivery));
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'devflow-webhook',
        'x-devflow-event': input.delivery.type,
        'x-devflow-delivery': String(input.delivery.eventId),
      };
      if (deps.webhooks?.secret) headers['x-devflow-signature'] = signatureOf(body, deps.webhooks.secret);
      const response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`webhook ${hostOf(url)} answered ${response.status}`);
      await appendEvent(deps.db, {
        runId: input.delivery.runId,
        type: 'webhook.delivered',
        idempotencyKey: `webhook:${input.delivery.eventId}:${input.target}:delivered`,
        payload: { delivery: input.delivery.eventId, event: input.delivery.type, target: hostOf(url), status: response.status },
      });
      return { status: response.status };
    },

    /** Every try failed: recorded, and the run (long gone on) is not concerned. */
    async recordWebhookFailure(input: { target: number; delivery: WebhookDelivery; error: string }): Promise<void> {
      const url = deps.webhooks?.urls[input.target];
      await appendEvent(deps.db, {
        runId: input.delivery.runId,
        type: 'webhook.failed',
        idempotencyKey: `webhook:${input.delivery.eventId}:${input.target}:failed`,
        payload: { delivery: input.delivery.eventId, event: input.delivery.type, target: url ? hostOf(url) : `#${input.target}`, error: input.error },
      });
    },
  };
}
