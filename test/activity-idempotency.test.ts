// Every activity is idempotent: run twice, it ends in the same rows and events; failed half-way
// (an injected crash at each of its checkpoints) and run again, it ends where a clean run does.
// Activities are called directly against the real Postgres, real git and the fake backend.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { asc, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type Activities } from '../activities/index.ts';
import type { PreparedRun } from '../activities/prepare-run.ts';
import { approvalDecisions, approvalRequests, artifacts, runEvents, runPhases, runs, tuiSessions, tuiTranscripts } from '../db/schema.ts';
import { FakeSessionDriver } from '../sessions/fake.ts';
import { sessionDrivers } from '../sessions/index.ts';
import type { Scenario } from '../sessions/scenarios.ts';
import { useDatabase } from './helpers/database.ts';
import { makeRepo } from './helpers/run-harness.ts';

const { db } = useDatabase();
const fake = new FakeSessionDriver({ writeDelayMs: 5 });
let root = '';
let fault: string | undefined;
let activities: Activities;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'devflow-idem-'));
  activities = createActivities({
    db,
    drivers: sessionDrivers({ fake }),
    workspaceRoot: path.join(root, 'workspaces'),
    hostId: 'idempotency-host',
    hostQueue: 'devflow-host:idempotency-host',
    checkpoint: (point) => {
      if (point === fault) {
        fault = undefined;
        throw new Error(`injected crash at ${point}`);
      }
    },
  });
});
afterAll(async () => {
  await fake.settle();
  await rm(root, { recursive: true, force: true });
});

/** What a step has produced so far, for the steps after it. */
interface Ctx {
  runId: string;
  plan?: PreparedRun;
  sessionId?: string;
  approvalRequestId?: string;
}

interface Step {
  name: keyof Activities;
  /** Checkpoints inside the activity where a crash is injected. */
  points: string[];
  run(ctx: Ctx): Promise<unknown>;
}

const spec = (ctx: Ctx) => ctx.plan!.phases[0]!;

function prompt(ctx: Ctx, attempt: number, kind: 'initial' | 'repair', scenario: Scenario) {
  const phase = spec(ctx);
  return activities.sendPrompt({
    runId: ctx.runId, phaseId: phase.id, phaseKey: phase.key, sessionId: ctx.sessionId!, roleId: phase.roleId, attempt, kind,
    worktreePath: ctx.plan!.worktreePath, artifactPath: phase.artifactPath, schemaId: phase.schemaId, instructions: phase.instructions,
    personaInstructions: 'be brief', timeoutMs: 5_000, scenario, ...(kind === 'repair' ? { errors: ['(root): broken'] } : {}),
  });
}

const awaitArtifact = (ctx: Ctx, attempt: number) =>
  new MockActivityEnvironment().run(activities.awaitArtifact, {
    phaseKey: 'spec', attempt, artifactPath: spec(ctx).artifactPath, baseline: null, timeoutMs: 5_000, stabilityMs: 50, pollMs: 20,
  });

const validate = (ctx: Ctx, attempt: number) =>
  activities.validateArtifact({ runId: ctx.runId, phaseId: spec(ctx).id, attempt, artifactPath: spec(ctx).artifactPath, schemaId: spec(ctx).schemaId });

const common = {
  prepareRun: {
    name: 'prepareRun', points: ['prepareRun:rows', 'prepareRun:worktree'],
    run: async (ctx: Ctx) => {
      ctx.plan = await activities.prepareRun({ runId: ctx.runId, templateId: 'development@1', repoPath: repoFor(ctx.runId), baseBranch: 'main', requirementsMd: '# R\n', backend: 'fake' });
    },
  },
  ensureSession: {
    name: 'ensureSession', points: ['ensureSession:started'],
    run: async (ctx: Ctx) => {
      ctx.sessionId = (await activities.ensureSession({ runId: ctx.runId, roleId: 'spec_writer', backend: 'fake', cwd: ctx.plan!.worktreePath })).sessionId;
    },
  },
  beginAttempt: { name: 'beginAttempt', points: [], run: (ctx: Ctx) => activities.beginAttempt({ phaseId: spec(ctx).id, attempt: 1, kind: 'initial' }) },
} satisfies Record<string, Step>;

const approvalPath: Step[] = [
  common.prepareRun,
  common.ensureSession,
  common.beginAttempt,
  { name: 'sendPrompt', points: ['sendPrompt:delivered'], run: (ctx) => prompt(ctx, 1, 'initial', 'ok') },
  { name: 'awaitArtifact', points: [], run: (ctx) => awaitArtifact(ctx, 1) },
  { name: 'validateArtifact', points: ['validateArtifact:checked', 'validateArtifact:row'], run: (ctx) => validate(ctx, 1) },
  {
    name: 'openApprovalGate', points: ['openApprovalGate:phase'],
    run: async (ctx) => {
      const opened = await activities.openApprovalGate({ runId: ctx.runId, phaseId: spec(ctx).id, sessionId: ctx.sessionId!, gateKey: 'spec_approved', attempt: 1 });
      if (!('approvalRequestId' in opened)) throw new Error(`the run was paused under the gate: ${opened.pausedBy}`);
      ctx.approvalRequestId = opened.approvalRequestId;
    },
  },
  { name: 'recordDecision', points: ['recordDecision:request'], run: (ctx) => activities.recordDecision({ approvalRequestId: ctx.approvalRequestId!, action: 'approve', clientToken: 'tok', comment: 'ok' }) },
  { name: 'passApprovalGate', points: ['passApprovalGate:phase'], run: (ctx) => activities.passApprovalGate({ runId: ctx.runId, phaseId: spec(ctx).id, sessionId: ctx.sessionId!, approvalRequestId: ctx.approvalRequestId! }) },
  { name: 'finalizeRun', points: ['finalizeRun:terminal', 'finalizeRun:disposed'], run: (ctx) => activities.finalizeRun({ runId: ctx.runId, outcome: { state: 'completed', reason: 'done' } }) },
];

const recoveryPath: Step[] = [
  common.prepareRun,
  common.ensureSession,
  common.beginAttempt,
  { name: 'sendPrompt', points: [], run: (ctx) => prompt(ctx, 1, 'initial', 'hang') },
  { name: 'probeSession', points: [], run: (ctx) => activities.probeSession({ sessionId: ctx.sessionId!, cycle: `${spec(ctx).id}:1`, maxHungMs: 0 }) },
  { name: 'rebootstrapSession', points: ['rebootstrap:restarted'], run: (ctx) => activities.rebootstrapSession({ sessionId: ctx.sessionId!, cycle: `${spec(ctx).id}:1` }) },
  { name: 'beginAttempt', points: [], run: (ctx) => activities.beginAttempt({ phaseId: spec(ctx).id, attempt: 2, kind: 'repair' }) },
  { name: 'sendPrompt', points: [], run: (ctx) => prompt(ctx, 2, 'repair', 'ok') },
  { name: 'awaitArtifact', points: [], run: (ctx) => awaitArtifact(ctx, 2) },
  { name: 'validateArtifact', points: [], run: (ctx) => validate(ctx, 2) },
  { name: 'completePhase', points: ['completePhase:transitions', 'captureTranscript:rows'], run: (ctx) => activities.completePhase({ phaseId: spec(ctx).id, sessionId: ctx.sessionId!, attempt: 2 }) },
  { name: 'captureTranscript', points: [], run: (ctx) => activities.captureTranscript({ sessionId: ctx.sessionId! }) },
];

const humanGatePath: Step[] = [
  common.prepareRun,
  common.ensureSession,
  common.beginAttempt,
  { name: 'sendPrompt', points: [], run: (ctx) => prompt(ctx, 1, 'initial', 'schema_invalid') },
  { name: 'awaitArtifact', points: [], run: (ctx) => awaitArtifact(ctx, 1) },
  { name: 'validateArtifact', points: [], run: (ctx) => validate(ctx, 1) },
  {
    name: 'openHumanGate', points: ['openHumanGate:phase'],
    run: async (ctx) => {
      const opened = await activities.openHumanGate({
        runId: ctx.runId, phaseId: spec(ctx).id, sessionId: ctx.sessionId!, sessionTo: 'FAILED_NEEDS_HUMAN', gateKey: 'artifact_invalid_after_repair', attempt: 1, reason: 'invalid',
      });
      if (!('approvalRequestId' in opened)) throw new Error(`the run was paused under the gate: ${opened.pausedBy}`);
      ctx.approvalRequestId = opened.approvalRequestId;
    },
  },
  { name: 'recordDecision', points: [], run: (ctx) => activities.recordDecision({ approvalRequestId: ctx.approvalRequestId!, action: 'approve', clientToken: 'tok' }) },
  { name: 'resumeAfterHumanGate', points: [], run: (ctx) => activities.resumeAfterHumanGate({ runId: ctx.runId, approvalRequestId: ctx.approvalRequestId! }) },
  { name: 'finalizeRun', points: ['finalizeRun:terminal', 'finalizeRun:disposed'], run: (ctx) => activities.finalizeRun({ runId: ctx.runId, outcome: { state: 'aborted', reason: 'stopped' } }) },
];

const repos = new Map<string, string>();
function repoFor(runId: string): string {
  if (!repos.has(runId)) repos.set(runId, makeRepo(root));
  return repos.get(runId)!;
}

async function upTo(steps: Step[], index: number): Promise<Ctx> {
  const ctx: Ctx = { runId: randomUUID() };
  for (const step of steps.slice(0, index)) await step.run(ctx);
  return ctx;
}

/** Every row the run owns, in a stable order. */
async function rowsOf(runId: string) {
  const sessions = await db.select().from(tuiSessions).where(eq(tuiSessions.runId, runId)).orderBy(asc(tuiSessions.createdAt));
  const requests = await db.select().from(approvalRequests).where(eq(approvalRequests.runId, runId)).orderBy(asc(approvalRequests.createdAt));
  return {
    run: await db.select().from(runs).where(eq(runs.id, runId)),
    phases: await db.select().from(runPhases).where(eq(runPhases.runId, runId)).orderBy(asc(runPhases.ordinal)),
    events: await db.select().from(runEvents).where(eq(runEvents.runId, runId)).orderBy(asc(runEvents.seq)),
    sessions,
    transcripts: sessions.length ? await db.select().from(tuiTranscripts).where(inArray(tuiTranscripts.sessionId, sessions.map((s) => s.id))).orderBy(asc(tuiTranscripts.sessionId), asc(tuiTranscripts.seq)) : [],
    artifacts: await db.select().from(artifacts).where(eq(artifacts.runId, runId)).orderBy(asc(artifacts.createdAt)),
    requests,
    decisions: requests.length ? await db.select().from(approvalDecisions).where(inArray(approvalDecisions.approvalRequestId, requests.map((r) => r.id))) : [],
  };
}

// Measured or generated per run; equal logic still gives different values.
const VOLATILE = new Set(['id', 'outputAgeMs', 'createdAt', 'updatedAt', 'endedAt', 'startedAt', 'decidedAt', 'capturedAt', 'lastPromptAt', 'lastOutputAt']);

/** Two runs' rows, comparable: ids, hashes and times become placeholders in order of appearance. */
function normalized(rows: unknown): unknown {
  const names = new Map<string, string>();
  const name = (value: string, kind: string) => {
    if (!names.has(value)) names.set(value, `<${kind}${names.size + 1}>`);
    return names.get(value)!;
  };
  const walk = (value: unknown): unknown => {
    if (value instanceof Date) return '<time>';
    if (Array.isArray(value)) return value.map(walk);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).filter(([k]) => !VOLATILE.has(k)).map(([k, v]) => [k, walk(v)]));
    }
    if (typeof value === 'string') {
      return value
        .replaceAll(root, '<root>')
        .replace(/repo-[0-9a-f]{8}/g, 'repo')
        .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (m) => name(m, 'id'))
        .replace(/\b[0-9a-f]{64}\b/g, (m) => name(m, 'hash'));
    }
    return value;
  };
  return walk(rows);
}

describe.each([
  ['approval path', approvalPath],
  ['recovery path', recoveryPath],
  ['human gate path', humanGatePath],
])('activities on the %s', (_label, steps) => {
  it.each(steps.map((step, index) => [`${index + 1}. ${step.name}`, index] as const))('%s: twice, and after a crash half-way, ends in the same rows', async (_title, index) => {
    const step = steps[index]!;
    const clean = await upTo(steps, index);
    await step.run(clean);
    const once = await rowsOf(clean.runId);
    await step.run(clean);
    expect(await rowsOf(clean.runId)).toEqual(once);

    for (const point of step.points) {
      const crashed = await upTo(steps, index);
      fault = point;
      await expect(step.run(crashed)).rejects.toThrow(`injected crash at ${point}`);
      expect(fault, `${point} was reached`).toBeUndefined();
      await step.run(crashed);
      expect(normalized(await rowsOf(crashed.runId)), `after a crash at ${point}`).toEqual(normalized(once));
    }
  });
});

describe('a session given up on while its phase finishes', () => {
  it('stays failed when its phase completes after a person approved the recovery gate; the role gets a new agent next time', async () => {
    // The agent wrote its artifact, then was lost a second time: the session manager gave up on it.
    const ctx = await upTo(recoveryPath, recoveryPath.findIndex((s) => s.name === 'completePhase'));
    await db.update(tuiSessions).set({ state: 'FAILED_NEEDS_HUMAN' }).where(eq(tuiSessions.id, ctx.sessionId!));
    await activities.completePhase({ phaseId: spec(ctx).id, sessionId: ctx.sessionId!, attempt: 2 });
    const [phase] = await db.select().from(runPhases).where(eq(runPhases.id, spec(ctx).id));
    const [session] = await db.select().from(tuiSessions).where(eq(tuiSessions.id, ctx.sessionId!));
    expect([phase!.state, session!.state]).toEqual(['completed', 'FAILED_NEEDS_HUMAN']);
  });
});
