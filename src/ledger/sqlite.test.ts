import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { runLedgerContract } from './contract.ts';
import { openSqliteLedger } from './sqlite.ts';

runLedgerContract('sqlite (file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-ledger-'));
  // A nested folder: openSqliteLedger creates it.
  const path = join(dir, 'data', 'ledger.db');
  return {
    open: async () => openSqliteLedger(path),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe('sqlite ledger specifics', () => {
  it('uses WAL, synchronous=FULL, a busy timeout, and records the schema version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tanuki-ledger-'));
    try {
      const path = join(dir, 'x', 'l.db');
      const s = openSqliteLedger(path);
      await s.countAllActive();
      await s.close();
      assert.ok(existsSync(path));
      const db = new Database(path, { readonly: true });
      try {
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
        assert.deepEqual(db.prepare('SELECT version FROM schema_version').all(), [{ version: 1 }]);
        const idx = db
          .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'grants' AND name LIKE 'grants_%'",
          )
          .all()
          .map((r) => (r as { name: string }).name)
          .sort();
        assert.deepEqual(idx, [
          'grants_identity',
          'grants_state_expires',
          'grants_state_next_attempt',
          'grants_targets',
          'grants_token_sha256',
        ]);
      } finally {
        db.close();
      }
      // Reopening does not migrate twice.
      const s2 = openSqliteLedger(path);
      await s2.close();
      const db2 = new Database(path, { readonly: true });
      assert.equal(db2.prepare('SELECT count(*) AS n FROM schema_version').get()?.constructor, Object);
      assert.deepEqual(db2.prepare('SELECT count(*) AS n FROM schema_version').get(), { n: 1 });
      db2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a database from a newer tanuki-sts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tanuki-ledger-'));
    try {
      const path = join(dir, 'l.db');
      const db = new Database(path);
      db.exec(
        'CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99);',
      );
      db.close();
      assert.throws(() => openSqliteLedger(path), /schema version 99 is newer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('works in memory', async () => {
    const s = openSqliteLedger(':memory:');
    assert.equal(await s.countAllActive(), 0);
    await s.close();
  });
});
