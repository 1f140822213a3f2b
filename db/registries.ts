// Loads templates and personas from schemas/ into Postgres, pinned by hash. A file that
// changed without a version bump is refused: runs that pinned the old hash must not drift.
import { eq } from 'drizzle-orm';
import { canonicalHash } from '../lib/canonical-json.ts';
import { DevflowError } from '../lib/errors.ts';
import {
  PERSONAS_DIR,
  TEMPLATES_DIR,
  personaDefinition,
  readRegistryFolder,
  templateDefinition,
  type RegistryFile,
} from '../schemas/registry-files.ts';
import type { Executor } from './client.ts';
import { agentPersonas, workflowTemplates } from './schema.ts';

export interface RegistryEntry {
  id: string;
  hash: string;
  status: 'inserted' | 'unchanged';
}

type RegistryTable = typeof workflowTemplates | typeof agentPersonas;

async function upsertEntry<T extends { name: string; version: number }>(
  executor: Executor,
  table: RegistryTable,
  entry: RegistryFile<T>,
): Promise<RegistryEntry> {
  const hash = canonicalHash(entry.definition);
  const values = { id: entry.id, name: entry.definition.name, version: entry.definition.version, hash, definition: entry.definition };
  const inserted = await executor.insert(table).values(values).onConflictDoNothing().returning({ id: table.id });
  if (inserted.length > 0) return { id: entry.id, hash, status: 'inserted' };

  const [stored] = await executor.select({ hash: table.hash }).from(table).where(eq(table.id, entry.id));
  if (stored?.hash !== hash) {
    throw new DevflowError({
      code: 'registry_version_reused',
      message: `${entry.file} changed but still declares ${entry.id} (stored hash ${stored?.hash.slice(0, 12)}, file hash ${hash.slice(0, 12)})`,
      recoveryHint: 'give the changed definition a new version number; runs pinned to the old one keep it',
    });
  }
  return { id: entry.id, hash, status: 'unchanged' };
}

export interface RegistryFolders {
  templatesDir?: string;
  personasDir?: string;
}

/** Validates every file first, then upserts them all in one transaction. */
export async function syncRegistries(
  executor: Executor,
  folders: RegistryFolders = {},
): Promise<{ templates: RegistryEntry[]; personas: RegistryEntry[] }> {
  const personaFiles = await readRegistryFolder(folders.personasDir ?? PERSONAS_DIR, personaDefinition);
  const templateFiles = await readRegistryFolder(folders.templatesDir ?? TEMPLATES_DIR, templateDefinition);
  const personaIds = new Set(personaFiles.map((p) => p.id));
  for (const template of templateFiles) {
    for (const [role, { persona }] of Object.entries(template.definition.roles)) {
      if (!personaIds.has(persona)) {
        throw new DevflowError({
          code: 'registry_file_invalid',
          message: `${template.file}: role ${role} uses persona ${persona}, which has no file in ${folders.personasDir ?? PERSONAS_DIR}`,
        });
      }
    }
  }
  return executor.transaction(async (tx) => {
    const personas: RegistryEntry[] = [];
    for (const file of personaFiles) personas.push(await upsertEntry(tx, agentPersonas, file));
    const templates: RegistryEntry[] = [];
    for (const file of templateFiles) templates.push(await upsertEntry(tx, workflowTemplates, file));
    return { templates, personas };
  });
}
