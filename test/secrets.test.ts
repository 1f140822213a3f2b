// Secrets: the API token is compared in constant time and never logged; the API refuses to
// listen beyond loopback without one; and a run made with every secret devflow knows of set (the
// API token, the webhook secret and a webhook URL with a token in it, the database password,
// Claude Code's and Codex's keys) shows none of them to its agents, and none appears in its events,
// approvals, transcripts, files, report, webhook bodies, Temporal histories or logs.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Connection } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { and, eq, inArray } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApi } from '../api/server.ts';
import { approvalRequests, runEvents, tuiSessions, tuiTranscripts } from '../db/schema.ts';
import { loadConfig } from '../lib/env.ts';
import { createLogger } from '../lib/logger.ts';
import { waitFor } from '../lib/wait.ts';
import type { AnsweredDialog } from '../sessions/driver.ts';
import { PRESETS } from '../sessions/presets.ts';
import { TmuxDriver } from '../sessions/tmux-driver.ts';
import { TmuxServer } from '../sessions/tmux.ts';
import { runWorkflowId } from '../workflows/messages.ts';
import { Notifier, startNotifier } from '../worker/notifier.ts';
import { makeRepo, useRunHarness } from './helpers/run-harness.ts';
import { freePorts } from './helpers/ports.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const distinct = (what: string) => `${what}-${randomBytes(12).toString('hex')}`;
const SECRETS = {
  DEVFLOW_API_TOKEN: distinct('api-token'),
  DEVFLOW_WEBHOOK_SECRET: distinct('webhook-secret'),
  ANTHROPIC_API_KEY: distinct('sk-ant-api03'),
  ANTHROPIC_AUTH_TOKEN: distinct('anthropic-auth'),
  OPENAI_API_KEY: distinct('sk-proj'),
  CODEX_API_KEY: distinct('codex-key'),
  DATABASE_URL: `postgres://devflow:${distinct('db-password')}@127.0.0.1:1/devflow`,
};
/** A webhook URL can carry a secret of its own (a chat service's token in its path). */
const HOOK_TOKEN = distinct('hook-path-token');

// The worker's environment, as a host configured with all of them would have it: every process
// this file starts (the tmux server and the agents in it among them) inherits it.
Object.assign(process.env, SECRETS);

/** Where a secret shows, whole or in a piece long enough to recognise (a masked display keeps 20 characters). */
function secretsIn(text: string, secrets: string[] = [...Object.values(SECRETS), HOOK_TOKEN]): string[] {
  const found: string[] = [];
  for (const secret of secrets) {
    for (let i = 0; i + 12 <= secret.length; i += 1) {
      if (text.includes(secret.slice(i, i + 12))) {
        found.push(`${secret.slice(0, 12)}… (at "${text.slice(Math.max(0, text.indexOf(secret.slice(i, i + 12)) - 40), text.indexOf(secret.slice(i, i + 12)) + 30)}")`);
        break;
      }
    }
  }
  return found;
}

/** Everything written to it, as text. */
function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return { stream: new Writable({ write: (chunk, _encoding, done) => (chunks.push(String(chunk)), done()) }), text: () => chunks.join('') };
}

// ---- webhooks: a receiver keeping what it gets ---------------------------------------------------

const received: { headers: IncomingHttpHeaders; raw: string }[] = [];
const receiver = createServer((request, response) => {
  let raw = '';
  request.on('data', (chunk: Buffer) => (raw += chunk.toString()));
  request.on('end', () => {
    received.push({ headers: request.headers, raw });
    response.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/${HOOK_TOKEN}`;

const h = useRunHarness('scripted', { deps: { webhooks: { urls: [hookUrl], secret: SECRETS.DEVFLOW_WEBHOOK_SECRET } } });
const apiLog = capture();
const runtimeLog: string[] = [];
const printed: string[] = [];
let temporal: Connection;
let api: FastifyInstance;
let notifier: { stop(): Promise<void> } | undefined;
const mine: string[] = [];
const restore: (() => void)[] = [];

beforeAll(async () => {
  // What the Temporal worker logs (failures of activities among it), and what the process prints.
  const logger = Runtime.instance().logger as { log: (...args: unknown[]) => void };
  const log = logger.log.bind(logger);
  logger.log = (...args: unknown[]) => {
    runtimeLog.push(JSON.stringify(args));
    log(...args);
  };
  restore.push(() => (logger.log = log));
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      printed.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => (stream.write = write));
  }
  temporal = await Connection.connect({ address: inject('temporalAddress') });
  api = await buildApi({
    db: h.db,
    pool: h.pool,
    temporal,
    namespace: 'default',
    taskQueue: h.taskQueue,
    maxConcurrentRuns: 1_000,
    workspaceRoot: h.workspaceRoot,
    token: SECRETS.DEVFLOW_API_TOKEN,
    logger: createLogger('api', 'trace', apiLog.stream),
  });
  notifier = startNotifier(new Notifier({ db: h.db, client: h.client, taskQueue: h.taskQueue, targets: 1, maxAttempts: 2, onlyRuns: () => mine }), 100);
});

afterAll(async () => {
  for (const undo of restore.splice(0)) undo();
  await notifier?.stop();
  await api?.close();
  await temporal?.close();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

const bearer = { authorization: `Bearer ${SECRETS.DEVFLOW_API_TOKEN}` };

describe('the API token', () => {
  it('opens every route for exactly the right header and no other, and is never logged', async () => {
    const token = SECRETS.DEVFLOW_API_TOKEN;
    // Near misses of every kind, and headers of any length and content.
    const header = fc.oneof(
      fc.constantFrom('', 'Bearer', 'Bearer ', `bearer ${token}`, `Bearer  ${token}`, `Bearer ${token} `, `Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Basic ${token}`, token, `Bearer ${token.toUpperCase()}`),
      fc.nat(token.length).map((n) => `Bearer ${token.slice(0, n)}`),
      fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 200 }),
    );
    await fc.assert(
      fc.asyncProperty(header, fc.constantFrom('/v1/runs', '/v1/approvals', '/v1/templates', '/openapi.json'), async (authorization, url) => {
        const response = await api.inject({ url, headers: authorization === '' ? {} : { authorization } });
        expect(response.statusCode, authorization).toBe(authorization === `Bearer ${token}` ? 200 : 401);
      }),
      { numRuns: 300 },
    );
    for (const url of ['/v1/runs', '/v1/approvals', '/v1/templates']) expect((await api.inject({ url, headers: bearer })).statusCode).toBe(200);
    // Health and the page itself stay open.
    for (const url of ['/healthz', '/readyz', '/', '/ui/config.json']) expect((await api.inject({ url })).statusCode, url).toBe(200);
    // An answer that went wrong inside is logged: with the request's token nowhere in it.
    const failing = await buildApi({ db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, workspaceRoot: h.workspaceRoot, token, logger: createLogger('api', 'trace', apiLog.stream), findAgent: async () => { throw new Error('the agent lookup broke'); } });
    const broken = await failing.inject({ method: 'POST', url: '/v1/runs', headers: bearer, payload: { requirementsMd: '# x', repoPath: makeRepo(h.root), baseBranch: 'main' } });
    await failing.close();
    expect(broken.statusCode).toBe(500);
    expect(apiLog.text()).toContain('the agent lookup broke');
    expect(secretsIn(apiLog.text())).toEqual([]);
  });

  it('keeps tokens, secrets and authorization headers out of every log line', () => {
    const out = capture();
    const log = createLogger('worker', 'trace', out.stream);
    const config = loadConfig({ ...SECRETS, DEVFLOW_API_HOST: '0.0.0.0', DEVFLOW_WEBHOOK_URLS: 'https://hooks.example.com/in' });
    log.info({ config }, 'configuration');
    log.info(config, 'configuration, spread');
    log.info({ req: { method: 'GET', url: '/v1/runs', headers: { authorization: bearer.authorization, host: 'devflow.example' } } }, 'request');
    log.info({ headers: bearer }, 'headers');
    log.warn({ webhooks: config.webhooks, token: SECRETS.DEVFLOW_API_TOKEN, apiKey: SECRETS.OPENAI_API_KEY }, 'loose fields');
    const text = out.text();
    expect(secretsIn(text, [SECRETS.DEVFLOW_API_TOKEN, SECRETS.DEVFLOW_WEBHOOK_SECRET, SECRETS.OPENAI_API_KEY, SECRETS.DATABASE_URL])).toEqual([]);
    // What is not secret is still there to read.
    expect(text).toContain('devflow.example');
    expect(text).toContain('https://hooks.example.com/in');
    expect(text.match(/\[redacted\]/g)!.length).toBeGreaterThanOrEqual(7);
  });
});

describe('listening beyond loopback', () => {
  /** Starts the API process as `npm run api` does, with this environment; its exit code and what it printed. */
  function startApi(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DEVFLOW_') && !(name in SECRETS)));
    return new Promise((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', 'api/main.ts'], { cwd: ROOT, env: { ...clean, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, output: `${stdout}${stderr}` });
      });
    });
  }

  it('is refused without a token: the API process exits 2 naming DEVFLOW_API_HOST, and nothing listens', async () => {
    const [port] = await freePorts(1);
    const hosts = ['0.0.0.0', '::', '127.0.0.1.nip.io'];
    const results = await Promise.all(hosts.map((host) => startApi({ DEVFLOW_API_HOST: host, DEVFLOW_API_PORT: String(port), DEVFLOW_HOME: path.join(h.root, 'no-home') })));
    results.forEach(({ code, output }, i) => {
      expect(code, output).toBe(2);
      expect(output).toContain(`DEVFLOW_API_HOST: ${hosts[i]} is beyond loopback; set DEVFLOW_API_TOKEN`);
    });
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    // Loopback, by name or address, needs none.
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1']) expect(loadConfig({ DEVFLOW_API_HOST: host }).api.host).toBe(host);
    expect(loadConfig({ DEVFLOW_API_HOST: '0.0.0.0', DEVFLOW_API_TOKEN: 't' }).api.host).toBe('0.0.0.0');
  }, 90_000);
});

describe('a run made with every secret set', () => {
  it('shows none to its agents, and none is in its events, approvals, transcripts, files, report, webhooks, histories or logs', async () => {
    const start = await api.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: bearer,
      payload: { requirementsMd: '# Greeting\n\nPrint hello.\n', repoPath: makeRepo(h.root), baseBranch: 'main', backend: 'scripted', timing: h.timing },
    });
    expect(start.statusCode, start.body).toBe(202);
    const { runId } = JSON.parse(start.body) as { runId: string };
    mine.push(runId);

    // At the spec gate its first agent is alive: what it was started with holds none of them.
    let approvalId = '';
    await waitFor('the spec gate', 60_000, async () => {
      const [pending] = await h.db.select().from(approvalRequests).where(eq(approvalRequests.runId, runId));
      approvalId = pending?.state === 'pending' ? pending.id : '';
      return approvalId !== '';
    }, 100);
    // (The implementer's agent may be starting while the gate waits: the spec writer's is the one at work.)
    const [session] = await h.db.select().from(tuiSessions).where(and(eq(tuiSessions.runId, runId), eq(tuiSessions.roleId, 'spec_writer')));
    const environ = readFileSync(`/proc/${session!.lastKnownPanePid}/environ`, 'utf8');
    expect(readFileSync(`/proc/${session!.lastKnownPanePid}/cmdline`, 'utf8')).toContain('scripted-agent.ts');
    expect(environ).toContain('PATH=');
    expect(secretsIn(environ)).toEqual([]);

    const approve = await api.inject({ method: 'POST', url: `/v1/runs/${runId}/approvals/${approvalId}`, headers: bearer, payload: { action: 'approve', clientToken: 'go' } });
    expect(approve.statusCode, approve.body).toBe(202);
    const ended = await h.client.workflow.getHandle(runWorkflowId(runId)).result();
    expect(ended.state).toBe('completed');
    await waitFor('the run ending to reach the webhook', 30_000, async () => received.some((r) => r.raw.includes(runId) && r.raw.includes('run.completed')), 100);
    await waitFor('its delivery to be recorded', 30_000, async () => (await h.db.select().from(runEvents).where(eq(runEvents.runId, runId))).some((e) => e.type === 'webhook.delivered' && (e.payload as { event: string }).event === 'run.completed'), 100);

    // Everything devflow keeps or says about the run.
    const events = await h.db.select().from(runEvents).where(eq(runEvents.runId, runId));
    const sessions = await h.db.select().from(tuiSessions).where(eq(tuiSessions.runId, runId));
    const transcripts = await h.db.select().from(tuiTranscripts).where(inArray(tuiTranscripts.sessionId, sessions.map((s) => s.id)));
    expect(transcripts.map((t) => t.chunk).join('')).toContain('devflow scripted agent ready');
    const detail = await api.inject({ url: `/v1/runs/${runId}`, headers: bearer });
    const report = await api.inject({ url: `/v1/runs/${runId}/report`, headers: bearer });
    expect(report.statusCode).toBe(200);
    const pages = [detail.body, report.body, (await api.inject({ url: `/v1/runs/${runId}/events`, headers: bearer })).body, (await api.inject({ url: `/v1/runs/${runId}/approvals`, headers: bearer })).body];
    for (const s of sessions) pages.push((await api.inject({ url: `/v1/runs/${runId}/sessions/${s.id}/transcript`, headers: bearer })).body);
    const files: string[] = [];
    const walk = (folder: string) => {
      for (const name of readdirSync(folder)) {
        const file = path.join(folder, name);
        if (name === '.git') continue;
        if (statSync(file).isDirectory()) walk(file);
        else files.push(`${file}\n${readFileSync(file, 'utf8')}`);
      }
    };
    walk(path.join(h.workspaceRoot, runId));
    const reportFile = JSON.parse(detail.body).finalReportPath as string;
    expect(existsSync(reportFile)).toBe(true);
    files.push(readFileSync(reportFile, 'utf8'));
    const hooks = received.filter((r) => r.raw.includes(runId));
    expect(hooks.map((r) => JSON.parse(r.raw).event)).toEqual(['approval.requested', 'run.completed']);
    const histories = [
      JSON.stringify(await h.client.workflow.getHandle(runWorkflowId(runId)).fetchHistory()),
      JSON.stringify(await h.client.workflow.getHandle(`devflow-notify:${runId}`).fetchHistory()),
    ];

    const kept = {
      events: JSON.stringify(events),
      transcripts: JSON.stringify(transcripts),
      'API answers': pages.join('\n'),
      'run files and report': files.join('\n'),
      // The signature is a digest of the body: the secret itself is never sent.
      'webhook deliveries': JSON.stringify(hooks.map((r) => ({ raw: r.raw, headers: { ...r.headers, 'x-devflow-signature': undefined } }))),
      'Temporal histories': histories.join('\n'),
      'API log': apiLog.text(),
      'worker log': runtimeLog.join('\n'),
      'printed output': printed.join(''),
    };
    for (const [what, text] of Object.entries(kept)) expect(secretsIn(text), what).toEqual([]);
    // The checks looked at something: the run's own id is in each place that names the run.
    for (const what of ['events', 'API answers', 'run files and report', 'webhook deliveries', 'Temporal histories'] as const) expect(kept[what], what).toContain(runId);
  }, 120_000);
});

describe("a real agent's own key", () => {
  /**
   * A stand-in for Claude Code: it keeps the environment it was started with, shows the dialog
   * Claude Code shows for a key it finds in its environment (with the end of the key on it), and
   * once that is answered, its input prompt.
   */
  const FAKE_CLAUDE = `#!/usr/bin/env node
const fs = require('node:fs');
fs.writeFileSync('started-with.json', JSON.stringify(process.env));
const key = process.env.ANTHROPIC_API_KEY ?? '';
const rule = '─'.repeat(60);
process.stdout.write([rule, ' Detected a custom API key in your environment', '', ' ANTHROPIC_API_KEY: sk-ant-...' + key.slice(-20), '', ' Do you want to use this API key?', '   Yes', ' ❯ No (recommended)', '', ' Enter to confirm · Esc to cancel', ''].join('\\r\\n'));
process.stdin.setRawMode(true);
process.stdin.on('data', (data) => {
  if (!data.includes(13)) return;
  process.stdout.write('\\x1b[2J\\x1b[H' + [rule, '❯\\u00a0', rule, '  ? for shortcuts'].join('\\r\\n'));
});
setInterval(() => undefined, 1000);
`;

  it('reaches that agent alone, and no screen or transcript devflow keeps shows it', async () => {
    const folder = path.join(h.root, `fake-claude-${randomUUID().slice(0, 8)}`);
    mkdirSync(folder, { recursive: true });
    const program = path.join(folder, 'claude');
    writeFileSync(program, FAKE_CLAUDE);
    chmodSync(program, 0o755);
    const tmux = new TmuxServer(path.join(folder, 'tmux.sock'));
    const driver = new TmuxDriver(tmux, PRESETS['claude-code'], {
      readyTimeoutMs: 20_000,
      env: { ...process.env, CLAUDE_CONFIG_DIR: path.join(folder, 'config') },
      findCli: async () => ({ agent: 'claude-code', path: program, source: 'variable', version: 'stand-in' }),
    });
    const target = { sessionId: randomUUID(), runId: randomUUID(), roleId: 'spec_writer', backend: 'claude-code', cwd: folder, createdAt: new Date() };
    const dialogs: AnsweredDialog[] = [];
    try {
      await driver.start(target, { onDialog: async (answered) => void dialogs.push(answered) });
      const env = JSON.parse(readFileSync(path.join(folder, 'started-with.json'), 'utf8')) as Record<string, string>;
      expect(env.ANTHROPIC_API_KEY).toBe(SECRETS.ANTHROPIC_API_KEY);
      expect(env.ANTHROPIC_AUTH_TOKEN).toBe(SECRETS.ANTHROPIC_AUTH_TOKEN);
      const others = Object.entries(SECRETS).filter(([name]) => !name.startsWith('ANTHROPIC_')).map(([, value]) => value);
      expect(secretsIn(JSON.stringify(env), others)).toEqual([]);

      expect(dialogs.map((d) => d.dialog)).toEqual(['use_api_key']);
      expect(dialogs[0]!.screen).toContain('Detected a custom API key');
      expect(dialogs[0]!.screen).toContain('ANTHROPIC_API_KEY: sk-ant-...[redacted]');
      const [chunk] = await driver.captureTranscript(target, 0);
      expect(chunk!.chunk).toContain('? for shortcuts');
      expect(secretsIn(JSON.stringify(dialogs) + chunk!.chunk)).toEqual([]);
    } finally {
      await driver.dispose(target);
      await tmux.killServer();
    }
  }, 60_000);

  it('is never in the message of a tmux command that failed', async () => {
    const folder = path.join(h.root, `failing-tmux-${randomUUID().slice(0, 8)}`);
    mkdirSync(folder, { recursive: true });
    // A tmux that fails without a word, as one killed by a signal does.
    writeFileSync(path.join(folder, 'tmux'), '#!/bin/sh\nexit 1\n');
    chmodSync(path.join(folder, 'tmux'), 0o755);
    const pathBefore = process.env.PATH;
    process.env.PATH = `${folder}:${pathBefore}`;
    try {
      const failed = await new TmuxServer(path.join(folder, 'tmux.sock')).run(['new-session', '-d', '-e', `ANTHROPIC_API_KEY=${SECRETS.ANTHROPIC_API_KEY}`, '--', 'claude']).catch((error: Error) => error);
      expect(failed).toBeInstanceOf(Error);
      expect((failed as Error).message).toMatch(/^tmux new-session failed/);
      expect(secretsIn((failed as Error).message)).toEqual([]);
    } finally {
      process.env.PATH = pathBefore;
    }
  });
});
