// The `devflow` command line, run as a process against a real API, worker (scripted agent in
// tmux), Temporal and Postgres: what it prints and the exit codes scripts rely on.
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DevflowApi, EXIT } from '../cli/api-client.ts';
import { decide } from '../cli/commands.ts';
import { triageFolder } from './helpers/definitions.ts';
import { makeRepo, useHarnessApi, useRunHarness } from './helpers/run-harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const h = useRunHarness('scripted');
const served = useHarnessApi(h, { listen: true });

function devflow(args: string[], url = served.url): Promise<{ code: number; out: string }> {
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
    const declined = await decide(new DevflowApi({ baseUrl: served.url }), runId, 'approve', { confirm: async (q) => (asked.push(q), false) }, (l) => lines.push(l));
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
    // Why it stopped and what comes next, at the gate and once it failed.
    const atGate = (await devflow(['status', a])).out;
    expect(atGate).toContain("stopped: awaiting_approval — the spec artifact waits for a person's approval at spec_approved");
    expect(atGate).toContain(`next: a person reads it and decides: approve and the run goes on, reject and it fails, abort and it stops; devflow approve ${a} --gate spec_approved (or reject, abort)`);
    expect((await devflow(['reject', a, '--gate', 'spec_approved'])).code).toBe(EXIT.ok);
    const watched = await devflow(['watch', a]);
    expect(watched.code).toBe(EXIT.runEnded);
    expect(watched.out).toContain('why: rejected — rejected at gate spec_approved at phase spec');
    const failed = (await devflow(['status', a])).out;
    expect(failed).toContain('stopped: rejected — rejected at gate spec_approved at phase spec');
    expect(failed).toMatch(/next: nothing more from devflow: read the report at \S+\.report\.md, fix the cause and start a new run/);
    expect((await devflow(['report', a])).out).toMatch(/- \*\*Stop:\*\* `rejected`; next: nothing more from devflow/);
    expect((await devflow(['approve', a])).code).toBe(EXIT.notFound);

    const b = /started run ([0-9a-f-]{36})/.exec((await devflow(['start', '--repo', makeRepo(h.root), '--base', 'main', '--requirements', requirements, '--agent', 'scripted', '--scenario', 'spec=timeout'])).out)![1]!;
    expect((await devflow(['abort', b, '--reason', 'not today'])).out).toContain(`abort sent to run ${b}`);
    expect((await devflow(['watch', b])).code).toBe(EXIT.runEnded);
    expect((await devflow(['report', b])).out).toContain('not today');
  });

  it('checks a definitions folder: what would load, or every problem with file and path and exit 2', async () => {
    const folder = await triageFolder(h.root);
    const good = await devflow(['definitions', 'check', folder.root]);
    expect(good.code, good.out).toBe(EXIT.ok);
    expect(good.out).toContain(`templates: ${folder.id} (with the built-ins: `);
    expect(good.out).toContain(`artifact schemas: ${folder.schemaId} (with the built-ins: `);
    expect(good.out).toContain('no problems');

    folder.template.phases[1].artifact.path = '../outside.json';
    folder.schema.properties.decision = { enum: 'accept' };
    await folder.write();
    const bad = await devflow(['definitions', 'check', folder.root]);
    expect(bad.code, bad.out).toBe(EXIT.badInput);
    expect(bad.out).toContain('2 problems');
    expect(bad.out).toContain(`${folder.files.template}: phases.1.artifact.path:`);
    expect(bad.out).toMatch(new RegExp(`${folder.files.schema.replaceAll('.', '\\.')}: /properties/decision/enum: the JSON Schema does not compile: must be array`));

    const missing = await devflow(['definitions', 'check', path.join(h.root, 'no-such-folder')]);
    expect(missing.code).toBe(EXIT.badInput);
    expect(missing.out).toContain('no-such-folder: no such folder');
  });

  it('creates, lists, shows, pauses, resumes and deletes a schedule', async () => {
    const requirements = path.join(h.root, 'weekly.md');
    await writeFile(requirements, '# Weekly\n\nUpdate the changelog.\n');
    const repo = makeRepo(h.root);
    const runOptions = ['--repo', repo, '--base', 'main', '--requirements', requirements, '--agent', 'scripted'];
    const both = await devflow(['schedule', 'create', 'weekly', '--cron', '0 9 * * 1', '--every', '1h', ...runOptions]);
    expect([both.code, both.out.trim()]).toEqual([EXIT.badInput, 'give exactly one of --cron <expression> and --every <interval>']);

    const created = await devflow(['schedule', 'create', 'weekly', '--cron', '0 9 * * 1', '--paused', '--note', 'starts next quarter', ...runOptions]);
    expect(created.code, created.out).toBe(EXIT.ok);
    expect(created.out).toContain('schedule weekly: cron "0 9 * * 1" (UTC), paused (starts next quarter), overlap skip');
    expect(created.out).toContain(`runs development@2 on ${repo}@main`);
    expect((await devflow(['schedule', 'list'])).out).toMatch(/^weekly\s+paused\s+cron "0 9 \* \* 1" \(UTC\)\s+next \d{4}-/m);
    const resumed = await devflow(['schedule', 'resume', 'weekly']);
    expect(resumed.out).toContain('schedule weekly: cron "0 9 * * 1" (UTC), active');
    expect(resumed.out).toMatch(/next: \d{4}-\d\d-\d\dT09:00:00/);
    expect((await devflow(['schedule', 'delete', 'weekly'])).out).toContain('schedule weekly deleted');
    const gone = await devflow(['schedule', 'show', 'weekly']);
    expect(gone.code).not.toBe(EXIT.ok);
    expect(gone.out).toContain('schedule weekly does not exist');
  });

  it('prints a dry run per phase with the exact prompt, and starts nothing', async () => {
    const requirements = path.join(h.root, 'requirements.md');
    await writeFile(requirements, '# Dry\n\nPrint hello.\n');
    const repo = makeRepo(h.root);
    const dry = await devflow(['start', '--repo', repo, '--base', 'main', '--requirements', requirements, '--agent', 'scripted', '--template', 'bugfix@1', '--dry-run']);
    expect(dry.code, dry.out).toBe(EXIT.ok);
    expect(dry.out).toMatch(/^dry run of bugfix@1: nothing was written; the worktree would be \S+/m);
    expect(dry.out).toContain('## 1. reproduce');
    expect(dry.out).toContain('role reproducer, agent scripted');
    expect(dry.out).toMatch(/artifact bugfix\/reproduction@1 at \S+\/\.devflow\/artifacts\/reproduction\.json \(timeout \d+ s\)/);
    expect(dry.out).toContain('## 3. verify');
    expect(dry.out).toContain('  | ## Your role\n  | You turn a bug report into proof.');
    expect(dry.out).toContain('  | Fix the bug reproduced by the test <test.name from the reproduce artifact>');
    expect(dry.out).not.toContain('started run');
    const worktree = /the worktree would be (\S+)/.exec(dry.out)![1]!;
    await expect(readdir(worktree)).rejects.toThrow(/ENOENT/);
  });

  it('runs the demo against a running stack and exits 0 when the run completed', async () => {
    const demo = await devflow(['demo']);
    expect(demo.code, demo.out).toBe(EXIT.ok);
    expect(demo.out).toMatch(/run [0-9a-f-]{36}: completed/);
    expect(demo.out).toMatch(/Web UI: +http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/devflow-run:/);
  });
});
