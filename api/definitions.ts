// Definitions: what can run (templates, personas, artifact schemas), what was refused and why,
// and reloading the user's folder without a restart.
import { syncRegistries } from '../db/registries.ts';
import { agentPersonas, artifactSchemas, workflowTemplates } from '../db/schema.ts';
import { reloadResponse, templatesResponse } from '../schemas/api.ts';
import type { Problem } from '../schemas/definitions.ts';
import { errors, type App, type RouteDeps } from './context.ts';

export function registerDefinitionRoutes(app: App, deps: RouteDeps): void {
  const { db } = deps;
  const state = (deps.definitions ??= { dir: undefined, problems: [], problemsOf: new Map() });
  const allProblems = (): Problem[] => [...new Map([...state.problems, ...[...state.problemsOf.values()].flat()].map((p) => [`${p.file}|${p.path}|${p.message}`, p])).values()];

  app.get('/v1/templates', { schema: { summary: 'Templates, personas and artifact schemas, and the definitions refused', response: { 200: templatesResponse, ...errors() } } }, async () => ({
    templates: (await db.select().from(workflowTemplates).orderBy(workflowTemplates.id)).map((t) => ({ ...t, definition: t.definition as Record<string, unknown> })),
    personas: (await db.select().from(agentPersonas).orderBy(agentPersonas.id)).map((p) => ({ ...p, definition: p.definition as Record<string, unknown> })),
    artifactSchemas: (await db.select().from(artifactSchemas).orderBy(artifactSchemas.id)).map((s) => ({ ...s, definition: s.definition as Record<string, unknown> })),
    problems: allProblems(),
  }));

  app.post('/v1/definitions/reload', { schema: { summary: "Read the definitions folder again (no restart); what registered and what was refused", response: { 200: reloadResponse, ...errors() } } }, async () => {
    const result = await syncRegistries(db, { ...(state.dir ? { userRoot: state.dir } : {}) });
    state.problems = result.problems;
    state.problemsOf = result.problemsOf;
    return { templates: result.templates.map((t) => t.id), personas: result.personas.map((p) => p.id), artifactSchemas: result.schemas.map((s) => s.id), problems: result.problems };
  });
}
