// Which agent each role gets, and where devflow finds (and installs) the real agents' programs.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseAgents } from '../api/run-agents.ts';
import type { PersonaDefinition, TemplateDefinition } from '../schemas/definitions.ts';
import { agentCacheDir, findAgentCli, installAgentCli } from '../sessions/agent-cli.ts';

const template = {
  name: 'team', version: 1, description: 'x',
  roles: { writer: { persona: 'writer@1' }, coder: { persona: 'coder@2' }, critic: { persona: 'critic@2' } },
  phases: [],
} as unknown as TemplateDefinition;
const personas = new Map<string, PersonaDefinition>([
  ['writer@1', { name: 'writer', version: 1, title: 'W', instructions: 'w', defaultBackend: 'scripted' }],
  ['coder@2', { name: 'coder', version: 2, title: 'C', instructions: 'c', agent: 'codex' }],
  ['critic@2', { name: 'critic', version: 2, title: 'R', instructions: 'r' }],
]);

describe('choosing agents', () => {
  it("takes the request's agent for a role, else its backend, else the persona's, else the configured one", () => {
    expect(chooseAgents(template, personas, {}, 'claude-code')).toEqual({ writer: 'scripted', coder: 'codex', critic: 'claude-code' });
    expect(chooseAgents(template, personas, { agents: { critic: 'codex' } }, 'claude-code')).toEqual({ writer: 'scripted', coder: 'codex', critic: 'codex' });
    expect(chooseAgents(template, personas, { backend: 'tmux' }, 'codex')).toEqual({ writer: 'codex', coder: 'codex', critic: 'codex' });
    expect(chooseAgents(template, personas, { backend: 'fake', agents: { coder: 'claude-code' } }, 'codex')).toEqual({ writer: 'fake', coder: 'claude-code', critic: 'fake' });
  });

  it('refuses a role the template does not have', () => {
    expect(() => chooseAgents(template, personas, { agents: { tester: 'codex' } }, 'codex')).toThrow(/roles that team@1 does not have: tester/);
  });
});

describe('finding an agent program', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'devflow-agent-cli-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const program = (file: string, version: string) => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `#!/bin/sh\necho '${version}'\n`);
    chmodSync(file, 0o755);
    return file;
  };
  const env = { HOME: root, XDG_CACHE_HOME: path.join(root, 'cache'), PATH: path.join(root, 'bin') };

  it('looks in its variable, then on PATH, then in the cache; nothing is not installed', async () => {
    expect(await findAgentCli('codex', { env })).toBeUndefined();
    const cached = program(path.join(agentCacheDir('codex', env), 'node_modules', '.bin', 'codex'), 'codex-cli 0.169.0');
    expect(await findAgentCli('codex', { env })).toEqual({ agent: 'codex', path: cached, source: 'cache', version: 'codex-cli 0.169.0' });
    const onPath = program(path.join(root, 'bin', 'codex'), 'codex-cli 9.9.9');
    expect(await findAgentCli('codex', { env })).toMatchObject({ path: onPath, source: 'PATH', version: 'codex-cli 9.9.9' });
    expect(await findAgentCli('codex', { env, searchPath: false })).toMatchObject({ source: 'cache' });
    const chosen = program(path.join(root, 'elsewhere', 'codex'), 'codex-cli 1.0.0');
    expect(await findAgentCli('codex', { env: { ...env, DEVFLOW_CODEX_PATH: chosen } })).toMatchObject({ path: chosen, source: 'variable' });
    await expect(findAgentCli('codex', { env: { ...env, DEVFLOW_CODEX_PATH: path.join(root, 'none') } })).rejects.toThrow(/DEVFLOW_CODEX_PATH: .* is not a working codex program/);
  });

  it('says what failed when npm cannot install an agent, and leaves nothing half-installed', async () => {
    program(path.join(root, 'failing-npm', 'npm'), 'npm ERR! 404 Not Found');
    writeFileSync(path.join(root, 'failing-npm', 'npm'), "#!/bin/sh\necho 'npm error 404 @anthropic-ai/claude-code not found' >&2\nexit 1\n");
    const failing = { ...env, PATH: `${path.join(root, 'failing-npm')}:/usr/bin:/bin` };
    await expect(installAgentCli('claude-code', { env: failing })).rejects.toThrow(/npm install @anthropic-ai\/claude-code@2\.1\.328 failed \(exit 1\):\nnpm error 404/);
    expect(existsSync(agentCacheDir('claude-code', failing))).toBe(false);
  });
});
