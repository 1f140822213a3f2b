// The worker process: hosts devflow's workflows and activities on the run task queue.
import { Connection } from '@temporalio/client';
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { connectDatabase } from '../db/client.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { loadConfig, resolvedServices } from '../lib/env.ts';
import { createLogger } from '../lib/logger.ts';
import { runMain } from '../lib/main.ts';
import { FakeSessionDriver } from '../sessions/fake.ts';
import { sessionDrivers } from '../sessions/index.ts';
import { ensureSearchAttributes } from './search-attributes.ts';
import { createDevflowWorker } from './worker.ts';

await runMain('worker', async () => {
  const config = loadConfig();
  const log = createLogger('worker', config.logLevel);
  const services = resolvedServices(config);
  Runtime.install({
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
  });

  const database = connectDatabase(services.databaseUrl, { applicationName: 'devflow-worker' });
  await prepareDatabase(database);

  const client = await Connection.connect({ address: services.temporalAddress });
  const added = await ensureSearchAttributes(client, config.temporal.namespace);
  if (added.length > 0) log.info({ added }, 'registered search attributes');
  await client.close();

  const connection = await NativeConnection.connect({ address: services.temporalAddress });
  const worker = await createDevflowWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.taskQueue,
    deps: { db: database.db, drivers: sessionDrivers({ fake: new FakeSessionDriver() }), workspaceRoot: config.workspaceRoot },
  });

  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'worker shutting down');
    worker.shutdown();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  // Under `devflow up`, losing the supervisor's IPC channel means it died: do not linger.
  process.once('disconnect', () => stop('supervisor gone'));

  log.info({ taskQueue: config.taskQueue, temporal: services.temporalAddress }, 'worker polling');
  process.send?.({ type: 'ready' });
  await worker.run();
  await connection.close();
  await database.close();
  log.info('worker stopped');
});
