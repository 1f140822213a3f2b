// The `devflow` command line, run as a process against a real API, worker (scripted agent in
// tmux), Temporal and Postgres: what it prints and the exit codes scripts rely on.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApi } from '../api/server.ts';
import { DevflowApi, EXIT } from '../cli/api-client.ts';
import { decide } from '../cli/commands.ts';
import { makeRepo, useRunHarness } from './helpers/run-harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const h = useRunHarness('scripted');
let api: FastifyInstance;
let temporal: Connection;
let apiUrl = '';

beforeAll(async () => {
  temporal = await Connection.connect({ address: inject('temporalAddress') });
  api = await buildApi({ db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, workspaceRoot: h.workspaceRoot });
  await api.listen({ host: '127.0.0.1', port: 0 });
  apiUrl = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await api?.close();
  await temporal?.close();
});

function devflow(args: string[], url = apiUrl): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/devflow.ts', ...args], { cwd: ROOT, env: { ...process.env, DEVFLOW_API_URL: url } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

describe('devflow CLI', () => {
  it('starts, watches to the gate, approves, watches to the end and prints the report', async () => {
    const requirements = path.join(h.root, 'requirements.md');
    await writeFile(requirements, '# CLI\n\nPrint hello.\n');
    const started = await devflow(['start', '--repo', makeRepo(h.root), '--base', 'main', '--requirements', requirements, '--agent', 'scripted', '--scenario', 'implement=invalid_json']);
    expect(started.code, started.out).toBe(EXIT.ok);
    const runId = /started run ([0-9a-f-]{36})/.exec(started.out)![1]!;

    const toGate = await devflow(['watch', runId]);
    expect(toGate.code, toGate.out).toBe(EXIT.atGate);
    expect(toGate.out).toMatch(/artifact\.validated\s+spec attempt 1/);
    expect(toGate.out).toContain(`waiting at gate spec_approved: devflow approve ${runId} --gate spec_approved`);

    const status = await devflow(['status', runId]);
    expect(status.out).toMatch(/spec\s+awaiting_approval\s+attempts 1/);
    expect(status.out).toContain('waiting at gate spec_approved');

    // What is being approved, readably.
    const shown = await devflow(['show', runId]);
    expect(shown.code, shown.out).toBe(EXIT.ok);
    expect(shown.out).toMatch(/^spec: dev\/spec@1 \(valid\) .*spec\.json$/m);
    expect(shown.out).toContain('Scripted specification');
    expect(shown.out).toContain('Requirements:\n  1. R1 The change does what the requirements document asks.');
    expect((await devflow(['show', runId, 'review'])).code).toBe(EXIT.notFound);

    // In a terminal, a person is shown the gate and its artifact and asked; no means nothing is decided.
    const lines: string[] = [];
    const asked: string[] = [];
    const declined = await decide(new DevflowApi({ baseUrl: apiUrl }), runId, 'approve', { confirm: async (q) => (asked.push(q), false) }, (l) => lines.push(l));
    expect(declined).toBe(EXIT.badInput);
    expect(asked).toEqual(['approve spec_approved? [y/N] ']);
    expect(lines.join('\n')).toContain('spec: spec "Scripted specification": 1 requirements, 0 open questions');
    expect(lines.at(-1)).toBe('nothing decided');

    const approved = await devflow(['approve', runId, '--comment', 'looks right']);
    expect(approved.code, approved.out).toBe(EXIT.ok);
    const toEnd = await devflow(['watch', runId, '--until-end']);
    expect(toEnd.code, toEnd.out).toBe(EXIT.ok);
    expect(toEnd.out).toMatch(/prompt\.repaired\s+implement attempt 2/);
    expect(toEnd.out).toMatch(/run completed; report: .*\.report\.md/);

    const report = await devflow(['report', runId]);
    expect(report.out).toContain('**Outcome:** completed');
    expect(report.out).toContain('looks right');
    expect((await devflow(['runs', '--state', 'completed'])).out).toContain(runId);
    const again = await devflow(['abort', runId]);
    expect(again.out).toContain('had already ended');
  });

  it('exits with codes that say what went wrong', async () => {
    const missing = await devflow(['status', '00000000-0000-4000-8000-000000000000']);
    expect(missing.code).toBe(EXIT.notFound);
    expect(missing.out).toContain('run_not_found');
    expect((await devflow(['status', 'x'])).code).toBe(EXIT.badInput);
    expect((await devflow(['start', '--repo', '/tmp', '--base', 'main', '--requirements', '/nonexistent'])).code).toBe(EXIT.badInput);
    expect((await devflow(['start', '--repo', '/tmp', '--base', 'main'])).code).toBe(EXIT.badInput);
    const down = await devflow(['runs'], 'http://127.0.0.1:1');
    expect(down.code).toBe(EXIT.unreachable);
    expect(down.out).toContain('cannot reach the devflow API at http://127.0.0.1:1');
  });

  it('rejects and aborts', async () => {
    const requirements = path.join(h.root, 'requirements.md');
    await writeFile(requirements, '# CLI\n');
    const a = /started run ([0-9a-f-]{36})/.exec((await devflow(['start', '--repo', makeRepo(h.root), '--base', 'main', '--requirements', requirements, '--agent', 'scripted'])).out)![1]!;
    expect((await devflow(['watch', a])).code).toBe(EXIT.atGate);
    expect((await devflow(['reject', a, '--gate', 'spec_approved'])).code).toBe(EXIT.ok);
    expect((await devflow(['watch', a])).code).toBe(EXIT.runEnded);
    expect((await devflow(['approve', a])).code).toBe(EXIT.notFound);

    const b = /started run ([0-9a-f-]{36})/.exec((await devflow(['start', '--repo', makeRepo(h.root), '--base', 'main', '--requirements', requirements, '--agent', 'scripted', '--scenario', 'spec=timeout'])).out)![1]!;
    expect((await devflow(['abort', b, '--reason', 'not today'])).out).toContain(`abort sent to run ${b}`);
    expect((await devflow(['watch', b])).code).toBe(EXIT.runEnded);
    expect((await devflow(['report', b])).out).toContain('not today');
  });

  it('runs the demo against a running stack and exits 0 when the run completed', async () => {
    const demo = await devflow(['demo']);
    expect(demo.code, demo.out).toBe(EXIT.ok);
    expect(demo.out).toMatch(/run [0-9a-f-]{36}: completed/);
    expect(demo.out).toMatch(/Web UI: +http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/devflow-run:/);
  });
});
