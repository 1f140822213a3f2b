// What a person reads to decide: an artifact's content (as it is on disk, and whether it is still
// the bytes that were validated), a session's transcript, and the gates waiting across all runs.
import { and, asc, desc, eq, inArray } from 'drizzle-orm';
import { approvalDecisions, approvalRequests, artifacts, runPhases, runs, tuiSessions, tuiTranscripts } from '../db/schema.ts';
import { DEFAULT_MAX_ARTIFACT_BYTES, readArtifact } from '../lib/artifact-files.ts';
import { sha256 } from '../lib/canonical-json.ts';
import { worktreePathFor } from '../lib/runs.ts';
import { artifactContentResponse, artifactParams, pendingApprovalsQuery, pendingApprovalsResponse, sessionParams, transcriptResponse } from '../schemas/api.ts';
import { errors, runOr404, type App, type RouteDeps } from './context.ts';
import { ApiError } from './server.ts';

export function registerReadingRoutes(app: App, deps: RouteDeps): void {
  const { db } = deps;

  app.get('/v1/runs/:runId/artifacts/:artifactId', {
    schema: { summary: "An artifact's content, as it is on disk", params: artifactParams, response: { 200: artifactContentResponse, ...errors() } },
  }, async (request) => {
    const { runId, artifactId } = request.params;
    await runOr404(deps, runId);
    const [artifact] = await db.select().from(artifacts).where(and(eq(artifacts.id, artifactId), eq(artifacts.runId, runId)));
    if (!artifact) throw new ApiError(404, 'artifact_not_found', `run ${runId} has no artifact ${artifactId}`);
    // Read as validation reads it: a file since swapped for a link out of the worktree, or grown
    // past the limit, is not served (and shows as changed).
    const bytes = await readArtifact(worktreePathFor(deps.workspaceRoot, runId), artifact.path, deps.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES).catch(() => undefined);
    let content: unknown = null;
    if (bytes) {
      try {
        content = JSON.parse(bytes.toString('utf8'));
      } catch {
        content = null;
      }
    }
    return {
      artifact: { ...artifact, validationError: artifact.validationError as Record<string, unknown> | null },
      content,
      text: bytes ? bytes.toString('utf8') : null,
      changed: !bytes || sha256(bytes) !== artifact.hash,
    };
  });

  app.get('/v1/runs/:runId/sessions/:sessionId/transcript', {
    schema: { summary: "What a session's agent printed (its pane, captured at phase ends and failures)", params: sessionParams, response: { 200: transcriptResponse, ...errors() } },
  }, async (request) => {
    const { runId, sessionId } = request.params;
    await runOr404(deps, runId);
    const [session] = await db.select().from(tuiSessions).where(and(eq(tuiSessions.id, sessionId), eq(tuiSessions.runId, runId)));
    if (!session) throw new ApiError(404, 'session_not_found', `run ${runId} has no session ${sessionId}`);
    const chunks = await db.select().from(tuiTranscripts).where(eq(tuiTranscripts.sessionId, sessionId)).orderBy(asc(tuiTranscripts.seq));
    return { sessionId, roleId: session.roleId, text: chunks.map((c) => c.chunk).join('') };
  });

  app.get('/v1/approvals', {
    schema: { summary: 'Approval requests waiting for a person, across runs, oldest first', querystring: pendingApprovalsQuery, response: { 200: pendingApprovalsResponse, ...errors() } },
  }, async (request) => {
    const rows = await db
      .select({ request: approvalRequests, run: { id: runs.id, state: runs.state, templateId: runs.templateId, repoPath: runs.repoPath, baseBranch: runs.baseBranch }, phaseKey: runPhases.phaseKey })
      .from(approvalRequests)
      .innerJoin(runs, eq(runs.id, approvalRequests.runId))
      .leftJoin(runPhases, eq(runPhases.id, approvalRequests.phaseId))
      .where(eq(approvalRequests.state, 'pending'))
      .orderBy(asc(approvalRequests.createdAt), desc(approvalRequests.id))
      .limit(request.query.limit);
    const decisions = rows.length
      ? await db.select().from(approvalDecisions).where(inArray(approvalDecisions.approvalRequestId, rows.map((r) => r.request.id)))
      : [];
    return {
      approvals: rows.map(({ request: r, run, phaseKey }) => ({
        ...r,
        payload: r.payload as Record<string, unknown>,
        decisions: decisions.filter((d) => d.approvalRequestId === r.id),
        run,
        phaseKey: phaseKey ?? null,
      })),
    };
  });
}
