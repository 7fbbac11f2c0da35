import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { sha256Hex } from '../util/hash.ts';
import { newGrant } from './contract.testutil.ts';
import { parseTokenName, tokenName } from './names.ts';
import { createReconciler, type ReconciledToken, type Reconciler } from './reconciler.ts';
import { type Kit, makeKit, T0, waitFor } from './testkit.testutil.ts';

describe('reconciler', () => {
  let kit: Kit;
  let reconciler: Reconciler;
  let reported: ReconciledToken[];

  beforeEach(async () => {
    kit = await makeKit();
    reported = [];
    reconciler = createReconciler({
      store: kit.store,
      gitlab: kit.gitlab,
      serverId: 'dev',
      intervalMs: 60_000,
      now: kit.clock.now,
      onRevoked: (i) => reported.push(i),
    });
  });
  afterEach(async () => {
    await reconciler.stop();
    await kit.close();
  });

  const revokedIds = () => kit.fake.requests.filter((r) => r.method === 'DELETE').map((r) => r.tokenId);

  it("revokes orphans and leaves live grants, other deployments' and foreign tokens alone", async () => {
    const live = await kit.grant({ expiresAt: T0 + 600_000 });
    // GitLab answered the mint but the ledger write never happened (crash): an id the ledger does not know.
    const orphan = kit.fake.addToken('project', 'group/app', tokenName('dev', 'ci', randomUUID()));
    const otherDeployment = kit.fake.addToken('project', 'group/app', tokenName('other', 'ci', randomUUID()));
    const similar = kit.fake.addToken('project', 'group/app', `x-${tokenName('dev', 'ci', randomUUID())}`);
    const human = kit.fake.addToken('project', 'group/app', 'deploy-token-by-hand');
    const garbage = kit.fake.addToken('project', 'group/app', 'tanuki-sts/dev/ci/not-a-uuid');

    const res = await reconciler.runOnce();
    assert.deepEqual(res, { revoked: 2, targets: 1, errors: 0 });
    assert.deepEqual(revokedIds().sort(), [orphan.id, garbage.id].sort());
    for (const t of [otherDeployment, similar, human]) assert.equal(t.revoked, false, t.name);
    assert.equal((await kit.store.getById(live.id))?.state, 'active');
    assert.deepEqual(
      reported.map((r) => [r.tokenId, r.reason]).sort(),
      [
        [orphan.id, 'grant unknown to the ledger'],
        [garbage.id, 'name carries no grant id'],
      ].sort(),
    );

    const list = kit.fake.requests.find((r) => r.method === 'GET');
    assert.equal(list?.query.search, 'tanuki-sts/dev/');
    assert.equal(list?.query.state, 'active');
    assert.equal(list?.query.per_page, '100');
  });

  it('revokes the token of a failed grant (lost answer) and records the grant as revoked', async () => {
    const g = newGrant({ createdAt: T0 });
    await kit.store.insertMinting(g);
    const t = kit.fake.addToken(g.targetKind, g.targetRef, tokenName('dev', g.policy, g.id));
    await kit.store.markFailed(g.id, 'GitLab POST timed out');
    assert.equal((await reconciler.runOnce()).revoked, 1);
    assert.equal(t.revoked, true);
    const got = await kit.store.getById(g.id);
    assert.equal(got?.state, 'revoked');
  });

  it('leaves a grant minting right now alone, but adopts and revokes one stuck in minting', async () => {
    const fresh = newGrant({ createdAt: T0 - 5_000 });
    const stuck = newGrant({ createdAt: T0 - 10 * 60_000 });
    for (const g of [fresh, stuck]) await kit.store.insertMinting(g);
    const tf = kit.fake.addToken('project', 'group/app', tokenName('dev', 'ci', fresh.id));
    const ts = kit.fake.addToken('project', 'group/app', tokenName('dev', 'ci', stuck.id));
    assert.equal((await reconciler.runOnce()).revoked, 1);
    assert.equal(tf.revoked, false, 'a mint in flight is not undone');
    assert.equal(ts.revoked, true);
    assert.equal((await kit.store.getById(stuck.id))?.state, 'revoked');
    assert.equal((await kit.store.getById(fresh.id))?.state, 'minting');
    // markActive after that would still work for the in-flight one:
    await kit.store.markActive(fresh.id, { gitlabTokenId: tf.id, tokenSha256: sha256Hex(tf.token) });
  });

  it('revokes an overdue grant, a revoked grant whose token is still active, and a second token for one grant', async () => {
    const overdue = await kit.grant({ expiresAt: T0 - 1 });
    const done = await kit.grant({ expiresAt: T0 + 600_000 });
    await kit.store.markRevoked(done.id, T0);
    const live = await kit.grant({ expiresAt: T0 + 600_000 });
    const extra = kit.fake.addToken('project', 'group/app', tokenName('dev', 'ci', live.id));
    const res = await reconciler.runOnce();
    assert.equal(res.revoked, 3);
    assert.deepEqual(revokedIds().sort(), [overdue.tokenId, done.tokenId, extra.id].sort());
    assert.equal((await kit.store.getById(overdue.id))?.state, 'revoked');
    assert.equal((await kit.store.getById(live.id))?.state, 'active', "the grant's own token stays");
  });

  it('covers every known target; a failing target does not stop the others', async () => {
    const a = newGrant({ targetKind: 'project', targetRef: 'a/one' });
    const b = newGrant({ targetKind: 'group', targetRef: 'b' });
    for (const g of [a, b]) {
      await kit.store.insertMinting(g);
      await kit.store.markFailed(g.id, 'x');
    }
    const ta = kit.fake.addToken('project', 'a/one', tokenName('dev', 'ci', a.id));
    const tb = kit.fake.addToken('group', 'b', tokenName('dev', 'ci', b.id));
    kit.fake.intercept = (r) =>
      r.method === 'GET' && r.kind === 'project' ? { status: 500, body: '' } : undefined;
    assert.deepEqual(await reconciler.runOnce(), { revoked: 1, targets: 1, errors: 1 });
    assert.equal(ta.revoked, false);
    assert.equal(tb.revoked, true);
    kit.fake.intercept = undefined;
    assert.deepEqual(await reconciler.runOnce(), { revoked: 1, targets: 2, errors: 0 });
    assert.equal(ta.revoked, true);
  });

  it('follows pagination when a target has many tokens', async () => {
    for (let i = 0; i < 230; i++)
      kit.fake.addToken('project', 'group/app', tokenName('dev', 'ci', randomUUID()));
    const g = await kit.grant({ expiresAt: T0 + 600_000 });
    assert.equal((await reconciler.runOnce()).revoked, 230);
    assert.equal((await kit.store.getById(g.id))?.state, 'active');
  });

  it('start() runs a first pass in the background', async () => {
    const orphan = kit.fake.addToken('project', 'group/app', tokenName('dev', 'ci', randomUUID()));
    await kit.store.insertMinting(newGrant());
    await reconciler.start();
    await waitFor(() => orphan.revoked, 2000, 'first pass');
  });

  it('parseTokenName is exact about the prefix', () => {
    const id = randomUUID();
    assert.deepEqual(parseTokenName(`tanuki-sts/dev/ci/${id}`, 'dev'), { belongs: true, grantId: id });
    assert.deepEqual(parseTokenName(`tanuki-sts/dev2/ci/${id}`, 'dev'), { belongs: false });
    assert.deepEqual(parseTokenName(`tanuki-sts/DEV/ci/${id}`, 'dev'), { belongs: false });
    assert.deepEqual(parseTokenName(`tanuki-sts/dev/ci/x/${id}`, 'dev'), { belongs: true });
    assert.deepEqual(parseTokenName(`tanuki-sts/dev//${id}`, 'dev'), { belongs: true });
  });
});
