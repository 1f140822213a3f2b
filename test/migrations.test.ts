// Migrations: drizzle applies a journal entry only if its `when` is newer than the last
// applied one, so an out-of-order timestamp would be skipped silently.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyMigrations, MIGRATIONS_FOLDER } from '../db/migrate.ts';
import { useDatabase } from './helpers/database.ts';

const handle = useDatabase();

interface Journal {
  entries: { idx: number; when: number; tag: string }[];
}

describe('migrations', () => {
  it('have strictly increasing journal timestamps, one SQL file per entry', async () => {
    const journal: Journal = JSON.parse(await readFile(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8'));
    expect(journal.entries.length).toBeGreaterThan(0);
    journal.entries.forEach((entry, i) => {
      expect(entry.idx).toBe(i);
      if (i > 0) expect(entry.when, `${entry.tag} must be newer than ${journal.entries[i - 1]!.tag}`).toBeGreaterThan(journal.entries[i - 1]!.when);
    });
    const sqlFiles = (await readdir(MIGRATIONS_FOLDER)).filter((f) => f.endsWith('.sql')).sort();
    expect(sqlFiles).toEqual(journal.entries.map((e) => `${e.tag}.sql`));
  });

  it('are all applied, and applying them again (even concurrently) changes nothing', async () => {
    const journal: Journal = JSON.parse(await readFile(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8'));
    await Promise.all([applyMigrations(handle), applyMigrations(handle)]);
    const applied = await handle.pool.query('select created_at from drizzle.__drizzle_migrations order by created_at');
    expect(applied.rows.map((r) => Number(r.created_at))).toEqual(journal.entries.map((e) => e.when));
    const tables = await handle.pool.query("select table_name from information_schema.tables where table_schema = 'public' order by 1");
    expect(tables.rows.map((r) => r.table_name)).toEqual([
      'agent_personas', 'agent_usage', 'approval_decisions', 'approval_requests', 'artifact_schemas', 'artifacts', 'notification_outbox', 'run_events', 'run_phases', 'runs',
      'schedule_fires', 'schedules', 'stack_checks', 'tui_sessions', 'tui_transcripts', 'workflow_templates',
    ]);
  });
});
