import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { runLedgerContract } from './contract.testutil.ts';
import { MIGRATIONS, openSqliteLedger } from './sqlite.ts';

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
        assert.deepEqual(
          db.prepare('SELECT version FROM schema_version').all(),
          MIGRATIONS.map((_, i) => ({ version: i + 1 })),
        );
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
      assert.deepEqual(db2.prepare('SELECT count(*) AS n FROM schema_version').get(), {
        n: MIGRATIONS.length,
      });
      db2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('upgrades a schema-1 ledger in place: its grants keep working, by path, without a target id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tanuki-ledger-v1-'));
    try {
      const path = join(dir, 'ledger.db');
      const db = new Database(path);
      db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
      db.exec(MIGRATIONS[0] as string);
      db.prepare('INSERT INTO schema_version (version) VALUES (1)').run();
      db.prepare(
        `INSERT INTO grants (id, state, request_id, issuer, identity_key, subject, policy, target_kind, target_ref,
           scopes, access_level, created_at, expires_at, gitlab_expires_at, gitlab_token_id, token_sha256, next_attempt_at)
         VALUES ('g-old', 'active', 'r', 'i', 'k', 's', 'p', 'project', 'a/b', '[]', 30, 1, 2, '2030-01-01', 5, 'sha', 2)`,
      ).run();
      db.close();
      const s = openSqliteLedger(path);
      try {
        const g = await s.getById('g-old');
        assert.equal(g?.state, 'active');
        assert.equal(g?.targetId, undefined);
        assert.deepEqual(await s.knownTargets(), [{ kind: 'project', ref: 'a/b', path: 'a/b' }]);
      } finally {
        await s.close();
      }
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
      assert.throws(
        () => openSqliteLedger(path),
        new RegExp(`schema version 99, newer than this tanuki-sts knows \\(${MIGRATIONS.length}\\)`),
      );
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

describe('ledger writer thread', () => {
  it('fails closed: when the thread cannot write, every write is rejected, none hangs', async () => {
    const { startWriterThread } = await import('./sqlite-writer.ts');
    const dir = mkdtempSync(join(tmpdir(), 'tanuki-writer-'));
    try {
      // A directory is no database: the thread dies opening it.
      const stops: Error[] = [];
      const w = startWriterThread(dir, 0, (err) => stops.push(err));
      const row = {
        id: 'g1',
        requestId: 'r',
        issuer: 'i',
        identityKey: 'k',
        subject: 's',
        tenant: null,
        clientId: null,
        objectId: null,
        policy: 'p',
        targetKind: 'project',
        targetRef: 'a/b',
        targetId: null,
        tokenKind: 'access-token',
        scopes: '[]',
        accessLevel: 20,
        createdAt: 0,
        expiresAt: 1,
        gitlabExpiresAt: '2026-01-01',
        attempts: 0,
        owner: null,
      };
      await assert.rejects(
        w.insertMinting(row, { maxActive: 0, now: 0 }),
        (e: { code?: string }) => e.code === 'ERR_LEDGER_WRITER_STOPPED',
      );
      await assert.rejects(
        w.markActive('g1', 1, 'x', null, null),
        (e: { code?: string }) => e.code === 'ERR_LEDGER_WRITER_STOPPED',
      );
      assert.equal(stops.length, 1, 'the unexpected stop is reported once (the STS logs it)');
      assert.ok(w.stopped());
      await w.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("commits are visible to the store's own reads as soon as the write resolves", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tanuki-writer-'));
    const s = openSqliteLedger(join(dir, 'l.db'));
    try {
      const ids = Array.from({ length: 40 }, (_, i) => `g${i}`);
      await Promise.all(
        ids.map((id) =>
          s.insertMinting({
            id,
            requestId: 'r',
            issuer: 'i',
            identityKey: 'k',
            subject: 's',
            policy: 'p',
            targetKind: 'project',
            targetRef: 'a/b',
            scopes: ['read_api'],
            accessLevel: 20,
            createdAt: 0,
            expiresAt: 10,
            gitlabExpiresAt: '2026-01-01',
          }),
        ),
      );
      await s.markActive('g7', { gitlabTokenId: 7, tokenSha256: 'ab' });
      assert.equal((await s.getById('g39'))?.state, 'minting');
      assert.equal((await s.getById('g7'))?.state, 'active');
      assert.equal((await s.findActiveByTokenSha('ab'))?.id, 'g7');
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
