// What each `devflow` command does, through the HTTP API. Each returns its exit code.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_TEMPLATE } from '../schemas/api.ts';
import { artifactSummary, artifactText } from './artifact-text.ts';
import { ApiCallError, DevflowApi, EXIT } from './api-client.ts';

interface Phase {
  id: string;
  phaseKey: string;
  state: string;
  attempts: number;
  startedAt: string | null;
}
interface Approval {
  id: string;
  gateKey: string;
  state: string;
  phaseId: string | null;
  payload: { kind?: string; reason?: string; hint?: string };
}
interface Session {
  id: string;
  roleId: string;
  backend: string;
  state: string;
  playback: boolean;
  agentSessionId: string | null;
  tmuxSession: string | null;
  stop?: { code: string; reason: string; next: string } | null;
  flag?: { code: string; reason: string; next: string } | null;
}
interface Tokens {
  inputTokens: number;
  outputTokens: number;
}
interface Stop {
  code: string;
  reason: string;
  next: string;
}
interface RunDetail {
  run: { id: string; state: string; templateId: string; repoPath: string; baseBranch: string; createdAt: string; endedAt: string | null };
  stop?: Stop | null;
  phases: Phase[];
  sessions: Session[];
  approvals: Approval[];
  usage?: { total: Tokens; phases: (Tokens & { phaseKey: string })[]; sessions: (Tokens & { sessionId: string })[] };
  finalReportPath: string | null;
}
interface RunEvent {
  seq: number;
  type: string;
  createdAt: string;
  payload: Record<string, unknown>;
}

type Say = (line: string) => void;
const TERMINAL = new Set(['completed', 'failed', 'aborted']);

export interface RunRequestOptions {
  repo: string;
  base: string;
  requirements: string;
  template?: string;
  backend?: string;
  /** `name` for every role, or `role=name` (repeatable). */
  agent?: string[];
  playback?: boolean;
  scenario?: string[];
}

export interface StartOptions extends RunRequestOptions {
  runId?: string;
  dryRun?: boolean;
}

interface DryRunPhase {
  key: string;
  title: string;
  role: string;
  agent: string;
  artifact: { schema: string; path: string; timeoutMs: number };
  gate: string | null;
  loop: { field: string; equals: unknown; to: string; maxRounds: number } | null;
  prompt: string;
}

/** The POST /v1/runs body the run options describe (shared by `start` and `schedule create`), or an exit code. */
export async function runRequest(api: DevflowApi, options: RunRequestOptions, say: Say): Promise<Record<string, unknown> | number> {
  const scenarios: Record<string, string> = {};
  for (const pair of options.scenario ?? []) {
    const [phase, name] = pair.split('=');
    if (!phase || !name) {
      say(`--scenario expects phase=name, got ${pair}`);
      return EXIT.badInput;
    }
    scenarios[phase] = name;
  }
  const agents: Record<string, string> = {};
  let everyRole: string | undefined;
  for (const choice of options.agent ?? []) {
    const [role, name] = choice.includes('=') ? choice.split('=') : [undefined, choice];
    if (!name || role === '') {
      say(`--agent expects name or role=name, got ${choice}`);
      return EXIT.badInput;
    }
    if (role) agents[role] = name;
    else everyRole = name;
  }
  if (everyRole && options.backend) {
    say('--agent <name> for every role and --backend say the same thing: give one');
    return EXIT.badInput;
  }
  const backend = everyRole ? (everyRole === 'scripted' || everyRole === 'fake' ? everyRole : undefined) : options.backend;
  if (everyRole && !backend) {
    // A real agent for every role: name it for each role the API does not get from elsewhere.
    const template = await templateRoles(api, options.template);
    for (const role of template) agents[role] ??= everyRole;
  }
  const requirementsMd = await readFile(options.requirements, 'utf8').catch(() => undefined);
  if (requirementsMd === undefined) {
    say(`cannot read the requirements file ${options.requirements}`);
    return EXIT.badInput;
  }
  return {
    requirementsMd,
    repoPath: path.resolve(options.repo),
    baseBranch: options.base,
    ...(options.template ? { template: options.template } : {}),
    ...(backend ? { backend } : {}),
    ...(Object.keys(agents).length ? { agents } : {}),
    ...(options.playback ? { playback: true } : {}),
    ...(Object.keys(scenarios).length ? { scenarios } : {}),
  };
}

export async function start(api: DevflowApi, options: StartOptions, say: Say): Promise<number> {
  const built = await runRequest(api, options, say);
  if (typeof built === 'number') return built;
  const request = { ...built, ...(options.runId ? { runId: options.runId } : {}) };
  if (options.dryRun) {
    const plan = await api.post<{ template: string; worktree: string; phases: DryRunPhase[] }>('/v1/runs', { ...request, dryRun: true });
    say(`dry run of ${plan.template}: nothing was written; the worktree would be ${plan.worktree}`);
    plan.phases.forEach((phase, i) => {
      say('');
      say(`## ${i + 1}. ${phase.key} — ${phase.title}`);
      say(`role ${phase.role}, agent ${phase.agent}`);
      say(`artifact ${phase.artifact.schema} at ${phase.artifact.path} (timeout ${Math.round(phase.artifact.timeoutMs / 1000)} s)`);
      if (phase.gate) say(`gate ${phase.gate}: a person approves the artifact before the run goes on`);
      if (phase.loop) say(`loop: ${phase.loop.field} = ${JSON.stringify(phase.loop.equals)} sends the work back to ${phase.loop.to}, at most ${phase.loop.maxRounds} time(s); then gate ${phase.key}_rounds_exhausted`);
      say('prompt:');
      for (const line of phase.prompt.trimEnd().split('\n')) say(`  | ${line}`);
    });
    return EXIT.ok;
  }
  const body = await api.post<{ runId: string; workflowId: string }>('/v1/runs', request);
  say(`started run ${body.runId} (workflow ${body.workflowId})`);
  say(`follow it with: devflow watch ${body.runId}`);
  return EXIT.ok;
}

/** The roles of a template (the API's default one when none is named). */
async function templateRoles(api: DevflowApi, templateId: string | undefined): Promise<string[]> {
  const { templates } = await api.get<{ templates: { id: string; definition: { roles: Record<string, unknown> } }[]; defaultTemplate?: string }>('/v1/templates');
  const id = templateId ?? DEFAULT_TEMPLATE;
  const template = templates.find((t) => t.id === id);
  return template ? Object.keys(template.definition.roles) : [];
}

export async function listRuns(api: DevflowApi, options: { state?: string; limit?: string }, say: Say): Promise<number> {
  const query = new URLSearchParams({ ...(options.state ? { state: options.state } : {}), limit: options.limit ?? '20' });
  const { runs } = await api.get<{ runs: RunDetail['run'][] }>(`/v1/runs?${query}`);
  if (runs.length === 0) say('no runs');
  for (const run of runs) say(`${run.id}  ${run.state.padEnd(17)}  ${run.templateId.padEnd(14)}  ${run.createdAt}  ${run.repoPath}@${run.baseBranch}`);
  return EXIT.ok;
}

export function describeRun(detail: RunDetail): string[] {
  const lines = [`run ${detail.run.id}: ${detail.run.state} (${detail.run.templateId} on ${detail.run.repoPath}@${detail.run.baseBranch})`];
  const usage = new Map((detail.usage?.phases ?? []).map((u) => [u.phaseKey, u]));
  const tokens = (u: Tokens | undefined) => (u ? `  tokens in ${u.inputTokens} out ${u.outputTokens}` : '');
  for (const phase of detail.phases) lines.push(`  ${phase.phaseKey.padEnd(12)} ${phase.state.padEnd(18)} attempts ${phase.attempts}${tokens(usage.get(phase.phaseKey))}`);
  const sessionUsage = new Map((detail.usage?.sessions ?? []).map((u) => [u.sessionId, u]));
  for (const session of detail.sessions ?? []) {
    const agent = `${session.backend}${session.playback ? ' (playback model)' : ''}`;
    lines.push(`  session ${session.roleId.padEnd(12)} ${session.state.padEnd(20)} ${agent}${session.agentSessionId ? ` conversation ${session.agentSessionId}` : ''}${tokens(sessionUsage.get(session.id))}`);
  }
  if (detail.usage && detail.usage.total.inputTokens + detail.usage.total.outputTokens > 0) lines.push(`  usage: ${tokens(detail.usage.total).trim()}`);
  for (const a of detail.approvals.filter((x) => x.state === 'pending')) {
    lines.push(`  waiting at gate ${a.gateKey} (${a.payload.kind ?? 'approval'}${a.payload.reason ? `: ${a.payload.reason}` : ''}) — approval ${a.id}`);
    if (a.payload.hint) lines.push(...a.payload.hint.split('\n').map((l) => `    | ${l}`));
  }
  if (detail.stop) {
    lines.push(`  stopped: ${detail.stop.code} — ${detail.stop.reason}`);
    lines.push(`  next: ${detail.stop.next}`);
  }
  for (const session of (detail.sessions ?? []).filter((s) => s.stop?.code === 'process_lost')) {
    lines.push(`  flagged: the ${session.roleId} agent is gone; ${session.stop!.next}`);
  }
  for (const session of (detail.sessions ?? []).filter((s) => s.flag)) lines.push(`  flagged: ${session.flag!.reason}; ${session.flag!.next}`);
  if (detail.finalReportPath) lines.push(`  report: ${detail.finalReportPath}`);
  return lines;
}

export async function status(api: DevflowApi, runId: string, say: Say): Promise<number> {
  describeRun(await api.get<RunDetail>(`/v1/runs/${runId}`)).forEach((l) => say(l));
  return EXIT.ok;
}

/**
 * Prints the run's events live, with the current phase, attempt and elapsed time, until the
 * run ends (0 completed, 1 failed or aborted) or waits at a gate (10).
 */
export async function watch(api: DevflowApi, runId: string, say: Say, options: { untilEnd?: boolean; cursor?: { seq: number } } = {}): Promise<number> {
  await api.get<RunDetail>(`/v1/runs/${runId}`); // 404 early for an unknown run
  const cursor = options.cursor ?? { seq: 0 };
  let after = cursor.seq;
  const phaseStarted = new Map<string, number>();
  for (;;) {
    const { events } = await api.get<{ events: RunEvent[] }>(`/v1/runs/${runId}/events?after=${after}`);
    for (const event of events) {
      after = cursor.seq = event.seq;
      const phase = (event.payload.phaseKey as string | undefined) ?? '';
      if (event.type === 'phase.started' && phase) phaseStarted.set(phase, Date.parse(event.createdAt));
      const attempt = event.payload.attempt ? ` attempt ${event.payload.attempt}` : '';
      const since = phase && phaseStarted.has(phase) ? ` +${((Date.parse(event.createdAt) - phaseStarted.get(phase)!) / 1000).toFixed(1)}s` : '';
      say(`${String(event.seq).padStart(4)}  ${event.createdAt.slice(11, 23)}  ${event.type.padEnd(24)} ${phase}${attempt}${since}`);
    }
    const detail = await api.get<RunDetail>(`/v1/runs/${runId}`);
    if (TERMINAL.has(detail.run.state) && detail.finalReportPath) {
      say(`run ${detail.run.state}; report: ${detail.finalReportPath}`);
      if (detail.stop && detail.run.state !== 'completed') say(`why: ${detail.stop.code} — ${detail.stop.reason}`);
      return detail.run.state === 'completed' ? EXIT.ok : EXIT.runEnded;
    }
    const gate = detail.approvals.find((a) => a.state === 'pending');
    if (gate && !options.untilEnd && events.length === 0) {
      say(`waiting at gate ${gate.gateKey}: devflow approve ${runId} --gate ${gate.gateKey}  (or reject, abort)`);
      return EXIT.atGate;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

interface ArtifactRow {
  id: string;
  phaseId: string;
  schemaId: string;
  valid: boolean;
  path: string;
  createdAt: string;
}

/** The newest artifact of a phase (or of the phase a gate waits on, or the newest of all). */
async function artifactFor(api: DevflowApi, runId: string, phaseKey?: string): Promise<{ phaseKey: string; artifact: ArtifactRow; content: unknown; changed: boolean } | undefined> {
  const detail = await api.get<RunDetail & { artifacts: ArtifactRow[]; phases: (Phase & { id: string })[] }>(`/v1/runs/${runId}`);
  const keyOf = new Map(detail.phases.map((p) => [p.id, p.phaseKey]));
  const gatePhase = detail.approvals.find((a) => a.state === 'pending' && a.phaseId)?.phaseId;
  const wanted = phaseKey ?? (gatePhase ? keyOf.get(gatePhase) : undefined);
  const candidates = detail.artifacts.filter((a) => !wanted || keyOf.get(a.phaseId) === wanted);
  const artifact = candidates.at(-1);
  if (!artifact) return undefined;
  const read = await api.get<{ content: unknown; changed: boolean }>(`/v1/runs/${runId}/artifacts/${artifact.id}`);
  return { phaseKey: keyOf.get(artifact.phaseId) ?? '?', artifact, content: read.content, changed: read.changed };
}

export async function show(api: DevflowApi, runId: string, phaseKey: string | undefined, say: Say): Promise<number> {
  const found = await artifactFor(api, runId, phaseKey);
  if (!found) {
    say(`run ${runId} has no artifact${phaseKey ? ` for phase ${phaseKey}` : ''} yet`);
    return EXIT.notFound;
  }
  const { artifact } = found;
  say(`${found.phaseKey}: ${artifact.schemaId} (${artifact.valid ? 'valid' : 'INVALID'}) ${artifact.path}`);
  if (found.changed) say('warning: the file changed (or is gone) since it was validated');
  say('');
  say(artifactText(artifact.schemaId, found.content));
  return EXIT.ok;
}

export async function decide(
  api: DevflowApi,
  runId: string,
  action: 'approve' | 'reject',
  options: { gate?: string; comment?: string; clientToken?: string; yes?: boolean; confirm?: (question: string) => Promise<boolean> },
  say: Say,
): Promise<number> {
  const { approvals } = await api.get<{ approvals: Approval[] }>(`/v1/runs/${runId}/approvals`);
  const pending = approvals.filter((a) => a.state === 'pending' && (!options.gate || a.gateKey === options.gate));
  if (pending.length === 0) {
    say(`run ${runId} has no pending approval${options.gate ? ` at gate ${options.gate}` : ''}`);
    return EXIT.notFound;
  }
  if (pending.length > 1) {
    say(`run ${runId} waits at several gates (${pending.map((a) => a.gateKey).join(', ')}); choose one with --gate`);
    return EXIT.badInput;
  }
  const approval = pending[0]!;
  if (options.confirm && !options.yes) {
    // In a terminal, a person sees what they decide on before deciding.
    say(`gate ${approval.gateKey} (${approval.payload.kind ?? 'approval'}) on run ${runId}`);
    if (approval.payload.reason) say(`  why: ${approval.payload.reason}`);
    const found = await artifactFor(api, runId).catch(() => undefined);
    if (found) say(`  ${found.phaseKey}: ${artifactSummary(found.artifact.schemaId, found.content)}  (devflow show ${runId} ${found.phaseKey})`);
    if (!(await options.confirm(`${action} ${approval.gateKey}? [y/N] `))) {
      say('nothing decided');
      return EXIT.badInput;
    }
  }
  await api.post(`/v1/runs/${runId}/approvals/${approval.id}`, {
    action,
    clientToken: options.clientToken ?? randomUUID(),
    ...(options.comment ? { comment: options.comment } : {}),
    decidedBy: process.env.USER ?? 'devflow-cli',
  });
  say(`${action === 'approve' ? 'approved' : 'rejected'} ${approval.gateKey} on run ${runId}`);
  return EXIT.ok;
}

export async function abort(api: DevflowApi, runId: string, options: { reason?: string }, say: Say): Promise<number> {
  const { status: code } = await api.request('POST', `/v1/runs/${runId}/abort`, { clientToken: randomUUID(), ...(options.reason ? { reason: options.reason } : {}) });
  say(code === 200 ? `run ${runId} had already ended` : `abort sent to run ${runId}`);
  return EXIT.ok;
}

export async function report(api: DevflowApi, runId: string, say: Say): Promise<number> {
  say(await api.get<string>(`/v1/runs/${runId}/report`));
  return EXIT.ok;
}

/** Runs a command, turning API errors into their message and exit code. */
export async function withApiErrors(say: Say, command: () => Promise<number>): Promise<number> {
  try {
    return await command();
  } catch (error) {
    if (error instanceof ApiCallError) {
      say(`devflow: ${error.message}`);
      return error.exitCode;
    }
    throw error;
  }
}
