// Approval routes: a run's requests with their decisions, and deciding one (recorded first,
// then signalled to the workflow).
import { WorkflowNotFoundError } from '@temporalio/client';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { recordDecision } from '../db/approvals.ts';
import type { Database } from '../db/client.ts';
import { approvalDecisions, approvalRequests, runs } from '../db/schema.ts';
import { TERMINAL_RUN_STATES } from '../db/state-machines.ts';
import { workflowIds } from '../lib/keys.ts';
import { approvalListResponse, approvalParams, decisionBody, decisionResponse, runIdParams } from '../schemas/api.ts';
import { decisionSignal } from '../workflows/messages.ts';
import { ensureReport, errors, runOr404, type App, type RouteDeps } from './context.ts';
import { SIGNAL_DEADLINE_MS } from './runs.ts';
import { ApiError, isUnavailable } from './server.ts';

export async function approvalsOf(db: Database, runId: string) {
  const requests = await db.select().from(approvalRequests).where(eq(approvalRequests.runId, runId)).orderBy(asc(approvalRequests.createdAt));
  const decisions = requests.length
    ? await db.select().from(approvalDecisions).where(inArray(approvalDecisions.approvalRequestId, requests.map((r) => r.id))).orderBy(asc(approvalDecisions.createdAt))
    : [];
  return requests.map((r) => ({ ...r, payload: r.payload as Record<string, unknown>, decisions: decisions.filter((d) => d.approvalRequestId === r.id) }));
}

export function registerApprovalRoutes(app: App, deps: RouteDeps): void {
  const { db, client } = deps;

  app.get('/v1/runs/:runId/approvals', { schema: { summary: 'Approval requests with their decisions', params: runIdParams, response: { 200: approvalListResponse, ...errors() } } }, async (request) => {
    const run = await runOr404(deps, request.params.runId);
    return { approvals: await approvalsOf(db, run.id) };
  });

  app.post('/v1/runs/:runId/approvals/:approvalId', {
    schema: { summary: 'Decide an approval request', params: approvalParams, body: decisionBody, response: { 200: decisionResponse, 202: decisionResponse, ...errors(409) } },
  }, async (request, reply) => {
    const { runId, approvalId } = request.params;
    await runOr404(deps, runId);
    const [approval] = await db.select().from(approvalRequests).where(and(eq(approvalRequests.id, approvalId), eq(approvalRequests.runId, runId)));
    if (!approval) throw new ApiError(404, 'approval_not_found', `run ${runId} has no approval request ${approvalId}`);
    if (approval.state === 'closed') {
      throw new ApiError(409, 'approval_closed', `approval request ${approvalId} (${approval.gateKey}) was closed without a decision: its phase or run moved on`);
    }
    const decision = { approvalRequestId: approvalId, ...request.body };
    // Recorded, then signalled, in one transaction: a run whose workflow is gone is not left with a
    // decision nothing will act on (its 409 writes nothing), while one Temporal could not be reached
    // for stays recorded (503: the same request again delivers it).
    const outcome = await db.transaction(async (tx) => {
      const recorded = await recordDecision(tx, decision);
      if (recorded.action !== decision.action) {
        throw new ApiError(409, 'decision_conflict', `approval request ${approvalId} was already decided: ${recorded.action}`, { decided: recorded.action });
      }
      const answer = { approvalRequestId: approvalId, gateKey: approval.gateKey, action: recorded.action, decisionId: recorded.decisionId };
      const [current] = await tx.select().from(runs).where(eq(runs.id, runId));
      if (TERMINAL_RUN_STATES.has(current!.state)) return { answer, ended: current! };
      try {
        await deps.temporal.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () => client.workflow.getHandle(workflowIds.run(runId)).signal(decisionSignal, decision));
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw new ApiError(409, 'run_not_running', `the workflow of run ${runId} is not running`);
        if (isUnavailable(error)) return { answer, undelivered: true };
        throw error;
      }
      return { answer };
    });
    if (outcome.undelivered) throw new ApiError(503, 'temporal_unavailable', 'the decision is recorded but could not be delivered; send the same request again');
    if (outcome.ended) {
      await ensureReport(deps, outcome.ended); // a replayed decision on an ended run
      return reply.code(200).send({ ...outcome.answer, runState: outcome.ended.state });
    }
    return reply.code(202).send(outcome.answer);
  });
}
