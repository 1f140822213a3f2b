// `devflow agents` and `devflow agents install`: the real agent CLIs on this host.
import { AGENT_CLIS, agentCacheDir, findAgentCli, installAgentCli, isRealAgent, REAL_AGENTS } from '../sessions/agent-cli.ts';
import { EXIT } from './api-client.ts';

type Say = (line: string) => void;

export async function listAgents(say: Say): Promise<number> {
  for (const agent of REAL_AGENTS) {
    const cli = AGENT_CLIS[agent];
    const found = await findAgentCli(agent);
    say(found ? `${agent.padEnd(12)} ${found.version}  (${found.source}: ${found.path})` : `${agent.padEnd(12)} not installed: devflow agents install ${agent}`);
    say(`${''.padEnd(12)} pinned ${cli.package}@${cli.version}; cache ${agentCacheDir(agent)}`);
  }
  return EXIT.ok;
}

export async function installAgents(names: string[], say: Say): Promise<number> {
  const unknown = names.filter((n) => !isRealAgent(n));
  if (unknown.length > 0) {
    say(`unknown agent ${unknown.join(', ')}: choose from ${REAL_AGENTS.join(', ')}`);
    return EXIT.badInput;
  }
  for (const agent of names.length ? names.filter(isRealAgent) : REAL_AGENTS) {
    const installed = (await findAgentCli(agent, { searchPath: false })) ?? (await installAgentCli(agent, { log: say }));
    say(`${agent}: ${installed.version} at ${installed.path}`);
  }
  return EXIT.ok;
}
