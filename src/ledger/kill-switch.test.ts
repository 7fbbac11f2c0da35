import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { newGrant } from './contract.testutil.ts';
import {
  grantStatus,
  type KillSwitchOptions,
  listMatching,
  revokeMatching,
  type SettledGrant,
  STOPPED_WHILE_MINTING,
  type UnsettledGrant,
} from './kill-switch.ts';
import { tokenName } from './names.ts';
import { createReaper } from './reaper.ts';
import { type Kit, makeKit, T0 } from './testkit.testutil.ts';
import { GrantStateError } from './types.ts';

describe('grantStatus: expired = the STS TTL passed, whatever the row state', () => {
  const now = T0;
  const cases: Array<[string, number, string]> = [
    ['minting', now + 1, 'active'],
    ['active', now + 1, 'active'],
    ['revoking', now + 1, 'active'],
    ['revoked', now + 1, 'revoked'],
    ['failed', now + 1, 'failed'],
    ['active', now, 'expired'],
    ['revoking', now - 1, 'expired'],
    ['revoked', now - 1, 'expired'],
    ['failed', now - 1, 'expired'],
  ];
  for (const [state, expiresAt, want] of cases) {
    it(`${state}, TTL ${expiresAt - now >= 0 ? '+' : ''}${expiresAt - now} ms → ${want}`, () => {
      assert.equal(grantStatus({ state: state as never, expiresAt }, now), want);
    });
  }
});

describe('kill switch: revokeMatching', () => {
  let kit: Kit;
  let results: Array<SettledGrant | UnsettledGrant>;
  const run = (o: Partial<KillSwitchOptions> & Pick<KillSwitchOptions, 'selection'>) =>
    revokeMatching({
      store: kit.store,
      gitlab: kit.gitlab,
      serverId: 'dev',
      now: kit.clock.now,
      onResult: (r) => results.push(r),
      ...o,
    });
  const tokensOf = (id: string) =>
    [...kit.fake.tokens.values()].flat().filter((t) => t.name === tokenName('dev', 'ci', id));

  beforeEach(async () => {
    kit = await makeKit();
    results = [];
  });
  afterEach(() => kit.close());

  it("revokes every live grant of one application (past its TTL and rotated copies too), nobody else's", async () => {
    const a1 = await kit.grant({ clientId: 'app-a' });
    const a2 = await kit.grant({ clientId: 'APP-A', expiresAt: T0 - 1000 }); // past its TTL, not reaped yet
    const aDone = await kit.grant({ clientId: 'app-a' });
    await kit.store.markRevoked(aDone.id, T0);
    const b = await kit.grant({ clientId: 'app-b' });
    // The holder of a1 rotated it: the recorded token is gone, a copy with its name lives.
    const [orig] = tokensOf(a1.id);
    assert.ok(orig);
    orig.active = false;
    orig.revoked = true;
    const copy = kit.fake.addToken('project', 'group/app', orig.name);

    const r = await run({ selection: { clientId: 'app-a' } });
    assert.deepEqual(r.unsettled, []);
    assert.deepEqual(r.settled.map((x) => x.grant.id).sort(), [a1.id, a2.id].sort());
    assert.equal(r.settled.find((x) => x.grant.id === a1.id)?.descendants, 1);
    assert.equal(copy.revoked, true, 'the rotated copy is revoked');
    for (const id of [a1.id, a2.id]) {
      assert.equal((await kit.store.getById(id))?.state, 'revoked');
      assert.ok(tokensOf(id).every((t) => t.revoked || !t.active));
    }
    assert.equal((await kit.store.getById(b.id))?.state, 'active');
    assert.ok(
      tokensOf(b.id).every((t) => t.active && !t.revoked),
      "the other application's token lives",
    );
    assert.equal(results.length, 2, 'one report per grant (the audit)');
    assert.equal(
      kit.fake.count('DELETE', (q) => q.tokenId === tokensOf(aDone.id)[0]?.id),
      0,
    );
  });

  it('ttl: ended revokes only the grants past their TTL', async () => {
    const fresh = await kit.grant({ clientId: 'app-a' });
    const late = await kit.grant({ clientId: 'app-a', expiresAt: T0 - 1 });
    const r = await run({ selection: { clientId: 'app-a' }, ttl: 'ended' });
    assert.deepEqual(
      r.settled.map((x) => x.grant.id),
      [late.id],
    );
    assert.equal((await kit.store.getById(fresh.id))?.state, 'active');
  });

  it('an exchange caught mid-mint is failed: its markActive then throws, and a token already created is revoked', async () => {
    const g = newGrant({ clientId: 'app-a', createdAt: T0, expiresAt: T0 + 60_000 });
    await kit.store.insertMinting(g);
    // GitLab already answered the mint; the serving process has not recorded it yet.
    const t = kit.fake.addToken(g.targetKind, g.targetRef, tokenName('dev', g.policy, g.id));
    const quiet = newGrant({ clientId: 'app-a', createdAt: T0, expiresAt: T0 + 60_000 });
    await kit.store.insertMinting(quiet); // GitLab not answered yet: nothing to revoke
    const r = await run({ selection: { clientId: 'app-a' } });
    assert.deepEqual(r.unsettled, []);
    const byId = new Map(r.settled.map((x) => [x.grant.id, x]));
    assert.deepEqual(
      { outcome: byId.get(g.id)?.outcome, wasMinting: byId.get(g.id)?.wasMinting },
      { outcome: 'revoked', wasMinting: true },
    );
    assert.equal(byId.get(quiet.id)?.outcome, 'absent');
    assert.equal(t.revoked, true);
    assert.equal((await kit.store.getById(g.id))?.state, 'revoked');
    const q = await kit.store.getById(quiet.id);
    assert.deepEqual([q?.state, q?.lastError], ['failed', STOPPED_WHILE_MINTING], 'left to the reconciler');
    // The serving process finishing that exchange must take its token back instead of handing it out.
    await assert.rejects(
      kit.store.markActive(quiet.id, { gitlabTokenId: 1, tokenSha256: 'f'.repeat(64) }),
      GrantStateError,
    );
  });

  it('GitLab down: nothing is lost; every grant is due for the reaper, which finishes the job', async () => {
    const grants = [];
    for (let i = 0; i < 5; i++) grants.push(await kit.grant({ clientId: 'app-a' }));
    kit.fake.intercept = () => ({ status: 502, body: 'Bad Gateway' });
    const r = await run({ selection: { clientId: 'app-a' }, concurrency: 1 });
    assert.equal(r.settled.length, 0);
    assert.equal(r.unsettled.length, 5);
    assert.equal(r.unsettled.filter((u) => u.attempted).length, 1, 'stops asking GitLab after an outage');
    assert.match(r.unsettled.find((u) => !u.attempted)?.error ?? '', /not attempted: GitLab unavailable/);
    for (const g of grants) {
      const got = await kit.store.getById(g.id);
      assert.equal(got?.state, 'revoking');
      assert.ok((got?.nextAttemptAt ?? Number.POSITIVE_INFINITY) <= kit.clock.t, 'due now');
    }
    kit.fake.intercept = undefined;
    const reaper = createReaper({
      store: kit.store,
      gitlab: kit.gitlab,
      serverId: 'dev',
      now: kit.clock.now,
    });
    kit.clock.t += 120_000; // past the attempt's backoff
    assert.equal((await reaper.runOnce()).revoked, 5);
    for (const g of grants) assert.ok(tokensOf(g.id).every((t) => t.revoked));
  });

  it("the STS's own token refused (401): stops at once, the grants stay due", async () => {
    await kit.grant({ clientId: 'app-a' });
    await kit.grant({ clientId: 'app-a' });
    kit.fake.intercept = () => ({ status: 401, body: { message: '401 Unauthorized' } });
    const r = await run({ selection: { clientId: 'app-a' }, concurrency: 1 });
    assert.equal(r.unsettled.length, 2);
    assert.match(r.unsettled[1]?.error ?? '', /refused the STS's token/);
  });

  it('listMatching reads every page', async () => {
    for (let i = 0; i < 7; i++) await kit.store.insertMinting(newGrant({ createdAt: T0 + i, policy: 'p' }));
    const seen = [];
    for await (const g of listMatching(kit.store, { policy: 'p' }, 3)) seen.push(g.createdAt);
    assert.deepEqual(
      seen,
      Array.from({ length: 7 }, (_, i) => T0 + i),
    );
  });
});
