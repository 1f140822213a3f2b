// `devflow definitions`: check a definitions folder on this machine (no stack needed), and
// have the running API read its folder again.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../lib/env.ts';
import { formatProblems, loadDefinitions, type Problem } from '../schemas/definitions.ts';
import { EXIT, type DevflowApi } from './api-client.ts';

type Say = (line: string) => void;

/**
 * Reads the built-ins and the folder (default DEVFLOW_DEFINITIONS_DIR) as devflow would, and
 * prints what would load and every problem. Exit 2 when there is one.
 */
export async function checkDefinitions(dir: string | undefined, say: Say): Promise<number> {
  const root = path.resolve(dir ?? loadConfig().definitionsDir);
  if (dir !== undefined && !existsSync(root)) {
    say(`${root}: no such folder (a definitions folder holds templates/, personas/ and schemas/)`);
    return EXIT.badInput;
  }
  say(`checking ${root}${existsSync(root) ? '' : ' (absent: the built-ins only)'}`);
  const loaded = await loadDefinitions(root);
  const mine = <T extends { file: string; id: string }>(items: T[]) => items.filter((i) => i.file.startsWith(root + path.sep)).map((i) => i.id);
  say(`templates: ${mine(loaded.templates).join(', ') || 'none of yours'} (with the built-ins: ${loaded.templates.length})`);
  say(`personas: ${mine(loaded.personas).join(', ') || 'none of yours'} (with the built-ins: ${loaded.personas.length})`);
  say(`artifact schemas: ${mine(loaded.schemas).join(', ') || 'none of yours'} (with the built-ins: ${loaded.schemas.length})`);
  return reportProblems(loaded.problems, say);
}

/** Asks the API to read its definitions folder again; prints what registered and what was refused. */
export async function reloadDefinitions(api: DevflowApi, say: Say): Promise<number> {
  const result = await api.post<{ templates: string[]; personas: string[]; artifactSchemas: string[]; problems: Problem[] }>('/v1/definitions/reload', {});
  say(`templates: ${result.templates.join(', ')}`);
  say(`personas: ${result.personas.join(', ')}`);
  say(`artifact schemas: ${result.artifactSchemas.join(', ')}`);
  return reportProblems(result.problems, say);
}

function reportProblems(problems: Problem[], say: Say): number {
  if (problems.length === 0) {
    say('no problems');
    return EXIT.ok;
  }
  say(`${problems.length} problem${problems.length === 1 ? '' : 's'} (a template with one, or using a refused definition, cannot run):`);
  for (const line of formatProblems(problems)) say(`  ${line}`);
  return EXIT.badInput;
}
