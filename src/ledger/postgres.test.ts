/**
 * The PostgreSQL ledger: the contract suite, then what only a shared database
 * has (migrations under a lock, the cap across pools, claims across reapers,
 * replicas' ownership of minting grants, losing the database and getting it
 * back). Runs against TANUKI_TEST_PG_URL or the local server, in schemas of
 * its own; an unreachable server fails these tests (test/helpers/pg.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  countBackends,
  deadPort,
  PG_URL,
  type PgProxy,
  startPgProxy,
  terminateBackends,
  testSchema,
  withPg,
} from '../../test/helpers/pg.ts';
import { newGrant, runLedgerContract } from './contract.testutil.ts';
import { openPostgresLedger, type PostgresLedger, type PostgresLedgerOptions } from './postgres.ts';
import { PG_MIGRATIONS } from './postgres-migrations.ts';
import { waitFor } from './testkit.testutil.ts';
import { ActiveGrantCapError, LedgerSchemaError, LedgerUnavailableError } from './types.ts';

const T0 = Date.parse('2030-06-01T12:00:00.000Z');

runLedgerContract('postgres', async () => {
  const { schema, drop } = await testSchema();
  return { open: () => openPostgresLedger({ url: PG_URL, schema, poolSize: 4 }), cleanup: drop };
});

/** Stores on one fresh schema, all closed (and the schema dropped) by `done`. */
async function schemaWith(): Promise<{
  schema: string;
  open(o?: Partial<PostgresLedgerOptions>): Promise<PostgresLedger>;
  done(): Promise<void>;
}> {
  const { schema, drop } = await testSchema();
  const stores: PostgresLedger[] = [];
  return {
    schema,
    async open(o = {}) {
      const s = await openPostgresLedger({ url: PG_URL, schema, poolSize: 4, ...o });
      stores.push(s);
      return s;
    },
    async done() {
      await Promise.all(stores.map((s) => s.close()));
      await drop();
    },
  };
}

describe('postgres ledger: schema and migrations', () => {
  it('creates its schema, records each version once, and does not migrate twice', async () => {
    const t = await schemaWith();
    try {
      const s1 = await t.open();
      assert.deepEqual(s1.migration(), { from: 0, to: PG_MIGRATIONS.length });
      const s2 = await t.open();
      assert.deepEqual(s2.migration(), { from: PG_MIGRATIONS.length, to: PG_MIGRATIONS.length });
      await withPg(async (c) => {
        const v = await c.query(`SELECT version FROM "${t.schema}".schema_version ORDER BY version`);
        assert.deepEqual(
          v.rows.map((r) => r.version),
          PG_MIGRATIONS.map((_, i) => i + 1),
        );
        const tables = await c.query(
          'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
          [t.schema],
        );
        assert.deepEqual(
          tables.rows.map((r) => r.table_name),
          ['credential_rotations', 'grants', 'replicas', 'schema_version'],
        );
      });
    } finally {
      await t.done();
    }
  });

  it('two replicas opening a fresh schema together migrate it once', async () => {
    const t = await schemaWith();
    try {
      const opened = await Promise.all([t.open(), t.open(), t.open()]);
      const fresh = opened.filter((s) => s.migration()?.from === 0);
      assert.equal(fresh.length, 1, 'exactly one of them migrated');
      for (const s of opened) assert.equal(s.migration()?.to, PG_MIGRATIONS.length);
      await withPg(async (c) => {
        const v = await c.query(`SELECT count(*)::int AS n FROM "${t.schema}".schema_version`);
        assert.equal(v.rows[0].n, PG_MIGRATIONS.length);
      });
      // And all three work on it.
      for (const s of opened) assert.equal(await s.countAllActive(), 0);
    } finally {
      await t.done();
    }
  });

  it('refuses a schema newer than this code, saying so', async () => {
    const t = await schemaWith();
    try {
      await (await t.open()).close();
      await withPg((c) => c.query(`INSERT INTO "${t.schema}".schema_version (version) VALUES (99)`));
      const err = await t.open().catch((e: unknown) => e);
      assert.ok(err instanceof LedgerSchemaError, String(err));
      assert.equal(err.code, 'ERR_LEDGER_SCHEMA');
      assert.match(err.message, /schema "tanuki_test_[0-9a-f]+" is at schema version 99, newer than this/);
      assert.match(err.message, /never downgraded/);
    } finally {
      await t.done();
    }
  });
});

describe('postgres ledger: replicas sharing it', () => {
  it('the cap holds exactly: 60 concurrent inserts from three pools, cap 20 → 20', async () => {
    const t = await schemaWith();
    try {
      const pools = await Promise.all([t.open(), t.open(), t.open()]);
      const results = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          (pools[i % 3] as PostgresLedger).insertMinting(newGrant({ identityKey: 'burst' }), {
            maxActive: 20,
            now: T0,
          }),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 20);
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(r.reason instanceof ActiveGrantCapError, String(r.reason));
      }
      for (const s of pools) assert.equal(await s.countActive('burst'), 20);
      // Each replica recorded its own share, and its own id on it.
      await withPg(async (c) => {
        const owners = await c.query(`SELECT DISTINCT owner FROM "${t.schema}".grants`);
        for (const r of owners.rows) assert.ok(pools.some((s) => s.instanceId === r.owner));
      });
    } finally {
      await t.done();
    }
  });

  it('two reapers claiming at once never get the same grant', async () => {
    const t = await schemaWith();
    try {
      const a = await t.open();
      const b = await t.open();
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) {
        const g = newGrant({ expiresAt: T0 + i });
        ids.push(g.id);
        await (i % 2 ? a : b).insertMinting(g);
        await (i % 2 ? a : b).markActive(g.id, { gitlabTokenId: i + 1, tokenSha256: `sha-${g.id}` });
      }
      const claimed: string[] = [];
      const drain = async (s: PostgresLedger) => {
        for (;;) {
          const got = await s.claimDue(T0 + 1000, 15, 60_000);
          if (got.length === 0) return;
          claimed.push(...got.map((g) => g.id));
        }
      };
      await Promise.all([drain(a), drain(b), drain(a), drain(b)]);
      assert.equal(claimed.length, 200, 'every due grant claimed once');
      assert.equal(new Set(claimed).size, 200, 'none twice');
    } finally {
      await t.done();
    }
  });

  it("failOrphanedMinting spares a live replica's in-flight grants and takes a dead one's", async () => {
    const t = await schemaWith();
    try {
      // A long heartbeat: the test decides when a replica looks dead.
      const live = await t.open({ heartbeatMs: 60_000 });
      const dead = await t.open({ heartbeatMs: 60_000 });
      const leader = await t.open({ leaseMs: 5_000 });
      const inFlight = newGrant({ createdAt: T0 });
      await live.insertMinting(inFlight);
      const orphan = newGrant({ createdAt: T0 });
      await dead.insertMinting(orphan);
      assert.deepEqual(await leader.failOrphanedMinting(), [], 'both replicas heartbeat within the lease');
      // `dead` stops heartbeating (SIGKILL): its last beat ages past the lease.
      await withPg((c) =>
        c.query(
          `UPDATE "${t.schema}".replicas SET heartbeat_at = now() - interval '6 seconds' WHERE id = $1`,
          [dead.instanceId],
        ),
      );
      const failed = await leader.failOrphanedMinting();
      assert.deepEqual(
        failed.map((g) => g.id),
        [orphan.id],
      );
      assert.equal((await leader.getById(inFlight.id))?.state, 'minting');
      // The "dead" replica was only cut off: its late markActive finds the grant failed (it takes its token back).
      await assert.rejects(
        dead.markActive(orphan.id, { gitlabTokenId: 9, tokenSha256: 'late' }),
        /is failed/,
      );
      // A clean close is a departure: that replica's grants are settled without waiting for the lease.
      const leaving = newGrant({ createdAt: T0 });
      await live.insertMinting(leaving);
      await live.close();
      const after = await leader.failOrphanedMinting();
      assert.deepEqual(after.map((g) => g.id).sort(), [inFlight.id, leaving.id].sort());
    } finally {
      await t.done();
    }
  });
});

describe('postgres ledger: losing the database', () => {
  let proxy: PgProxy;
  before(async () => {
    proxy = await startPgProxy();
  });
  after(() => proxy.close());

  it('unreachable: calls fail at once, not writable; back: recovers by itself, no reopen', async () => {
    proxy.restore();
    const { schema, drop } = await testSchema();
    const s = await openPostgresLedger({ url: proxy.url, schema, poolSize: 2, probeMs: 100 });
    try {
      const g = newGrant();
      await s.insertMinting(g);
      assert.equal(s.writable?.(), true);
      proxy.cut();
      const err = await s.countAllActive().catch((e: unknown) => e);
      assert.ok(err instanceof LedgerUnavailableError, String(err));
      assert.equal(err.code, 'ERR_LEDGER_UNAVAILABLE');
      assert.equal(s.writable?.(), false);
      // Known down: refused without trying the database (no new connection).
      const before = proxy.forwarded;
      await assert.rejects(s.insertMinting(newGrant()), LedgerUnavailableError);
      await assert.rejects(s.getById(g.id), LedgerUnavailableError);
      assert.equal(proxy.forwarded, before);
      proxy.restore();
      await waitFor(() => s.writable?.() === true, 10_000, 'the store to come back');
      assert.equal((await s.getById(g.id))?.state, 'minting');
      await s.insertMinting(newGrant());
    } finally {
      proxy.restore();
      await s.close();
      await drop();
    }
  });

  it('its backends terminated (pg_terminate_backend): the pool reconnects, calls go on', async () => {
    const { schema, drop } = await testSchema();
    const s = await openPostgresLedger({ url: PG_URL, schema, poolSize: 3, probeMs: 100 });
    try {
      await Promise.all(Array.from({ length: 6 }, () => s.insertMinting(newGrant())));
      assert.ok((await countBackends(`tanuki-sts/${s.instanceId}`)) > 0);
      assert.ok((await terminateBackends(`tanuki-sts/${s.instanceId}`)) > 0);
      await waitFor(
        async () => (await s.countActive(newGrant().identityKey).catch(() => -1)) === 6,
        10_000,
        'calls to succeed again',
      );
      assert.equal(s.writable?.(), true);
    } finally {
      await s.close();
      await drop();
    }
  });

  it('a port where nothing listens: open fails, or (waitForDatabase) opens unavailable', async () => {
    const url = `postgres://postgres@127.0.0.1:${await deadPort()}/test`;
    await assert.rejects(openPostgresLedger({ url, schema: 'tanuki_test_0' }), /ECONNREFUSED/);
    const s = await openPostgresLedger({ url, schema: 'tanuki_test_0', waitForDatabase: true, probeMs: 100 });
    try {
      assert.equal(s.writable?.(), false);
      assert.equal(s.migration(), undefined);
      await assert.rejects(s.countAllActive(), LedgerUnavailableError);
      await assert.rejects(s.insertMinting(newGrant()), LedgerUnavailableError);
    } finally {
      await s.close();
    }
  });

  it('waitForDatabase: the database arrives later, the store migrates and serves', async () => {
    const { schema, drop } = await testSchema();
    proxy.cut();
    const s = await openPostgresLedger({ url: proxy.url, schema, waitForDatabase: true, probeMs: 100 });
    try {
      assert.equal(s.writable?.(), false);
      proxy.restore();
      await waitFor(() => s.writable?.() === true, 10_000, 'the database to be reached');
      assert.equal(s.migration()?.to, PG_MIGRATIONS.length);
      await s.insertMinting(newGrant());
      assert.equal(await s.countActive(newGrant().identityKey), 1);
    } finally {
      proxy.restore();
      await s.close();
      await drop();
    }
  });
});
