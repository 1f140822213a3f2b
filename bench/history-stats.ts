// How many Temporal history events each phase of a recorded run costs. Events belong to the
// phase named by the latest activity summary ("spec: ..."); the rest is run-level.
//   npm run history:stats -- test/histories/happy-path.json
import { readFileSync } from 'node:fs';

interface HistoryEvent {
  eventType: string;
  userMetadata?: { summary?: { data?: string } };
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string } };
}

const file = process.argv[2] ?? 'test/histories/happy-path.json';
const events: HistoryEvent[] = JSON.parse(readFileSync(file, 'utf8')).events;
const counts = new Map<string, number>();
const activities = new Map<string, number>();
let current = '(run)';
for (const event of events) {
  if (event.activityTaskScheduledEventAttributes) {
    const summary = event.userMetadata?.summary?.data ? (JSON.parse(Buffer.from(event.userMetadata.summary.data, 'base64').toString()) as string) : '';
    current = /^([a-z_]+): /.exec(summary)?.[1] ?? '(run)';
    activities.set(current, (activities.get(current) ?? 0) + 1);
  }
  counts.set(current, (counts.get(current) ?? 0) + 1);
}
console.log(`${file}: ${events.length} history events`);
for (const [phase, count] of counts) console.log(`  ${phase.padEnd(10)} ${String(count).padStart(4)} events, ${activities.get(phase) ?? 0} activities`);
