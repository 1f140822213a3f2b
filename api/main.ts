// The API process.
import { Connection } from '@temporalio/client';
import { connectDatabase } from '../db/client.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { loadConfig, resolvedServices } from '../lib/env.ts';
import { createLogger } from '../lib/logger.ts';
import { runMain } from '../lib/main.ts';
import { repairMissingReports } from './runs.ts';
import { buildApi } from './server.ts';

await runMain('api', async () => {
  const config = loadConfig();
  const logger = createLogger('api', config.logLevel);
  const services = resolvedServices(config);

  const database = connectDatabase(services.databaseUrl, { applicationName: 'devflow-api' });
  const registered = await prepareDatabase(database, { definitionsDir: config.definitionsDir });
  for (const problem of registered.problems) logger.warn(problem, 'definition refused');
  // Lazy: the API serves (and /readyz reports) even while Temporal is still unreachable.
  const temporal = Connection.lazy({ address: services.temporalAddress });

  const app = await buildApi({
    db: database.db,
    pool: database.pool,
    temporal,
    namespace: config.temporal.namespace,
    taskQueue: config.taskQueue,
    maxConcurrentRuns: config.maxConcurrentRuns,
    maxRunsPerRepo: config.maxRunsPerRepo,
    configuredAgent: config.agentPreset,
    temporalWebUi: config.temporal.webUiUrl,
    definitions: { dir: config.definitionsDir, problems: registered.problems, problemsOf: registered.problemsOf },
    workspaceRoot: config.workspaceRoot,
    maxArtifactBytes: config.maxArtifactBytes,
    token: config.api.token,
    logger,
  });
  await app.listen({ host: config.api.host, port: config.api.port });
  logger.info({ url: `http://${config.api.host}:${config.api.port}` }, 'api listening');
  process.send?.({ type: 'ready' });

  // Terminal runs whose report was never written (a crash in between) get it now, without
  // holding up the API.
  void repairMissingReports(database.db, config.workspaceRoot)
    .then((repaired) => repaired.length && logger.info({ repaired }, 'wrote missing final reports'))
    .catch((error) => logger.warn({ error: String(error) }, 'report repair failed'));

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    process.once('disconnect', resolve);
  });
  await app.close();
  await temporal.close();
  await database.close();
});
