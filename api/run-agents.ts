// Which agent each role of a run uses, decided when the run is started: the request's choice
// for the role, else the request's backend for every role, else the template's choice for the
// role, else the role's persona, else the host's configured real agent. A real agent that is not installed refuses the run before
// anything is written.
import { inArray } from 'drizzle-orm';
import type { Database } from '../db/client.ts';
import { agentPersonas } from '../db/schema.ts';
import type { RUN_AGENTS } from '../schemas/api.ts';
import type { PersonaDefinition, TemplateDefinition } from '../schemas/definitions.ts';
import { agentNotInstalled, isRealAgent, type RealAgent, type ResolvedAgentCli } from '../sessions/agent-cli.ts';
import type { RunBackend } from '../workflows/messages.ts';
import { ApiError } from './server.ts';

export type RunAgent = (typeof RUN_AGENTS)[number];

export interface AgentRequest {
  backend?: RunBackend;
  agents?: Record<string, RunAgent>;
}

function fromBackend(backend: RunBackend, configured: RealAgent): RunAgent {
  return backend === 'tmux' ? configured : backend;
}

export function chooseAgents(template: TemplateDefinition, personas: ReadonlyMap<string, PersonaDefinition>, request: AgentRequest, configured: RealAgent): Record<string, RunAgent> {
  const roles = Object.keys(template.roles);
  const unknown = Object.keys(request.agents ?? {}).filter((role) => !roles.includes(role));
  if (unknown.length > 0) {
    throw new ApiError(400, 'invalid_request', `agents names roles that ${template.name}@${template.version} does not have: ${unknown.join(', ')} (its roles: ${roles.join(', ')})`, {
      issues: unknown.map((role) => ({ field: `body.agents.${role}`, message: `not a role of ${template.name}@${template.version}` })),
    });
  }
  return Object.fromEntries(
    roles.map((role) => {
      const persona = personas.get(template.roles[role]!.persona);
      const chosen =
        request.agents?.[role] ??
        (request.backend ? fromBackend(request.backend, configured) : undefined) ??
        template.roles[role]!.agent ??
        persona?.agent ??
        (persona?.defaultBackend ? fromBackend(persona.defaultBackend, configured) : undefined) ??
        configured;
      return [role, chosen];
    }),
  );
}

export async function personasOf(db: Database, template: TemplateDefinition): Promise<Map<string, PersonaDefinition>> {
  const ids = Object.values(template.roles).map((r) => r.persona);
  const rows = await db.select().from(agentPersonas).where(inArray(agentPersonas.id, ids));
  return new Map(rows.map((row) => [row.id, row.definition as PersonaDefinition]));
}

/** Refuses a run whose real agents are not installed on this host, naming what to install. */
export async function checkAgentsInstalled(agents: Record<string, RunAgent>, find: (agent: RealAgent) => Promise<ResolvedAgentCli | undefined>): Promise<void> {
  const issues: { field: string; message: string }[] = [];
  const hints: string[] = [];
  const checked = new Map<RealAgent, boolean>();
  for (const [role, agent] of Object.entries(agents)) {
    if (!isRealAgent(agent)) continue;
    if (!checked.has(agent)) checked.set(agent, (await find(agent)) !== undefined);
    if (checked.get(agent)) continue;
    const missing = agentNotInstalled(agent);
    issues.push({ field: `body.agents.${role}`, message: missing.message });
    if (!hints.includes(missing.recoveryHint!)) hints.push(missing.recoveryHint!);
  }
  if (issues.length > 0) {
    const agentsMissing = [...checked].filter(([, ok]) => !ok).map(([agent]) => agent);
    throw new ApiError(400, 'agent_not_installed', `not installed on this host: ${agentsMissing.join(', ')}; ${hints.join('; ')}`, { issues });
  }
}
