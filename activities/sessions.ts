// Session activities: thin wrappers over the session lifecycle (sessions/lifecycle.ts), each one
// step the run workflow sequences.
import { sessionLifecycle } from '../sessions/lifecycle.ts';
import type { ActivityDeps } from './deps.ts';

export function createSessionActivities(deps: ActivityDeps) {
  const lifecycle = sessionLifecycle(deps);
  return {
    ensureSession: lifecycle.ensureSession,
    probeSession: lifecycle.probeSession,
    rebootstrapSession: lifecycle.rebootstrapSession,
    captureTranscript: lifecycle.captureTranscript,
    closeSession: lifecycle.closeSession,
    /** The end of a run: each of its sessions closed (transcript and usage kept, agent disposed), in one step. */
    async closeSessions(input: { sessionIds: string[] }): Promise<void> {
      for (const sessionId of input.sessionIds) await lifecycle.closeSession({ sessionId });
    },
  };
}
