// The embedded Postgres in a data folder whose parents do not exist yet, as `npm run cluster
// -- --dir /srv/x` or a fresh DEVFLOW_HOME asks for: as root the server runs as the postgres
// user, who must be able to pass through every parent devflow creates.
import { statSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../cli/stack/postgres.ts';
import { freePort } from '../lib/ports.ts';

let root = '';
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

it('starts in a folder whose missing parents it creates, and leaves those parents passable by others', async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'devflow-pg-parents-'));
  await chmod(root, 0o755);
  const dir = path.join(root, 'not', 'there', 'pg');
  const postgres = await startEmbeddedPostgres({ dir, port: await freePort() });
  try {
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    const { rows } = await client.query<{ answer: number }>('select 41 + 1 as answer');
    await client.end();
    expect(rows[0]!.answer).toBe(42);
    for (const parent of [path.join(root, 'not'), path.join(root, 'not', 'there')]) {
      expect((statSync(parent).mode & 0o777).toString(8), parent).toBe('755');
    }
  } finally {
    await postgres.stop();
  }
}, 120_000);
