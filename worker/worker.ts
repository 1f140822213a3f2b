import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.ts';

export const WORKFLOWS_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'workflows', 'index.ts');

export interface DevflowWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** A prebuilt bundle (tests build one per file); otherwise the workflows are bundled here. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  identity?: string;
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
}

export function createDevflowWorker(options: DevflowWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: createActivities(options.deps),
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    ...(options.identity ? { identity: options.identity } : {}),
    shutdownGraceTime: options.shutdownGraceTime ?? '10 seconds',
    // Heartbeats reach the server at least every second, so a cancelled wait hears of it promptly.
    maxHeartbeatThrottleInterval: '1 second',
  });
}
