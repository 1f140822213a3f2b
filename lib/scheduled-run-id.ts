// Kept apart from lib/keys.ts, which workflow code imports: this one needs node:crypto.
import { createHash } from 'node:crypto';

/**
 * The run a schedule's fire slot starts: a UUID (version 8, RFC 9562) from the schedule and the
 * slot, so the same slot fired twice names the same run and the second start collapses into it.
 */
export function scheduledRunId(scheduleId: string, slot: Date): string {
  const hex = createHash('sha256').update(`devflow-schedule:${scheduleId}:${slot.toISOString()}`).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
