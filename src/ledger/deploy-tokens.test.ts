/**
 * Deploy-token grants (`tokenKind: 'deploy-token'`) in the reaper and the reconciler: revoked
 * through GitLab's deploy-token API (doc/api/deploy_tokens.md), a 204 for the recorded id being
 * the end (a deploy token cannot be rotated), anything else settled by a listing of the target's
 * active deploy tokens compared by name.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { sha256Hex } from '../util/hash.ts';
import { newGrant } from './contract.testutil.ts';
import { tokenName } from './names.ts';
import { createReaper, type ReapOutcome } from './reaper.ts';
import { createReconciler, type ReconciledToken } from './reconciler.ts';
import { type Kit, makeKit, T0 } from './testkit.testutil.ts';
import type { NewGrant } from './types.ts';

describe('deploy-token grants: reaper and reconciler', () => {
  let kit: Kit;
  beforeEach(async () => {
    kit = await makeKit();
  });
  afterEach(async () => {
    await kit.close();
  });

  /** A deploy-token grant minted as exchange.ts does it: ledger minting → GitLab deploy token → ledger active. */
  async function deployGrant(over: Partial<NewGrant> = {}) {
    const g = newGrant({
      tokenKind: 'deploy-token',
      accessLevel: 0,
      targetId: 7,
      createdAt: kit.clock.t,
      expiresAt: kit.clock.t + 60_000,
      ...over,
    });
    await kit.store.insertMinting(g);
    const t = kit.fake.addDeployToken(g.targetKind, '7', tokenName('dev', g.policy, g.id));
    await kit.store.markActive(g.id, {
      gitlabTokenId: t.id,
      tokenSha256: sha256Hex(t.token),
      gitlabUsername: t.username,
    });
    return { grant: g, token: t };
  }

  const requests = () => kit.fake.requests.map((r) => `${r.method} ${r.url.split('?')[0]}`);

  it('the reaper deletes the deploy token at the TTL: one DELETE, no listing', async () => {
    const { grant, token } = await deployGrant();
    const revoked: Array<[string, ReapOutcome]> = [];
    const reaper = createReaper({
      store: kit.store,
      gitlab: kit.gitlab,
      serverId: 'dev',
      now: kit.clock.now,
      onRevoked: (g, outcome) => revoked.push([g.id, outcome]),
    });
    assert.deepEqual(await reaper.runOnce(), { revoked: 0, failed: 0 }, 'not before its TTL');
    kit.clock.t += 60_000;
    assert.deepEqual(await reaper.runOnce(), { revoked: 1, failed: 0 });
    await reaper.stop();
    assert.deepEqual(requests(), [`DELETE /api/v4/projects/7/deploy_tokens/${token.id}`]);
    assert.equal(token.deleted, true);
    assert.deepEqual(revoked, [[grant.id, 'revoked']]);
    assert.equal((await kit.store.getById(grant.id))?.state, 'revoked');
  });

  it('a 404 for the recorded id: the active deploy tokens are listed and any named for the grant deleted', async () => {
    const { grant, token } = await deployGrant();
    // GitLab says "not found" for the recorded id once (a 404 may also mean the STS lost sight of the
    // project), and a copy named for the grant exists: the listing finds both alive and deletes them.
    const copy = kit.fake.addDeployToken('project', '7', tokenName('dev', grant.policy, grant.id));
    const unrelated = kit.fake.addDeployToken('project', '7', tokenName('dev', grant.policy, randomUUID()));
    let first = true;
    kit.fake.intercept = (r) => {
      if (r.method !== 'DELETE' || r.tokenId !== token.id || !first) return undefined;
      first = false;
      return { status: 404, body: { message: '404 Not found' } };
    };
    const reaper = createReaper({
      store: kit.store,
      gitlab: kit.gitlab,
      serverId: 'dev',
      now: kit.clock.now,
    });
    kit.clock.t += 60_000;
    assert.deepEqual(await reaper.runOnce(), { revoked: 1, failed: 0 });
    await reaper.stop();
    assert.ok(requests().includes('GET /api/v4/projects/7/deploy_tokens'));
    assert.ok(kit.fake.requests.some((r) => r.method === 'GET' && r.query.active === 'true'));
    assert.equal(copy.deleted, true);
    assert.equal(token.deleted, true, 'the listing showed it alive: deleted on the second try');
    assert.equal(unrelated.deleted, false);
    assert.equal((await kit.store.getById(grant.id))?.state, 'revoked');
  });

  it('the reconciler lists deploy tokens where the ledger minted them and deletes those no live grant accounts for', async () => {
    const live = await deployGrant({ expiresAt: T0 + 600_000 });
    const orphan = kit.fake.addDeployToken('project', '7', tokenName('dev', 'ci', randomUUID()));
    const otherDeployment = kit.fake.addDeployToken('project', '7', tokenName('other', 'ci', randomUUID()));
    const byHand = kit.fake.addDeployToken('project', '7', 'registry-puller');
    // A failed deploy-token grant (its answer was lost): its token must go.
    const failed = newGrant({ tokenKind: 'deploy-token', accessLevel: 0, targetId: 7 });
    await kit.store.insertMinting(failed);
    await kit.store.markFailed(failed.id, 'lost answer');
    const lost = kit.fake.addDeployToken('project', '7', tokenName('dev', failed.policy, failed.id));
    // An access token named for the deploy-token grant is never the grant's token.
    const wrongKind = kit.fake.addToken('project', '7', tokenName('dev', live.grant.policy, live.grant.id), {
      id: live.token.id,
    });
    // …listed because the ledger also minted an access token there.
    await kit.grant({ targetId: 7, targetRef: '7', expiresAt: T0 + 600_000 });

    const reported: ReconciledToken[] = [];
    const reconciler = createReconciler({
      store: kit.store,
      gitlab: kit.gitlab,
      serverId: 'dev',
      intervalMs: 60_000,
      now: kit.clock.now,
      onRevoked: (i) => reported.push(i),
    });
    const res = await reconciler.runOnce();
    await reconciler.stop();
    assert.deepEqual(res, { revoked: 3, targets: 2, errors: 0 });
    assert.equal(orphan.deleted, true);
    assert.equal(lost.deleted, true);
    assert.equal(wrongKind.revoked, true);
    for (const t of [live.token, otherDeployment, byHand]) assert.equal(t.deleted, false, t.name);
    assert.equal((await kit.store.getById(live.grant.id))?.state, 'active');
    assert.equal((await kit.store.getById(failed.id))?.state, 'revoked');
    assert.deepEqual(
      reported.map((r) => r.reason).sort(),
      [
        'grant failed: the client never received this token',
        'grant unknown to the ledger',
        'not the kind of token the grant minted',
      ].sort(),
    );
    assert.ok(
      reported.every((r) => (r.target.tokenKind === 'deploy-token') === (r.tokenId !== wrongKind.id)),
    );
  });
});
