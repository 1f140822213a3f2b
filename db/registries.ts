// Loads definitions (built-in, and the user's folder) into Postgres, pinned by hash. A file that
// changed without a version bump is refused (a problem, and the stored definition stays): runs
// that pinned the old hash must not drift. Definitions with problems are not registered.
import { eq } from 'drizzle-orm';
import { canonicalHash } from '../lib/canonical-json.ts';
import { loadDefinitions, type Problem } from '../schemas/definitions.ts';
import type { Executor } from './client.ts';
import { agentPersonas, artifactSchemas, workflowTemplates } from './schema.ts';

export interface RegistryEntry {
  id: string;
  hash: string;
  status: 'inserted' | 'unchanged';
}

export interface SyncResult {
  templates: RegistryEntry[];
  personas: RegistryEntry[];
  schemas: RegistryEntry[];
  problems: Problem[];
  /** Problems by the template they keep from running. */
  problemsOf: Map<string, Problem[]>;
}

type RegistryTable = typeof workflowTemplates | typeof agentPersonas | typeof artifactSchemas;

function versionReused(file: string, id: string, stored: string, hash: string): Problem {
  return { file, path: '(file)', message: `changed but still declares ${id} (stored hash ${stored.slice(0, 12)}, file hash ${hash.slice(0, 12)}): give the changed definition a new version; runs pinned to the old one keep it` };
}

/** Stores a definition by its id and hash; the same id with another hash is a version reused. */
async function upsertHashed(executor: Executor, table: RegistryTable, entry: { file: string; id: string; definition: object }, columns: Record<string, unknown> = {}): Promise<RegistryEntry | Problem> {
  const hash = canonicalHash(entry.definition);
  const values = { id: entry.id, hash, definition: entry.definition, ...columns };
  const inserted = await executor.insert(table).values(values as typeof workflowTemplates.$inferInsert).onConflictDoNothing().returning({ id: table.id });
  if (inserted.length > 0) return { id: entry.id, hash, status: 'inserted' };
  const [stored] = await executor.select({ hash: table.hash }).from(table).where(eq(table.id, entry.id));
  if (stored?.hash !== hash) return versionReused(entry.file, entry.id, stored?.hash ?? '', hash);
  return { id: entry.id, hash, status: 'unchanged' };
}

/** Templates and personas also keep their name and version in columns of their own. */
const named = (d: { name: string; version: number }) => ({ name: d.name, version: d.version });

const isProblem = (x: RegistryEntry | Problem): x is Problem => 'message' in x;

/**
 * Checks every definition first, then registers what is sound in one transaction. A template
 * whose persona or schema was refused is refused too.
 */
export async function syncRegistries(executor: Executor, options: { userRoot?: string } = {}): Promise<SyncResult> {
  const loaded = await loadDefinitions(options.userRoot);
  return executor.transaction(async (tx) => {
    const problems = [...loaded.problems];
    const problemsOf = new Map(loaded.problemsOf);
    const refused = new Map<string, Problem>();
    const sort = (results: (RegistryEntry | Problem)[], ids: string[]) => {
      const entries: RegistryEntry[] = [];
      results.forEach((r, i) => {
        if (isProblem(r)) {
          problems.push(r);
          refused.set(ids[i]!, r);
        } else entries.push(r);
      });
      return entries;
    };
    // One at a time: a transaction is one connection.
    const inTurn = async <T>(items: T[], upsert: (item: T) => Promise<RegistryEntry | Problem>) => {
      const results: (RegistryEntry | Problem)[] = [];
      for (const item of items) results.push(await upsert(item));
      return results;
    };
    const personas = sort(await inTurn(loaded.personas, (p) => upsertHashed(tx, agentPersonas, p, named(p.definition))), loaded.personas.map((p) => p.id));
    const schemas = sort(await inTurn(loaded.schemas, (s) => upsertHashed(tx, artifactSchemas, s)), loaded.schemas.map((s) => s.id));
    const sound = loaded.templates.filter((t) => {
      const leaning = [...Object.values(t.definition.roles).map((r) => r.persona), ...t.definition.phases.map((p) => p.artifact.schema)].filter((id) => refused.has(id));
      if (leaning.length === 0) return true;
      const problem = { file: t.file, path: '(file)', message: `uses ${leaning.join(', ')}, which was refused` };
      problems.push(problem);
      // Why each was refused, too: the template cannot run until that is fixed.
      problemsOf.set(t.id, [problem, ...leaning.map((id) => refused.get(id)!)]);
      return false;
    });
    const templates: RegistryEntry[] = [];
    for (const t of sound) {
      const result = await upsertHashed(tx, workflowTemplates, t, named(t.definition));
      if (isProblem(result)) {
        problems.push(result);
        problemsOf.set(t.id, [result]);
      } else templates.push(result);
    }
    return { templates, personas, schemas, problems, problemsOf };
  });
}
