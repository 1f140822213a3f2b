// HTTP API payloads (SPEC section 9). The OpenAPI document is generated from these.
import { createSelectSchema } from 'drizzle-zod';
import { z } from 'zod';
import { agentPersonas, approvalDecisions, artifactSchemas, approvalRequests, artifacts, runEvents, runPhases, runs, scheduleFires, tuiSessions, workflowTemplates } from '../db/schema.ts';
import { DECISION_ACTIONS, RUN_STATES } from '../db/state-machines.ts';
import { hasNoNul } from '../lib/text.ts';
import { SCENARIOS } from '../sessions/scenarios.ts';
import { RUN_BACKENDS } from '../workflows/messages.ts';

/** The template a run uses when the request names none. */
export const DEFAULT_TEMPLATE = 'development@2';
/** What a role's agent can be (the fake one only exists on workers built for tests). */
export const RUN_AGENTS = ['claude-code', 'codex', 'scripted', 'fake'] as const;

const scenario = z.enum(SCENARIOS);

/** Text the API stores: Postgres cannot hold a NUL, so a request with one is refused, naming the field. */
const NO_NUL = 'must not contain a NUL character (\\u0000): devflow stores it as text, which cannot hold one';
/** Nor can it hold half a surrogate pair in JSON (events carry comments and reasons): such text is not Unicode. */
const UNPAIRED = 'must be Unicode text: it holds half of a surrogate pair';
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const wellFormed = (text: string) => !UNPAIRED_SURROGATE.test(text);
/** A string field whose text devflow stores: refused, naming the field, when Postgres could not hold it. */
const stored = (text: z.ZodString) => text.refine(hasNoNul, NO_NUL).refine(wellFormed, UNPAIRED);

export const startRunBody = z
  .object({
    template: z.string().regex(/^[a-z][a-z0-9-]*@[1-9][0-9]*$/, 'name@version').default(DEFAULT_TEMPLATE),
    requirementsMd: stored(z.string().trim().min(1, 'must not be empty').max(1_000_000)),
    repoPath: stored(z.string().min(1)).refine((p) => p.startsWith('/'), 'must be an absolute path'),
    baseBranch: stored(z.string().min(1).max(255)),
    runId: z.uuid().optional(),
    /** Every role's agent, unless `agents` names it: `tmux` = this host's configured real agent. */
    backend: z.enum(RUN_BACKENDS).optional(),
    /** An agent per role; roles not named use `backend`, then their persona's agent, then the configured one. */
    agents: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), z.enum(RUN_AGENTS)).optional(),
    /** Real agents talk to devflow's local playback model (offline, no key; it plays `scenarios`). */
    playback: z.boolean().optional(),
    scenarios: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), z.union([scenario, z.array(scenario).min(1)])).optional(),
    /** Check everything and show what would run, writing nothing. */
    dryRun: z.boolean().optional(),
    /** How many times a person may send one phase back for another try (default 3). */
    maxPhaseRetries: z.number().int().min(0).max(20).optional(),
    timing: z
      .object({
        artifactTimeoutMs: z.number().int().positive().optional(),
        stabilityMs: z.number().int().min(0).optional(),
        pollMs: z.number().int().positive().optional(),
        maxHungMs: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type StartRunBody = z.infer<typeof startRunBody>;

export const startRunResponse = z.object({ runId: z.uuid(), workflowId: z.string() });
export const dryRunResponse = z.object({
  dryRun: z.literal(true),
  runId: z.uuid(),
  template: z.string(),
  worktree: z.string(),
  phases: z.array(
    z.object({
      key: z.string(),
      title: z.string(),
      role: z.string(),
      agent: z.string(),
      artifact: z.object({ schema: z.string(), path: z.string(), timeoutMs: z.number().int() }),
      gate: z.string().nullable(),
      loop: z.object({ field: z.string(), equals: z.union([z.string(), z.number(), z.boolean()]), to: z.string(), maxRounds: z.number() }).nullable(),
      /** The first prompt the agent would receive (quotes of earlier artifacts are filled in at run time). */
      prompt: z.string(),
    }),
  ),
});

export const runIdParams = z.object({ runId: z.uuid() });
export const approvalParams = z.object({ runId: z.uuid(), approvalId: z.uuid() });

export const listRunsQuery = z.object({
  state: z.enum(RUN_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().optional(),
});

/** A seq is a Postgres integer: beyond it there is nothing to resume after. */
export const MAX_SEQ = 2 ** 31 - 1;
export const eventsQuery = z.object({ after: z.coerce.number().int().min(0).max(MAX_SEQ).default(0) });

export const decisionBody = z
  .object({
    action: z.enum(DECISION_ACTIONS),
    clientToken: stored(z.string().min(1).max(200)),
    comment: stored(z.string().max(10_000)).optional(),
    decidedBy: stored(z.string().max(200)).optional(),
  })
  .strict();

export const abortBody = z.object({ clientToken: stored(z.string().min(1).max(200)), reason: stored(z.string().max(2_000)).optional() }).strict();

export const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

// ---- responses: derived from the tables, so a renamed column changes the contract visibly ----

/** A JSON column: an object whose shape the event or gate type decides. */
const jsonObject = z.record(z.string(), z.unknown());

export const runSchema = createSelectSchema(runs).meta({ id: 'Run' });
export const phaseSchema = createSelectSchema(runPhases).meta({ id: 'Phase' });
export const sessionSchema = createSelectSchema(tuiSessions).meta({ id: 'Session' });
export const artifactSchema = createSelectSchema(artifacts, { validationError: jsonObject.nullable() }).meta({ id: 'Artifact' });
export const decisionSchema = createSelectSchema(approvalDecisions).meta({ id: 'Decision' });
export const approvalSchema = createSelectSchema(approvalRequests, { payload: jsonObject }).extend({ decisions: z.array(decisionSchema) }).meta({ id: 'ApprovalRequest' });
export const eventSchema = createSelectSchema(runEvents, { payload: jsonObject }).meta({ id: 'RunEvent' });
export const templateSchema = createSelectSchema(workflowTemplates, { definition: jsonObject }).meta({ id: 'Template' });
export const personaSchema = createSelectSchema(agentPersonas, { definition: jsonObject }).meta({ id: 'Persona' });

const tokens = {
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cacheReadTokens: z.number().int(),
  cacheWriteTokens: z.number().int(),
};
export const usageSchema = z
  .object({
    total: z.object(tokens),
    phases: z.array(z.object({ phaseKey: z.string(), ...tokens })),
    sessions: z.array(z.object({ sessionId: z.uuid(), roleId: z.string(), backend: z.string(), ...tokens })),
  })
  .meta({ id: 'Usage' });

/** Why a run, phase or session stopped and what happens next (db/stops.ts). */
export const stopSchema = z
  .object({ code: z.string(), reason: z.string(), next: z.string() })
  .meta({ id: 'Stop', description: 'why it stopped (a machine-readable code and a sentence) and the next action a person or devflow takes' });

export const runDetailResponse = z.object({
  run: runSchema,
  /** The run's stop: its pending gate or how it ended; null while it works. */
  stop: stopSchema.nullable(),
  phases: z.array(phaseSchema.extend({ stop: stopSchema.nullable() })),
  /** `flag`: a session devflow kept though something is wrong with it (an agent alive but silent). */
  sessions: z.array(sessionSchema.extend({ stop: stopSchema.nullable(), flag: stopSchema.nullable() })),
  artifacts: z.array(artifactSchema),
  approvals: z.array(approvalSchema),
  usage: usageSchema,
  finalReportPath: z.string().nullable(),
});
export const runListResponse = z.object({ runs: z.array(runSchema), nextCursor: z.string().nullable() });
export const eventListResponse = z.object({ events: z.array(eventSchema) });
export const approvalListResponse = z.object({ approvals: z.array(approvalSchema) });
export const decisionResponse = z.object({
  approvalRequestId: z.uuid(),
  gateKey: z.string(),
  action: z.enum(DECISION_ACTIONS),
  decisionId: z.uuid().nullable(),
  /** Set when the run had already ended (the decision was only recorded). */
  runState: z.enum(RUN_STATES).optional(),
});
export const abortEndedResponse = z.object({ runId: z.uuid(), state: z.enum(RUN_STATES) });
export const abortSentResponse = z.object({ runId: z.uuid(), workflowId: z.string() });
export const artifactSchemaSchema = createSelectSchema(artifactSchemas, { definition: jsonObject }).meta({ id: 'ArtifactSchema' });
export const problemSchema = z.object({ file: z.string(), path: z.string(), message: z.string() }).meta({ id: 'DefinitionProblem' });
export const templatesResponse = z.object({
  templates: z.array(templateSchema),
  personas: z.array(personaSchema),
  artifactSchemas: z.array(artifactSchemaSchema),
  /** Definitions refused at the last load, and why. */
  problems: z.array(problemSchema),
});
export const reloadResponse = z.object({
  templates: z.array(z.string()),
  personas: z.array(z.string()),
  artifactSchemas: z.array(z.string()),
  problems: z.array(problemSchema),
});
export const healthResponse = z.object({ status: z.literal('ok') });
export const readyResponse = z.object({ status: z.literal('ready'), checks: z.object({ postgres: z.string(), temporal: z.string() }) });

export const artifactParams = z.object({ runId: z.uuid(), artifactId: z.uuid() });
export const sessionParams = z.object({ runId: z.uuid(), sessionId: z.uuid() });
export const pendingApprovalsQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(200) });

export const artifactContentResponse = z.object({
  artifact: artifactSchema,
  /** The file as it is now: parsed when it is JSON, otherwise null (see `text`). */
  content: z.unknown(),
  text: z.string().nullable(),
  /** The file is gone, or its bytes are no longer the ones validated (`artifact.hash`). */
  changed: z.boolean(),
});
export const transcriptResponse = z.object({ sessionId: z.uuid(), roleId: z.string(), text: z.string() });
export const pendingApprovalsResponse = z.object({
  approvals: z.array(
    approvalSchema.extend({
      run: z.object({ id: z.uuid(), state: z.enum(RUN_STATES), templateId: z.string(), repoPath: z.string(), baseBranch: z.string() }),
      phaseKey: z.string().nullable(),
    }),
  ),
});

/** What each fire of a schedule asks for: a POST /v1/runs body without its run id or dry run. */
export const scheduledRunRequest = startRunBody.omit({ runId: true, dryRun: true });
export type ScheduledRunRequest = z.infer<typeof scheduledRunRequest>;

const duration = z.string().regex(/^[1-9][0-9]*(s|m|h|d)$/, 'a whole number and s, m, h or d, e.g. 15m');
export const SCHEDULE_OVERLAPS = ['skip', 'allow'] as const;

/** Temporal refuses a pause or resume note over this many bytes of UTF-8. */
const SCHEDULE_NOTE_BYTES = 1_000;
/**
 * A schedule's note, which Temporal keeps: any text but half a surrogate pair (its gRPC calls cannot
 * carry one), at most 500 characters and at most Temporal's 1,000 bytes (500 CJK characters are 1,500).
 */
const scheduleNote = z
  .string()
  .max(500)
  .refine(wellFormed, UNPAIRED)
  .refine((text) => Buffer.byteLength(text) <= SCHEDULE_NOTE_BYTES, `at most ${SCHEDULE_NOTE_BYTES} bytes of UTF-8 (Temporal's limit)`);

export const createScheduleBody = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, at most 63'),
    /** A cron expression (five fields, UTC), or `every` an interval: exactly one of them. */
    cron: stored(z.string().trim().min(1).max(200)).optional(),
    every: duration.optional(),
    /** `skip` (default): a fire while this schedule's last run is still active starts nothing, and says so. */
    overlap: z.enum(SCHEDULE_OVERLAPS).default('skip'),
    /** Fires missed while Temporal was down are made up only within this window (default 5m). */
    catchupWindow: duration.default('5m'),
    paused: z.boolean().default(false),
    note: scheduleNote.optional(),
    request: scheduledRunRequest,
  })
  .strict()
  .refine((b) => (b.cron === undefined) !== (b.every === undefined), { path: ['cron'], message: 'give exactly one of cron and every' });
export type CreateScheduleBody = z.infer<typeof createScheduleBody>;

export const scheduleParams = z.object({ scheduleId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a schedule id') });
export const scheduleNoteBody = z.object({ note: scheduleNote.optional() }).strict().default({});

export const scheduleFireSchema = createSelectSchema(scheduleFires).meta({ id: 'ScheduleFire' });
export const scheduleSchema = z
  .object({
    id: z.string(),
    cron: z.string().nullable(),
    every: z.string().nullable(),
    overlap: z.enum(SCHEDULE_OVERLAPS),
    catchupWindow: z.string(),
    request: jsonObject,
    createdAt: z.date(),
    /**
     * Whether Temporal has the schedule: `found`; `missing` when it was deleted there (delete it
     * here and create it again); `unreachable` when Temporal did not answer within 5 s.
     */
    temporal: z.enum(['found', 'missing', 'unreachable']),
    /** From Temporal: null unless `temporal` is `found`. */
    paused: z.boolean().nullable(),
    note: z.string().nullable(),
    nextFires: z.array(z.date()),
    /** The latest fires, newest first: the run each started, or why it started none. */
    fires: z.array(scheduleFireSchema),
  })
  .meta({ id: 'Schedule' });
export const scheduleListResponse = z.object({ schedules: z.array(scheduleSchema) });
export const scheduleDeletedResponse = z.object({ id: z.string(), deleted: z.literal(true) });
export const scheduleTriggeredResponse = z.object({ id: z.string(), triggered: z.literal(true) });
