// Postgres is devflow's system of record (SPEC section 3). Migrations in db/migrations are
// generated from this file with `npm run db:generate` and committed.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import {
  APPROVAL_STATES,
  DECISION_ACTIONS,
  PHASE_STATES,
  RUN_STATES,
  SESSION_STATES,
} from './state-machines.ts';

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const moment = (name: string) => timestamp(name, { withTimezone: true });

export const runState = pgEnum('run_state', RUN_STATES);
export const phaseState = pgEnum('phase_state', PHASE_STATES);
export const sessionState = pgEnum('session_state', SESSION_STATES);
export const approvalState = pgEnum('approval_state', APPROVAL_STATES);
export const decisionAction = pgEnum('decision_action', DECISION_ACTIONS);

/** Templates are stored by `name@version`; the hash pins the exact definition a run used. */
export const workflowTemplates = pgTable(
  'workflow_templates',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    version: integer('version').notNull(),
    hash: text('hash').notNull(),
    definition: jsonb('definition').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('workflow_templates_name_version').on(t.name, t.version)],
);

export const agentPersonas = pgTable(
  'agent_personas',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    version: integer('version').notNull(),
    hash: text('hash').notNull(),
    definition: jsonb('definition').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('agent_personas_name_version').on(t.name, t.version)],
);

/** Artifact schemas by id (`dev/spec@1`, `team/bugreport@1`): the JSON Schema agents are shown and artifacts are checked against. */
export const artifactSchemas = pgTable('artifact_schemas', {
  id: text('id').primaryKey(),
  hash: text('hash').notNull(),
  definition: jsonb('definition').notNull(),
  createdAt: createdAt(),
});

export const runs = pgTable(
  'runs',
  {
    id: uuid('id').primaryKey(),
    templateId: text('template_id')
      .notNull()
      .references(() => workflowTemplates.id),
    templateHash: text('template_hash').notNull(),
    state: runState('state').notNull().default('planning'),
    pausedFromState: runState('paused_from_state'),
    repoPath: text('repo_path').notNull(),
    baseBranch: text('base_branch').notNull(),
    worktreeRoot: text('worktree_root'),
    requirementsMd: text('requirements_md').notNull(),
    /** The hash of each artifact schema the run's template uses, pinned like the template's. */
    artifactSchemaHashes: jsonb('artifact_schema_hashes').$type<Record<string, string>>().notNull().default({}),
    currentPhaseId: uuid('current_phase_id'),
    finalReportPath: text('final_report_path'),
    createdAt: createdAt(),
    updatedAt: moment('updated_at').notNull().defaultNow(),
    endedAt: moment('ended_at'),
  },
  (t) => [index('runs_state_created').on(t.state, t.createdAt)],
);

export const runPhases = pgTable(
  'run_phases',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id),
    phaseKey: text('phase_key').notNull(),
    ordinal: integer('ordinal').notNull(),
    roleId: text('role_id').notNull(),
    state: phaseState('state').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    startedAt: moment('started_at'),
    endedAt: moment('ended_at'),
  },
  (t) => [
    uniqueIndex('run_phases_run_key').on(t.runId, t.phaseKey),
    uniqueIndex('run_phases_run_ordinal').on(t.runId, t.ordinal),
  ],
);

/** Append-only. `seq` is per run, strictly increasing and gapless (see db/events.ts). */
export const runEvents = pgTable(
  'run_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id),
    phaseId: uuid('phase_id').references(() => runPhases.id),
    seq: integer('seq').notNull(),
    type: text('type').notNull(),
    payload: jsonb('payload').notNull().default({}),
    idempotencyKey: text('idempotency_key').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('run_events_idempotency_key').on(t.idempotencyKey),
    uniqueIndex('run_events_run_seq').on(t.runId, t.seq),
  ],
);

export const tuiSessions = pgTable(
  'tui_sessions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id),
    roleId: text('role_id').notNull(),
    backend: text('backend').notNull(),
    /** The worker host whose tmux server holds the session. */
    hostId: text('host_id'),
    cwd: text('cwd').notNull(),
    state: sessionState('state').notNull().default('CREATED'),
    expectedArtifactPath: text('expected_artifact_path'),
    expectedSchema: text('expected_schema'),
    lastPromptHash: text('last_prompt_hash'),
    lastPromptAt: moment('last_prompt_at'),
    recoveryAttempts: integer('recovery_attempts').notNull().default(0),
    /** Times its agent process was found gone and restarted by devflow on its own (at most one; then a person). */
    processLostRecoveries: integer('process_lost_recoveries').notNull().default(0),
    tmuxSession: text('tmux_session'),
    tmuxWindow: text('tmux_window'),
    lastKnownPanePid: integer('last_known_pane_pid'),
    lastCaptureSeq: integer('last_capture_seq').notNull().default(0),
    lastOutputAt: moment('last_output_at'),
    /** The agent's own id for its conversation (what it resumes with), once known. */
    agentSessionId: text('agent_session_id'),
    /** The agent talks to devflow's playback model (offline demos and tests), not its own. */
    playback: boolean('playback').notNull().default(false),
    createdAt: createdAt(),
    updatedAt: moment('updated_at').notNull().defaultNow(),
  },
  // One live session per (run, role); a session that failed for good may be replaced.
  (t) => [
    uniqueIndex('tui_sessions_live_role')
      .on(t.runId, t.roleId)
      .where(sql`${t.state} <> 'FAILED_NEEDS_HUMAN'`),
  ],
);

export const tuiTranscripts = pgTable(
  'tui_transcripts',
  {
    sessionId: uuid('session_id')
      .notNull()
      .references(() => tuiSessions.id),
    seq: integer('seq').notNull(),
    chunk: text('chunk').notNull(),
    capturedAt: moment('captured_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.seq] })],
);

/**
 * Tokens an agent session used on a phase, read from the agent's own logs. Rewritten whole each
 * time it is read (the logs hold the totals), so reading twice never counts twice.
 */
export const agentUsage = pgTable(
  'agent_usage',
  {
    sessionId: uuid('session_id')
      .notNull()
      .references(() => tuiSessions.id),
    phaseId: uuid('phase_id')
      .notNull()
      .references(() => runPhases.id),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id),
    inputTokens: bigint('input_tokens', { mode: 'number' }).notNull(),
    outputTokens: bigint('output_tokens', { mode: 'number' }).notNull(),
    cacheReadTokens: bigint('cache_read_tokens', { mode: 'number' }).notNull().default(0),
    cacheWriteTokens: bigint('cache_write_tokens', { mode: 'number' }).notNull().default(0),
    updatedAt: moment('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.phaseId] }), index('agent_usage_run').on(t.runId)],
);

export const artifacts = pgTable(
  'artifacts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id),
    phaseId: uuid('phase_id')
      .notNull()
      .references(() => runPhases.id),
    path: text('path').notNull(),
    schemaId: text('schema_id').notNull(),
    hash: text('hash').notNull(),
    valid: boolean('valid').notNull(),
    validationError: jsonb('validation_error'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('artifacts_run_path_hash').on(t.runId, t.path, t.hash)],
);

export const approvalRequests = pgTable(
  'approval_requests',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id),
    phaseId: uuid('phase_id').references(() => runPhases.id),
    gateKey: text('gate_key').notNull(),
    state: approvalState('state').notNull().default('pending'),
    idempotencyKey: text('idempotency_key').notNull(),
    payload: jsonb('payload').notNull().default({}),
    createdAt: createdAt(),
    decidedAt: moment('decided_at'),
  },
  (t) => [uniqueIndex('approval_requests_idempotency_key').on(t.idempotencyKey)],
);

export const approvalDecisions = pgTable(
  'approval_decisions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    approvalRequestId: uuid('approval_request_id')
      .notNull()
      .references(() => approvalRequests.id),
    action: decisionAction('action').notNull(),
    comment: text('comment'),
    decidedBy: text('decided_by'),
    idempotencyKey: text('idempotency_key').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('approval_decisions_idempotency_key').on(t.idempotencyKey)],
);

/** Written by the stack self-check workflow: proof that worker, Temporal and Postgres work together. */
export const stackChecks = pgTable('stack_checks', {
  id: text('id').primaryKey(),
  workerIdentity: text('worker_identity').notNull(),
  checkedAt: moment('checked_at').notNull().defaultNow(),
});

/**
 * Events people are told of (a gate opened, a run ended), written with the event itself: the
 * worker's notifier hands each to the run's webhook delivery workflow once, then marks it.
 */
export const notificationOutbox = pgTable(
  'notification_outbox',
  {
    eventId: bigint('event_id', { mode: 'number' })
      .primaryKey()
      .references(() => runEvents.id),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id),
    createdAt: createdAt(),
    /** When it was handed to the delivery workflow (or skipped as too old); null: not yet. */
    dispatchedAt: moment('dispatched_at'),
  },
  (t) => [index('notification_outbox_pending').on(t.eventId).where(sql`${t.dispatchedAt} is null`)],
);

/**
 * A recurring run (SPEC section 12): the run request it repeats and when. Temporal's Schedule
 * `devflow-schedule:<id>` fires it; this row is the fact that it exists and what it asks for.
 */
export const schedules = pgTable('schedules', {
  id: text('id').primaryKey(),
  /** `{cron}` or `{every}` as given, and the Temporal policies devflow set from it. */
  spec: jsonb('spec').$type<{ cron?: string; every?: string; catchupWindow?: string }>().notNull(),
  /** The POST /v1/runs body each fire sends (without runId or dryRun). */
  request: jsonb('request').$type<Record<string, unknown>>().notNull(),
  /** `skip`: a fire while this schedule's last run is still active starts nothing; `allow`: it starts one anyway. */
  overlap: text('overlap').notNull(),
  createdAt: createdAt(),
  updatedAt: moment('updated_at').notNull().defaultNow(),
  deletedAt: moment('deleted_at'),
});

/**
 * One row per fire slot of a schedule: the run it started, or why it started none. The key is
 * the slot, so a slot fired twice (two workers, a retried activity) is recorded once.
 */
export const scheduleFires = pgTable(
  'schedule_fires',
  {
    scheduleId: text('schedule_id')
      .notNull()
      .references(() => schedules.id),
    /** The time Temporal meant to fire at (a manual trigger: when it was asked). */
    slot: timestamp('slot', { withTimezone: true, precision: 3 }).notNull(),
    outcome: text('outcome', { enum: ['started', 'skipped'] }).notNull(),
    runId: uuid('run_id').references(() => runs.id),
    /** Why a fire was skipped: a machine-readable code and a sentence. */
    reasonCode: text('reason_code'),
    reason: text('reason'),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.scheduleId, t.slot] }), uniqueIndex('schedule_fires_run').on(t.runId)],
);
