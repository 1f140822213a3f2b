// Definitions from devflow's built-ins and a user's folder: loaded, checked (every problem named
// with its file and path), registered by hash, and never changed under a version.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { artifactProblems } from '../db/artifact-schemas.ts';
import { syncRegistries } from '../db/registries.ts';
import { agentPersonas, artifactSchemas as artifactSchemaRows, workflowTemplates } from '../db/schema.ts';
import { canonicalHash, canonicalJson } from '../lib/canonical-json.ts';
import { artifactJsonSchema, artifactSchemas } from '../schemas/artifacts.ts';
import { BUILT_IN, formatProblems, loadDefinitions } from '../schemas/definitions.ts';
import { sampleFor } from '../schemas/sample-artifacts.ts';
import { useDatabase } from './helpers/database.ts';
import { triageFolder, type TriageFolder } from './helpers/definitions.ts';

const { db } = useDatabase();
const scratch: string[] = [];
afterEach(async () => {
  for (const dir of scratch.splice(0)) await rm(dir, { recursive: true, force: true });
});

const userFolder = async () => {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'devflow-definitions-'));
  scratch.push(parent);
  return triageFolder(parent);
};

/** The problems of one user folder's template after `mutate`, as `path: message` lines. */
async function problemsAfter(mutate: (folder: TriageFolder) => void | Promise<void>) {
  const folder = await userFolder();
  await mutate(folder);
  await folder.write();
  const loaded = await loadDefinitions(folder.root);
  return { folder, loaded, lines: formatProblems(loaded.problems).map((l) => l.replace(`${folder.root}${path.sep}`, '')) };
}

describe('canonical JSON', () => {
  it('ignores key order and formatting, not values', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[2,{"e":0,"f":1}]},"b":1}');
    expect(canonicalHash({ a: 1, b: 2 })).toBe(canonicalHash({ b: 2, a: 1 }));
    expect(canonicalHash({ a: 1 })).not.toBe(canonicalHash({ a: 2 }));
  });
});

describe('loading definitions', () => {
  it('loads the built-ins without a problem: development@1 and @2, bugfix@1 and its JSON Schemas', async () => {
    const loaded = await loadDefinitions();
    expect(loaded.problems).toEqual([]);
    expect(loaded.templates.map((t) => t.id).sort()).toEqual(['bugfix@1', 'development@1', 'development@2']);
    expect(loaded.schemas.map((s) => s.id).sort()).toEqual(['bugfix/fix@1', 'bugfix/reproduction@1', 'bugfix/verification@1', 'dev/implementation@1', 'dev/review@1', 'dev/spec@1']);
    const development2 = loaded.templates.find((t) => t.id === 'development@2')!.definition;
    expect(development2.phases[2]!.loop).toEqual({ when: { field: 'verdict', equals: 'request_changes' }, to: 'implement', maxRounds: 2, quote: 'findings' });
    expect(loaded.templates.find((t) => t.id === 'development@1')!.definition.phases.some((p) => p.loop)).toBe(false);
  });

  it("each bugfix@1 schema's examples validate against it", async () => {
    const loaded = await loadDefinitions();
    for (const schema of loaded.schemas.filter((s) => s.id.startsWith('bugfix/'))) {
      const examples = schema.definition.examples as unknown[];
      expect(examples.length, schema.id).toBeGreaterThan(0);
      for (const example of examples) expect(artifactProblems({ id: schema.id, hash: canonicalHash(schema.definition), definition: schema.definition }, example)).toEqual([]);
    }
  });

  it("adds a user folder's template, persona and JSON Schema to the built-ins", async () => {
    const folder = await userFolder();
    const loaded = await loadDefinitions(folder.root);
    expect(loaded.problems).toEqual([]);
    expect(loaded.templates.map((t) => t.id)).toContain(folder.id);
    expect(loaded.personas.map((p) => p.id)).toContain(`triager-${folder.ns}@1`);
    expect(loaded.schemas.find((s) => s.id === folder.schemaId)).toMatchObject({ file: folder.files.schema, builtIn: false });
  });

  // Each check: what is broken, and the line that names it (file: path: message).
  it.each<[string, (f: TriageFolder) => void, RegExp]>([
    ['an unknown persona', (f) => { f.template.roles.triager.persona = 'critic@3'; }, /templates\/triage-\w+@1\.json: roles\.triager\.persona: unknown persona critic@3/],
    ['an unknown role', (f) => { f.template.phases[1].role = 'ghost'; }, /phases\.1\.role: unknown role ghost \(roles: triager, checker\)/],
    ['a missing artifact schema', (f) => { f.template.phases[0].artifact.schema = 'team/nope@1'; }, /phases\.0\.artifact\.schema: missing artifact schema team\/nope@1/],
    ['duplicate phase keys', (f) => { f.template.phases[1].key = 'triage'; }, /phases\.1\.key: duplicate phase key triage/],
    ['an artifact path outside the worktree', (f) => { f.template.phases[0].artifact.path = '../../etc/triage.json'; }, /phases\.0\.artifact\.path: a relative path inside the worktree/],
    ['an absolute artifact path', (f) => { f.template.phases[0].artifact.path = '/tmp/triage.json'; }, /phases\.0\.artifact\.path: a relative path inside the worktree/],
    ['two phases writing one artifact', (f) => { f.template.phases[1].artifact.path = '.devflow/artifacts/triage.json'; }, /phases\.1\.artifact\.path: \.devflow\/artifacts\/triage\.json is the artifact of phase triage already/],
    ['a loop naming an unknown phase', (f) => { f.template.phases[1].loop = { when: { field: 'verdict', equals: 'request_changes' }, to: 'nowhere', maxRounds: 1 }; }, /phases\.1\.loop\.to: the loop goes back to nowhere, an unknown phase; it must name an earlier phase \(earlier: triage\)/],
    ['a loop naming a later phase', (f) => { f.template.phases[0].loop = { when: { field: 'decision', equals: 'again' }, to: 'check', maxRounds: 1 }; }, /phases\.0\.loop\.to: the loop goes back to check, a later phase or this one/],
    ['a loop on a field the artifact lacks', (f) => { f.template.phases[1].loop = { when: { field: 'mood', equals: 'sad' }, to: 'triage', maxRounds: 1 }; }, /phases\.1\.loop\.when\.field: dev\/review@1 has no field mood/],
    ['a loop on a value the field never takes', (f) => { f.template.phases[1].loop = { when: { field: 'verdict', equals: 'reject' }, to: 'triage', maxRounds: 1 }; }, /phases\.1\.loop\.when\.equals: verdict is one of "approve", "request_changes"; it never equals "reject"/],
    ['a loop quoting a field the artifact lacks', (f) => { f.template.phases[1].loop = { when: { field: 'verdict', equals: 'request_changes' }, to: 'triage', maxRounds: 1, quote: 'comments' }; }, /phases\.1\.loop\.quote: dev\/review@1 has no field comments/],
    ['a gate named like one devflow raises', (f) => { f.template.phases[0].gate = 'check_rounds_exhausted'; }, /phases\.0\.gate: check_rounds_exhausted is the name of a gate devflow raises itself/],
    ['the same gate on two phases', (f) => { f.template.phases[0].gate = 'looked_at'; f.template.phases[1].gate = 'looked_at'; }, /phases\.1\.gate: gate looked_at is declared by phase triage already/],
    ['instructions quoting a later phase', (f) => { f.template.phases[0].instructions = 'Use {{check.summary}}.'; }, /phases\.0\.instructions: quotes \{\{check\.summary\}\}, but check is not an earlier phase/],
    ['instructions quoting a missing field', (f) => { f.template.phases[1].instructions = 'Use {{triage.colour}}.'; }, /phases\.1\.instructions: quotes \{\{triage\.colour\}\}, but t\w+\/triage@1 has no field colour/],
    ['an unknown option', (f) => { f.template.colour = 'blue'; }, /\(root\): Unrecognized key: "colour"/],
    ['a loop without maxRounds', (f) => { delete f.template.phases[1].loop.maxRounds; }, /phases\.1\.loop\.maxRounds: /],
  ])('names %s with its file and path, and keeps the template from running', async (_what, mutate, line) => {
    const { folder, loaded, lines } = await problemsAfter(mutate);
    expect(lines.join('\n')).toMatch(line);
    expect(loaded.templates.map((t) => t.id)).not.toContain(folder.id);
    expect(loaded.problemsOf.get(folder.id)?.length).toBeGreaterThan(0);
  });

  it('names a JSON Schema that does not compile, and every template that uses it', async () => {
    const { folder, loaded, lines } = await problemsAfter((f) => {
      f.schema.properties.decision = { type: 'colour' } as never;
    });
    expect(lines.join('\n')).toMatch(new RegExp(`schemas/${folder.ns}/triage@1\\.json: /properties/decision/type: the JSON Schema does not compile: .*`));
    expect(lines.join('\n')).toMatch(new RegExp(`phases\\.0\\.artifact\\.schema: missing artifact schema ${folder.ns}/triage@1`));
    expect(loaded.templates.map((t) => t.id)).not.toContain(folder.id);
  });

  it('names a file that is not JSON, a file named unlike its id, a schema outside <namespace>/, and an id a built-in has', async () => {
    const folder = await userFolder();
    await writeFile(path.join(folder.root, 'personas', 'broken@1.json'), '{ "name": "broken", ');
    await writeFile(path.join(folder.root, 'personas', 'other@1.json'), JSON.stringify({ ...folder.persona, name: 'renamed' }));
    await writeFile(path.join(folder.root, 'schemas', 'loose@1.json'), '{}');
    await writeFile(path.join(folder.root, 'personas', 'reviewer@1.json'), JSON.stringify({ name: 'reviewer', version: 1, title: 'Mine', instructions: 'Mine.' }));
    const lines = formatProblems((await loadDefinitions(folder.root)).problems).join('\n');
    expect(lines).toMatch(/personas\/broken@1\.json: \(file\): not valid JSON/);
    expect(lines).toMatch(/personas\/other@1\.json: name: declares renamed@1, so it must be named renamed@1\.json/);
    expect(lines).toMatch(/schemas\/loose@1\.json: \(file\): an artifact schema lives at <folder>\/<namespace>\/<name>@<version>\.json \(got loose@1\)/);
    expect(lines).toMatch(new RegExp(`personas/reviewer@1\\.json: \\(file\\): reviewer@1 is defined already, in ${BUILT_IN.personas}/reviewer@1\\.json`));
  });
});

describe('registering definitions', () => {
  it('registers the built-ins with the hash of their canonical JSON', async () => {
    const result = await syncRegistries(db);
    expect(result.problems).toEqual([]);
    expect(result.templates.map((t) => t.id)).toEqual(expect.arrayContaining(['bugfix@1', 'development@1', 'development@2']));
    const [row] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, 'development@1'));
    const onDisk = JSON.parse(await readFile(path.join(BUILT_IN.templates, 'development@1.json'), 'utf8'));
    expect(row!.hash).toBe(canonicalHash(onDisk));
    expect((row!.definition as typeof onDisk).phases.map((p: { gate?: string }) => p.gate ?? null)).toEqual(['spec_approved', null, null]);
    // The built-in zod schemas are registered as the JSON Schema the agents see.
    const [review] = await db.select().from(artifactSchemaRows).where(eq(artifactSchemaRows.id, 'dev/review@1'));
    expect(review!.definition).toEqual(artifactJsonSchema('dev/review@1'));
    // Version 2 personas name no agent (the host's configured one); version 1 keeps the scripted one.
    for (const p of await db.select().from(agentPersonas).where(eq(agentPersonas.name, 'reviewer'))) {
      const definition = p.definition as { agent?: string; defaultBackend?: string };
      if (p.version === 2) expect(definition).not.toHaveProperty('agent');
      else expect(definition.defaultBackend).toBe('scripted');
    }
  });

  it("registers a user folder's definitions once: a second load changes nothing", async () => {
    const folder = await userFolder();
    const first = await syncRegistries(db, { userRoot: folder.root });
    expect(first.templates.find((t) => t.id === folder.id)?.status).toBe('inserted');
    expect(first.schemas.find((s) => s.id === folder.schemaId)?.status).toBe('inserted');
    const [before] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, folder.id));

    // Reformatted, the same definition is the same template.
    await writeFile(folder.files.template, JSON.stringify(folder.template, null, 8));
    const second = await syncRegistries(db, { userRoot: folder.root });
    expect(second.templates.find((t) => t.id === folder.id)).toEqual({ id: folder.id, hash: before!.hash, status: 'unchanged' });
    expect(await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, folder.id))).toEqual([before]);
  });

  it.each(['template', 'schema'] as const)('refuses a changed %s that keeps its version, keeps the stored one, and keeps the template from running', async (what) => {
    const folder = await userFolder();
    await syncRegistries(db, { userRoot: folder.root });
    const [template] = await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, folder.id));
    const [schema] = await db.select().from(artifactSchemaRows).where(eq(artifactSchemaRows.id, folder.schemaId));

    if (what === 'template') folder.template.phases[0].instructions = 'Something else entirely.';
    else folder.schema.properties.notes = { type: 'string', minLength: 5 };
    await folder.write();
    const result = await syncRegistries(db, { userRoot: folder.root });
    const file = what === 'template' ? folder.files.template : folder.files.schema;
    const id = what === 'template' ? folder.id : folder.schemaId;
    expect(formatProblems(result.problems).join('\n')).toContain(`${file}: (file): changed but still declares ${id}`);
    expect(result.problemsOf.get(folder.id)?.length).toBeGreaterThan(0);
    expect(await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, folder.id))).toEqual([template]);
    expect(await db.select().from(artifactSchemaRows).where(eq(artifactSchemaRows.id, folder.schemaId))).toEqual([schema]);
  });

  it('writes nothing for a template with a problem', async () => {
    const folder = await userFolder();
    folder.template.phases[1].role = 'ghost';
    await folder.write();
    const result = await syncRegistries(db, { userRoot: folder.root });
    expect(result.problemsOf.get(folder.id)).toEqual([expect.objectContaining({ path: 'phases.1.role' })]);
    expect(await db.select().from(workflowTemplates).where(eq(workflowTemplates.id, folder.id))).toEqual([]);
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
  });

  it("checks a user's artifact against its JSON Schema, naming each problem by its path", async () => {
    const folder = await userFolder();
    const registered = { id: folder.schemaId, hash: canonicalHash(folder.schema), definition: folder.schema };
    expect(artifactProblems(registered, folder.schema.examples[0])).toEqual([]);
    expect(artifactProblems(registered, { decision: 'maybe', notes: '', extra: 1 })).toEqual([
      '(root): must NOT have additional properties (extra)',
      'decision: must be equal to one of the allowed values',
      'notes: must NOT have fewer than 1 characters',
    ]);
  });

  it('gives the scripted agents a sample from the JSON Schema: its first example, or its second to ask for the work back', () => {
    const verification = { examples: [{ verdict: 'fixed', evidence: 'ok' }, { verdict: 'not_fixed', evidence: 'still fails' }] };
    expect(sampleFor('bugfix/verification@1', verification)).toEqual({ verdict: 'fixed', evidence: 'ok' });
    expect(sampleFor('bugfix/verification@1', verification, 'request_changes')).toEqual({ verdict: 'not_fixed', evidence: 'still fails' });
    expect(sampleFor('dev/review@1', undefined, 'request_changes')).toMatchObject({ verdict: 'request_changes' });
    expect(() => sampleFor('team/bare@1', { type: 'object' })).toThrow(/give its JSON Schema an `examples` entry/);
  });
});
