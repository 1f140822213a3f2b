// Waiting for an artifact (SPEC section 6), with the activity context mocked: file-system
// events, the stability window, the ignored baseline, heartbeats and cancellation; and reading
// it as a hostile agent may have left it (links out of the worktree, hard links, huge files).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { link, lstat, mkdtemp, open, readFile, rename, rm, stat, symlink, utimes, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createArtifactActivities, type AwaitArtifactInput } from '../activities/artifacts.ts';
import { assertInsideWorktree } from '../activities/prompts.ts';
import { writeScenarioArtifact } from '../sessions/artifact-writer.ts';
import type { ActivityDeps } from '../activities/deps.ts';
import { inspectArtifact, readArtifact } from '../lib/artifact-files.ts';
import { worktreePathFor } from '../lib/runs.ts';

let dir: string;
let file: string;
let worktree: string;
let awaitArtifact: ReturnType<typeof createArtifactActivities>['awaitArtifact'];
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'devflow-wait-'));
  // The wait knows its run's worktree by the path's place under the workspace root.
  ({ awaitArtifact } = createArtifactActivities({ workspaceRoot: dir } as ActivityDeps));
  worktree = worktreePathFor(dir, randomUUID());
  await mkdir(worktree, { recursive: true });
  file = path.join(worktree, 'out', 'spec.json');
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

  it('takes a file that parses as JSON at once, without waiting out the stability window', async () => {
    const env = new MockActivityEnvironment();
    setTimeout(() => void writeScenarioArtifact('ok', file, 'dev/spec@1'), 100);
    const started = Date.now();
    const result = await env.run(awaitArtifact, input({ stabilityMs: 5_000, pollMs: 10_000 }));
    expect(result).toMatchObject({ status: 'found' });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('waits the stability window out for a file that does not parse (it may be half written)', async () => {
    await mkdir(path.dirname(file), { recursive: true });
    const env = new MockActivityEnvironment();
    setTimeout(() => void writeFile(file, '{"title": "half'), 100);
    const started = Date.now();
    const result = await env.run(awaitArtifact, input({ stabilityMs: 800, pollMs: 50 }));
    expect(result).toMatchObject({ status: 'found' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
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
    await expect(assertInsideWorktree(worktree, path.join(worktree, '.devflow/artifacts/spec.json'))).resolves.toBeUndefined();
    await expect(assertInsideWorktree(worktree, path.join(worktree, '../elsewhere/spec.json'))).rejects.toMatchObject({ code: 'artifact_path_outside_worktree' });
    await mkdir(path.join(dir, 'outside'));
    await symlink(path.join(dir, 'outside'), path.join(worktree, 'link'));
    await expect(assertInsideWorktree(worktree, path.join(worktree, 'link', 'spec.json'))).rejects.toMatchObject({ code: 'artifact_path_outside_worktree' });
    // Refused before anything is made: no folder appears outside through the link.
    await expect(assertInsideWorktree(worktree, path.join(worktree, 'link', 'deeper', 'spec.json'))).rejects.toMatchObject({ code: 'artifact_path_outside_worktree' });
    expect(readdirSync(path.join(dir, 'outside'))).toEqual([]);
  });
});

describe('reading an artifact an agent may have tampered with', () => {
  const LIMIT = 4 * 1024 * 1024;
  let outside: string;
  beforeEach(async () => {
    outside = path.join(dir, 'outside');
    await mkdir(outside);
    await mkdir(path.dirname(file), { recursive: true });
  });

  /** A file outside the worktree whose access time moves if anyone reads it. */
  async function secretOutside(name = 'secret.json'): Promise<{ path: string; read: () => Promise<boolean> }> {
    const secret = path.join(outside, name);
    await writeFile(secret, '{"title": "OUTSIDE-SECRET"}');
    await utimes(secret, new Date('2020-01-01'), new Date()); // atime before mtime: the next read updates it
    const before = (await stat(secret)).atimeMs;
    return { path: secret, read: async () => (await stat(secret)).atimeMs !== before };
  }

  it('reads a regular file inside the worktree, and one through a link that stays inside', async () => {
    await writeFile(file, '{"ok": true}');
    expect((await readArtifact(worktree, file, LIMIT)).toString()).toBe('{"ok": true}');
    const aside = path.join(worktree, 'aside.json');
    await rename(file, aside);
    await symlink(aside, file);
    expect((await readArtifact(worktree, file, LIMIT)).toString()).toBe('{"ok": true}');
  });

  it('refuses a link to a file outside the worktree without reading it', async () => {
    const secret = await secretOutside();
    await symlink(secret.path, file);
    expect(await inspectArtifact(worktree, file)).toMatchObject({ state: 'refused', error: { code: 'artifact_outside_worktree' } });
    const refused = readArtifact(worktree, file, LIMIT);
    await expect(refused).rejects.toMatchObject({ code: 'artifact_outside_worktree', message: expect.stringContaining(`it is a link to ${secret.path}`) });
    await expect(refused).rejects.not.toMatchObject({ message: expect.stringContaining('OUTSIDE-SECRET') });
    expect(await secret.read()).toBe(false);
    // The check above would have seen a read: reading it moves its access time.
    await readFile(secret.path);
    expect(await secret.read()).toBe(true);
  });

  it('refuses a file whose folder was swapped for a link out of the worktree, and a dangling link out', async () => {
    const secret = await secretOutside('spec.json');
    await rm(path.dirname(file), { recursive: true });
    await symlink(outside, path.dirname(file));
    await expect(readArtifact(worktree, file, LIMIT)).rejects.toMatchObject({ code: 'artifact_outside_worktree', message: expect.stringContaining(`a folder on its path is a link: the file is in ${outside}`) });
    expect(await secret.read()).toBe(false);

    const dangling = path.join(worktree, 'dangling.json');
    await symlink(path.join(outside, 'not-yet.json'), dangling);
    expect(await inspectArtifact(worktree, dangling)).toMatchObject({ state: 'refused' });
  });

  it('refuses a hard link, whose content may be a file elsewhere', async () => {
    const secret = await secretOutside();
    await link(secret.path, file);
    await expect(readArtifact(worktree, file, LIMIT)).rejects.toMatchObject({ code: 'artifact_outside_worktree', message: expect.stringContaining('2 hard links') });
    expect(await secret.read()).toBe(false);
  });

  it('refuses an artifact over the limit by its size, without reading it', async () => {
    // 8 GiB on paper, nothing on disk: reading it whole would take minutes and all the memory.
    const handle = await open(file, 'w');
    await handle.truncate(8 * 1024 ** 3);
    await handle.close();
    const started = Date.now();
    await expect(readArtifact(worktree, file, LIMIT)).rejects.toMatchObject({
      code: 'artifact_too_large',
      message: `the artifact ${file} is ${8 * 1024 ** 3} bytes, over the limit of ${LIMIT} bytes (DEVFLOW_MAX_ARTIFACT_BYTES)`,
    });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('is waited for like a file, so that validation can refuse it', async () => {
    const secret = await secretOutside();
    setTimeout(() => void symlink(secret.path, file), 100);
    const result = await new MockActivityEnvironment().run(awaitArtifact, input({ pollMs: 50 }));
    expect(result).toEqual({ status: 'found', signature: { size: (await lstat(file)).size, mtimeMs: (await lstat(file)).mtimeMs } });
    expect(await secret.read()).toBe(false);
  });

  it('takes a fifo at the artifact path for nothing yet, and never blocks on it', async () => {
    execFileSync('mkfifo', [file]);
    expect(await inspectArtifact(worktree, file)).toEqual({ state: 'absent' });
    await expect(readArtifact(worktree, file, LIMIT)).rejects.toMatchObject({ code: 'artifact_unreadable' });
  });
});
