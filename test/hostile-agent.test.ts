// A hostile agent, with the scripted agent in real tmux and the real API and CLI: an artifact that
// is a link out of the worktree (or sits in a folder swapped for one) is refused and never read,
// an artifact over the size limit is refused by its size, a pane flooded with megabytes is read a
// bounded window at a time, and shell text, ESC sequences and NUL bytes in requirements and
// artifacts never reach a shell, a terminal or a failing Postgres write.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../cli/api-client.ts';
import { waitFor } from '../lib/wait.ts';
import { sampleFor } from '../schemas/sample-artifacts.ts';
import { CAPTURE_ROWS, TRANSCRIPT_CHUNK_BYTES } from '../sessions/tmux-driver.ts';
import { abortSignal, runWorkflowId } from '../workflows/messages.ts';
import { makeRepo, useHarnessApi, useRunHarness } from './helpers/run-harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAX_ARTIFACT_BYTES = 64 * 1024;
const h = useRunHarness('scripted', { deps: { maxArtifactBytes: MAX_ARTIFACT_BYTES } });
const ESC = '\x1b';

const served = useHarnessApi(h, { listen: true });

function devflow(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/devflow.ts', ...args], { cwd: ROOT, env: { ...process.env, DEVFLOW_API_URL: served.url } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

interface StoredEvent {
  type: string;
  payload: Record<string, unknown>;
}

async function events(runId: string, type?: string): Promise<StoredEvent[]> {
  const rows = await h.db.query.runEvents.findMany({ where: (e, { eq }) => eq(e.runId, runId), orderBy: (e, { asc }) => [asc(e.seq)] });
  return rows.filter((e) => !type || e.type === type).map((e) => ({ type: e.type, payload: e.payload as Record<string, unknown> }));
}

/** Waits for the nth event of a type (the prompt was sent: `artifact.expected`). */
async function eventOf(runId: string, type: string, nth = 1): Promise<StoredEvent> {
  let found: StoredEvent[] = [];
  await waitFor(`${type} #${nth} on run ${runId}`, 30_000, async () => (found = await events(runId, type)).length >= nth, 50);
  return found[nth - 1]!;
}

/** Every row devflow keeps about a run, as one text: what a reader of the API or the database could see. */
async function everythingStored(runId: string): Promise<string> {
  const { rows } = await h.pool.query<{ row: unknown }>(
    `select to_jsonb(r) as row from runs r where r.id = $1
     union all select to_jsonb(e) from run_events e where e.run_id = $1
     union all select to_jsonb(p) from run_phases p where p.run_id = $1
     union all select to_jsonb(a) from artifacts a where a.run_id = $1
     union all select to_jsonb(q) from approval_requests q where q.run_id = $1
     union all select to_jsonb(s) from tui_sessions s where s.run_id = $1
     union all select to_jsonb(t) from tui_transcripts t join tui_sessions s on s.id = t.session_id where s.run_id = $1`,
    [runId],
  );
  return JSON.stringify(rows);
}

async function writeAtomically(file: string, text: string | Buffer): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

/**
 * A file outside every worktree holding a secret. Its access time is set before its mtime, so
 * the first read of it moves the access time: `read()` says whether anyone read it.
 */
async function secretOutside(folder: string, name: string) {
  // Its first bytes are what an error quoting the file (JSON.parse quotes ten) would show.
  const text = `S3CR3T ${randomUUID()} is not for devflow`;
  await mkdir(folder, { recursive: true });
  const file = path.join(folder, name);
  await writeFile(file, text);
  await utimes(file, new Date('2020-01-01'), new Date());
  // Held open, so its access time can be read even after an agent renames something over it.
  const handle = await open(file, 'r');
  const before = (await handle.stat()).atimeMs;
  return {
    file,
    read: async () => (await handle.stat()).atimeMs !== before,
    close: () => handle.close(),
  };
}

describe('an agent that points its artifact out of the worktree', () => {
  it('is refused for a link at the artifact path, never reading the file; the repair writes a real file and the run goes on', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: 'timeout' } });
    const expected = await eventOf(runId, 'artifact.expected');
    const artifact = expected.payload.path as string;
    const secret = await secretOutside(path.join(h.root, `outside-${runId.slice(0, 8)}`), 'secret.json');
    // After the prompt, the agent leaves a link to a file of the user's where its artifact goes.
    await symlink(secret.file, artifact);

    const refused = await eventOf(runId, 'artifact.invalid');
    expect(refused.payload).toMatchObject({ path: artifact, valid: false, refused: 'artifact_outside_worktree' });
    expect((refused.payload.errors as string[])[0]).toBe(
      `artifact_outside_worktree: devflow will not read the artifact ${artifact}: it is a link to ${secret.file}; it reads only a regular file inside the run worktree ${path.join(h.workspaceRoot, runId, 'main')}`,
    );
    // Like an invalid artifact: one repair prompt that says why, which the scripted agent answers
    // with a real file (its rename replaces the link).
    const repaired = await eventOf(runId, 'prompt.repaired');
    expect(repaired.payload.errors).toEqual(refused.payload.errors);
    await h.waitForGate(runId, 'spec_approved');
    expect((await events(runId, 'artifact.validated')).map((e) => e.payload.path)).toEqual([artifact]);

    await h.client.workflow.getHandle(runWorkflowId(runId)).signal(abortSignal, { clientToken: 'enough', reason: 'seen enough' });
    expect(await handle.result()).toMatchObject({ state: 'aborted' });
    const snapshot = await h.snapshot(runId);
    const report = readFileSync(snapshot.run.finalReportPath!, 'utf8');
    expect(report).toContain(`| spec | ${artifact} | — | — | refused | artifact_outside_worktree: devflow will not read the artifact`);

    expect(await everythingStored(runId)).not.toContain('S3CR3T');
    expect(report).not.toContain('S3CR3T');
    expect(await secret.read()).toBe(false);
    // The check above would have seen a read: reading the file moves its access time.
    readFileSync(secret.file);
    expect(await secret.read()).toBe(true);
    await secret.close();
  });

  it('is refused when a folder on the artifact path is swapped for a link after the prompt; the next prompt is not sent into it', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: 'timeout' } });
    const expected = await eventOf(runId, 'artifact.expected');
    const artifact = expected.payload.path as string;
    const outside = path.join(h.root, `elsewhere-${runId.slice(0, 8)}`);
    const secret = await secretOutside(outside, path.basename(artifact));
    // devflow may be making the folder again as its wait starts: swap until the link holds.
    await waitFor('the folder swapped for a link', 5_000, async () => {
      await rm(path.dirname(artifact), { recursive: true, force: true });
      return symlink(outside, path.dirname(artifact)).then(() => true, () => false);
    }, 20);

    const refused = await eventOf(runId, 'artifact.invalid');
    expect(refused.payload).toMatchObject({ refused: 'artifact_outside_worktree' });
    expect((refused.payload.errors as string[])[0]).toContain(`a folder on its path is a link: the file is in ${outside}`);
    // The repair prompt would name a path that now leads out: the check before every prompt ends the run.
    const result = await handle.result();
    expect(result).toMatchObject({ state: 'failed', reason: expect.stringMatching(/^artifact_path_outside_worktree: /) });
    expect(await events(runId, 'prompt.repaired')).toEqual([]);
    expect(await everythingStored(runId)).not.toContain('S3CR3T');
    expect(await secret.read()).toBe(false);
    await secret.close();
  });
});

describe('an agent that writes a huge artifact', () => {
  it('is refused by its size, naming the size, the limit and its variable', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: 'timeout' } });
    const artifact = (await eventOf(runId, 'artifact.expected')).payload.path as string;
    const huge = JSON.stringify({ ...sampleFor('dev/spec@1', undefined), summary: 'x'.repeat(200 * 1024) });
    await writeAtomically(artifact, huge);

    const refused = await eventOf(runId, 'artifact.invalid');
    expect(refused.payload).toMatchObject({ refused: 'artifact_too_large', errors: [
      `artifact_too_large: the artifact ${artifact} is ${Buffer.byteLength(huge)} bytes, over the limit of ${MAX_ARTIFACT_BYTES} bytes (DEVFLOW_MAX_ARTIFACT_BYTES)`,
    ] });
    // The repair's artifact is a normal one, and goes through.
    await h.waitForGate(runId, 'spec_approved');
    await h.client.workflow.getHandle(runWorkflowId(runId)).signal(abortSignal, { clientToken: 'enough' });
    expect(await handle.result()).toMatchObject({ state: 'aborted' });
  });
});

describe('an agent that writes NUL bytes and ESC sequences into its artifact', () => {
  it('fails its attempt visibly with the problem shown escaped, instead of failing every write of it', async () => {
    const { runId, handle } = await h.start({ scenarios: { spec: 'timeout' } });
    const artifact = (await eventOf(runId, 'artifact.expected')).payload.path as string;
    await writeAtomically(artifact, `\u0000${ESC}[2J{"title": "cleared"}`);

    const invalid = await eventOf(runId, 'artifact.invalid');
    const [problem] = invalid.payload.errors as string[];
    expect(problem).toMatch(/^not valid JSON: /);
    expect(problem).toContain('\\x00');
    expect(problem).not.toContain('\u0000');
    await h.waitForGate(runId, 'spec_approved');
    await h.client.workflow.getHandle(runWorkflowId(runId)).signal(abortSignal, { clientToken: 'enough' });
    expect(await handle.result()).toMatchObject({ state: 'aborted' });
    const report = readFileSync((await h.snapshot(runId)).run.finalReportPath!, 'utf8');
    expect(report).toContain('not valid JSON');
    expect(report).not.toContain(ESC);
  });
});

describe('an agent that floods its pane', () => {
  it('is read a bounded window at a time, and its transcript says what was not kept', async () => {
    const tmux = h.tmux!;
    const run = tmux.run.bind(tmux);
    const captured: number[] = [];
    tmux.run = async (args, input) => {
      const out = await run(args, input);
      if (args[0] === 'capture-pane') captured.push(Buffer.byteLength(out));
      return out;
    };
    try {
      const { runId, handle } = await h.start({ scenarios: { spec: 'flood' }, timing: { ...h.timing, artifactTimeoutMs: 120_000 } });
      // Printing 27 MB through a pane takes a while on a busy machine.
      await waitFor('the flooding agent to reach the spec gate', 150_000, async () => (await h.status(runId)).pendingGate?.gateKey === 'spec_approved', 200);
      await h.client.workflow.getHandle(runWorkflowId(runId)).signal(abortSignal, { clientToken: 'enough' });
      expect(await handle.result()).toMatchObject({ state: 'aborted' });

      const [session] = (await h.snapshot(runId)).sessions;
      const chunks = await h.db.query.tuiTranscripts.findMany({ where: (t, { eq }) => eq(t.sessionId, session!.id), orderBy: (t, { asc }) => [asc(t.seq)] });
      const kept = chunks.map((c) => c.chunk).join('');
      // The agent printed 27 MB; devflow read a window of rows at a time and kept its newest part.
      expect(kept).toContain('flood line 12288 of 12288');
      expect(kept).toContain('flooded 12288 lines');
      expect(kept).not.toContain('flood line 1 of 12288 ');
      // What was left out is said (over 100 000 rows, tmux itself drops the oldest: the history is full).
      expect(kept).toMatch(/\[devflow: (the pane's history is full \(\d+ rows\); these are its last \d+ rows|\d+ rows of output not kept)/);
      for (const chunk of chunks) expect(Buffer.byteLength(chunk.chunk)).toBeLessThan(TRANSCRIPT_CHUNK_BYTES + 1_024);
      expect(captured.length).toBeGreaterThan(0);
      // A pane row is at most 220 cells: whatever the agent printed, a capture is the window's size.
      expect(Math.max(...captured)).toBeLessThan((CAPTURE_ROWS + 50) * 221 * 2);
    } finally {
      tmux.run = run;
    }
  }, 240_000);
});

describe('shell text, ESC sequences and NUL bytes from people and agents', () => {
  it('never reach a shell, and every terminal output shows them escaped', async () => {
    const marker = (what: string) => path.join(h.root, `pwned-${what}-${randomUUID().slice(0, 8)}`);
    const markers = { subshell: marker('subshell'), backticks: marker('backticks'), chained: marker('chained'), pasted: marker('pasted') };
    const requirementsMd = [
      '# Hostile requirements',
      '',
      `Run $(touch ${markers.subshell}) and \`touch ${markers.backticks}\`; echo pwned > ${markers.chained}`,
      `${ESC}[2J${ESC}[31mred alert${ESC}[0m and the clipboard: ${ESC}]52;c;cHduZWQ=\x07`,
      '',
    ].join('\n');
    const requirementsFile = path.join(h.root, `hostile-${randomUUID().slice(0, 8)}.md`);
    await writeFile(requirementsFile, requirementsMd);
    const started = await devflow(['start', '--repo', makeRepo(h.root), '--base', 'main', '--requirements', requirementsFile, '--agent', 'scripted', '--template', 'development@2', '--scenario', 'spec=timeout']);
    expect(started.code, started.out).toBe(EXIT.ok);
    const runId = /started run ([0-9a-f-]{36})/.exec(started.out)![1]!;

    // The spec agent's title tries to end the next agent's bracketed paste and type a command.
    const title = `$(touch ${markers.subshell}) ${ESC}[201~\rtouch ${markers.pasted}\r${ESC}]52;c;cHduZWQ=\x07${ESC}[2J`;
    const artifact = (await eventOf(runId, 'artifact.expected')).payload.path as string;
    await writeAtomically(artifact, JSON.stringify({ ...sampleFor('dev/spec@1', undefined), title }));

    const outputs: string[] = [];
    const cli = async (args: string[], code: number = EXIT.ok) => {
      const result = await devflow(args);
      expect(result.code, result.out).toBe(code);
      outputs.push(result.out);
      return result.out;
    };
    await cli(['watch', runId], EXIT.atGate);
    expect(await cli(['status', runId])).toContain('waiting at gate spec_approved');
    expect(await cli(['show', runId, 'spec'])).toContain(`\\x1b[201~\\x0dtouch ${markers.pasted}\\x0d\\x1b]52;c;cHduZWQ=\\x07\\x1b[2J`);
    await cli(['approve', runId, '--yes', '--comment', `fine ${ESC}[2J`]);
    expect(await cli(['watch', runId, '--until-end'])).toMatch(/run completed; report: /);
    const report = await cli(['report', runId]);
    expect(report).toContain('> \\x1b[2J\\x1b[31mred alert\\x1b[0m and the clipboard: \\x1b]52;c;cHduZWQ=\\x07');
    expect(report).toContain(`> Run $(touch ${markers.subshell}) and \`touch ${markers.backticks}\`; echo pwned > ${markers.chained}`);

    for (const out of outputs) expect(out.includes(ESC), out).toBe(false);
    const detail = await h.snapshot(runId);
    expect(readFileSync(detail.run.finalReportPath!, 'utf8').includes(ESC)).toBe(false);
    // Stored as given (the API trims the ends): the run's row and requirements file hold the very bytes.
    expect(detail.run.requirementsMd).toBe(requirementsMd.trim());
    expect(readFileSync(path.join(h.workspaceRoot, runId, 'main', '.devflow', 'requirements.md'), 'utf8')).toBe(requirementsMd.trim());
    // The implementer got one prompt, its quote of the title whole and inert: the paste was not cut short.
    const implementer = detail.sessions.find((s) => s.roleId === 'implementer')!;
    const prompts = h.prompts(runId, 'implementer', implementer.id);
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain(`Implement the approved specification ($(touch ${markers.subshell}) \\x1b[201~\\x0dtouch ${markers.pasted}\\x0d`);
    expect(prompts[0]!.includes(ESC)).toBe(false);
    for (const file of Object.values(markers)) expect(existsSync(file), file).toBe(false);
  }, 180_000);

  it('refuses a NUL byte in requirementsMd with a 400 naming the field, writing nothing', async () => {
    const runId = randomUUID();
    const answer = await served.api.inject({
      method: 'POST',
      url: '/v1/runs',
      payload: { runId, requirementsMd: '# Title\n\nhello\u0000world', repoPath: makeRepo(h.root), baseBranch: 'main', backend: 'scripted' },
    });
    expect(answer.statusCode, answer.body).toBe(400);
    const body = answer.json() as { error: { code: string; message: string; details: { issues: { field: string; message: string }[] } } };
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.details.issues).toEqual([{ field: 'body.requirementsMd', message: expect.stringContaining('NUL') }]);
    expect(await h.db.query.runs.findFirst({ where: (r, { eq }) => eq(r.id, runId) })).toBeUndefined();
    expect(existsSync(path.join(h.workspaceRoot, runId))).toBe(false);
    await expect(h.client.workflow.getHandle(runWorkflowId(runId)).describe()).rejects.toThrow(/not found/i);

    // A decision's comment likewise: refused before anything looks for the request.
    const decision = await served.api.inject({
      method: 'POST',
      url: `/v1/runs/${runId}/approvals/${randomUUID()}`,
      payload: { action: 'approve', clientToken: 'x', comment: 'ok\u0000' },
    });
    expect(decision.statusCode).toBe(400);
    expect((decision.json() as typeof body).error.details.issues.map((i) => i.field)).toEqual(['body.comment']);
  });
});
