// Definitions: templates, personas and artifact schemas, from devflow's built-ins and from a
// user's folder (DEVFLOW_DEFINITIONS_DIR: `templates/`, `personas/`, `schemas/`). Every file is
// read and checked before any is used; every problem is reported with its file and the path in
// it, and a definition with a problem (or one that leans on one) is left out, never half used.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { z } from 'zod';
import { canonicalHash } from '../lib/canonical-json.ts';
import { AGENT_NAMES } from '../sessions/presets.ts';
import { artifactJsonSchema, artifactSchemas, type ArtifactSchemaId } from './artifacts.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
/** devflow's own definitions: templates, personas, and artifact schemas written as JSON Schema. */
export const BUILT_IN: DefinitionFolders = {
  templates: path.join(here, 'templates'),
  personas: path.join(here, 'personas'),
  schemas: path.join(here, 'artifact-schemas'),
};

export interface DefinitionFolders {
  templates: string;
  personas: string;
  schemas: string;
}

/** A user's definitions folder: the same three kinds, in `templates/`, `personas/` and `schemas/`. */
export function userFolders(root: string): DefinitionFolders {
  return { templates: path.join(root, 'templates'), personas: path.join(root, 'personas'), schemas: path.join(root, 'schemas') };
}

// ---- file formats ---------------------------------------------------------------------------

const slug = z.string().regex(/^[a-z][a-z0-9-]*$/, 'lowercase letters, digits and dashes');
const key = z.string().regex(/^[a-z][a-z0-9_]*$/, 'lowercase letters, digits and underscores');
const versionedRef = z.string().regex(/^[a-z][a-z0-9-]*@[1-9][0-9]*$/, 'name@version');
export const SCHEMA_ID = /^[a-z][a-z0-9-]*\/[a-z][a-z0-9-]*@[1-9][0-9]*$/;
const schemaRef = z.string().regex(SCHEMA_ID, 'an artifact schema id such as team/bugreport@1');
const BACKENDS = ['tmux', 'scripted', 'fake'] as const;

export const personaDefinition = z
  .object({
    name: slug,
    version: z.number().int().positive(),
    title: z.string().min(1),
    instructions: z.string().min(1),
    /** The agent this role uses unless a run names another; none = the host's configured agent. */
    agent: z.enum(AGENT_NAMES).optional(),
    /** Version-1 personas named a backend instead (`tmux` = the configured agent). */
    defaultBackend: z.enum(BACKENDS).optional(),
  })
  .strict();
export type PersonaDefinition = z.infer<typeof personaDefinition>;

const artifactPath = z
  .string()
  .min(1)
  .refine((p) => !path.isAbsolute(p) && !path.normalize(p).startsWith('..'), 'a relative path inside the worktree');

/** Back to an earlier phase when this phase's artifact says so, at most `maxRounds` times. */
const loopDefinition = z
  .object({
    when: z.object({ field: z.string().min(1), equals: z.union([z.string(), z.number(), z.boolean()]) }).strict(),
    to: key,
    maxRounds: z.number().int().min(1).max(20),
    /** A field of this phase's artifact quoted in the prompt of the phase it goes back to. */
    quote: z.string().min(1).optional(),
  })
  .strict();
export type LoopDefinition = z.infer<typeof loopDefinition>;

export const templateDefinition = z
  .object({
    name: slug,
    version: z.number().int().positive(),
    description: z.string().min(1),
    roles: z.record(key, z.object({ persona: versionedRef, agent: z.enum(AGENT_NAMES).optional() }).strict()),
    phases: z
      .array(
        z
          .object({
            key,
            title: z.string().min(1),
            role: key,
            /** May quote an earlier phase's artifact: `{{spec.title}}`. */
            instructions: z.string().min(1),
            artifact: z.object({ schema: schemaRef, path: artifactPath }).strict(),
            gate: key.optional(),
            artifactTimeoutMs: z.number().int().positive().optional(),
            loop: loopDefinition.optional(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
export type TemplateDefinition = z.infer<typeof templateDefinition>;

export interface Problem {
  file: string;
  /** Where in the file (`phases.2.artifact.schema`), or `(file)` for the file as a whole. */
  path: string;
  message: string;
}

export interface DefinitionFile<T> {
  file: string;
  id: string;
  definition: T;
}

export interface ArtifactSchemaFile {
  file: string;
  id: string;
  /** The JSON Schema the agent is shown and the artifact is checked against. */
  definition: Record<string, unknown>;
  builtIn: boolean;
}

export interface LoadedDefinitions {
  templates: DefinitionFile<TemplateDefinition>[];
  personas: DefinitionFile<PersonaDefinition>[];
  schemas: ArtifactSchemaFile[];
  problems: Problem[];
  /** Problems by the template they keep from running (its own, or those of what it uses). */
  problemsOf: Map<string, Problem[]>;
}

// ---- reading --------------------------------------------------------------------------------

async function jsonFiles(folder: string, recursive = false): Promise<string[]> {
  if (!existsSync(folder)) return [];
  const entries = await readdir(folder, { withFileTypes: true, recursive });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.json')).map((e) => path.join(e.parentPath, e.name)).sort();
}

async function readJson(file: string, problems: Problem[]): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    problems.push({ file, path: '(file)', message: `not valid JSON: ${(error as Error).message}` });
    return undefined;
  }
}

async function readVersioned<T extends { name: string; version: number }>(folder: string, schema: z.ZodType<T>, problems: Problem[]): Promise<DefinitionFile<T>[]> {
  const out: DefinitionFile<T>[] = [];
  for (const file of await jsonFiles(folder)) {
    const raw = await readJson(file, problems);
    if (raw === undefined) continue;
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ file, path: issue.path.join('.') || '(root)', message: issue.message });
      continue;
    }
    const id = `${parsed.data.name}@${parsed.data.version}`;
    if (path.basename(file) !== `${id}.json`) {
      problems.push({ file, path: 'name', message: `declares ${id}, so it must be named ${id}.json` });
      continue;
    }
    out.push({ file, id, definition: parsed.data });
  }
  return out;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** A JSON Schema (draft 2020-12) validator; one per process, schemas compiled once per hash. */
export function jsonSchemaValidator(): Ajv2020 {
  return addFormats(new Ajv2020({ allErrors: true, strict: false }));
}

async function readSchemas(folder: string, builtIn: boolean, problems: Problem[]): Promise<ArtifactSchemaFile[]> {
  const ajv = jsonSchemaValidator();
  const out: ArtifactSchemaFile[] = [];
  for (const file of await jsonFiles(folder, true)) {
    // `schemas/team/bugreport@1.json` is `team/bugreport@1`.
    const id = path.relative(folder, file).replace(/\.json$/, '').split(path.sep).join('/');
    if (!SCHEMA_ID.test(id)) {
      problems.push({ file, path: '(file)', message: `an artifact schema lives at <folder>/<namespace>/<name>@<version>.json (got ${id})` });
      continue;
    }
    const raw = await readJson(file, problems);
    if (raw === undefined) continue;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push({ file, path: '(root)', message: 'a JSON Schema is an object' });
      continue;
    }
    // Checked against the metaschema first, so each mistake is named where it is in the file.
    if (!ajv.validateSchema(raw)) {
      for (const e of ajv.errors ?? []) problems.push({ file, path: e.instancePath || '(root)', message: `the JSON Schema does not compile: ${e.instancePath ? '' : 'the schema '}${e.message ?? 'is invalid'}` });
      continue;
    }
    try {
      ajv.compile(raw as Record<string, unknown>);
    } catch (error) {
      problems.push({ file, path: '(root)', message: `the JSON Schema does not compile: ${(error as Error).message}` });
      continue;
    }
    out.push({ file, id, definition: raw as Record<string, unknown>, builtIn });
  }
  return out;
}

/** The artifact schemas written in zod, as the JSON Schema agents are shown. */
function zodSchemas(): ArtifactSchemaFile[] {
  return (Object.keys(artifactSchemas) as ArtifactSchemaId[]).map((id) => ({ file: `schemas/artifacts.ts (${id})`, id, definition: artifactJsonSchema(id), builtIn: true }));
}

// ---- checking ------------------------------------------------------------------------------

/** `{{spec.title}}` in a phase's instructions: a field of an earlier phase's artifact, quoted when the prompt is sent. */
export const PLACEHOLDER = /\{\{\s*([a-z][a-z0-9_]*)\.([A-Za-z0-9_.]+)\s*\}\}/g;

/**
 * The part of a JSON Schema that describes a dotted field (`test.command`): its sub-schema,
 * `undefined` when the schema lists its properties and this is not one, `null` when it cannot tell.
 */
function fieldSchema(schema: Record<string, unknown> | undefined, dotted: string): Record<string, unknown> | null | undefined {
  let at: Record<string, unknown> | undefined = schema;
  for (const part of dotted.split('.')) {
    const properties = at?.properties as Record<string, Record<string, unknown>> | undefined;
    if (!properties || typeof properties !== 'object') return null;
    if (!Object.hasOwn(properties, part)) return undefined;
    at = properties[part];
  }
  return at ?? null;
}

/** Gates devflow raises itself: a template's gate may not take their names. */
const RESERVED_GATES = /^(artifact_invalid_after_repair|artifact_timeout_exhausted|artifact_unreadable|prompt_send_exhausted|session_recovery_required|[a-z0-9_]+_rounds_exhausted)$/;

/** What is wrong inside one template, given what exists around it. */
function checkTemplate(template: DefinitionFile<TemplateDefinition>, personaIds: Set<string>, schemas: Map<string, Record<string, unknown>>): Problem[] {
  const problems: Problem[] = [];
  const add = (at: string, message: string) => problems.push({ file: template.file, path: at, message });
  const { roles, phases } = template.definition;
  for (const [role, { persona }] of Object.entries(roles)) {
    if (!personaIds.has(persona)) add(`roles.${role}.persona`, `unknown persona ${persona}`);
  }
  const seen: string[] = [];
  const paths = new Map<string, string>();
  const gates = new Map<string, string>();
  phases.forEach((phase, i) => {
    if (seen.includes(phase.key)) add(`phases.${i}.key`, `duplicate phase key ${phase.key}`);
    if (!Object.hasOwn(roles, phase.role)) add(`phases.${i}.role`, `unknown role ${phase.role} (roles: ${Object.keys(roles).join(', ')})`);
    const schema = schemas.get(phase.artifact.schema);
    if (!schema) add(`phases.${i}.artifact.schema`, `missing artifact schema ${phase.artifact.schema}`);
    const artifactPath = path.posix.normalize(phase.artifact.path);
    if (paths.has(artifactPath)) add(`phases.${i}.artifact.path`, `${phase.artifact.path} is the artifact of phase ${paths.get(artifactPath)} already`);
    else paths.set(artifactPath, phase.key);
    if (phase.gate) {
      if (RESERVED_GATES.test(phase.gate)) add(`phases.${i}.gate`, `${phase.gate} is the name of a gate devflow raises itself`);
      else if (gates.has(phase.gate)) add(`phases.${i}.gate`, `gate ${phase.gate} is declared by phase ${gates.get(phase.gate)} already`);
      else gates.set(phase.gate, phase.key);
    }
    if (phase.loop) {
      const { loop } = phase;
      if (!seen.includes(loop.to)) {
        const where = phases.some((p) => p.key === loop.to) ? 'a later phase or this one' : 'an unknown phase';
        add(`phases.${i}.loop.to`, `the loop goes back to ${loop.to}, ${where}; it must name an earlier phase (earlier: ${seen.join(', ') || 'none'})`);
      }
      const field = fieldSchema(schema, loop.when.field);
      if (field === undefined) add(`phases.${i}.loop.when.field`, `${phase.artifact.schema} has no field ${loop.when.field}`);
      else if (field && Array.isArray(field.enum) && !field.enum.includes(loop.when.equals)) {
        add(`phases.${i}.loop.when.equals`, `${loop.when.field} is one of ${field.enum.map((v) => JSON.stringify(v)).join(', ')}; it never equals ${JSON.stringify(loop.when.equals)}`);
      }
      if (loop.quote && fieldSchema(schema, loop.quote) === undefined) add(`phases.${i}.loop.quote`, `${phase.artifact.schema} has no field ${loop.quote}`);
    }
    for (const [, phaseKey, field] of phase.instructions.matchAll(PLACEHOLDER)) {
      const earlier = phases.findIndex((p) => p.key === phaseKey);
      if (!seen.includes(phaseKey!)) add(`phases.${i}.instructions`, `quotes {{${phaseKey}.${field}}}, but ${phaseKey} is not an earlier phase`);
      else if (fieldSchema(schemas.get(phases[earlier]!.artifact.schema), field!) === undefined) {
        add(`phases.${i}.instructions`, `quotes {{${phaseKey}.${field}}}, but ${phases[earlier]!.artifact.schema} has no field ${field}`);
      }
    }
    seen.push(phase.key);
  });
  return problems;
}

/**
 * Reads devflow's built-ins and (when given) a user's folder, checks everything, and returns
 * what may be used and every problem. A user's definition may not reuse a built-in's id.
 */
export async function loadDefinitions(userRoot?: string): Promise<LoadedDefinitions> {
  const problems: Problem[] = [];
  const sources: [DefinitionFolders, boolean][] = [[BUILT_IN, true], ...(userRoot ? [[userFolders(userRoot), false] as [DefinitionFolders, boolean]] : [])];
  const personas: DefinitionFile<PersonaDefinition>[] = [];
  const templates: DefinitionFile<TemplateDefinition>[] = [];
  const schemas: ArtifactSchemaFile[] = [...zodSchemas()];
  for (const [folders, builtIn] of sources) {
    personas.push(...(await readVersioned(folders.personas, personaDefinition, problems)));
    templates.push(...(await readVersioned(folders.templates, templateDefinition, problems)));
    schemas.push(...(await readSchemas(folders.schemas, builtIn, problems)));
  }
  const unique = <T extends { id: string; file: string }>(items: T[]): T[] => {
    const byId = new Map<string, T>();
    for (const item of items) {
      const first = byId.get(item.id);
      if (first) problems.push({ file: item.file, path: '(file)', message: `${item.id} is defined already, in ${first.file}` });
      else byId.set(item.id, item);
    }
    return [...byId.values()];
  };
  const uniquePersonas = unique(personas);
  const uniqueSchemas = unique(schemas);
  const personaIds = new Set(uniquePersonas.map((p) => p.id));
  const schemaById = new Map(uniqueSchemas.map((s) => [s.id, s.definition]));
  const problemsOf = new Map<string, Problem[]>();
  const usable: DefinitionFile<TemplateDefinition>[] = [];
  for (const template of unique(templates)) {
    const found = checkTemplate(template, personaIds, schemaById);
    problems.push(...found);
    if (found.length) problemsOf.set(template.id, found);
    else usable.push(template);
  }
  // A template file that did not even parse is still named by its file.
  for (const problem of problems) {
    const id = path.basename(problem.file).replace(/\.json$/, '');
    if (problem.file.includes(`${path.sep}templates${path.sep}`) && !problemsOf.has(id) && !usable.some((t) => t.id === id)) problemsOf.set(id, [problem]);
  }
  return { templates: usable, personas: uniquePersonas, schemas: uniqueSchemas, problems, problemsOf };
}

/** The hash a run pins: the canonical JSON of the definition. */
export const definitionHash = (definition: unknown) => canonicalHash(definition);

export function formatProblems(problems: Problem[]): string[] {
  return problems.map((p) => `${p.file}: ${p.path}: ${p.message}`);
}
