// Recorded workflow histories, replayed by test/replay.test.ts so that a change to workflow
// code that breaks determinism fails the suite. Re-record deliberately (after a patched()
// change) with: DEVFLOW_RECORD_HISTORIES=1 npm run test:only -- test/run-workflow.test.ts
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkflowHandle } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils.js';

export const HISTORIES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'histories');

export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.DEVFLOW_RECORD_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), `${historyToJSON(history)}\n`);
}

export function loadHistories(): { workflowId: string; history: ReturnType<typeof historyFromJSON> }[] {
  return readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ workflowId: f.replace(/\.json$/, ''), history: historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8'))) }));
}
