// The cluster's dynamic config (npm run cluster): written once, yours to edit, and given the
// settings devflow has come to make since, without touching what the file already names.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { writeDynamicConfig } from '../cli/stack/temporal-cluster.ts';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'devflow-cluster-config-'));
  file = path.join(dir, 'config', 'dynamicconfig', 'devflow.yaml');
  await mkdir(path.dirname(file), { recursive: true });
});
afterEach(() => rm(dir, { recursive: true, force: true }));

it("writes devflow's settings into a new cluster folder", async () => {
  await writeDynamicConfig(dir);
  const written = await readFile(file, 'utf8');
  expect(written).toContain('history.transferProcessorMaxPollRPS: [{"value":1000}]');
  expect(written).toContain('frontend.namespaceRPS.visibility: [{"value":100}]');
});

it('adds to an older folder only what its file does not name, keeping the edits, once', async () => {
  // As an earlier devflow wrote it, with a person's edit of one of its values and a setting of their own.
  const older = '# Temporal dynamic config, written by devflow once; edit freely (re-read every 10 s).\nfrontend.namespaceRPS.visibility: [{"value":250}]\nlimit.maxIDLength:\n  - value: 500\n';
  await writeFile(file, older);
  await writeDynamicConfig(dir);
  const upgraded = await readFile(file, 'utf8');
  expect(upgraded.startsWith(older)).toBe(true);
  expect(upgraded.slice(older.length)).toBe('# Added by devflow (settings it makes that this file did not name):\nhistory.transferProcessorMaxPollRPS: [{"value":1000}]\n');
  await writeDynamicConfig(dir);
  expect(await readFile(file, 'utf8')).toBe(upgraded);

  // A value the person set for it is theirs, even a lower one.
  await writeFile(file, 'history.transferProcessorMaxPollRPS:\n  - value: 50\nfrontend.namespaceRPS.visibility: [{"value":100}]');
  await writeDynamicConfig(dir);
  expect(await readFile(file, 'utf8')).toBe('history.transferProcessorMaxPollRPS:\n  - value: 50\nfrontend.namespaceRPS.visibility: [{"value":100}]');
});
