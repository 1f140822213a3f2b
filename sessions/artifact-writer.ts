// How a scripted agent writes (or fails to write) its artifact for a scenario. Shared by the
// in-memory fake backend and the scripted agent CLI.
import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SCHEMA_INVALID_ARTIFACT, sampleFor } from '../schemas/sample-artifacts.ts';
import type { Scenario } from './scenarios.ts';

async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  await writeFile(temporary, text);
  await rename(temporary, file);
}

/** Writes in a few chunks straight into the final path, as a careless agent would. */
async function writeInChunks(file: string, text: string, chunkDelayMs: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const handle = await open(file, 'w');
  try {
    const size = Math.ceil(text.length / 4);
    for (let offset = 0; offset < text.length; offset += size) {
      await handle.write(text.slice(offset, offset + size));
      await handle.sync();
      await sleep(chunkDelayMs);
    }
  } finally {
    await handle.close();
  }
}

/** Returns true if the scenario writes a file at all. */
export async function writeScenarioArtifact(
  scenario: Scenario,
  file: string,
  schemaId: string,
  options: { chunkDelayMs?: number; jsonSchema?: Record<string, unknown> } = {},
): Promise<boolean> {
  const sample = () => `${JSON.stringify(sampleFor(schemaId, options.jsonSchema, scenario), null, 2)}\n`;
  switch (scenario) {
    case 'ok':
    case 'rate_limited':
    case 'overloaded':
    case 'request_changes':
    case 'flood':
      await writeAtomically(file, sample());
      return true;
    case 'slow':
      await writeInChunks(file, sample(), options.chunkDelayMs ?? 100);
      return true;
    case 'invalid_json':
      await writeAtomically(file, '{"title": "cut off in the middle');
      return true;
    case 'schema_invalid':
      await writeAtomically(file, JSON.stringify(SCHEMA_INVALID_ARTIFACT));
      return true;
    default:
      return false;
  }
}
