// `devflow schedule …`: recurring runs, through the HTTP API's /v1/schedules routes.
import type { DevflowApi } from './api-client.ts';
import { EXIT } from './api-client.ts';
import { runRequest, type RunRequestOptions } from './commands.ts';

type Say = (line: string) => void;

interface Fire {
  slot: string;
  outcome: 'started' | 'skipped';
  runId: string | null;
  reasonCode: string | null;
  reason: string | null;
}
interface Schedule {
  id: string;
  cron: string | null;
  every: string | null;
  overlap: string;
  temporal: 'found' | 'missing' | 'unreachable';
  paused: boolean | null;
  note: string | null;
  nextFires: string[];
  request: { template?: string; repoPath?: string; baseBranch?: string };
  fires: Fire[];
}

export interface CreateScheduleOptions extends RunRequestOptions {
  cron?: string;
  every?: string;
  overlap?: string;
  catchup?: string;
  paused?: boolean;
  note?: string;
}

const when = (s: Schedule) => (s.cron ? `cron "${s.cron}" (UTC)` : `every ${s.every}`);
const STATE_UNKNOWN = { missing: 'not in Temporal (deleted there? delete it and create it again)', unreachable: 'unknown (Temporal unreachable)' };
/** `paused` or `active` from Temporal; else why that is not known (`missing`, `unreachable` in a list). */
const state = (s: Schedule, long = true) => (s.temporal === 'found' ? (s.paused ? 'paused' : 'active') : long ? STATE_UNKNOWN[s.temporal] : s.temporal);

function describeFire(fire: Fire): string {
  return fire.outcome === 'started' ? `${fire.slot}  started run ${fire.runId}` : `${fire.slot}  skipped: ${fire.reasonCode}: ${fire.reason}`;
}

function describeSchedule(s: Schedule, say: Say, fires = 5): void {
  say(`schedule ${s.id}: ${when(s)}, ${state(s)}${s.note ? ` (${s.note})` : ''}, overlap ${s.overlap}`);
  say(`  runs ${s.request.template} on ${s.request.repoPath}@${s.request.baseBranch}`);
  say(`  next: ${s.nextFires.slice(0, 3).join(', ') || 'none'}`);
  for (const fire of s.fires.slice(0, fires)) say(`  fired ${describeFire(fire)}`);
}

export async function createSchedule(api: DevflowApi, id: string, options: CreateScheduleOptions, say: Say): Promise<number> {
  if (Boolean(options.cron) === Boolean(options.every)) {
    say('give exactly one of --cron <expression> and --every <interval>');
    return EXIT.badInput;
  }
  const request = await runRequest(api, options, say);
  if (typeof request === 'number') return request;
  const created = await api.post<Schedule>('/v1/schedules', {
    id,
    ...(options.cron ? { cron: options.cron } : { every: options.every }),
    ...(options.overlap ? { overlap: options.overlap } : {}),
    ...(options.catchup ? { catchupWindow: options.catchup } : {}),
    ...(options.paused ? { paused: true } : {}),
    ...(options.note ? { note: options.note } : {}),
    request,
  });
  describeSchedule(created, say);
  return EXIT.ok;
}

export async function listSchedules(api: DevflowApi, say: Say): Promise<number> {
  const { schedules } = await api.get<{ schedules: Schedule[] }>('/v1/schedules');
  if (schedules.length === 0) say('no schedules');
  for (const s of schedules) say(`${s.id.padEnd(24)}  ${state(s, false).padEnd(7)}  ${when(s).padEnd(28)}  next ${s.nextFires[0] ?? '-'}  ${s.fires[0] ? `last ${describeFire(s.fires[0])}` : ''}`.trimEnd());
  return EXIT.ok;
}

export async function showSchedule(api: DevflowApi, id: string, say: Say): Promise<number> {
  describeSchedule(await api.get<Schedule>(`/v1/schedules/${encodeURIComponent(id)}`), say, 20);
  return EXIT.ok;
}

export async function changeSchedule(api: DevflowApi, id: string, action: 'pause' | 'resume' | 'trigger' | 'delete', say: Say, note?: string): Promise<number> {
  const path = `/v1/schedules/${encodeURIComponent(id)}`;
  if (action === 'delete') {
    await api.request('DELETE', path);
    say(`schedule ${id} deleted (its runs and fires are kept)`);
  } else if (action === 'trigger') {
    await api.post(`${path}/trigger`, {});
    say(`schedule ${id} fired; see what it did with: devflow schedule show ${id}`);
  } else {
    describeSchedule(await api.post<Schedule>(`${path}/${action}`, note ? { note } : {}), say);
  }
  return EXIT.ok;
}
