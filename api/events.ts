// A run's events: JSON in seq order, or (Accept: text/event-stream) a live stream that resumes
// from Last-Event-ID and ends after the run's last event.
import { setTimeout as sleep } from 'node:timers/promises';
import { eq } from 'drizzle-orm';
import { listEvents } from '../db/events.ts';
import { runs } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { eventListResponse, eventsQuery, runIdParams } from '../schemas/api.ts';
import { errors, runOr404, type App, type RouteDeps } from './context.ts';

export function registerEventRoutes(app: App, deps: RouteDeps): void {
  const { db } = deps;
  app.get('/v1/runs/:runId/events', {
    schema: { summary: 'Events in seq order; Accept: text/event-stream streams them live', params: runIdParams, querystring: eventsQuery, response: { 200: eventListResponse, ...errors() } },
  }, async (request, reply) => {
    const run = await runOr404(deps, request.params.runId);
    if (!request.headers.accept?.includes('text/event-stream')) {
      return { events: (await listEvents(db, run.id, request.query.after)).map((e) => ({ ...e, payload: e.payload as Record<string, unknown> })) };
    }
    let after = Number(request.headers['last-event-id'] ?? request.query.after) || 0;
    let closed = false;
    request.raw.on('close', () => (closed = true));
    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let idle = 0;
    while (!closed) {
      const events = await listEvents(db, run.id, after);
      for (const event of events) out.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      if (events.length) after = events.at(-1)!.seq;
      const [current] = await db.select({ state: runs.state, report: runs.finalReportPath }).from(runs).where(eq(runs.id, run.id));
      if (events.length === 0 && TERMINAL_RUN_STATES.has(current!.state) && current!.report) break;
      if (events.length === 0 && ++idle % 60 === 0) out.write(': keep-alive\n\n');
      await sleep(250);
    }
    out.end();
  });
}
