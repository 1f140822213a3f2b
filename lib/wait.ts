import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `check` until it returns true or the deadline passes. Errors thrown by `check`
 * stop the wait at once (they mean "this will never become true").
 */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
}
