// Webhooks against the real dev server and Postgres: a gate that opens and a run that ends are
// POSTed to every target, signed, in order; a target that keeps failing is retried by Temporal,
// recorded as failed, and never delays the run.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listEvents } from '../db/events.ts';
import { waitFor } from '../lib/wait.ts';
import { decisionSignal } from '../workflows/messages.ts';
import { Notifier, startNotifier } from '../worker/notifier.ts';
import { useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness('fake');
const SECRET = 'webhook-secret-for-tests';
interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
  body: { delivery: number; event: string; runId: string; seq: number; summary: string; data: Record<string, unknown> };
}
const good: Received[] = [];
const bad: Received[] = [];
const servers: Server[] = [];
let notifier: { stop(): Promise<void> } | undefined;
const mine: string[] = [];

/** A receiver that keeps what it gets; `status` and `delayMs` say how it answers. */
async function receiver(into: Received[], status: number, delayMs = 0): Promise<string> {
  const server = createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    request.on('end', () => {
      into.push({ headers: request.headers, raw, body: JSON.parse(raw) });
      setTimeout(() => response.writeHead(status).end(), delayMs);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

beforeAll(async () => {
  const urls = [await receiver(good, 204), await receiver(bad, 500, 4_000)];
  await h.stopWorkers(() => true);
  await h.startWorker({ webhooks: { urls, secret: SECRET } });
  // The suite's database holds every test file's runs: this notifier serves this file's only.
  notifier = startNotifier(new Notifier({ db: h.db, client: h.client, taskQueue: h.taskQueue, targets: urls.length, maxAttempts: 2, onlyRuns: () => mine }), 100);
});
afterAll(async () => {
  await notifier?.stop();
  for (const server of servers) server.closeAllConnections();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
});

describe('webhooks', () => {
  it('POST a gate that opens and a run that ends to every target, signed, in order; a failing target never delays the run', async () => {
    const { runId, handle } = await h.start();
    mine.push(runId);
    const gate = await h.waitForGate(runId, 'spec_approved');
    await handle.signal(decisionSignal, { approvalRequestId: gate.pendingGate!.approvalRequestId, action: 'approve', clientToken: 'go' });
    expect((await handle.result()).state).toBe('completed');
    // The run is over while the failing target is still being tried for its first event.
    expect((await listEvents(h.db, runId)).filter((e) => e.type === 'webhook.failed')).toEqual([]);

    const ofRun = (list: Received[]) => list.filter((r) => r.body.runId === runId);
    await waitFor('both notifications at the good target', 30_000, async () => ofRun(good).length === 2, 100);
    const got = ofRun(good);
    expect(got.map((r) => r.body.event)).toEqual(['approval.requested', 'run.completed']);
    expect(got[0]!.body.seq).toBeLessThan(got[1]!.body.seq);
    expect(got[0]!.body.summary).toBe(`run ${runId} waits for a person at spec_approved (approval)`);
    expect(got[0]!.body.data).toMatchObject({ gateKey: 'spec_approved', approvalRequestId: gate.pendingGate!.approvalRequestId });
    expect(got[1]!.body.summary).toBe(`run ${runId} ended completed: every phase completed`);
    for (const r of got) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['x-devflow-event']).toBe(r.body.event);
      expect(r.headers['x-devflow-delivery']).toBe(String(r.body.delivery));
      expect(r.headers['x-devflow-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(r.raw).digest('hex')}`);
    }

    // The failing target: each event tried twice (Temporal's retries), then recorded as failed; the good one recorded as delivered.
    await waitFor('the failing target to be given up on', 60_000, async () => (await listEvents(h.db, runId)).filter((e) => e.type === 'webhook.failed').length === 2, 200);
    const events = await listEvents(h.db, runId);
    expect(events.filter((e) => e.type === 'webhook.delivered').map((e) => (e.payload as { event: string }).event)).toEqual(['approval.requested', 'run.completed']);
    expect(events.filter((e) => e.type === 'webhook.failed').map((e) => (e.payload as { event: string }).event)).toEqual(['approval.requested', 'run.completed']);
    expect(ofRun(bad).map((r) => r.body.event)).toEqual(['approval.requested', 'approval.requested', 'run.completed', 'run.completed']);
    // Nothing secret in what devflow recorded.
    expect(JSON.stringify(events)).not.toContain(SECRET);
    // Its delivery workflow ends once the run's end is delivered (or given up on).
    await waitFor('the delivery workflow to end', 30_000, async () => (await h.client.workflow.getHandle(`devflow-notify:${runId}`).describe()).status.name === 'COMPLETED', 200);
    expect(JSON.stringify(await h.client.workflow.getHandle(`devflow-notify:${runId}`).fetchHistory())).not.toContain('/hook');
  }, 120_000);
});
