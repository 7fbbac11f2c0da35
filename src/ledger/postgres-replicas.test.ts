/**
 * Replicas on one PostgreSQL ledger: leader election (one leader; another
 * takes over when it stops or its connection is cut) and the leader settling
 * the minting grants of a replica that died mid-exchange (GitLab token
 * revoked, grant marked) while a live replica's in-flight grant is left alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PG_URL, terminateBackends, testSchema, withPg } from '../../test/helpers/pg.ts';
import { FAKE_ADMIN_TOKEN, startFakeGitlab } from '../gitlab/fake-gitlab.testutil.ts';
import { createGitlabClient } from '../gitlab/index.ts';
import { newGrant } from './contract.testutil.ts';
import type { LeaderElection } from './leader.ts';
import { tokenName } from './names.ts';
import { openPostgresLedger, type PostgresLedger } from './postgres.ts';
import { createReaper } from './reaper.ts';
import { waitFor } from './testkit.testutil.ts';

/** An election whose changes are recorded. */
function elect(store: PostgresLedger): { e: LeaderElection; changes: boolean[] } {
  const changes: boolean[] = [];
  const e = store.leaderElection({ onChange: (v) => void changes.push(v), intervalMs: 200 });
  return { e, changes };
}

describe('postgres leader election', () => {
  it('one leader among three; when it steps down another takes over', async () => {
    const { schema, drop } = await testSchema();
    const stores = await Promise.all(
      [1, 2, 3].map(() => openPostgresLedger({ url: PG_URL, schema, poolSize: 1 })),
    );
    const elections = stores.map(elect);
    try {
      await Promise.all(elections.map((x) => x.e.start()));
      await waitFor(() => elections.filter((x) => x.e.isLeader()).length === 1, 5000, 'a leader');
      const first = elections.findIndex((x) => x.e.isLeader());
      assert.deepEqual(elections[first]?.changes, [true]);
      await elections[first]?.e.stop();
      assert.deepEqual(elections[first]?.changes, [true, false]);
      await waitFor(
        () => elections.filter((x, i) => i !== first && x.e.isLeader()).length === 1,
        5000,
        'another leader',
      );
      // Never two at once.
      assert.equal(elections.filter((x) => x.e.isLeader()).length, 1);
    } finally {
      await Promise.all(elections.map((x) => x.e.stop()));
      await Promise.all(stores.map((s) => s.close()));
      await drop();
    }
  });

  it("the leader's connection cut (pg_terminate_backend): it steps down at once, a leader is elected again", async () => {
    const { schema, drop } = await testSchema();
    const a = await openPostgresLedger({ url: PG_URL, schema, poolSize: 1 });
    const b = await openPostgresLedger({ url: PG_URL, schema, poolSize: 1 });
    const ea = elect(a);
    const eb = elect(b);
    try {
      await ea.e.start();
      await eb.e.start();
      assert.equal(ea.e.isLeader(), true, 'the first to try leads');
      assert.equal(eb.e.isLeader(), false);
      assert.ok((await terminateBackends(`tanuki-sts/${a.instanceId}/leader`)) === 1);
      await waitFor(() => ea.changes.includes(false), 5000, 'the leader to notice');
      await waitFor(() => ea.e.isLeader() !== eb.e.isLeader(), 5000, 'a new leader');
      assert.deepEqual(ea.changes.slice(0, 2), [true, false]);
    } finally {
      await ea.e.stop();
      await eb.e.stop();
      await a.close();
      await b.close();
      await drop();
    }
  });
});

describe('postgres: the leader settles a dead replica’s minting grants', () => {
  it('revokes what GitLab created for them and marks them; a live replica’s in-flight grant is left alone', async () => {
    const { schema, drop } = await testSchema();
    const fake = await startFakeGitlab();
    const gitlab = createGitlabClient({
      url: fake.url,
      token: FAKE_ADMIN_TOKEN,
      timeoutMs: 2000,
      maxRetries: 0,
    });
    const dead = await openPostgresLedger({ url: PG_URL, schema, poolSize: 1, heartbeatMs: 60_000 });
    const live = await openPostgresLedger({ url: PG_URL, schema, poolSize: 1 });
    const leader = await openPostgresLedger({ url: PG_URL, schema, poolSize: 2, leaseMs: 3000 });
    const recovered: Array<[string, string]> = [];
    try {
      const now = Date.now();
      // `dead` called GitLab, which created the token, then died before markActive.
      const orphan = newGrant({ createdAt: now, expiresAt: now + 600_000, targetRef: 'g/orphan' });
      await dead.insertMinting(orphan);
      const orphanToken = fake.addToken('project', 'g/orphan', tokenName('dev', orphan.policy, orphan.id));
      // `live` is minting right now: its token exists, markActive has not run yet.
      const inFlight = newGrant({ createdAt: now, expiresAt: now + 600_000, targetRef: 'g/live' });
      await live.insertMinting(inFlight);
      const liveToken = fake.addToken('project', 'g/live', tokenName('dev', inFlight.policy, inFlight.id));
      const reaper = createReaper({
        store: leader,
        gitlab,
        serverId: 'dev',
        onRecovered: (g, outcome) => recovered.push([g.id, outcome]),
      });

      await reaper.runOnce();
      assert.deepEqual(recovered, [], 'within the lease nobody is presumed dead');
      // SIGKILL: the heartbeat stops; its last beat ages past the lease.
      await withPg((c) =>
        c.query(`UPDATE "${schema}".replicas SET heartbeat_at = now() - interval '4 seconds' WHERE id = $1`, [
          dead.instanceId,
        ]),
      );
      await reaper.runOnce();
      assert.deepEqual(recovered, [[orphan.id, 'revoked']]);
      assert.equal(orphanToken.revoked, true, 'the token GitLab created for it is revoked');
      assert.equal((await leader.getById(orphan.id))?.state, 'revoked');
      assert.equal(liveToken.revoked, false, "a live replica's token is never touched");
      assert.equal((await leader.getById(inFlight.id))?.state, 'minting');
      await live.markActive(inFlight.id, { gitlabTokenId: liveToken.id, tokenSha256: 'live-sha' });
      assert.equal((await leader.getById(inFlight.id))?.state, 'active');
    } finally {
      await Promise.all([dead.close(), live.close(), leader.close()]);
      await gitlab.close();
      await fake.close();
      await drop();
    }
  });
});
