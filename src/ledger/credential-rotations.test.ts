/**
 * The rotation records of the STS's own GitLab token, one contract for both
 * stores: SQLite (a file shared by two connections, as `serve` and `tanuki-sts
 * credential rotate` share it) and PostgreSQL (a schema of its own).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PG_URL, testSchema } from '../../test/helpers/pg.ts';
import { CredentialRotationBusyError, type CredentialRotationStore } from './credential-rotations.ts';
import { migratePostgresLedger } from './postgres.ts';
import { openPostgresCredentialRotations } from './postgres-credential-rotations.ts';
import { openSqliteCredentialRotations } from './sqlite-credential-rotations.ts';

interface Harness {
  /** Two stores on the same ledger (two processes). */
  open(): Promise<[CredentialRotationStore, CredentialRotationStore]>;
  cleanup(): Promise<void>;
}

function contract(name: string, make: () => Promise<Harness>): void {
  describe(`credential rotation records: ${name}`, () => {
    const harnesses: Harness[] = [];
    const stores: CredentialRotationStore[] = [];
    const open = async () => {
      const h = await make();
      harnesses.push(h);
      const pair = await h.open();
      stores.push(...pair);
      return pair;
    };
    after(async () => {
      for (const s of stores) await s.close();
      for (const h of harnesses) await h.cleanup();
    });

    it('a pending record: begin, the answer (sealed), written, finished (seal erased)', async () => {
      const [a, b] = await open();
      assert.equal(await a.pending(), undefined);
      await a.begin({
        id: 'r1',
        startedAt: 1000,
        owner: 'serve:h:1',
        oldSha256: 'a'.repeat(64),
        oldTokenId: 7,
      });
      assert.deepEqual(await b.pending(), {
        id: 'r1',
        state: 'pending',
        startedAt: 1000,
        owner: 'serve:h:1',
        oldSha256: 'a'.repeat(64),
        oldTokenId: 7,
      });
      await a.recordNewToken('r1', {
        newSha256: 'b'.repeat(64),
        newTokenId: 8,
        newExpiresAt: '2026-03-17',
        sealed: 'v1.s',
      });
      await a.markWritten('r1', 2000);
      assert.deepEqual(await b.pending(), {
        id: 'r1',
        state: 'pending',
        startedAt: 1000,
        owner: 'serve:h:1',
        oldSha256: 'a'.repeat(64),
        oldTokenId: 7,
        newSha256: 'b'.repeat(64),
        newTokenId: 8,
        newExpiresAt: '2026-03-17',
        sealed: 'v1.s',
        writtenAt: 2000,
      });
      await b.finish('r1', { state: 'done', at: 3000 });
      assert.equal(await a.pending(), undefined);
      const last = await a.lastDone();
      assert.equal(last?.sealed, undefined, 'the sealed token is erased');
      assert.deepEqual(
        { state: last?.state, finishedAt: last?.finishedAt, newTokenId: last?.newTokenId },
        { state: 'done', finishedAt: 3000, newTokenId: 8 },
      );
    });

    it('one pending record at a time, across processes: the second begin is busy', async () => {
      const [a, b] = await open();
      await a.begin({ id: 'p1', startedAt: 1, owner: 'a', oldSha256: 'c'.repeat(64) });
      await assert.rejects(
        b.begin({ id: 'p2', startedAt: 2, owner: 'b', oldSha256: 'c'.repeat(64) }),
        CredentialRotationBusyError,
      );
      await b.finish('p1', { state: 'abandoned', at: 3, reason: 'GitLab did not rotate' });
      await b.begin({ id: 'p2', startedAt: 4, owner: 'b', oldSha256: 'd'.repeat(64) });
      assert.equal((await a.pending())?.id, 'p2');
      await b.finish('p2', { state: 'lost', at: 5, reason: 'x' });
      assert.equal(await a.lastDone(), undefined, 'abandoned and lost are not rotations that happened');
    });

    it('only a pending record changes: a finished one keeps its state, an unknown id is a no-op', async () => {
      const [a] = await open();
      await a.begin({ id: 'q1', startedAt: 1, owner: 'a', oldSha256: 'e'.repeat(64) });
      await a.finish('q1', { state: 'done', at: 2 });
      await a.finish('q1', { state: 'lost', at: 3, reason: 'late' });
      await a.recordNewToken('q1', { newSha256: 'f'.repeat(64), newTokenId: 1, sealed: 'v1.late' });
      const last = await a.lastDone();
      assert.deepEqual(
        { state: last?.state, at: last?.finishedAt, sealed: last?.sealed },
        {
          state: 'done',
          at: 2,
          sealed: undefined,
        },
      );
      await a.finish('nope', { state: 'done', at: 9 });
      await a.begin({ id: 'q2', startedAt: 10, owner: 'a', oldSha256: '1'.repeat(64) });
      await a.finish('q2', { state: 'done', at: 11 });
      assert.equal((await a.lastDone())?.id, 'q2', 'the latest done');
    });
  });
}

contract('SQLite (one file, two connections)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-rot-'));
  const path = join(dir, 'ledger.db');
  return {
    open: async () => [openSqliteCredentialRotations(path), openSqliteCredentialRotations(path)],
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

contract('PostgreSQL (a schema of its own, two pools)', async () => {
  const { schema, drop } = await testSchema();
  await migratePostgresLedger({ url: PG_URL, schema });
  return {
    open: async () => [
      openPostgresCredentialRotations({ url: PG_URL, schema }),
      openPostgresCredentialRotations({ url: PG_URL, schema }),
    ],
    cleanup: drop,
  };
});
