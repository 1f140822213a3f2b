// Decisions on approval requests: recorded once, first decision wins. The API records a
// decision before signalling the workflow, and the workflow's activity records it again:
// both land here, so the second write finds the first.
import { asc, eq } from 'drizzle-orm';
import { DevflowError } from '../lib/errors.ts';
import type { Executor } from './client.ts';
import { appendEvent } from './events.ts';
import { approvalDecisions, approvalRequests } from './schema.ts';
import type { DecisionAction } from './state-machines.ts';

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

const STATE_OF: Record<DecisionAction, 'approved' | 'rejected' | 'aborted'> = { approve: 'approved', reject: 'rejected', abort: 'aborted' };
const ACTION_OF = { approved: 'approve', rejected: 'reject', aborted: 'abort' } as const;

export async function recordDecision(executor: Executor, input: DecisionInput, checkpoint?: () => void): Promise<RecordedDecision> {
  return executor.transaction(async (tx) => {
    const [request] = await tx.select().from(approvalRequests).where(eq(approvalRequests.id, input.approvalRequestId)).for('update');
    if (!request) {
      throw new DevflowError({ errorClass: 'fatal', code: 'approval_request_not_found', message: `approval request ${input.approvalRequestId} does not exist` });
    }
    if (request.state === 'pending') {
      const [decision] = await tx
        .insert(approvalDecisions)
        .values({
          approvalRequestId: request.id,
          action: input.action,
          comment: input.comment ?? null,
          decidedBy: input.decidedBy ?? null,
          idempotencyKey: `${request.id}:${input.action}:${input.clientToken}`,
        })
        .returning();
      await tx.update(approvalRequests).set({ state: STATE_OF[input.action], decidedAt: new Date() }).where(eq(approvalRequests.id, request.id));
      checkpoint?.();
      await appendEvent(tx, {
        runId: request.runId,
        phaseId: request.phaseId,
        type: 'approval.decided',
        idempotencyKey: `approval:${request.id}:decided`,
        payload: { approvalRequestId: request.id, gateKey: request.gateKey, action: input.action, comment: input.comment ?? null, decidedBy: input.decidedBy ?? null },
      });
      return { action: decision!.action, decisionId: decision!.id, comment: decision!.comment, created: true };
    }
    const [first] = await tx.select().from(approvalDecisions).where(eq(approvalDecisions.approvalRequestId, request.id)).orderBy(asc(approvalDecisions.createdAt)).limit(1);
    if (!first) return { action: ACTION_OF[request.state], decisionId: null, comment: null, created: false };
    return { action: first.action, decisionId: first.id, comment: first.comment, created: false };
  });
}
