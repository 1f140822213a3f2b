// Replays the committed histories (test/histories) against the current workflow code: a change
// that would break running workflows (non-determinism) fails here.
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { WORKFLOWS_PATH } from '../worker/worker.ts';
import { loadHistories } from './helpers/histories.ts';

describe('recorded histories', () => {
  it('replay with the current workflow code', async () => {
    const histories = loadHistories();
    expect(histories.map((h) => h.workflowId)).toEqual(['abort-while-awaiting-artifact', 'happy-path', 'human-gate-resolved']);
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never });
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});
