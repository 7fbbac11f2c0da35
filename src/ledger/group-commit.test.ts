import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createGroupCommit } from './group-commit.ts';

function setup() {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  const execs: string[] = [];
  const exec = db.exec.bind(db);
  db.exec = ((sql: string) => {
    execs.push(sql);
    return exec(sql);
  }) as typeof db.exec;
  const insert = db.prepare('INSERT INTO t (id, v) VALUES (?, ?)');
  return { db, execs, insert, group: createGroupCommit(db) };
}

describe('group commit', () => {
  it('writes queued in one loop turn share one transaction; each caller resumes after the commit', async () => {
    const { db, execs, insert, group } = setup();
    const done = Array.from({ length: 50 }, (_, i) => group.run(() => insert.run(i, `v${i}`).changes));
    assert.equal(
      (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n,
      0,
      'nothing before the flush',
    );
    assert.deepEqual(await Promise.all(done), Array(50).fill(1));
    assert.deepEqual(execs, ['BEGIN IMMEDIATE', 'COMMIT']);
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 50);
    assert.equal(db.inTransaction, false);
  });

  it("one caller's failing statement fails that caller only", async () => {
    const { db, insert, group } = setup();
    const a = group.run(() => insert.run(1, 'a'));
    const dup = group.run(() => insert.run(1, 'again'));
    const b = group.run(() => insert.run(2, 'b'));
    await a;
    await b;
    await assert.rejects(dup, (e: { code?: string }) => e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY');
    assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY id').all(), [{ v: 'a' }, { v: 'b' }]);
  });

  it('a failed COMMIT rejects every caller of the batch and leaves no transaction open', async () => {
    const { db, insert } = setup();
    const exec = db.exec.bind(db);
    db.exec = ((sql: string) => {
      if (sql === 'COMMIT') throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      return exec(sql);
    }) as typeof db.exec;
    const group = createGroupCommit(db);
    const results = await Promise.allSettled([
      group.run(() => insert.run(1, 'a')),
      group.run(() => insert.run(2, 'b')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.equal(db.inTransaction, false);
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 0);
  });

  it('flush() commits what is queued at once (close path)', async () => {
    const { db, insert, group } = setup();
    const p = group.run(() => insert.run(7, 'x'));
    group.flush();
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 1);
    await p;
  });
});
