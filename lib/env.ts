// devflow's configuration: environment variables, parsed once with zod at start.
// A bad value stops start-up with a message naming the variable.
import { isIPv4 } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_MAX_ARTIFACT_BYTES } from './artifact-files.ts';

const port = z.coerce.number().int().min(1).max(65535);
const optionalText = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

/** Loopback by name, or an IPv4 address in 127.0.0.0/8 (a name such as 127.example.com may resolve anywhere). */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || (isIPv4(host) && host.startsWith('127.'));
}

const envSchema = z
  .object({
    DEVFLOW_HOME: z.string().trim().min(1).default('.devflow'),
    DEVFLOW_WORKSPACE_ROOT: optionalText,
    DEVFLOW_API_HOST: z.string().trim().min(1).default('127.0.0.1'),
    DEVFLOW_API_PORT: port.default(7400),
    DEVFLOW_API_TOKEN: optionalText,
    DATABASE_URL: optionalText.pipe(
      z
        .string()
        .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
        .optional(),
    ),
    DEVFLOW_PG_PORT: port.default(7432),
    TEMPORAL_ADDRESS: optionalText.pipe(
      z
        .string()
        .regex(/^[^\s:/]+:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:7233')
        .optional(),
    ),
    TEMPORAL_NAMESPACE: z.string().trim().min(1).default('default'),
    DEVFLOW_TEMPORAL_PORT: port.default(7233),
    DEVFLOW_TEMPORAL_UI_PORT: port.default(8233),
    DEVFLOW_TASK_QUEUE: z.string().trim().min(1).default('devflow-runs'),
    DEVFLOW_MAX_CONCURRENT_RUNS: z.coerce.number().int().min(1).default(20),
    DEVFLOW_MAX_RUNS_PER_REPO: z.coerce.number().int().min(0).default(0),
    DEVFLOW_WORKFLOW_CACHE: z.coerce.number().int().min(2, 'at least 2').optional(),
    TEMPORAL_CLI_PATH: optionalText,
    DEVFLOW_HOST_ID: z.string().trim().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash, underscore').optional(),
    DEVFLOW_AGENT_PRESET: z.enum(['claude-code', 'codex']).default('claude-code'),
    DEVFLOW_AGENT_TRUST_WORKTREE: z.enum(['yes', 'ask']).default('yes'),
    DEVFLOW_AGENT_PERMISSIONS: z.enum(['bypass', 'ask']).default('bypass'),
    DEVFLOW_AGENT_READY_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(60_000),
    DEVFLOW_PLAYBACK_PORT: port.default(7480),
    DEVFLOW_DEFINITIONS_DIR: optionalText,
    DEVFLOW_WEB_UI_URL: optionalText.pipe(z.string().url('must be a URL, e.g. http://temporal-ui.internal:8080').optional()),
    DEVFLOW_CLAUDE_CODE_PATH: optionalText,
    DEVFLOW_CODEX_PATH: optionalText,
    DEVFLOW_SHUTDOWN_DRAIN_MS: z.coerce.number().int().min(0).default(10_000),
    DEVFLOW_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(100).default(15_000),
    DEVFLOW_HUNG_PROBES: z.coerce.number().int().min(1).max(20).default(3),
    DEVFLOW_RESTART_LIMIT: z.coerce.number().int().min(0).max(1_000).default(5),
    DEVFLOW_PROBE_INTERVAL_MS: z.coerce.number().int().min(0).default(2_000),
    DEVFLOW_MAX_ARTIFACT_BYTES: z.coerce.number().int().min(1_024, 'at least 1024 bytes').default(DEFAULT_MAX_ARTIFACT_BYTES),
    DEVFLOW_WEBHOOK_URLS: z
      .string()
      .trim()
      .default('')
      .transform((value) => value.split(',').map((u) => u.trim()).filter(Boolean))
      .pipe(z.array(z.url({ protocol: /^https?$/, error: 'a comma-separated list of http(s) URLs' }))),
    DEVFLOW_WEBHOOK_SECRET: optionalText,
    DEVFLOW_WEBHOOK_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
    DEVFLOW_LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
  })
  .superRefine((env, ctx) => {
    if (!isLoopbackHost(env.DEVFLOW_API_HOST) && !env.DEVFLOW_API_TOKEN) {
      ctx.addIssue({
        code: 'custom',
        path: ['DEVFLOW_API_HOST'],
        message: `${env.DEVFLOW_API_HOST} is beyond loopback; set DEVFLOW_API_TOKEN to listen there`,
      });
    }
  });

export interface DevflowConfig {
  home: string;
  workspaceRoot: string;
  runDir: string;
  logDir: string;
  api: { host: string; port: number; token: string | undefined };
  /** Unset = embedded Postgres under `$DEVFLOW_HOME/pg`. */
  databaseUrl: string | undefined;
  embeddedPostgresPort: number;
  temporal: {
    /** Unset = local dev server started by `devflow up`. */
    address: string | undefined;
    namespace: string;
    devServerPort: number;
    uiPort: number;
    cliPath: string | undefined;
    /** The Temporal Web UI, for links to a run's execution (unset with an external Temporal and no DEVFLOW_WEB_UI_URL). */
    webUiUrl: string | undefined;
  };
  taskQueue: string;
  /** A folder of the user's own templates, personas and artifact schemas (besides the built-ins). */
  definitionsDir: string;
  /** This worker host: its tmux server and host-bound activities (`devflow-host:<hostId>`). */
  hostId: string;
  tmuxSocket: string;
  /** The real agent runs use unless a persona or the request names another (and what `tmux` runs). */
  agentPreset: 'claude-code' | 'codex';
  agents: {
    /** Answer an agent's "trust this folder?" for a run worktree, or ask a person. */
    trustWorktree: boolean;
    /** Start agents without their permission prompts, or with them (each one then stops the run for a person). */
    bypassPermissions: boolean;
    readyTimeoutMs: number;
    /** Config folders of the agents that talk to devflow's playback model, and its port (fixed, so agents outlive a worker restart). */
    playbackHome: string;
    playbackPort: number;
  };
  shutdownDrainMs: number;
  /** Restarts `devflow up` gives one part within five minutes before it stops the stack. */
  restartLimit: number;
  /** How often each worker looks for stranded runs and leftover agents. */
  reconcileIntervalMs: number;
  /** Probes that must agree before an agent counts as HUNG, and the pause between them. */
  probes: { hung: number; intervalMs: number };
  /** The most bytes an artifact may have; a bigger one is refused without being read. */
  maxArtifactBytes: number;
  /** Where a gate that opens and a run that ends are POSTed, signed with the secret, tried `attempts` times. */
  webhooks: { urls: string[]; secret: string | undefined; attempts: number };
  maxConcurrentRuns: number;
  /** Active runs allowed on one repository; 0: no limit of its own. */
  maxRunsPerRepo: number;
  /**
   * Run workflows a worker keeps in memory; unset: the SDK's default, sized by the heap (~900
   * here). Past it, the least recently active (runs parked at a gate) are dropped and replayed
   * from their history when something next happens to them.
   */
  workflowCacheSize: number | undefined;
  logLevel: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): DevflowConfig {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? 'environment');
        const value = source[variable];
        const shown = value === undefined ? '' : ` (got ${JSON.stringify(value)})`;
        return `${variable}: ${issue.message}${shown}`;
      }),
    );
  }
  const env = parsed.data;
  const home = path.resolve(env.DEVFLOW_HOME);
  return {
    home,
    workspaceRoot: path.resolve(env.DEVFLOW_WORKSPACE_ROOT ?? path.join(home, 'workspaces')),
    runDir: path.join(home, 'run'),
    logDir: path.join(home, 'logs'),
    api: { host: env.DEVFLOW_API_HOST, port: env.DEVFLOW_API_PORT, token: env.DEVFLOW_API_TOKEN },
    databaseUrl: env.DATABASE_URL,
    embeddedPostgresPort: env.DEVFLOW_PG_PORT,
    temporal: {
      address: env.TEMPORAL_ADDRESS,
      namespace: env.TEMPORAL_NAMESPACE,
      devServerPort: env.DEVFLOW_TEMPORAL_PORT,
      uiPort: env.DEVFLOW_TEMPORAL_UI_PORT,
      cliPath: env.TEMPORAL_CLI_PATH,
      webUiUrl: env.DEVFLOW_WEB_UI_URL ?? (env.TEMPORAL_ADDRESS ? undefined : `http://127.0.0.1:${env.DEVFLOW_TEMPORAL_UI_PORT}`),
    },
    taskQueue: env.DEVFLOW_TASK_QUEUE,
    definitionsDir: path.resolve(env.DEVFLOW_DEFINITIONS_DIR ?? path.join(home, 'definitions')),
    hostId: env.DEVFLOW_HOST_ID ?? os.hostname().replace(/[^A-Za-z0-9._-]/g, '-'),
    tmuxSocket: path.join(home, 'tmux.sock'),
    agentPreset: env.DEVFLOW_AGENT_PRESET,
    agents: {
      trustWorktree: env.DEVFLOW_AGENT_TRUST_WORKTREE === 'yes',
      bypassPermissions: env.DEVFLOW_AGENT_PERMISSIONS === 'bypass',
      readyTimeoutMs: env.DEVFLOW_AGENT_READY_TIMEOUT_MS,
      playbackHome: path.join(home, 'agents', 'playback'),
      playbackPort: env.DEVFLOW_PLAYBACK_PORT,
    },
    shutdownDrainMs: env.DEVFLOW_SHUTDOWN_DRAIN_MS,
    restartLimit: env.DEVFLOW_RESTART_LIMIT,
    reconcileIntervalMs: env.DEVFLOW_RECONCILE_INTERVAL_MS,
    probes: { hung: env.DEVFLOW_HUNG_PROBES, intervalMs: env.DEVFLOW_PROBE_INTERVAL_MS },
    maxArtifactBytes: env.DEVFLOW_MAX_ARTIFACT_BYTES,
    webhooks: { urls: env.DEVFLOW_WEBHOOK_URLS, secret: env.DEVFLOW_WEBHOOK_SECRET, attempts: env.DEVFLOW_WEBHOOK_ATTEMPTS },
    maxConcurrentRuns: env.DEVFLOW_MAX_CONCURRENT_RUNS,
    maxRunsPerRepo: env.DEVFLOW_MAX_RUNS_PER_REPO,
    workflowCacheSize: env.DEVFLOW_WORKFLOW_CACHE,
    logLevel: env.DEVFLOW_LOG_LEVEL,
  };
}

export function hostTaskQueue(hostId: string): string {
  return `devflow-host:${hostId}`;
}

/** The URL of the embedded Postgres that `devflow up` starts when DATABASE_URL is unset. */
export function embeddedDatabaseUrl(port: number): string {
  return `postgres://postgres:postgres@127.0.0.1:${port}/devflow`;
}

/** Where the worker and API find Postgres and Temporal: configured, or the local stack's. */
export function resolvedServices(config: DevflowConfig): { databaseUrl: string; temporalAddress: string } {
  return {
    databaseUrl: config.databaseUrl ?? embeddedDatabaseUrl(config.embeddedPostgresPort),
    temporalAddress: config.temporal.address ?? `127.0.0.1:${config.temporal.devServerPort}`,
  };
}
