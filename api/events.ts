// A run's events: JSON in seq order, or (Accept: text/event-stream) a live stream that resumes
// from Last-Event-ID and ends after the run's last event.
import { setTimeout as sleep } from 'node:timers/promises';
import { eq } from 'drizzle-orm';
import { listEvents } from '../db/events.ts';
import { runs } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { eventListResponse, eventsQuery, MAX_SEQ, runIdParams } from '../schemas/api.ts';
import { errors, runOr404, type App, type RouteDeps } from './context.ts';

let openStreams = 0;

/** Live event streams being served now: each ends when its client leaves or its run has ended. */
export function openEventStreams(): number {
  return openStreams;
}

/** Where a stream resumes: the Last-Event-ID a reconnecting client sends, when it is a seq; else `after`. */
function resumeFrom(lastEventId: string | string[] | undefined, after: number): number {
  const seq = typeof lastEventId === 'string' && lastEventId.trim() !== '' ? Number(lastEventId) : NaN;
  return Number.isInteger(seq) && seq >= 0 && seq <= MAX_SEQ ? seq : after;
}

export function registerEventRoutes(app: App, deps: RouteDeps): void {
  const { db } = deps;
  app.get('/v1/runs/:runId/events', {
    schema: { summary: 'Events in seq order; Accept: text/event-stream streams them live', params: runIdParams, querystring: eventsQuery, response: { 200: eventListResponse, ...errors() } },
  }, async (request, reply) => {
    const run = await runOr404(deps, request.params.runId);
    if (!request.headers.accept?.includes('text/event-stream')) {
      return { events: (await listEvents(db, run.id, request.query.after)).map((e) => ({ ...e, payload: e.payload as Record<string, unknown> })) };
    }
    let after = resumeFrom(request.headers['last-event-id'], request.query.after);
    reply.hijack();
    const out = reply.raw;
    // The response closes when its client leaves (or once it is ended): the loop stops either way.
    let closed = false;
    out.on('close', () => (closed = true));
    out.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    openStreams += 1;
    try {
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
    } catch (error) {
      // The answer has begun, so no error status can follow: the stream ends, and its client resumes from the last id it got.
      request.log.warn({ error: String(error), runId: run.id }, 'event stream ended by an error');
    } finally {
      openStreams -= 1;
      out.end();
    }
  });
}
