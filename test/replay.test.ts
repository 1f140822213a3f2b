// Replays the committed histories (test/histories) against the current workflow code: a change
// that would break running workflows (non-determinism) fails here.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { WORKFLOWS_PATH } from '../worker/worker.ts';
import { loadHistories } from './helpers/histories.ts';

const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never;

describe('recorded histories', () => {
  it('replay with the current workflow code', async () => {
    const histories = loadHistories();
    // Every era of the run workflow stays replayable: runs wait at gates for days across deploys.
    expect(histories.map((h) => h.workflowId)).toEqual([
      'era-1/abort-while-awaiting-artifact', 'era-1/happy-path', 'era-1/human-gate-resolved',
      'era-2/abort-while-awaiting-artifact', 'era-2/agent-start-gate', 'era-2/happy-path', 'era-2/human-gate-resolved',
      'era-3/abort-while-awaiting-artifact', 'era-3/agent-start-gate', 'era-3/happy-path', 'era-3/human-gate-resolved',
      'era-4/abort-while-awaiting-artifact', 'era-4/agent-start-gate', 'era-4/happy-path', 'era-4/human-gate-resolved', 'era-4/review-loop', 'era-4/rounds-exhausted',
      'era-5/abort-while-awaiting-artifact', 'era-5/agent-restarted', 'era-5/agent-start-gate', 'era-5/cancelled-from-temporal', 'era-5/happy-path', 'era-5/human-gate-resolved',
      'era-5/review-loop', 'era-5/rounds-exhausted',
      'era-6/abort-while-awaiting-artifact', 'era-6/agent-restarted', 'era-6/agent-start-gate', 'era-6/cancelled-from-temporal', 'era-6/happy-path', 'era-6/human-gate-resolved',
      'era-6/review-loop', 'era-6/rounds-exhausted',
      'era-7/abort-while-awaiting-artifact', 'era-7/agent-restarted', 'era-7/agent-start-gate', 'era-7/cancelled-from-temporal', 'era-7/happy-path', 'era-7/human-gate-resolved',
      'era-7/review-loop', 'era-7/rounds-exhausted',
    ]);
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet });
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });

  it("of a schedule's fire replay with the current code", async () => {
    const histories = loadHistories(/^scheduled-run-era-\d+$/);
    expect(histories.map((h) => h.workflowId)).toEqual(['scheduled-run-era-1/fire-started']);
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet });
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });

  it('refuse a change to the sequence of steps that is not behind patched()', async () => {
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'unpatched-workflow', 'index.ts'), logger: quiet });
    const results: { workflowId: string; error?: Error }[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle }, loadHistories())) results.push(result);
    expect(results.length).toBeGreaterThan(0);
    for (const result of results) expect(result.error?.name, result.workflowId).toBe('DeterminismViolationError');
  });
});
