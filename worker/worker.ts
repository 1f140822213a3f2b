import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.ts';
import { bundleWorkflowsApart } from './bundle.ts';

export const WORKFLOWS_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'workflows', 'index.ts');

export interface DevflowWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  /** The shared run queue: workflows, and activities any host can do. */
  taskQueue: string;
  /** deps.hostQueue is this host's queue: activities that touch its files and tmux server. */
  deps: ActivityDeps;
  /** A prebuilt bundle (tests build one per file); otherwise the workflows are bundled in a child process. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  identity?: string;
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
  /** Run workflows kept in memory (DEVFLOW_WORKFLOW_CACHE); unset: the SDK's default, sized by the heap (~900 here). */
  maxCachedWorkflows?: number;
}

export interface DevflowWorkers {
  run(): Promise<void>;
  shutdown(): void;
  state(): string;
}

/** One Temporal Worker per queue, run and stopped together. */
export async function createDevflowWorkers(options: DevflowWorkerOptions): Promise<DevflowWorkers> {
  const activities = createActivities(options.deps);
  const common = {
    connection: options.connection,
    namespace: options.namespace,
    activities,
    ...(options.identity ? { identity: options.identity } : {}),
    shutdownGraceTime: options.shutdownGraceTime ?? '10 seconds',
    // Heartbeats reach the server at least every second, so a cancelled wait hears of it promptly.
    maxHeartbeatThrottleInterval: '1 second',
  } satisfies Partial<WorkerOptions>;
  const runs = await Worker.create({
    ...common,
    taskQueue: options.taskQueue,
    ...(options.maxCachedWorkflows ? { maxCachedWorkflows: options.maxCachedWorkflows } : {}),
    workflowBundle: options.workflowBundle ?? (await bundleWorkflowsApart(WORKFLOWS_PATH)),
  });
  const host = await Worker.create({ ...common, taskQueue: options.deps.hostQueue });
  const workers = [runs, host];
  return {
    run: async () => {
      await Promise.all(workers.map((w) => w.run()));
    },
    shutdown: () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
    state: () => runs.getState(),
  };
}
