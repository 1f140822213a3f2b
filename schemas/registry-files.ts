// Template and persona files: their zod schemas and how they are read from disk.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DevflowError } from '../lib/errors.ts';
import { AGENT_NAMES } from '../sessions/presets.ts';
import { isArtifactSchemaId } from './artifacts.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const TEMPLATES_DIR = path.join(here, 'templates');
export const PERSONAS_DIR = path.join(here, 'personas');

const slug = z.string().regex(/^[a-z][a-z0-9-]*$/, 'lowercase letters, digits and dashes');
const key = z.string().regex(/^[a-z][a-z0-9_]*$/, 'lowercase letters, digits and underscores');
const versionedRef = z.string().regex(/^[a-z][a-z0-9-]*@[1-9][0-9]*$/, 'name@version');
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

export const templateDefinition = z
  .object({
    name: slug,
    version: z.number().int().positive(),
    description: z.string().min(1),
    roles: z.record(key, z.object({ persona: versionedRef }).strict()),
    phases: z
      .array(
        z
          .object({
            key,
            title: z.string().min(1),
            role: key,
            instructions: z.string().min(1),
            artifact: z
              .object({
                schema: z.string().refine(isArtifactSchemaId, 'a registered artifact schema id'),
                path: artifactPath,
              })
              .strict(),
            gate: key.optional(),
            artifactTimeoutMs: z.number().int().positive().optional(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict()
  .superRefine((template, ctx) => {
    const seen = new Set<string>();
    template.phases.forEach((phase, i) => {
      if (seen.has(phase.key)) ctx.addIssue({ code: 'custom', path: ['phases', i, 'key'], message: `duplicate phase key ${phase.key}` });
      seen.add(phase.key);
      if (!Object.hasOwn(template.roles, phase.role)) {
        ctx.addIssue({ code: 'custom', path: ['phases', i, 'role'], message: `role ${phase.role} is not declared in roles` });
      }
    });
  });
export type TemplateDefinition = z.infer<typeof templateDefinition>;

export interface RegistryFile<T> {
  file: string;
  id: string;
  definition: T;
}

/** Reads every `name@version.json` in a folder; the file name must match its content. */
export async function readRegistryFolder<T extends { name: string; version: number }>(
  folder: string,
  schema: z.ZodType<T>,
): Promise<RegistryFile<T>[]> {
  const names = (await readdir(folder)).filter((n) => n.endsWith('.json')).sort();
  const files: RegistryFile<T>[] = [];
  for (const name of names) {
    const file = path.join(folder, name);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw invalidFile(file, `not valid JSON: ${(error as Error).message}`);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw invalidFile(file, parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
    }
    const id = `${parsed.data.name}@${parsed.data.version}`;
    if (name !== `${id}.json`) throw invalidFile(file, `declares ${id}, so it must be named ${id}.json`);
    files.push({ file, id, definition: parsed.data });
  }
  return files;
}

function invalidFile(file: string, why: string): DevflowError {
  return new DevflowError({ code: 'registry_file_invalid', message: `${file}: ${why}` });
}
