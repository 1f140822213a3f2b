// The people's page, in a real browser (Debian's Chromium driven by playwright-core) against the
// real API, worker, Temporal and Postgres: read the spec at its gate, decide, watch the run go on.
import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApi } from '../api/server.ts';
import { approvalDecisions, approvalRequests } from '../db/schema.ts';
import { CHROMIUM_ARGS, ensureChromium } from '../lib/chromium.ts';
import { makeRepo, useRunHarness } from './helpers/run-harness.ts';

const h = useRunHarness('fake');
let temporal: Connection;
let browser: Browser;
const apps: FastifyInstance[] = [];

async function serve(token?: string): Promise<string> {
  const app = await buildApi({
    db: h.db, pool: h.pool, temporal, namespace: 'default', taskQueue: h.taskQueue, maxConcurrentRuns: 1_000, workspaceRoot: h.workspaceRoot,
    temporalWebUi: 'http://127.0.0.1:8233', ...(token ? { token } : {}),
  });
  apps.push(app);
  return app.listen({ host: '127.0.0.1', port: 0 });
}
let base = '';

beforeAll(async () => {
  temporal = await Connection.connect({ address: inject('temporalAddress') });
  base = await serve();
  browser = await chromium.launch({ executablePath: ensureChromium(), args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  for (const app of apps) await app.close();
  await temporal?.close();
});

async function startRun(body: Record<string, unknown> = {}, url = base, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(`${url}/v1/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ requirementsMd: '# Greeting\n\nPrint hello.\n', repoPath: makeRepo(h.root), baseBranch: 'main', backend: 'fake', timing: h.timing, ...body }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { runId: string }).runId;
}

async function openPage(url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url);
  return page;
}

const phaseState = (page: Page, phase: string) => page.locator(`table.phases tr[data-phase="${phase}"] .phase-state`);

describe('the page, in a browser', () => {
  it('shows a waiting gate in the inbox, the spec as a document at its gate, and takes the approval live to the next phases', async () => {
    const runId = await startRun();
    const page = await openPage(base);
    const row = page.locator('tr', { has: page.locator(`a[href="#/runs/${runId}"]`) }).first();
    await row.waitFor();
    await expect.poll(() => page.locator('#inbox-title + table').textContent()).toContain('spec_approved');

    await page.locator(`a[href="#/runs/${runId}"]`).first().click();
    await page.locator('.spec-title').waitFor();
    expect(await page.locator('.spec-title').textContent()).toBe('Scripted specification');
    expect(await page.locator('.spec').textContent()).toContain('Acceptance criteria');
    await expect.poll(() => phaseState(page, 'spec').textContent()).toBe('awaiting approval');

    await page.getByLabel('Comment (kept with the decision)').fill('looks right');
    // A double click decides once.
    await page.getByRole('button', { name: 'Approve' }).dblclick();
    await page.getByRole('status').filter({ hasText: 'Approved spec_approved.' }).waitFor();
    // No reload: the next phases start and finish on the page as the events arrive.
    await expect.poll(() => phaseState(page, 'review').textContent(), { timeout: 30_000 }).toBe('completed');
    await expect.poll(() => page.locator('h2 .state').first().textContent(), { timeout: 30_000 }).toBe('completed');
    const decisions = await h.db.select().from(approvalDecisions).innerJoin(approvalRequests, eq(approvalRequests.id, approvalDecisions.approvalRequestId)).where(eq(approvalRequests.runId, runId));
    expect(decisions.map((d) => [d.approval_decisions.action, d.approval_decisions.comment])).toEqual([['approve', 'looks right']]);

    // A contrary decision on the decided gate is refused, and the page says so plainly.
    await page.getByRole('button', { name: 'Reject' }).click();
    await page.getByRole('alert').filter({ hasText: 'Not recorded: approval request' }).waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('already decided: approve');
    await page.close();
  });

  it('rejects from the page: the run ends failed', async () => {
    const runId = await startRun();
    const page = await openPage(`${base}/#/runs/${runId}`);
    await page.getByRole('button', { name: 'Reject' }).click();
    await expect.poll(() => page.locator('h2 .state').first().textContent(), { timeout: 30_000 }).toBe('failed');
    await page.close();
  });

  it('shows a human gate with its reason and the errors that raised it', async () => {
    const runId = await startRun({ scenarios: { spec: ['schema_invalid', 'invalid_json'] } });
    const page = await openPage(`${base}/#/runs/${runId}`);
    await page.locator('.gate-reason').waitFor({ timeout: 30_000 });
    expect(await page.locator('.gate h2').textContent()).toContain('artifact_invalid_after_repair');
    expect(await page.locator('.gate h2').textContent()).toContain('human');
    expect(await page.locator('.gate-reason').textContent()).toContain('not valid JSON');
    expect(await page.locator('section.artifact').count()).toBe(2);
    await page.getByRole('button', { name: 'Abort' }).click();
    await expect.poll(() => page.locator('h2 .state').first().textContent(), { timeout: 30_000 }).toBe('aborted');
    await page.close();
  });

  it('asks for the token when the API wants one, and works once it is given', async () => {
    const token = `t-${randomUUID()}`;
    const guarded = await serve(token);
    const runId = await startRun({}, guarded, { authorization: `Bearer ${token}` });
    const page = await openPage(guarded);
    await page.getByLabel('API token').fill('wrong');
    await page.getByRole('button', { name: 'Use this token' }).click();
    await page.getByRole('alert').filter({ hasText: 'That token was refused.' }).waitFor();
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Use this token' }).click();
    await page.locator(`a[href="#/runs/${runId}"]`).first().waitFor();
    await page.close();
  });

  it('reads well on a phone', async () => {
    const runId = await startRun();
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`${base}/#/runs/${runId}`);
    await page.locator('.spec-title').waitFor({ timeout: 30_000 });
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    // Every decision button is reachable with the keyboard.
    await page.getByRole('button', { name: 'Approve' }).focus();
    expect(await page.evaluate<string>('document.activeElement.textContent')).toBe('Approve');
    await page.close();
  });
});
