// Waiting for an artifact (SPEC section 6), with the activity context mocked: file-system
// events, the stability window, the ignored baseline, heartbeats and cancellation.
import { mkdtemp, rm, stat, symlink, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createArtifactActivities, type AwaitArtifactInput } from '../activities/artifacts.ts';
import { assertInsideWorktree } from '../activities/prompts.ts';
import { writeScenarioArtifact } from '../sessions/artifact-writer.ts';
import type { ActivityDeps } from '../activities/deps.ts';

const { awaitArtifact } = createArtifactActivities({} as ActivityDeps);
let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'devflow-wait-'));
  file = path.join(dir, 'out', 'spec.json');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const input = (over: Partial<AwaitArtifactInput> = {}): AwaitArtifactInput => ({
  phaseKey: 'spec', attempt: 1, artifactPath: file, baseline: null, timeoutMs: 3_000, stabilityMs: 150, pollMs: 1_000, ...over,
});

describe('awaitArtifact', () => {
  it('wakes on the file-system event, not the poll, for an atomic write', async () => {
    const env = new MockActivityEnvironment();
    const started = Date.now();
    setTimeout(() => void writeScenarioArtifact('ok', file, 'dev/spec@1'), 100);
    const result = await env.run(awaitArtifact, input({ pollMs: 10_000 }));
    expect(result).toMatchObject({ status: 'found' });
    // 100 ms until the write + the 150 ms stability window; a 10 s poll alone would be far later.
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('waits out a slow non-atomic writer until size and mtime hold still', async () => {
    const env = new MockActivityEnvironment();
    const writing = writeScenarioArtifact('slow', file, 'dev/spec@1', { chunkDelayMs: 80 });
    const result = await env.run(awaitArtifact, input({ pollMs: 20 }));
    await writing;
    const final = await stat(file);
    expect(result).toEqual({ status: 'found', signature: { size: final.size, mtimeMs: final.mtimeMs } });
  });

  it('ignores a file that was there before the prompt, and times out', async () => {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '{"stale": true}');
    const before = await stat(file);
    const env = new MockActivityEnvironment();
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d) => heartbeats.push(d));
    const result = await env.run(awaitArtifact, input({ baseline: { size: before.size, mtimeMs: before.mtimeMs }, timeoutMs: 400, pollMs: 50 }));
    expect(result).toMatchObject({ status: 'timeout' });
    expect(heartbeats.length).toBeGreaterThan(3);
    expect(heartbeats.at(-1)).toMatchObject({ phaseKey: 'spec', attempt: 1, elapsedMs: expect.any(Number) });
  });

  it('resumes its clock from the heartbeat details of an earlier try', async () => {
    const env = new MockActivityEnvironment({ heartbeatDetails: { phaseKey: 'spec', attempt: 1, elapsedMs: 2_900 } });
    const started = Date.now();
    expect(await env.run(awaitArtifact, input({ timeoutMs: 3_000, pollMs: 20 }))).toMatchObject({ status: 'timeout' });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('stops promptly when cancelled', async () => {
    const env = new MockActivityEnvironment();
    const waiting = env.run(awaitArtifact, input({ timeoutMs: 60_000, pollMs: 30_000 }));
    setTimeout(() => env.cancel(), 100);
    const started = Date.now();
    await expect(waiting).rejects.toBeInstanceOf(CancelledFailure);
    expect(Date.now() - started).toBeLessThan(500);
  });
});

describe('artifact path', () => {
  it('must stay inside the worktree, by path and through symlinks', async () => {
    const worktree = path.join(dir, 'worktree');
    await mkdir(worktree, { recursive: true });
    await expect(assertInsideWorktree(worktree, path.join(worktree, '.devflow/artifacts/spec.json'))).resolves.toBeUndefined();
    await expect(assertInsideWorktree(worktree, path.join(worktree, '../elsewhere/spec.json'))).rejects.toMatchObject({ code: 'artifact_path_outside_worktree' });
    await mkdir(path.join(dir, 'outside'));
    await symlink(path.join(dir, 'outside'), path.join(worktree, 'link'));
    await expect(assertInsideWorktree(worktree, path.join(worktree, 'link', 'spec.json'))).rejects.toMatchObject({ code: 'artifact_path_outside_worktree' });
  });
});
