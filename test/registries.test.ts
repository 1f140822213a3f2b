// Templates, personas and artifact schemas: loaded from files, hashed, upserted idempotently.
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { syncRegistries } from '../db/registries.ts';
import { agentPersonas, workflowTemplates } from '../db/schema.ts';
import { canonicalHash, canonicalJson } from '../lib/canonical-json.ts';
import { artifactJsonSchema, artifactSchemas } from '../schemas/artifacts.ts';
import { PERSONAS_DIR, TEMPLATES_DIR } from '../schemas/registry-files.ts';
import { useDatabase } from './helpers/database.ts';

const { db } = useDatabase();
const scratch: string[] = [];
afterEach(async () => {
  for (const dir of scratch.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A private copy of the registry folders with a uniquely named template, so tests never collide. */
async function registryCopy() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'devflow-registry-'));
  scratch.push(dir);
  const templatesDir = path.join(dir, 'templates');
  const personasDir = path.join(dir, 'personas');
  await cp(TEMPLATES_DIR, templatesDir, { recursive: true });
  await cp(PERSONAS_DIR, personasDir, { recursive: true });
  const name = `t${Math.random().toString(36).slice(2, 10)}`;
  const template = JSON.parse(await readFile(path.join(templatesDir, 'development@1.json'), 'utf8'));
  for (const shipped of await readdir(templatesDir)) await rm(path.join(templatesDir, shipped));
  template.name = name;
  const file = path.join(templatesDir, `${name}@1.json`);
  await writeFile(file, JSON.stringify(template, null, 2));
  return { templatesDir, personasDir, id: `${name}@1`, file, template };
}

describe('canonical JSON', () => {
  it('ignores key order and formatting, not values', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[2,{"e":0,"f":1}]},"b":1}');
    expect(canonicalHash({ a: 1, b: 2 })).toBe(canonicalHash({ b: 2, a: 1 }));
    expect(canonicalHash({ a: 1 })).not.toBe(canonicalHash({ a: 2 }));
  });
});

describe('registries', () => {
  it('loads development@1 and @2 and their personas with the hash of their canonical JSON', async () => {
    const result = await syncRegistries(db);
    expect(result.templates.map((t) => t.id)).toEqual(expect.arrayContaining(['development@1', 'development@2']));
    expect(result.personas.map((p) => p.id).sort()).toEqual(['implementer@1', 'implementer@2', 'reviewer@1', 'reviewer@2', 'spec-writer@1', 'spec-writer@2']);
    // Version 2 names no agent, so its roles get the host's configured real agent; version 1 kept the scripted one.
    const personas = await db.select().from(agentPersonas);
    for (const p of personas) {
      const definition = p.definition as { agent?: string; defaultBackend?: string };
      if (p.version === 2) expect(definition).not.toHaveProperty('agent');
      else expect(definition.defaultBackend).toBe('scripted');
    }
    const [second] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, 'development@2'));
    expect(Object.values((second!.definition as { roles: Record<string, { persona: string }> }).roles).map((r) => r.persona).sort()).toEqual(['implementer@2', 'reviewer@2', 'spec-writer@2']);

    const [row] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, 'development@1'));
    const onDisk = JSON.parse(await readFile(path.join(TEMPLATES_DIR, 'development@1.json'), 'utf8'));
    expect(row!.hash).toBe(canonicalHash(onDisk));
    const definition = row!.definition as typeof onDisk;
    expect(definition.phases.map((p: { key: string }) => p.key)).toEqual(['spec', 'implement', 'review']);
    expect(definition.phases.map((p: { gate?: string }) => p.gate ?? null)).toEqual(['spec_approved', null, null]);
  });

  it('upserts idempotently: a second load inserts nothing and changes nothing', async () => {
    const copy = await registryCopy();
    const first = await syncRegistries(db, copy);
    expect(first.templates).toEqual([{ id: copy.id, hash: expect.any(String), status: 'inserted' }]);
    const [before] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, copy.id));

    // Reformatted and reordered, the same definition is the same template.
    await writeFile(copy.file, JSON.stringify({ ...copy.template, description: copy.template.description }, null, 8));
    const second = await syncRegistries(db, copy);
    expect(second.templates).toEqual([{ id: copy.id, hash: first.templates[0]!.hash, status: 'unchanged' }]);
    expect(second.personas.every((p) => p.status === 'unchanged')).toBe(true);
    expect(await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, copy.id))).toEqual([before]);
  });

  it('refuses a changed file that keeps its version, and leaves the stored definition alone', async () => {
    const copy = await registryCopy();
    await syncRegistries(db, copy);
    const [before] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, copy.id));

    copy.template.phases[0].instructions = 'Something else entirely.';
    await writeFile(copy.file, JSON.stringify(copy.template));
    await expect(syncRegistries(db, copy)).rejects.toMatchObject({
      code: 'registry_version_reused',
      message: expect.stringContaining(`${copy.file} changed but still declares ${copy.id}`),
      recoveryHint: expect.stringContaining('new version'),
    });
    expect(await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, copy.id))).toEqual([before]);
  });

  it.each([
    ['a phase with an unregistered artifact schema', (t: any) => { t.phases[0].artifact.schema = 'dev/nope@1'; }, 'phases.0.artifact.schema: a registered artifact schema id'],
    ['a phase whose role is not declared', (t: any) => { t.phases[1].role = 'ghost'; }, 'phases.1.role: role ghost is not declared'],
    ['a duplicated phase key', (t: any) => { t.phases[2].key = 'spec'; }, 'duplicate phase key spec'],
    ['an artifact path outside the worktree', (t: any) => { t.phases[0].artifact.path = '../spec.json'; }, 'a relative path inside the worktree'],
    ['an unknown field', (t: any) => { t.colour = 'blue'; }, 'colour'],
  ])('names what is wrong in %s and writes nothing', async (_what, mutate, message) => {
    const copy = await registryCopy();
    mutate(copy.template);
    await writeFile(copy.file, JSON.stringify(copy.template));
    await expect(syncRegistries(db, copy)).rejects.toMatchObject({ code: 'registry_file_invalid', message: expect.stringContaining(message) });
    expect(await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, copy.id))).toEqual([]);
  });

  it('refuses a file named differently from the id it declares', async () => {
    const copy = await registryCopy();
    await writeFile(copy.file.replace('@1.json', '@2.json'), JSON.stringify(copy.template));
    await expect(syncRegistries(db, copy)).rejects.toMatchObject({ message: expect.stringContaining(`must be named ${copy.id}.json`) });
  });

  it('refuses a role whose persona has no file', async () => {
    const copy = await registryCopy();
    copy.template.roles.reviewer.persona = 'critic@3';
    await writeFile(copy.file, JSON.stringify(copy.template));
    await expect(syncRegistries(db, copy)).rejects.toMatchObject({ message: expect.stringContaining('uses persona critic@3') });
    expect(await db.select().from(agentPersonas).where(eq(agentPersonas.id, 'critic@3'))).toEqual([]);
  });
});

describe('artifact schemas', () => {
  const samples = {
    'dev/spec@1': { title: 'Add greeting', summary: 'Print hello.', requirements: [{ id: 'R1', text: 'prints hello' }], acceptanceCriteria: ['output is hello'] },
    'dev/implementation@1': { summary: 'Done', filesChanged: [{ path: 'hello.sh', change: 'added' }], testsRun: [{ command: 'npm test', passed: true }] },
    'dev/review@1': { verdict: 'approve', summary: 'Looks right', findings: [{ severity: 'minor', file: 'hello.sh', message: 'no newline at end' }] },
  } as const;

  it.each(Object.keys(artifactSchemas) as (keyof typeof artifactSchemas)[])('%s accepts a valid artifact and rejects a broken one', (id) => {
    const schema = artifactSchemas[id];
    expect(schema.safeParse(samples[id]).success).toBe(true);
    expect(schema.safeParse({ ...samples[id], summary: '' }).success).toBe(false);
    expect(schema.safeParse({ ...samples[id], unexpected: 1 }).success).toBe(false);
  });

  it('exports each schema as JSON Schema an agent can follow', () => {
    const spec = artifactJsonSchema('dev/spec@1');
    expect(spec).toMatchObject({ type: 'object', additionalProperties: false, required: ['title', 'summary', 'requirements', 'acceptanceCriteria'] });
    expect((spec.properties as Record<string, unknown>).requirements).toMatchObject({ type: 'array', minItems: 1 });
    expect(artifactJsonSchema('dev/review@1')).toMatchObject({ properties: { verdict: { enum: ['approve', 'request_changes'] } } });
    expect(artifactJsonSchema('dev/implementation@1')).toMatchObject({ required: ['summary', 'filesChanged', 'testsRun'] });
  });
});
