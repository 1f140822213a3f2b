// Configuration comes from the environment, parsed once; bad values name their variable.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, resolvedServices } from '../lib/env.ts';

describe('configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      home: path.resolve('.devflow'),
      workspaceRoot: path.resolve('.devflow/workspaces'),
      runDir: path.resolve('.devflow/run'),
      api: { host: '127.0.0.1', port: 7400, token: undefined },
      databaseUrl: undefined,
      temporal: { address: undefined, namespace: 'default', devServerPort: 7233, uiPort: 8233, cliPath: undefined },
      taskQueue: 'devflow-runs',
      maxConcurrentRuns: 20,
      maxRunsPerRepo: 0,
      reconcileIntervalMs: 15_000,
      probes: { hung: 3, intervalMs: 2000 },
      maxArtifactBytes: 4 * 1024 * 1024,
      webhooks: { urls: [], secret: undefined, attempts: 8 },
    });
    expect(resolvedServices(config)).toEqual({
      databaseUrl: 'postgres://postgres:postgres@127.0.0.1:7432/devflow',
      temporalAddress: '127.0.0.1:7233',
    });
  });

  it('takes every variable from the environment', () => {
    const config = loadConfig({
      DEVFLOW_HOME: '/srv/devflow',
      DEVFLOW_WORKSPACE_ROOT: '/srv/work',
      DEVFLOW_API_HOST: '0.0.0.0',
      DEVFLOW_API_PORT: '8000',
      DEVFLOW_API_TOKEN: 'secret',
      DATABASE_URL: 'postgres://u:p@db:5432/x',
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'dev',
      DEVFLOW_TASK_QUEUE: 'q',
      DEVFLOW_MAX_CONCURRENT_RUNS: '3',
      TEMPORAL_CLI_PATH: '/opt/temporal',
      DEVFLOW_MAX_RUNS_PER_REPO: '1',
      DEVFLOW_RECONCILE_INTERVAL_MS: '2000',
      DEVFLOW_WEBHOOK_URLS: 'https://hooks.example.com/devflow, http://127.0.0.1:9000/in',
      DEVFLOW_WEBHOOK_SECRET: 'shh',
      DEVFLOW_WEBHOOK_ATTEMPTS: '3',
      DEVFLOW_MAX_ARTIFACT_BYTES: '65536',
      DEVFLOW_WORKFLOW_CACHE: '40',
    });
    expect(config).toMatchObject({
      home: '/srv/devflow',
      workspaceRoot: '/srv/work',
      api: { host: '0.0.0.0', port: 8000, token: 'secret' },
      databaseUrl: 'postgres://u:p@db:5432/x',
      temporal: { address: 'temporal:7233', namespace: 'dev', cliPath: '/opt/temporal' },
      taskQueue: 'q',
      maxConcurrentRuns: 3,
      maxRunsPerRepo: 1,
      reconcileIntervalMs: 2000,
      maxArtifactBytes: 65536,
      workflowCacheSize: 40,
      webhooks: { urls: ['https://hooks.example.com/devflow', 'http://127.0.0.1:9000/in'], secret: 'shh', attempts: 3 },
    });
    expect(resolvedServices(config)).toEqual({ databaseUrl: 'postgres://u:p@db:5432/x', temporalAddress: 'temporal:7233' });
  });

  it.each([
    ['DEVFLOW_API_PORT', 'abc'],
    ['DEVFLOW_API_PORT', '70000'],
    ['DEVFLOW_MAX_CONCURRENT_RUNS', '0'],
    ['DEVFLOW_WEBHOOK_URLS', 'https://ok.example.com, ftp://files.example.com'],
    ['DEVFLOW_MAX_RUNS_PER_REPO', '-1'],
    ['DATABASE_URL', 'mysql://x'],
    ['TEMPORAL_ADDRESS', 'http://localhost:7233'],
    ['DEVFLOW_LOG_LEVEL', 'loud'],
    ['DEVFLOW_MAX_ARTIFACT_BYTES', '100'],
    ['DEVFLOW_MAX_ARTIFACT_BYTES', '4MB'],
    ['DEVFLOW_WORKFLOW_CACHE', '1'],
  ])('a bad %s (%s) is refused with the variable named', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`${variable}: .*\\(got "${value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"\\)`));
  });

  it('refuses to listen beyond loopback without a token', () => {
    expect(() => loadConfig({ DEVFLOW_API_HOST: '0.0.0.0' })).toThrow(/DEVFLOW_API_HOST: 0.0.0.0 is beyond loopback; set DEVFLOW_API_TOKEN/);
    expect(loadConfig({ DEVFLOW_API_HOST: 'localhost' }).api.host).toBe('localhost');
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', TEMPORAL_ADDRESS: ' ', DEVFLOW_API_TOKEN: '' })).toMatchObject({
      databaseUrl: undefined,
      temporal: { address: undefined },
      api: { token: undefined },
    });
  });
});
