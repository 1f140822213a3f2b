// Recorded workflow histories, replayed by test/replay.test.ts so that a change to workflow
// code that breaks determinism fails the suite. One folder per era of the run workflow (each
// era adds patched() changes); an old era's histories are never recorded again. Record the
// current era's with: DEVFLOW_RECORD_HISTORIES=1 npm run test:only -- test/run-workflow.test.ts
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkflowHandle } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils.js';

export const HISTORIES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'histories');

/**
 * The run workflow's current era (patches in workflows/run.ts). Era 2 added the human gate for
 * agents that cannot start and the capture before an approval gate; era 3 routes failures by
 * class, bounds phase retries, writes the state attribute on change and ends a run in steps; era 4 sends the work back on a declared verdict (loops), with a gate when the rounds run out; era 5 restarts an agent lost mid-phase with no gate and ends a run cancelled from Temporal aborted; era 6 waits, validates and settles an artifact in one step, runs short database steps as local activities and starts the next role's agent while a gate waits; era 7 readies the agent in the prompt's own step and closes the sessions and writes the report in one.
 * Bump it with the next patch.
 */
export const CURRENT_ERA = 7;

/**
 * The scheduled-run workflow's current era (workflows/scheduled-run.ts), recorded apart from the
 * run workflow's under `scheduled-run-era-N`. Bump it with its first patch.
 */
export const SCHEDULED_RUN_ERA = 1;

/** Records a history of the current era (of the run workflow by default); one that exists already is kept as it is. */
export async function recordHistory(handle: WorkflowHandle, name: string, era = `era-${CURRENT_ERA}`): Promise<void> {
  if (process.env.DEVFLOW_RECORD_HISTORIES !== '1') return;
  const folder = path.join(HISTORIES_DIR, era);
  const file = path.join(folder, `${name}.json`);
  if (existsSync(file)) return;
  mkdirSync(folder, { recursive: true });
  writeFileSync(file, `${historyToJSON(await handle.fetchHistory())}\n`);
}

/** Every era's histories, named `era-N/<name>` (or those of the folders `eras` matches). */
export function loadHistories(eras = /^era-\d+$/): { workflowId: string; history: ReturnType<typeof historyFromJSON> }[] {
  return readdirSync(HISTORIES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && eras.test(d.name))
    .flatMap((d) => readdirSync(path.join(HISTORIES_DIR, d.name)).filter((f) => f.endsWith('.json')).map((f) => `${d.name}/${f}`))
    .sort()
    .map((f) => ({ workflowId: f.replace(/\.json$/, ''), history: historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8'))) }));
}
