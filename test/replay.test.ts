// Replays the committed histories (test/histories) against the current workflow code: a change
// that would break running workflows (non-determinism) fails here.
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { WORKFLOWS_PATH } from '../worker/worker.ts';
import { loadHistories } from './helpers/histories.ts';

describe('recorded histories', () => {
  it('replay with the current workflow code', async () => {
    const histories = loadHistories();
    // Every era of the run workflow stays replayable: runs wait at gates for days across deploys.
    expect(histories.map((h) => h.workflowId)).toEqual([
      'era-1/abort-while-awaiting-artifact', 'era-1/happy-path', 'era-1/human-gate-resolved',
      'era-2/abort-while-awaiting-artifact', 'era-2/agent-start-gate', 'era-2/happy-path', 'era-2/human-gate-resolved',
    ]);
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never });
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});
