// The final report of a run (SPEC section 8): rendered from the database alone, so writing it
// again (report repair) gives the same file.
import { randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { git } from '../lib/git.ts';
import { runKeys } from '../lib/keys.ts';
import { reportPathFor, runBranch, worktreePathFor } from '../lib/runs.ts';
import { printable } from '../lib/text.ts';
import type { Database } from './client.ts';
import { appendEvent } from './events.ts';
import { approvalDecisions, approvalRequests, artifacts, runEvents, runPhases, runs } from './schema.ts';
import { runStop, type Stop } from './stops.ts';
import { runUsage, type RunUsage, type Tokens } from './usage.ts';

type RunRow = typeof runs.$inferSelect;

export interface ReportData {
  run: RunRow;
  terminalReason: string;
  /** Why it stopped and what comes next (db/stops.ts). */
  stop: Stop | null;
  phases: (typeof runPhases.$inferSelect)[];
  artifacts: (typeof artifacts.$inferSelect)[];
  gates: { request: typeof approvalRequests.$inferSelect; decisions: (typeof approvalDecisions.$inferSelect)[] }[];
  diffStat: string;
  usage: RunUsage;
  /** Artifacts devflow refused to read (a link out of the worktree, too big): `artifact.invalid` events that say `refused`. */
  refused: { phaseId: string | null; path: string; errors: string[] }[];
  /** Each time a phase's artifact sent the work back (`phase.looped` events), in order. */
  loops: { at: Date; fromPhase: string; toPhase: string; round: number; maxRounds: number; field: string; equals: unknown; quoted: string | null; value: unknown }[];
}

const when = (d: Date | null | undefined) => (d ? d.toISOString() : '—');
const cell = (text: string | null | undefined) => (text ?? '—').replaceAll('|', '\\|').replaceAll('\n', ' ');

function duration(from: Date, to: Date | null): string {
  if (!to) return '—';
  const seconds = Math.round((to.getTime() - from.getTime()) / 1000);
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

export function renderReport(data: ReportData): string {
  const { run } = data;
  const phaseKey = new Map(data.phases.map((p) => [p.id, p.phaseKey]));
  const lines = [
    `# devflow run ${run.id}`,
    '',
    `- **Outcome:** ${run.state} — ${data.terminalReason}`,
    ...(data.stop ? [`- **Stop:** \`${data.stop.code}\`; next: ${data.stop.next}`] : []),
    `- **Template:** ${run.templateId} (sha256 ${run.templateHash.slice(0, 16)})`,
    `- **Repository:** ${run.repoPath} @ ${run.baseBranch}, run branch \`${runBranch(run.id)}\``,
    `- **Worktree:** ${run.worktreeRoot ? path.join(run.worktreeRoot, 'main') : '—'}`,
    `- **Timing:** created ${when(run.createdAt)}, ended ${when(run.endedAt)}, took ${duration(run.createdAt, run.endedAt)}`,
    '',
    '## Requirements',
    '',
    ...run.requirementsMd.trimEnd().split('\n').map((l) => `> ${l}`),
    '',
    '## Phases',
    '',
    '| # | phase | role | state | attempts | started | ended | took |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...data.phases.map((p) => `| ${p.ordinal + 1} | ${p.phaseKey} | ${p.roleId} | ${p.state} | ${p.attempts} | ${when(p.startedAt)} | ${when(p.endedAt)} | ${p.startedAt ? duration(p.startedAt, p.endedAt) : '—'} |`),
    '',
    '## Artifacts',
    '',
  ];
  if (data.artifacts.length === 0 && data.refused.length === 0) lines.push('No artifact was written.');
  else {
    lines.push('| phase | path | schema | sha256 | valid | problems |', '| --- | --- | --- | --- | --- | --- |');
    for (const a of data.artifacts) {
      const problems = (a.validationError as { errors?: string[] } | null)?.errors?.join('; ');
      lines.push(`| ${phaseKey.get(a.phaseId) ?? '—'} | ${cell(a.path)} | ${a.schemaId} | ${a.hash.slice(0, 16)} | ${a.valid ? 'yes' : 'no'} | ${cell(problems)} |`);
    }
    // Never read, so no hash: what was at the path, and why devflow would not read it.
    for (const r of data.refused) lines.push(`| ${(r.phaseId && phaseKey.get(r.phaseId)) ?? '—'} | ${cell(r.path)} | — | — | refused | ${cell(r.errors.join('; '))} |`);
  }
  lines.push('', '## Rounds', '');
  if (data.loops.length === 0) lines.push('No phase sent the work back.');
  else {
    lines.push('| round | from | back to | because | quoted | when |', '| --- | --- | --- | --- | --- | --- |');
    for (const loop of data.loops) {
      const quoted = loop.quoted ? `${loop.quoted}: ${typeof loop.value === 'string' ? loop.value : JSON.stringify(loop.value)}` : '—';
      lines.push(`| ${loop.round} of ${loop.maxRounds} | ${loop.fromPhase} | ${loop.toPhase} | ${loop.field} = ${cell(JSON.stringify(loop.equals))} | ${cell(quoted)} | ${when(loop.at)} |`);
    }
  }
  lines.push('', '## Gates and decisions', '');
  if (data.gates.length === 0) lines.push('No gate was raised.');
  else {
    lines.push('| gate | kind | phase | raised | state | decision | by | when | comment |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const { request, decisions } of data.gates) {
      const kind = (request.payload as { kind?: string }).kind ?? 'approval';
      const first = decisions[0];
      lines.push(
        `| ${request.gateKey} | ${kind} | ${request.phaseId ? (phaseKey.get(request.phaseId) ?? '—') : '—'} | ${when(request.createdAt)} | ${request.state} | ${first?.action ?? '—'} | ${cell(first?.decidedBy)} | ${when(first?.createdAt)} | ${cell(first?.comment)} |`,
      );
    }
  }
  lines.push('', '## Agents and usage', '');
  if (data.usage.sessions.length === 0) lines.push('No agent reported usage (the scripted and fake agents keep no logs).');
  else {
    const tokens = (t: Tokens) => `${t.inputTokens} | ${t.outputTokens} | ${t.cacheReadTokens} | ${t.cacheWriteTokens}`;
    lines.push('| | agent | input tokens | output tokens | cache read | cache write |', '| --- | --- | --- | --- | --- | --- |');
    for (const p of data.usage.phases) lines.push(`| phase ${p.phaseKey} | | ${tokens(p)} |`);
    for (const u of data.usage.sessions) lines.push(`| role ${u.roleId} | ${u.backend} | ${tokens(u)} |`);
    lines.push(`| **run** | | ${tokens(data.usage.total)} |`);
  }
  lines.push('', '## Changes on the run branch', '', '```', data.diffStat.trimEnd() || 'no changes', '```', '');
  // Requirements, reasons and problems are text from people and agents: an ESC sequence in them
  // must not drive the terminal of whoever prints the report.
  return printable(lines.join('\n'));
}

async function diffStat(run: RunRow, workspaceRoot: string): Promise<string> {
  try {
    return await git(run.repoPath, ['diff', '--stat', `${run.baseBranch}...${runBranch(run.id)}`]);
  } catch {
    return `(no diff: the run branch or worktree ${worktreePathFor(workspaceRoot, run.id)} is not available)`;
  }
}

export async function loadReportData(db: Database, runId: string, workspaceRoot: string): Promise<ReportData> {
  const [run] = await db.select().from(runs).where(eq(runs.id, runId));
  const phases = await db.select().from(runPhases).where(eq(runPhases.runId, runId)).orderBy(asc(runPhases.ordinal));
  const artifactRows = await db.select().from(artifacts).where(eq(artifacts.runId, runId)).orderBy(asc(artifacts.createdAt));
  const requests = await db.select().from(approvalRequests).where(eq(approvalRequests.runId, runId)).orderBy(asc(approvalRequests.createdAt));
  const decisions = requests.length
    ? await db.select().from(approvalDecisions).where(inArray(approvalDecisions.approvalRequestId, requests.map((r) => r.id))).orderBy(asc(approvalDecisions.createdAt))
    : [];
  const looped = await db
    .select({ payload: runEvents.payload, at: runEvents.createdAt })
    .from(runEvents)
    .where(and(eq(runEvents.runId, runId), eq(runEvents.type, 'phase.looped')))
    .orderBy(asc(runEvents.seq));
  const invalid = await db
    .select({ phaseId: runEvents.phaseId, payload: runEvents.payload })
    .from(runEvents)
    .where(and(eq(runEvents.runId, runId), eq(runEvents.type, 'artifact.invalid')))
    .orderBy(asc(runEvents.seq));
  const terminal = await db
    .select({ type: runEvents.type, payload: runEvents.payload })
    .from(runEvents)
    .where(eq(runEvents.idempotencyKey, runKeys.terminal(runId)));
  return {
    run: run!,
    terminalReason: (terminal[0]?.payload as { reason?: string } | undefined)?.reason ?? 'unknown',
    stop: runStop({ ...run!, finalReportPath: reportPathFor(workspaceRoot, runId) }, requests.map((r) => ({ ...r, payload: r.payload as Record<string, unknown> })), terminal, () => null),
    phases,
    artifacts: artifactRows,
    gates: requests.map((request) => ({ request, decisions: decisions.filter((d) => d.approvalRequestId === request.id) })),
    diffStat: await diffStat(run!, workspaceRoot),
    usage: await runUsage(db, runId),
    refused: invalid.flatMap(({ phaseId, payload }) => {
      const said = payload as { path: string; errors: string[]; refused?: string };
      return said.refused ? [{ phaseId, path: said.path, errors: said.errors }] : [];
    }),
    loops: looped.map(({ payload, at }) => ({ at, ...(payload as Omit<ReportData['loops'][number], 'at'>) })),
  };
}


/** Writes `<workspaceRoot>/<runId>.report.md` atomically and records it. Safe to repeat. */
export async function writeRunReport(db: Database, runId: string, workspaceRoot: string): Promise<string> {
  const file = reportPathFor(workspaceRoot, runId);
  const text = renderReport(await loadReportData(db, runId, workspaceRoot));
  await mkdir(path.dirname(file), { recursive: true });
  // Two writers at once (the run's last step, and the API repairing a report it found missing)
  // each write their own temporary file: the same text, and the last rename wins.
  const temporary = `${file}.${randomUUID()}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, file);
  await db.transaction(async (tx) => {
    await tx.update(runs).set({ finalReportPath: file }).where(eq(runs.id, runId));
    await appendEvent(tx, { runId, type: 'report.written', idempotencyKey: runKeys.report(runId), payload: { path: file } });
  });
  return file;
}
