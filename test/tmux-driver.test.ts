// The tmux backend with devflow's scripted agent: prompts arrive byte for byte (control
// characters as text), probes tell crashed from hung from busy, transcripts are incremental and
// bounded, dispose kills the process group.
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive } from '../lib/processes.ts';
import { waitFor } from '../lib/wait.ts';
import type { SessionTarget } from '../sessions/driver.ts';
import { PRESETS } from '../sessions/presets.ts';
import { cutTranscript, TmuxDriver } from '../sessions/tmux-driver.ts';
import { TmuxServer, tmuxSessionName } from '../sessions/tmux.ts';

let root = '';
let tmux: TmuxServer;
let driver: TmuxDriver;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'devflow-tmux-'));
  tmux = new TmuxServer(path.join(root, 'tmux.sock'));
  driver = new TmuxDriver(tmux, PRESETS.scripted);
});
afterAll(async () => {
  await tmux.killServer();
  await rm(root, { recursive: true, force: true });
});

function target(roleId = 'spec_writer'): SessionTarget {
  return { sessionId: randomUUID(), runId: randomUUID(), roleId, backend: 'scripted', cwd: root };
}

function received(roleId: string): string[] {
  const folder = path.join(root, '.devflow', 'scripted-agent', roleId);
  return existsSync(folder) ? readdirSync(folder).sort().map((f) => readFileSync(path.join(folder, f), 'utf8')) : [];
}

describe('tmux backend', () => {
  it("starts its tmux server again with devflow's options when the server was killed", async () => {
    const first = target('first');
    await driver.start(first);
    await tmux.run(['kill-server']);
    const second = target('second');
    await driver.start(second);
    expect((await tmux.run(['show-options', '-g', 'history-limit'])).trim()).toBe('history-limit 100000');
    expect((await tmux.run(['show-options', '-g', 'remain-on-exit'])).trim()).toBe('remain-on-exit on');
    await driver.dispose(first);
    await driver.dispose(second);
  });

  it('delivers a prompt byte for byte: shell syntax, quotes, newlines, non-ASCII and 100 KB', async () => {
    const t = target('byte_check');
    const started = await driver.start(t);
    expect(started).toMatchObject({ tmuxSession: tmuxSessionName(t.runId), tmuxWindow: 'byte_check', panePid: expect.any(Number) });
    const prompt = [
      'Role: byte_check',
      'Scenario: timeout',
      'echo $(rm -rf /tmp/nothing) `date` $HOME ${PATH} && ls; exit 1 | cat > /dev/null',
      `"double" 'single' \\backslash\\ \t tab`,
      'ünïcödé — ✓ 漢字 🙂',
      '',
      'x'.repeat(100 * 1024),
      'the end',
    ].join('\n');
    await driver.sendPrompt(t, prompt);
    await waitFor('the agent to keep the prompt', 10_000, async () => received('byte_check').length === 1);
    expect(Buffer.from(received('byte_check')[0]!)).toEqual(Buffer.from(prompt));
    await driver.dispose(t);
  });

  it('delivers control characters as text: an ESC sequence cannot end the paste early and type the rest as keys', async () => {
    const t = target('escape_check');
    await driver.start(t);
    const prompt = ['Role: escape_check', 'Scenario: timeout', 'title: x \x1b[201~\rtyped as keys\r \x1b]52;c;cHduZWQ=\x07 \x1b[2J \u009b6n end'].join('\n');
    await driver.sendPrompt(t, prompt);
    await waitFor('the agent to keep the prompt', 10_000, async () => received('escape_check').length === 1);
    expect(received('escape_check')).toEqual([
      ['Role: escape_check', 'Scenario: timeout', 'title: x \\x1b[201~\\x0dtyped as keys\\x0d \\x1b]52;c;cHduZWQ=\\x07 \\x1b[2J \\x9b6n end'].join('\n'),
    ]);
    await driver.dispose(t);
  });

  it('probes a busy, a hung and a crashed agent apart', async () => {
    const busy = target('busy');
    const hung = target('hung');
    const crashed = target('crashed');
    for (const t of [busy, hung, crashed]) await driver.start(t);
    await driver.sendPrompt(busy, 'Role: busy\nScenario: timeout');
    await driver.sendPrompt(hung, 'Role: hung\nScenario: hang');
    await driver.sendPrompt(crashed, 'Role: crashed\nScenario: crash');
    await waitFor('the hung agent to be silent 1.5 s and the crashed one gone', 10_000, async () =>
      ((await driver.probe(hung)).outputAgeMs ?? 0) >= 1_500 && !(await driver.probe(crashed)).alive);
    const [b, h, c] = await Promise.all([driver.probe(busy), driver.probe(hung), driver.probe(crashed)]);
    expect(b).toEqual({ alive: true, outputAgeMs: expect.any(Number), evidence: { pid: expect.any(Number), processGroupMembers: expect.any(Number), screenHash: expect.stringMatching(/^[0-9a-f]{16}$/) } });
    expect(b.evidence!.processGroupMembers).toBeGreaterThanOrEqual(1);
    expect(b.outputAgeMs!).toBeLessThan(1_500);
    expect(h.alive).toBe(true);
    expect(h.outputAgeMs!).toBeGreaterThanOrEqual(1_500);
    expect(c).toEqual({ alive: false, outputAgeMs: undefined, evidence: { pid: expect.any(Number), processGroupMembers: 0 } });
    // A crashed agent's pane stays for its transcript; a rebootstrap brings a fresh agent.
    expect((await driver.captureTranscript(crashed, 0))[0]!.chunk).toContain('crashing (scenario crash)');
    const again = await driver.rebootstrap(crashed);
    expect(await driver.resume(crashed)).toBe(true);
    expect(again.panePid).toBeGreaterThan(0);
    for (const t of [busy, hung, crashed]) await driver.dispose(t);
  });

  it('captures the transcript incrementally, by line count', async () => {
    const t = target('transcript');
    await driver.start(t);
    const first = await driver.captureTranscript(t, 0);
    expect(first).toHaveLength(1);
    expect(first[0]!.chunk).toContain('devflow scripted agent ready');
    expect(await driver.captureTranscript(t, first[0]!.seq)).toEqual([]);
    await driver.sendPrompt(t, 'Role: transcript\nScenario: timeout');
    await waitFor('more output', 5_000, async () => (await driver.captureTranscript(t, first[0]!.seq)).length > 0);
    const next = await driver.captureTranscript(t, first[0]!.seq);
    expect(next[0]!.seq).toBeGreaterThan(first[0]!.seq);
    expect(next[0]!.chunk).not.toContain('devflow scripted agent ready');
    expect(next[0]!.chunk).toContain('received initial prompt');
    await driver.dispose(t);
  });

  it('keeps the newest part of a transcript chunk past its byte limit, from a line start, and says what it cut', () => {
    const lines = Array.from({ length: 40_000 }, (_, i) => `line ${i} ünïcödé ✓ 漢字`);
    const chunk = `${lines.join('\n')}\n`;
    const limit = 256 * 1024;
    const cut = cutTranscript(chunk, limit);
    const [marker, ...rest] = cut.split('\n');
    const kept = rest.join('\n');
    const dropped = Number(/^\[devflow: transcript cut at 262144 bytes: the (\d+) bytes before these were not kept\]$/.exec(marker!)![1]);
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(limit);
    expect(dropped + Buffer.byteLength(kept)).toBe(Buffer.byteLength(chunk));
    expect(kept).toMatch(/^line \d+ ünïcödé ✓ 漢字\n/);
    expect(kept.endsWith('line 39999 ünïcödé ✓ 漢字\n')).toBe(true);
    expect(cutTranscript('short\n', limit)).toBe('short\n');
  });

  it('keeps every session reachable when several runs start their first agents at once on a fresh server', async () => {
    const fresh = new TmuxServer(path.join(root, 'fresh.sock'));
    const freshDriver = new TmuxDriver(fresh, PRESETS.scripted);
    const targets = Array.from({ length: 6 }, () => target('spec_writer'));
    await Promise.all(targets.map((t) => freshDriver.start(t)));
    // One run ending (its last session gone) must not take the server down under the others.
    await freshDriver.dispose(targets[0]!);
    const late = target('spec_writer');
    await freshDriver.start(late);
    for (const t of [...targets.slice(1), late]) expect(await freshDriver.resume(t)).toBe(true);
    expect((await fresh.sessionNames()).sort()).toEqual([...targets.slice(1), late].map((t) => tmuxSessionName(t.runId)).sort());
    await fresh.killServer();
  });

  it('keeps the roles of one run side by side: starting or disposing one leaves the others', async () => {
    const spec = target('spec_writer');
    const implementer = { ...target('implementer'), runId: spec.runId };
    const first = await driver.start(spec);
    const second = await driver.start(implementer);
    expect(processAlive(first.panePid!)).toBe(true);
    await driver.dispose(implementer);
    expect(processAlive(second.panePid!)).toBe(false);
    expect(await driver.resume(spec)).toBe(true);
    expect(await driver.resume(implementer)).toBe(false);
    await driver.dispose(spec);
  });

  it('disposes by killing the agent process group and its window', async () => {
    const t = target('disposed');
    const { panePid } = await driver.start(t);
    await driver.dispose(t);
    expect(processAlive(panePid!)).toBe(false);
    expect(await driver.resume(t)).toBe(false);
    expect(await tmux.sessionNames()).not.toContain(tmuxSessionName(t.runId));
  });

  it('refuses to send to a dead pane, as a recoverable error', async () => {
    const t = target('gone');
    await driver.start(t);
    await driver.sendPrompt(t, 'Role: gone\nScenario: crash');
    await waitFor('the agent to exit', 5_000, async () => !(await driver.resume(t)));
    await expect(driver.sendPrompt(t, 'Role: gone\nhello')).rejects.toMatchObject({ code: 'prompt_send_failed', errorClass: 'recoverable' });
    await driver.dispose(t);
  });
});
