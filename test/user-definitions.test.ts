// A team's own definitions folder through the API: listed, checked before a run starts (400
// naming every problem), shown by a dry run that writes nothing, reloaded without a restart,
// and run end to end by the scripted agent: a JSON Schema artifact, a quote of an earlier
// artifact, and a loop back on a verdict.
import { rm, writeFile } from 'node:fs/promises';
import { Connection } from '@temporalio/client';
import { count, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApi } from '../api/server.ts';
import { artifacts, runEvents, runs } from '../db/schema.ts';
import { waitFor } from '../lib/wait.ts';
import { TRIAGE_NOTES, triageFolder, type TriageFolder } from './helpers/definitions.ts';
import { makeRepo, useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness('scripted');
let api: FastifyInstance;
let temporal: Connection;
let folder: TriageFolder;
const definitions = { dir: undefined as string | undefined, problems: [], problemsOf: new Map() };

beforeAll(async () => {
  folder = await triageFolder(h.root);
  definitions.dir = folder.root;
  temporal = await Connection.connect({ address: inject('temporalAddress') });
  api = await buildApi({ db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, workspaceRoot: h.workspaceRoot, definitions });
});
afterAll(async () => {
  await api?.close();
  await temporal?.close();
});

const json = (response: { body: string }) => JSON.parse(response.body);
const reload = async () => json(await api.inject({ method: 'POST', url: '/v1/definitions/reload' }));
const body = (over: Record<string, unknown> = {}) => ({ template: folder.id, requirementsMd: '# Bug\n\nThe parser drops a trailing comma.\n', repoPath: makeRepo(h.root), baseBranch: 'main', backend: 'scripted', timing: h.timing, ...over });
const rowCounts = async () => ({
  runs: (await h.db.select({ n: count() }).from(runs))[0]!.n,
  events: (await h.db.select({ n: count() }).from(runEvents))[0]!.n,
});

describe('definitions from a folder, through the API', () => {
  it('reloads the folder without a restart; the templates list shows its template, persona and JSON Schema', async () => {
    const before = json(await api.inject({ method: 'GET', url: '/v1/templates' }));
    expect(before.templates.map((t: { id: string }) => t.id)).not.toContain(folder.id);
    const reloaded = await reload();
    expect(reloaded).toMatchObject({ problems: [] });
    expect(reloaded.templates).toEqual(expect.arrayContaining([folder.id, 'bugfix@1', 'development@2']));
    expect(reloaded.artifactSchemas).toEqual(expect.arrayContaining([folder.schemaId, 'bugfix/verification@1', 'dev/review@1']));
    const listed = json(await api.inject({ method: 'GET', url: '/v1/templates' }));
    expect(listed.templates.find((t: { id: string }) => t.id === folder.id)).toMatchObject({ definition: { phases: [{ key: 'triage' }, { key: 'check' }] } });
    expect(listed.artifactSchemas.find((s: { id: string }) => s.id === folder.schemaId)).toMatchObject({ definition: folder.schema });
    expect(listed.problems).toEqual([]);
  });

  it('shows a dry run per phase (role, agent, artifact, the exact prompt) and writes nothing', async () => {
    await reload();
    const before = await rowCounts();
    const response = await api.inject({ method: 'POST', url: '/v1/runs', payload: body({ dryRun: true, agents: { checker: 'fake' } }) });
    expect(response.statusCode, response.body).toBe(200);
    const plan = json(response);
    expect(plan).toMatchObject({ dryRun: true, template: folder.id });
    expect(plan.phases.map((p: Record<string, unknown>) => [p.key, p.role, p.agent, p.gate])).toEqual([['triage', 'triager', 'scripted', null], ['check', 'checker', 'fake', null]]);
    const [triage, check] = plan.phases;
    expect(triage.artifact).toEqual({ schema: folder.schemaId, path: `${plan.worktree}/.devflow/artifacts/triage.json`, timeoutMs: 900_000 });
    expect(check.loop).toEqual({ field: 'verdict', equals: 'request_changes', to: 'triage', maxRounds: 1 });
    // The prompt as the agent would get it: role, task, the artifact's path and its JSON Schema.
    expect(triage.prompt).toContain('## Your role\nYou triage bug reports.');
    expect(triage.prompt).toContain(`Write exactly one JSON file at ${triage.artifact.path}.`);
    const quoted = triage.prompt.slice(triage.prompt.indexOf('\n', triage.prompt.indexOf(`It must validate against this JSON Schema (${folder.schemaId}):`)));
    expect(JSON.parse(quoted)).toEqual(folder.schema);
    expect(check.prompt).toContain('Check the triage notes: <notes from the triage artifact>.');
    expect(await rowCounts()).toEqual(before);
    expect(await h.db.select().from(runs).where(eq(runs.id, plan.runId))).toEqual([]);
    await expect(h.client.workflow.getHandle(`devflow-run:${plan.runId}`).describe()).rejects.toThrow(/not found/i);
  });

  it('refuses to start (or dry-run) a template with problems, naming each, and writes nothing', async () => {
    const broken = await triageFolder(h.root);
    broken.template.phases[1].role = 'ghost';
    broken.template.phases[1].loop.to = 'nowhere';
    await broken.write();
    definitions.dir = broken.root;
    try {
      const reloaded = await reload();
      expect(reloaded.templates).not.toContain(broken.id);
      expect(reloaded.problems.map((p: { path: string }) => p.path)).toEqual(['phases.1.role', 'phases.1.loop.to']);
      const before = await rowCounts();
      for (const dryRun of [false, true]) {
        const response = await api.inject({ method: 'POST', url: '/v1/runs', payload: body({ template: broken.id, dryRun }) });
        expect(response.statusCode, response.body).toBe(400);
        const error = json(response).error;
        expect(error.code).toBe('definition_invalid');
        expect(error.message).toContain(`template ${broken.id} cannot run`);
        expect(error.message).toContain(`${broken.files.template}: phases.1.role: unknown role ghost`);
        expect(error.message).toContain(`${broken.files.template}: phases.1.loop.to: the loop goes back to nowhere, an unknown phase`);
      }
      expect(await rowCounts()).toEqual(before);
      expect(json(await api.inject({ method: 'GET', url: '/v1/templates' })).problems).toHaveLength(2);
    } finally {
      definitions.dir = folder.root;
      await reload();
    }
  });

  it("runs the folder's template end to end with the scripted agent: JSON Schema artifacts, a quote, one loop back", async () => {
    await reload();
    const response = await api.inject({ method: 'POST', url: '/v1/runs', payload: body({ scenarios: { triage: ['invalid_json', 'ok'], check: ['request_changes', 'ok'] } }) });
    expect(response.statusCode, response.body).toBe(202);
    const { runId } = json(response);
    await waitFor(`run ${runId} to end`, 120_000, async () => ['completed', 'failed', 'aborted'].includes((await h.snapshot(runId)).run.state), 200);
    const done = await h.snapshot(runId);
    expect(done.run.state).toBe('completed');
    expect(done.run.artifactSchemaHashes).toEqual({ [folder.schemaId]: expect.stringMatching(/^[0-9a-f]{64}$/), 'dev/review@1': expect.stringMatching(/^[0-9a-f]{64}$/) });
    // triage: invalid JSON, repaired; back once from check; check twice.
    expect(done.phases.map((p) => [p.phaseKey, p.state, p.attempts])).toEqual([['triage', 'completed', 3], ['check', 'completed', 2]]);
    expect(done.events.filter((e) => e === 'phase.looped')).toHaveLength(1);
    const rows = await h.db.select().from(artifacts).where(eq(artifacts.runId, runId));
    expect(rows.filter((a) => a.schemaId === folder.schemaId).map((a) => a.valid).sort()).toEqual([false, true]);

    const triager = done.sessions.find((s) => s.roleId === 'triager')!;
    const checker = done.sessions.find((s) => s.roleId === 'checker')!;
    const triagePrompts = h.prompts(runId, 'triager', triager.id);
    expect(triagePrompts.map((p) => /^Kind: (\w+)$/m.exec(p)![1])).toEqual(['initial', 'repair', 'revise']);
    expect(triagePrompts[1]).toMatch(/not valid JSON/);
    expect(triagePrompts[2]).toContain('## Changes requested (round 1, by check)');
    // The check phase quotes the triage artifact's notes, as written.
    expect(h.prompts(runId, 'checker', checker.id)[0]).toContain(`Check the triage notes: ${TRIAGE_NOTES}.`);
  });

  it('keeps a changed file that kept its version out, and runs pinned to the stored one go on', async () => {
    await reload();
    const original = structuredClone(folder.schema);
    folder.schema.properties.notes = { type: 'string', minLength: 500 };
    await folder.write();
    try {
      const reloaded = await reload();
      expect(reloaded.problems).toEqual([
        expect.objectContaining({ file: folder.files.schema, message: expect.stringContaining(`changed but still declares ${folder.schemaId}`) }),
        expect.objectContaining({ file: folder.files.template, message: `uses ${folder.schemaId}, which was refused` }),
      ]);
      const response = await api.inject({ method: 'POST', url: '/v1/runs', payload: body({ dryRun: true }) });
      expect(response.statusCode).toBe(400);
      expect(json(response).error.message).toContain(`${folder.files.template}: (file): uses ${folder.schemaId}, which was refused; ${folder.files.schema}: (file): changed but still declares ${folder.schemaId}`);
    } finally {
      await writeFile(folder.files.schema, JSON.stringify(original, null, 2));
      folder.schema = original;
      expect((await reload()).problems).toEqual([]);
    }
  });

  it('a definitions folder that disappears leaves the built-ins', async () => {
    const gone = await triageFolder(h.root);
    definitions.dir = gone.root;
    await rm(gone.root, { recursive: true });
    try {
      const reloaded = await reload();
      expect(reloaded.problems).toEqual([]);
      expect(reloaded.templates).toEqual(expect.arrayContaining(['development@1', 'development@2', 'bugfix@1']));
    } finally {
      definitions.dir = folder.root;
    }
  });
});
