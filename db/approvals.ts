// Approval requests, the one module that opens, decides and closes them. Every change is a
// transition of the approval state machine, written with its event in one transaction. The API
// records a decision before signalling the workflow and the workflow's activity records it again:
// both land here, so the second write finds the first.
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import { canonicalJson } from '../lib/canonical-json.ts';
import { DevflowError } from '../lib/errors.ts';
import { approvalKeys } from '../lib/keys.ts';
import type { Executor } from './client.ts';
import { appendEvent } from './events.ts';
import { approvalDecisions, approvalRequests, runs } from './schema.ts';
import { assertApprovalTransition, DECIDED_STATE, type ApprovalState, type DecisionAction } from './state-machines.ts';
import { findEventByKey } from './events.ts';
import { notFound, type ApprovalRequest, type TransitionEvent, type TransitionResult } from './transitions.ts';

export type GateKind = 'approval' | 'human';

export interface OpenRequest {
  runId: string;
  phaseId: string | null;
  gateKey: string;
  kind: GateKind;
  /** The gate opening's own key: opening it again finds the same request. */
  key: string;
  payload: Record<string, unknown>;
}

/**
 * Opens the request with its `approval.requested` event, or finds the one opened under the same
 * key. A request found under the key with other content means two facts share a key.
 */
export async function openApprovalRequest(executor: Executor, input: OpenRequest): Promise<ApprovalRequest> {
  return executor.transaction(async (tx) => {
    const payload = { kind: input.kind, ...input.payload };
    await tx.insert(approvalRequests).values({ runId: input.runId, phaseId: input.phaseId, gateKey: input.gateKey, idempotencyKey: input.key, payload }).onConflictDoNothing();
    const [request] = await tx.select().from(approvalRequests).where(eq(approvalRequests.idempotencyKey, input.key));
    const same = request!.runId === input.runId && request!.phaseId === input.phaseId && request!.gateKey === input.gateKey && canonicalJson(request!.payload) === canonicalJson(payload);
    if (!same) {
      throw new DevflowError({
        code: 'internal_state_corruption',
        message: `approval request ${request!.id} under key ${input.key} holds other content than the gate opening it now (${request!.gateKey})`,
        recoveryHint: 'a devflow bug or a manual database edit: inspect the run events before retrying',
      });
    }
    await appendEvent(tx, {
      runId: input.runId,
      phaseId: input.phaseId,
      type: 'approval.requested',
      idempotencyKey: approvalKeys.requested(request!.id),
      payload: { approvalRequestId: request!.id, gateKey: input.gateKey, ...payload },
    });
    return request!;
  });
}

export interface DecisionInput {
  approvalRequestId: string;
  action: DecisionAction;
  clientToken: string;
  comment?: string;
  decidedBy?: string;
}

export interface RecordedDecision {
  /** The decision that stands (the first one recorded), or what closed the request without one. */
  action: DecisionAction;
  decisionId: string | null;
  comment: string | null;
  /** True when this call wrote it. */
  created: boolean;
}

/** Records a decision; the first decision on a request wins, and a closed request stays closed (as aborted). */
export async function recordDecision(executor: Executor, input: DecisionInput, checkpoint?: () => void): Promise<RecordedDecision> {
  return executor.transaction(async (tx) => {
    const [request] = await tx.select().from(approvalRequests).where(eq(approvalRequests.id, input.approvalRequestId)).for('update');
    if (!request) {
      throw new DevflowError({ code: 'approval_request_not_found', message: `approval request ${input.approvalRequestId} does not exist` });
    }
    if (request.state === 'pending') {
      const [decision] = await tx
        .insert(approvalDecisions)
        .values({
          approvalRequestId: request.id,
          action: input.action,
          comment: input.comment ?? null,
          decidedBy: input.decidedBy ?? null,
          idempotencyKey: approvalKeys.decision(request.id, input.action, input.clientToken),
        })
        .returning();
      checkpoint?.();
      await transitionApproval(tx, {
        approvalRequestId: request.id,
        to: DECIDED_STATE[input.action],
        event: { type: 'approval.decided', idempotencyKey: approvalKeys.decided(request.id), payload: { action: input.action, comment: input.comment ?? null, decidedBy: input.decidedBy ?? null } },
      });
      return { action: decision!.action, decisionId: decision!.id, comment: decision!.comment, created: true };
    }
    const [first] = await tx.select().from(approvalDecisions).where(eq(approvalDecisions.approvalRequestId, request.id)).orderBy(asc(approvalDecisions.createdAt)).limit(1);
    if (first) return { action: first.action, decisionId: first.id, comment: first.comment, created: false };
    return { action: request.state === 'approved' ? 'approve' : request.state === 'rejected' ? 'reject' : 'abort', decisionId: null, comment: null, created: false };
  });
}

/**
 * When a step finds its run paused under it (the session manager lost an agent while the step
 * was on its way), the gate that paused it: the step then writes nothing and the workflow waits
 * there. Locks the run row for the rest of the caller's transaction.
 */
export async function gateThatPausedRun(executor: Executor, runId: string): Promise<string | undefined> {
  const [run] = await executor.select({ state: runs.state }).from(runs).where(eq(runs.id, runId)).for('update');
  if (run?.state !== 'paused') return undefined;
  const [request] = await executor
    .select({ id: approvalRequests.id })
    .from(approvalRequests)
    .where(and(eq(approvalRequests.runId, runId), eq(approvalRequests.state, 'pending')))
    .orderBy(desc(approvalRequests.createdAt))
    .limit(1);
  return request?.id;
}

/** Closes the pending requests of a run (or of one phase) that nobody will decide now. */
export async function closePendingApprovals(executor: Executor, input: { runId: string; phaseId?: string; reason: string }): Promise<number> {
  return executor.transaction(async (tx) => {
    const open = await tx
      .select({ id: approvalRequests.id })
      .from(approvalRequests)
      .where(and(eq(approvalRequests.runId, input.runId), input.phaseId ? eq(approvalRequests.phaseId, input.phaseId) : undefined, eq(approvalRequests.state, 'pending')));
    for (const { id } of open) {
      await transitionApproval(tx, { approvalRequestId: id, to: 'closed', event: { type: 'approval.closed', idempotencyKey: approvalKeys.closed(id), payload: { reason: input.reason } } });
    }
    return open.length;
  });
}

/** The approval state machine's one writer: lock, check, update, and the event, together. */
export async function transitionApproval(
  executor: Executor,
  input: { approvalRequestId: string; to: ApprovalState; event: TransitionEvent },
): Promise<TransitionResult<ApprovalRequest>> {
  return executor.transaction(async (tx) => {
    const [request] = await tx.select().from(approvalRequests).where(eq(approvalRequests.id, input.approvalRequestId)).for('update');
    if (!request) throw notFound('approval_request', input.approvalRequestId);
    const prior = await findEventByKey(tx, input.event.idempotencyKey);
    if (prior) return { row: request, event: prior, changed: false };

    assertApprovalTransition(request.state, input.to);
    const [updated] = await tx
      .update(approvalRequests)
      .set({ state: input.to, decidedAt: sql`now()` })
      .where(eq(approvalRequests.id, input.approvalRequestId))
      .returning();
    const { event } = await appendEvent(tx, {
      runId: request.runId,
      phaseId: request.phaseId,
      type: input.event.type,
      idempotencyKey: input.event.idempotencyKey,
      payload: { approvalRequestId: request.id, gateKey: request.gateKey, from: request.state, to: input.to, ...input.event.payload },
    });
    return { row: updated!, event, changed: true };
  });
}
