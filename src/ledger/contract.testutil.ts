/**
 * The LedgerStore contract: one test suite every implementation runs
 * (SQLite and PostgreSQL). Call it from a *.test.ts:
 *
 *   runLedgerContract('sqlite', async () => { … return { open, cleanup } });
 *
 * `open()` must return a store over the same storage each time it is called
 * (the restart tests close one store and open another); `cleanup()` removes
 * the storage.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { grantStatus, STATUS_FILTERS, statusFilter } from './kill-switch.ts';
import {
  ActiveGrantCapError,
  DuplicateGrantError,
  type Grant,
  type GrantFilter,
  GrantNotFoundError,
  type GrantState,
  GrantStateError,
  LedgerError,
  type LedgerStore,
  type NewGrant,
} from './types.ts';

export interface LedgerHarness {
  open(): Promise<LedgerStore>;
  cleanup(): Promise<void>;
}

const T0 = Date.parse('2030-06-01T12:00:00.000Z');
const MIN = 60_000;

export function newGrant(over: Partial<NewGrant> = {}): NewGrant {
  return {
    id: randomUUID(),
    state: 'minting',
    requestId: `req-${randomUUID().slice(0, 8)}`,
    issuer: 'https://login.microsoftonline.com/t/v2.0',
    identityKey: 'https://login.microsoftonline.com/t/v2.0|sub-1',
    subject: 'sub-1',
    tenant: 't',
    clientId: 'app-1',
    objectId: 'oid-1',
    policy: 'ci',
    targetKind: 'project',
    targetRef: 'group/app',
    scopes: ['read_repository', 'read_api'],
    accessLevel: 30,
    createdAt: T0,
    expiresAt: T0 + 15 * MIN,
    gitlabExpiresAt: '2030-06-02',
    attempts: 0,
    ...over,
  };
}

const sha = (n: number | string): string => String(n).padStart(64, 'a');

export function runLedgerContract(name: string, makeHarness: () => Promise<LedgerHarness>): void {
  describe(`LedgerStore contract: ${name}`, () => {
    async function withStore(fn: (s: LedgerStore, h: LedgerHarness) => Promise<void>): Promise<void> {
      const h = await makeHarness();
      const s = await h.open();
      try {
        await fn(s, h);
      } finally {
        await s.close();
        await h.cleanup();
      }
    }

    /** insert + markActive */
    async function active(s: LedgerStore, over: Partial<NewGrant> = {}, tokenId = 1): Promise<NewGrant> {
      const g = newGrant(over);
      await s.insertMinting(g);
      await s.markActive(g.id, {
        gitlabTokenId: tokenId,
        tokenSha256: sha(`${tokenId}-${g.id.slice(0, 8)}`),
      });
      return g;
    }

    it('insertMinting stores every field; optional ones stay absent', () =>
      withStore(async (s) => {
        const g = newGrant();
        await s.insertMinting(g);
        const { state: _s, ...rest } = g;
        assert.deepEqual(await s.getById(g.id), { ...rest, state: 'minting' });
        const bare = newGrant({ tenant: undefined, clientId: undefined, objectId: undefined });
        await s.insertMinting(bare);
        const got = await s.getById(bare.id);
        assert.ok(got);
        assert.equal('tenant' in got, false);
        assert.equal('gitlabTokenId' in got, false);
        assert.equal(await s.getById(randomUUID()), undefined);
      }));

    it('insertMinting refuses a duplicate id', () =>
      withStore(async (s) => {
        const g = newGrant();
        await s.insertMinting(g);
        await assert.rejects(s.insertMinting(g), DuplicateGrantError);
      }));

    it('markActive records the token id and hash and makes the grant due at its TTL end', () =>
      withStore(async (s) => {
        const g = newGrant();
        await s.insertMinting(g);
        await s.markActive(g.id, { gitlabTokenId: 4711, tokenSha256: sha('x') });
        const got = await s.getById(g.id);
        assert.equal(got?.state, 'active');
        assert.equal(got?.gitlabTokenId, 4711);
        assert.equal(got?.tokenSha256, sha('x'));
        assert.equal(got?.nextAttemptAt, g.expiresAt);
        assert.equal((await s.findActiveByTokenSha(sha('x')))?.id, g.id);
        assert.equal(await s.findActiveByTokenSha(sha('y')), undefined);
      }));

    it('markActive refuses a grant that is no longer minting, or unknown', () =>
      withStore(async (s) => {
        const g = newGrant();
        await s.insertMinting(g);
        await s.markFailed(g.id, 'GitLab unavailable');
        const err = await s
          .markActive(g.id, { gitlabTokenId: 1, tokenSha256: sha(1) })
          .catch((e: unknown) => e);
        assert.ok(err instanceof GrantStateError);
        assert.equal(err.code, 'ERR_GRANT_STATE');
        await assert.rejects(
          s.markActive(randomUUID(), { gitlabTokenId: 1, tokenSha256: sha(1) }),
          GrantNotFoundError,
        );
      }));

    it('markFailed: minting → failed with the reason; a no-op on an active grant', () =>
      withStore(async (s) => {
        const g = newGrant();
        await s.insertMinting(g);
        await s.markFailed(g.id, 'GitLab refused: HTTP 400');
        const got = await s.getById(g.id);
        assert.equal(got?.state, 'failed');
        assert.equal(got?.lastError, 'GitLab refused: HTTP 400');
        const a = await active(s);
        await s.markFailed(a.id, 'late');
        assert.equal((await s.getById(a.id))?.state, 'active');
      }));

    it('countActive counts the grants of one identity whose token may live: minting, active, revoking', () =>
      withStore(async (s) => {
        await active(s, { identityKey: 'A' });
        await s.insertMinting(newGrant({ identityKey: 'A' }));
        await active(s, { identityKey: 'A', expiresAt: T0 + MIN }, 2);
        await active(s, { identityKey: 'B' }, 3);
        const failed = newGrant({ identityKey: 'A' });
        await s.insertMinting(failed);
        await s.markFailed(failed.id, 'x');
        const revoked = await active(s, { identityKey: 'A' }, 4);
        await s.markRevoked(revoked.id, T0);
        const asked = await active(s, { identityKey: 'A' }, 5);
        await s.requestRevoke(asked.id, T0);
        // 4 = the active one, the minting one, the one past its TTL (not reaped yet), the revoking one.
        assert.equal(await s.countActive('A'), 4);
        assert.equal(await s.countActive('C'), 0);
        assert.equal(await s.countAllActive(), 4, 'active + revoking, all identities');
      }));

    it('requestRevoke makes an active grant revoking and due now; findActiveByTokenSha still finds it', () =>
      withStore(async (s) => {
        const g = await active(s, {}, 9);
        await s.requestRevoke(g.id, T0 + 1000);
        const got = await s.getById(g.id);
        assert.equal(got?.state, 'revoking');
        assert.equal(got?.revokeRequestedAt, T0 + 1000);
        assert.equal(got?.nextAttemptAt, T0 + 1000);
        assert.equal((await s.findActiveByTokenSha(got?.tokenSha256 ?? ''))?.id, g.id);
        // A second request does not undo the reaper's backoff.
        await s.recordRevokeFailure(g.id, 'HTTP 503', T0 + 60_000);
        await s.requestRevoke(g.id, T0 + 2000);
        assert.equal((await s.getById(g.id))?.nextAttemptAt, T0 + 60_000);
        // Nothing happens to a revoked or minting grant.
        await s.markRevoked(g.id, T0 + 3000);
        await s.requestRevoke(g.id, T0 + 4000);
        assert.equal((await s.getById(g.id))?.state, 'revoked');
        const m = newGrant();
        await s.insertMinting(m);
        await s.requestRevoke(m.id, T0);
        assert.equal((await s.getById(m.id))?.state, 'minting');
        await s.requestRevoke(randomUUID(), T0);
      }));

    it('claimDue returns due grants earliest first, leases them, and respects the limit', () =>
      withStore(async (s) => {
        const late = await active(s, { expiresAt: T0 + 10 * MIN }, 1);
        const early = await active(s, { expiresAt: T0 + 1 * MIN }, 2);
        const mid = await active(s, { expiresAt: T0 + 5 * MIN }, 3);
        const notYet = await active(s, { expiresAt: T0 + 60 * MIN }, 4);
        const asked = await active(s, { expiresAt: T0 + 60 * MIN }, 5);
        await s.requestRevoke(asked.id, T0);
        await s.insertMinting(newGrant({ expiresAt: T0 })); // minting: never claimed
        const now = T0 + 10 * MIN;
        const first = await s.claimDue(now, 2, 30_000);
        assert.equal(first.length, 2);
        const rest = await s.claimDue(now, 10, 30_000);
        const all = [...first, ...rest].map((g) => g.id);
        assert.deepEqual(new Set(all), new Set([late.id, early.id, mid.id, asked.id]));
        assert.equal(all.length, 4, 'no grant claimed twice');
        assert.ok(!all.includes(notYet.id));
        for (const g of [...first, ...rest]) assert.equal(g.nextAttemptAt, now + 30_000);
        assert.deepEqual(await s.claimDue(now + 29_999, 10, 30_000), [], 'leased');
        const again = await s.claimDue(now + 30_000, 10, 30_000);
        assert.equal(again.length, 4, 'an expired lease (a dead reaper) is taken again');
        assert.deepEqual(await s.claimDue(now, 0, 1000), []);
      }));

    it('markRevoked / markRevokedMany end the grant; idempotent', () =>
      withStore(async (s) => {
        const a = await active(s, {}, 1);
        const b = await active(s, {}, 2);
        const c = await active(s, {}, 3);
        await s.markRevoked(a.id, T0 + 5);
        await s.markRevoked(a.id, T0 + 99);
        await s.markRevokedMany([b.id, c.id, randomUUID()], T0 + 7);
        await s.markRevokedMany([], T0);
        const ga = await s.getById(a.id);
        assert.equal(ga?.state, 'revoked');
        assert.equal(ga?.revokedAt, T0 + 5, 'the first revocation time stays');
        assert.equal(ga?.nextAttemptAt, undefined);
        assert.equal((await s.getById(c.id))?.revokedAt, T0 + 7);
        assert.equal(await s.countAllActive(), 0);
        assert.equal(await s.findActiveByTokenSha(ga?.tokenSha256 ?? ''), undefined);
        assert.deepEqual(await s.claimDue(T0 + 99 * MIN, 10, 1000), []);
      }));

    it('recordRevokeFailure counts attempts and defers; reschedule releases a lease without counting', () =>
      withStore(async (s) => {
        const g = await active(s, { expiresAt: T0 });
        await s.claimDue(T0, 10, 60_000);
        await s.recordRevokeFailure(g.id, 'HTTP 503 '.repeat(200), T0 + 2000);
        let got = (await s.getById(g.id)) as Grant;
        assert.equal(got.attempts, 1);
        assert.equal(got.nextAttemptAt, T0 + 2000);
        assert.ok((got.lastError?.length ?? 0) <= 500, 'errors are trimmed');
        assert.deepEqual(await s.claimDue(T0 + 1999, 10, 1000), []);
        assert.equal((await s.claimDue(T0 + 2000, 10, 60_000)).length, 1);
        await s.reschedule([g.id], T0 + 3000);
        got = (await s.getById(g.id)) as Grant;
        assert.equal(got.attempts, 1);
        assert.equal(got.nextAttemptAt, T0 + 3000);
        assert.equal(await s.nextDueAt(), T0 + 3000);
      }));

    it('failStaleMinting fails only minting grants older than the cutoff', () =>
      withStore(async (s) => {
        const old = newGrant({ createdAt: T0 - 5 * MIN });
        const fresh = newGrant({ createdAt: T0 });
        await s.insertMinting(old);
        await s.insertMinting(fresh);
        await active(s, { createdAt: T0 - 10 * MIN });
        assert.deepEqual(await s.failStaleMinting(T0 - 2 * MIN), [old.id]);
        const got = await s.getById(old.id);
        assert.equal(got?.state, 'failed');
        assert.match(got?.lastError ?? '', /orphan-suspect/);
        assert.equal((await s.getById(fresh.id))?.state, 'minting');
        assert.deepEqual(await s.failStaleMinting(T0 - 2 * MIN), []);
      }));

    it("failOrphanedMinting fails the minting grants of a process that is gone, never the store's own", async () => {
      const h = await makeHarness();
      try {
        const gone = await h.open();
        const orphan = newGrant();
        await gone.insertMinting(orphan);
        const finished = await active(gone, {}, 31);
        await gone.close(); // the process that recorded them is gone
        const s = await h.open();
        try {
          const mine = newGrant();
          await s.insertMinting(mine);
          const failed = await s.failOrphanedMinting();
          assert.deepEqual(
            failed.map((g) => g.id),
            [orphan.id],
          );
          assert.equal(failed[0]?.state, 'failed');
          assert.match(failed[0]?.lastError ?? '', /orphan-suspect/);
          assert.equal(failed[0]?.policy, orphan.policy, 'the whole grant: its token is revoked by name');
          assert.equal((await s.getById(orphan.id))?.state, 'failed');
          assert.equal((await s.getById(mine.id))?.state, 'minting', 'an in-flight mint of this process');
          assert.equal((await s.getById(finished.id))?.state, 'active');
          assert.deepEqual(await s.failOrphanedMinting(), []);
        } finally {
          await s.close();
        }
      } finally {
        await h.cleanup();
      }
    });

    it('knownTargets: every target ever minted for, once, by numeric id where known, whatever its dates', () =>
      withStore(async (s) => {
        await s.insertMinting(
          newGrant({ targetKind: 'project', targetRef: 'a/b', targetId: 7, gitlabExpiresAt: '2030-06-02' }),
        );
        // The same project under the path it had before a rename: still one target (id 7).
        await s.insertMinting(
          newGrant({ targetKind: 'project', targetRef: 'old/b', targetId: 7, gitlabExpiresAt: '2030-06-02' }),
        );
        await s.insertMinting(
          newGrant({ targetKind: 'group', targetRef: 'a', targetId: 9, gitlabExpiresAt: '2030-06-02' }),
        );
        // Long past its GitLab expiry date: a rotation may have given a token of it a new one.
        await s.insertMinting(
          newGrant({ targetKind: 'project', targetRef: 'legacy/path', gitlabExpiresAt: '2020-05-01' }),
        );
        const sort = (x: Array<{ kind: string; ref: string }>) =>
          x.map((t) => `${t.kind}:${t.ref}`).sort((p, q) => p.localeCompare(q));
        assert.deepEqual(sort(await s.knownTargets()), ['group:9', 'project:7', 'project:legacy/path']);
        const seven = (await s.knownTargets()).find((t) => t.ref === '7');
        assert.ok(seven && ['a/b', 'old/b'].includes(seven.path));
      }));

    it('insertMinting with a cap counts and inserts atomically: a burst grants exactly the cap', () =>
      withStore(async (s) => {
        const burst = Array.from({ length: 60 }, () =>
          s.insertMinting(newGrant({ identityKey: 'burst', expiresAt: T0 + MIN }), {
            maxActive: 20,
            now: T0,
          }),
        );
        const results = await Promise.allSettled(burst);
        const ok = results.filter((r) => r.status === 'fulfilled').length;
        assert.equal(ok, 20);
        for (const r of results) {
          if (r.status === 'rejected') assert.ok(r.reason instanceof ActiveGrantCapError, String(r.reason));
        }
        assert.equal(await s.countActive('burst'), 20);
        // A TTL that ended frees no slot until the grant is revoked; another identity has its own cap.
        await assert.rejects(
          s.insertMinting(newGrant({ identityKey: 'burst' }), { maxActive: 20, now: T0 + 2 * MIN }),
          ActiveGrantCapError,
        );
        await s.insertMinting(newGrant({ identityKey: 'other' }), { maxActive: 20, now: T0 });
        await s.insertMinting(newGrant({ identityKey: 'burst' }), { maxActive: 0, now: T0 });
      }));

    it('records the target id and the bot user', () =>
      withStore(async (s) => {
        const g = newGrant({ targetId: 4242 });
        await s.insertMinting(g);
        await s.markActive(g.id, { gitlabTokenId: 5, tokenSha256: sha('bot'), gitlabUserId: 901 });
        const got = await s.getById(g.id);
        assert.equal(got?.targetId, 4242);
        assert.equal(got?.gitlabUserId, 901);
      }));

    it('records a deploy-token grant: its kind (in minting already) and its username; access tokens leave both absent', () =>
      withStore(async (s) => {
        const d = newGrant({
          targetId: 77,
          tokenKind: 'deploy-token',
          accessLevel: 0,
          gitlabExpiresAt: '2030-06-01T12:16:00Z',
        });
        await s.insertMinting(d);
        assert.equal((await s.getById(d.id))?.tokenKind, 'deploy-token', 'known before GitLab answers');
        await s.markActive(d.id, {
          gitlabTokenId: 3,
          tokenSha256: sha('deploy'),
          gitlabUsername: 'gitlab+deploy-token-3',
        });
        const got = await s.getById(d.id);
        assert.equal(got?.tokenKind, 'deploy-token');
        assert.equal(got?.gitlabUsername, 'gitlab+deploy-token-3');
        assert.equal(got?.gitlabExpiresAt, '2030-06-01T12:16:00Z');
        assert.deepEqual(await s.findActiveByTokenSha(sha('deploy')), got);
        const a = newGrant({ targetId: 77 });
        await s.insertMinting(a);
        await s.markActive(a.id, { gitlabTokenId: 3, tokenSha256: sha('access') });
        const access = await s.getById(a.id);
        assert.ok(access && !('tokenKind' in access) && !('gitlabUsername' in access));
        // The orphan sweep hands the kind on (the reaper revokes through the right API).
        const orphan = newGrant({ tokenKind: 'deploy-token', accessLevel: 0, createdAt: T0 - 10 * MIN });
        await s.insertMinting(orphan);
        assert.deepEqual(await s.failStaleMinting(T0 - 5 * MIN), [orphan.id]);
        assert.equal((await s.getById(orphan.id))?.tokenKind, 'deploy-token');
        // knownTargets: the target once per kind minted there.
        const targets = (await s.knownTargets()).filter((t) => t.ref === '77');
        assert.deepEqual(targets.map((t) => t.tokenKind ?? 'access-token').sort(), [
          'access-token',
          'deploy-token',
        ]);
      }));

    it('oldestOverdue and nextDueAt', () =>
      withStore(async (s) => {
        assert.equal(await s.oldestOverdue(T0), undefined);
        assert.equal(await s.nextDueAt(), undefined);
        await active(s, { expiresAt: T0 + 5 * MIN }, 1);
        const b = await active(s, { expiresAt: T0 + 2 * MIN }, 2);
        assert.equal(await s.oldestOverdue(T0), undefined);
        assert.equal(await s.nextDueAt(), T0 + 2 * MIN);
        assert.equal(await s.oldestOverdue(T0 + 3 * MIN), T0 + 2 * MIN);
        const c = await active(s, { expiresAt: T0 + 60 * MIN }, 3);
        await s.requestRevoke(c.id, T0 + MIN);
        assert.equal(await s.oldestOverdue(T0 + 90_000), T0 + MIN, 'a revoke request is overdue at once');
        assert.equal(await s.nextDueAt(), T0 + MIN);
        await s.markRevokedMany([b.id, c.id], T0);
        assert.equal(await s.oldestOverdue(T0 + 3 * MIN), undefined);
      }));

    it('listGrants: each filter narrows, oldest first; application and target path ignore ASCII case', () =>
      withStore(async (s) => {
        const a = await active(s, {
          createdAt: T0,
          policy: 'ci',
          clientId: 'App-A',
          subject: 's1',
          targetRef: 'Group/App',
          targetId: 7,
        });
        const b = await active(
          s,
          {
            createdAt: T0 + 1,
            policy: 'deploy',
            clientId: 'app-b',
            subject: 's2',
            targetRef: 'group/other',
            targetId: 8,
          },
          2,
        );
        const c = newGrant({
          createdAt: T0 + 2,
          policy: 'ci',
          clientId: 'app-b',
          subject: 's1',
          targetRef: 'group/app',
          targetId: 7,
        });
        await s.insertMinting(c);
        const d = await active(s, { createdAt: T0 + 3, policy: 'ci', clientId: 'app-a' }, 3);
        await s.markRevoked(d.id, T0 + 4);
        const e = newGrant({ createdAt: T0 + 4, clientId: undefined, subject: 'oidc-sub' });
        await s.insertMinting(e);
        await s.markFailed(e.id, 'GitLab refused');
        const f = await active(s, { createdAt: T0 + 5, expiresAt: T0 + MIN, clientId: 'Émile' }, 4);
        const ids = async (filter: Omit<GrantFilter, 'limit'>) =>
          (await s.listGrants({ limit: 100, ...filter })).map((g) => g.id);

        assert.deepEqual(await ids({}), [a.id, b.id, c.id, d.id, e.id, f.id]);
        assert.deepEqual(await ids({ policy: 'ci' }), [a.id, c.id, d.id, e.id, f.id]);
        assert.deepEqual(await ids({ policy: 'CI' }), [], 'policy names are exact');
        assert.deepEqual(await ids({ clientId: 'APP-a' }), [a.id, d.id]);
        assert.deepEqual(await ids({ clientId: 'app-b' }), [b.id, c.id]);
        assert.deepEqual(await ids({ clientId: 'Émile' }), [f.id]);
        assert.deepEqual(await ids({ clientId: 'émile' }), [], 'only A-Z fold, on every store');
        assert.deepEqual(await ids({ subject: 's1' }), [a.id, c.id]);
        assert.deepEqual(await ids({ subject: 'S1' }), [], 'subjects are exact');
        assert.deepEqual(await ids({ target: 'group/app' }), [a.id, c.id, d.id, e.id, f.id]);
        assert.deepEqual(await ids({ target: '7' }), [a.id, c.id], 'by numeric id');
        assert.deepEqual(await ids({ target: '007' }), [a.id, c.id]);
        assert.deepEqual(await ids({ target: 'group' }), [], 'a path matches exactly, not its children');
        assert.deepEqual(await ids({ states: ['active', 'revoking'] }), [a.id, b.id, f.id]);
        assert.deepEqual(await ids({ states: ['minting'] }), [c.id]);
        assert.deepEqual(await ids({ states: [] }), []);
        assert.deepEqual(await ids({ ttl: 'ended', now: T0 + 2 * MIN }), [f.id]);
        assert.deepEqual(await ids({ ttl: 'running', now: T0 + 2 * MIN, states: ['active'] }), [a.id, b.id]);
        assert.deepEqual(await ids({ policy: 'ci', clientId: 'app-a', states: ['active'] }), [a.id]);
        // Values are bound, never spliced into the SQL.
        assert.deepEqual(await ids({ policy: "ci' OR '1'='1" }), []);
        assert.deepEqual(await ids({ subject: 's1" OR 1=1 --' }), []);
        const got = await s.getById(a.id);
        assert.deepEqual((await s.listGrants({ limit: 1, clientId: 'app-a' }))[0], got, 'whole grants');
      }));

    it('listGrants pages with `after` (ties on createdAt ordered by id) and refuses a bad filter', () =>
      withStore(async (s) => {
        const made: string[] = [];
        for (let i = 0; i < 7; i++) {
          const g = newGrant({ createdAt: T0 + (i < 4 ? 0 : i) });
          await s.insertMinting(g);
          made.push(g.id);
        }
        const seen: string[] = [];
        let after: GrantFilter['after'];
        for (;;) {
          const page = await s.listGrants({ limit: 3, after });
          seen.push(...page.map((g) => g.id));
          const last = page.at(-1);
          if (!last) break;
          after = { createdAt: last.createdAt, id: last.id };
        }
        const tied = made.slice(0, 4).sort((p, q) => (p < q ? -1 : p > q ? 1 : 0));
        assert.deepEqual(seen, [...tied, ...made.slice(4)], 'each once, in (createdAt, id) order');
        await assert.rejects(s.listGrants({ limit: 0 }), LedgerError);
        await assert.rejects(s.listGrants({ limit: 5, ttl: 'ended' }), LedgerError);
        await assert.rejects(s.listGrants({ limit: 5, states: ['gone' as GrantState] }), LedgerError);
      }));

    it("listGrants by status: the SQL selection is grantStatus's definition (expired = TTL passed, any state)", () =>
      withStore(async (s) => {
        const now = T0 + 10 * MIN;
        const mk = async (state: GrantState, expiresAt: number, i: number) => {
          const g = newGrant({ expiresAt, createdAt: T0 + i });
          await s.insertMinting(g);
          if (state === 'minting') return;
          if (state === 'failed') return s.markFailed(g.id, 'x');
          await s.markActive(g.id, { gitlabTokenId: i, tokenSha256: sha(`st-${i}`) });
          if (state === 'revoking') await s.requestRevoke(g.id, T0);
          if (state === 'revoked') await s.markRevoked(g.id, T0);
        };
        const states: GrantState[] = ['minting', 'active', 'revoking', 'revoked', 'failed'];
        let i = 0;
        for (const st of states) for (const exp of [now - 1, now, now + 1]) await mk(st, exp, i++);
        const all = await s.listGrants({ limit: 100 });
        assert.equal(all.length, 15);
        for (const status of STATUS_FILTERS) {
          const got = (await s.listGrants({ limit: 100, ...statusFilter(status, now) })).map((g) => g.id);
          const want = all.filter((g) => status === 'all' || grantStatus(g, now) === status).map((g) => g.id);
          assert.deepEqual(got, want, status);
        }
        assert.equal(
          all.filter((g) => grantStatus(g, now) === 'expired').length,
          10,
          'TTL at or before now, all five states',
        );
      }));

    it('grants survive a restart (close and reopen)', async () => {
      const h = await makeHarness();
      try {
        const s1 = await h.open();
        const m = newGrant();
        await s1.insertMinting(m);
        const a = newGrant();
        await s1.insertMinting(a);
        await s1.markActive(a.id, { gitlabTokenId: 77, tokenSha256: sha('restart') });
        await s1.close();
        const s2 = await h.open();
        try {
          assert.equal((await s2.getById(m.id))?.state, 'minting');
          const got = await s2.getById(a.id);
          assert.equal(got?.state, 'active');
          assert.equal(got?.gitlabTokenId, 77);
          assert.equal((await s2.findActiveByTokenSha(sha('restart')))?.id, a.id);
          assert.equal(await s2.countAllActive(), 1);
        } finally {
          await s2.close();
        }
      } finally {
        await h.cleanup();
      }
    });

    it('a closed store refuses calls; close is idempotent', async () => {
      const h = await makeHarness();
      try {
        const s = await h.open();
        await s.close();
        await s.close();
        await assert.rejects(s.countAllActive());
      } finally {
        await h.cleanup();
      }
    });
  });
}
