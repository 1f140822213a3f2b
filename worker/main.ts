// The worker process: the run workflows and activities on the shared queue, this host's
// activities on its own queue, and the session manager for this host's tmux server.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { createFinalizeActivities } from '../activities/finalize.ts';
import { connectDatabase } from '../db/client.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { hostTaskQueue, loadConfig, resolvedServices } from '../lib/env.ts';
import { createLogger } from '../lib/logger.ts';
import { runMain } from '../lib/main.ts';
import { FakeSessionDriver } from '../sessions/fake.ts';
import { agentDrivers } from '../sessions/index.ts';
import { PlaybackAgents } from '../sessions/playback-model/agents.ts';
import { TmuxServer } from '../sessions/tmux.ts';
import { runWorkflowId, sessionLostSignal } from '../workflows/messages.ts';
import { ensureSearchAttributes } from './search-attributes.ts';
import { Notifier, startNotifier } from './notifier.ts';
import { Reconciler, startReconciler } from './reconciler.ts';
import { SessionManager } from './session-manager.ts';
import { createDevflowWorkers } from './worker.ts';

await runMain('worker', async () => {
  const config = loadConfig();
  const log = createLogger('worker', config.logLevel);
  const services = resolvedServices(config);
  Runtime.install({
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
  });

  const database = connectDatabase(services.databaseUrl, { applicationName: 'devflow-worker' });
  const registered = await prepareDatabase(database, { definitionsDir: config.definitionsDir });
  for (const problem of registered.problems) log.warn(problem, 'definition refused');

  const clientConnection = await Connection.connect({ address: services.temporalAddress });
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  const added = await ensureSearchAttributes(clientConnection, config.temporal.namespace);
  if (added.length > 0) log.info({ added }, 'registered search attributes');

  // One tmux server per devflow home, where the scripted agent and the real ones live; the
  // playback model starts when the first session that talks to it does.
  const tmux = new TmuxServer(config.tmuxSocket);
  const playback = new PlaybackAgents(config.agents.playbackHome, { port: config.agents.playbackPort });
  const drivers = agentDrivers({
    tmux,
    configured: config.agentPreset,
    fake: new FakeSessionDriver(),
    playback,
    driver: {
      readyTimeoutMs: config.agents.readyTimeoutMs,
      settings: { trustWorktree: config.agents.trustWorktree, bypassPermissions: config.agents.bypassPermissions },
    },
  });
  let lockLost: Error | undefined;
  const control: { stop?: (reason: string) => void } = {};
  const sessions = await SessionManager.start({
    db: database.db,
    pool: database.pool,
    hostId: config.hostId,
    tmux,
    drivers,
    log,
    shutdownDrainMs: config.shutdownDrainMs,
    onLockLost: (error) => {
      lockLost = error;
      log.error({ error: error.message }, "lost the host's session lock (its Postgres connection ended); stopping so a new worker takes it again");
      // Before the workers run there is nothing to drain: exit at once.
      if (control.stop) control.stop('host lock lost');
      else process.exit(1);
    },
    notifyRun: (runId, lost) =>
      client.workflow.getHandle(runWorkflowId(runId)).signal(sessionLostSignal, {
        ...(lost.approvalRequestId ? { approvalRequestId: lost.approvalRequestId } : {}), sessionId: lost.sessionId, roleId: lost.roleId,
      }),
  });
  const recovered = await sessions.recover();
  const orphans = await sessions.reapOrphans();
  log.info({ recovered: recovered.length, failed: recovered.filter((r) => r.outcome === 'failed').length, ...orphans }, 'session recovery done');

  const connection = await NativeConnection.connect({ address: services.temporalAddress });
  const hostQueue = hostTaskQueue(config.hostId);
  const deps = { db: database.db, drivers: sessions.trackedDrivers(), workspaceRoot: config.workspaceRoot, hostId: config.hostId, hostQueue, webhooks: config.webhooks, hungProbes: config.probes.hung, probeIntervalMs: config.probes.intervalMs, maxArtifactBytes: config.maxArtifactBytes,
    // A schedule's fire starts its run here, with the same limits the API applies.
    starts: { client, taskQueue: config.taskQueue, maxConcurrentRuns: config.maxConcurrentRuns, maxRunsPerRepo: config.maxRunsPerRepo, definitions: registered, configuredAgent: config.agentPreset } };
  const workers = await createDevflowWorkers({ connection, namespace: config.temporal.namespace, taskQueue: config.taskQueue, deps, maxCachedWorkflows: config.workflowCacheSize });
  // Runs whose workflow is gone or closed are settled; agents of ended runs on this host disposed.
  const reconciler = startReconciler(new Reconciler({ db: database.db, client, hostId: config.hostId, finalize: createFinalizeActivities(deps), log }), config.reconcileIntervalMs, log);
  // A gate that opens and a run that ends are POSTed to the configured webhooks (by a workflow per run).
  const notifier = config.webhooks.urls.length
    ? startNotifier(new Notifier({ db: database.db, client, taskQueue: config.taskQueue, targets: config.webhooks.urls.length, maxAttempts: config.webhooks.attempts, log }), 500, log)
    : undefined;

  let stopping = false;
  control.stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'worker shutting down');
    workers.shutdown();
  };
  process.once('SIGINT', () => control.stop?.('SIGINT'));
  process.once('SIGTERM', () => control.stop?.('SIGTERM'));
  // Under `devflow up`, losing the supervisor's IPC channel means it died: do not linger.
  process.once('disconnect', () => control.stop?.('supervisor gone'));

  log.info({ taskQueue: config.taskQueue, hostQueue, temporal: services.temporalAddress }, 'worker polling');
  process.send?.({ type: 'ready' });
  await workers.run();
  await reconciler.stop();
  await notifier?.stop();
  const { drained } = await sessions.shutdown();
  await playback.close();
  log.info({ drained }, 'session operations drained');
  await connection.close();
  await clientConnection.close();
  await database.close();
  log.info('worker stopped');
  // A non-zero exit: the supervisor (`devflow up`, systemd, …) starts a worker that takes the lock again.
  if (lockLost) throw new Error(`the host's session lock was lost: ${lockLost.message}`);
});
