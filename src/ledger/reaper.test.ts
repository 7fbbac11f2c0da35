import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { GitlabClient } from '../gitlab/index.ts';
import { newGrant } from './contract.testutil.ts';
import { createReaper, type Reaper, type ReaperOptions, type ReapOutcome } from './reaper.ts';
import { type Kit, makeKit, T0, waitFor } from './testkit.testutil.ts';

describe('reaper', () => {
  let kit: Kit;
  let reapers: Reaper[];
  let revoked: Array<{ id: string; outcome: ReapOutcome }>;
  const reaper = (o: Partial<ReaperOptions> = {}): Reaper => {
    const r = createReaper({
      store: kit.store,
      gitlab: kit.gitlab,
      serverId: 'dev',
      now: kit.clock.now,
      intervalMs: 60_000,
      random: () => 1,
      onRevoked: (g, outcome) => revoked.push({ id: g.id, outcome }),
      ...o,
    });
    reapers.push(r);
    return r;
  };
  const deletes = () => kit.fake.count('DELETE');

  beforeEach(async () => {
    kit = await makeKit();
    reapers = [];
    revoked = [];
  });
  afterEach(async () => {
    for (const r of reapers) await r.stop();
    await kit.close();
  });

  it('revokes a grant when its TTL ends, by itself (injected clock, background loop)', async () => {
    const g = await kit.grant({ expiresAt: T0 + 1000 });
    const other = await kit.grant({ expiresAt: T0 + 60_000 });
    const r = reaper({ intervalMs: 20 });
    await r.start();
    await new Promise((res) => setTimeout(res, 80));
    assert.equal(deletes(), 0, 'not before the TTL ends');
    kit.clock.t += 1000;
    await waitFor(async () => (await kit.store.getById(g.id))?.state === 'revoked', 2000, 'revocation');
    const req = kit.fake.requests.find((x) => x.method === 'DELETE');
    assert.equal(req?.url, `/api/v4/projects/group%2Fapp/access_tokens/${g.tokenId}`);
    assert.equal((await kit.store.getById(g.id))?.revokedAt, T0 + 1000);
    assert.deepEqual(revoked, [{ id: g.id, outcome: 'revoked' }]);
    assert.equal((await kit.store.getById(other.id))?.state, 'active');
    assert.equal(deletes(), 1);
  });

  it('wakes for the next due grant instead of waiting for the interval', async () => {
    const real = Date.now;
    const r = createReaper({
      store: kit.store,
      gitlab: kit.gitlab,
      serverId: 'dev',
      now: real,
      intervalMs: 60_000,
    });
    reapers.push(r);
    kit.clock.t = real();
    const expiresAt = real() + 400;
    const g = await kit.grant({ expiresAt });
    await r.start();
    await waitFor(async () => (await kit.store.getById(g.id))?.state === 'revoked', 2000, 'timer revocation');
    const revokedAt = (await kit.store.getById(g.id))?.revokedAt ?? 0;
    assert.ok(revokedAt >= expiresAt, `not early (${revokedAt - expiresAt} ms)`);
    // Far below the 60 s interval: it woke for the grant (the bound leaves room for a loaded machine).
    assert.ok(real() - expiresAt < 10_000, `on time (${real() - expiresAt} ms after its TTL)`);
  });

  it('after a restart, revokes what fell due while it was down, in start()', async () => {
    const a = await kit.grant({ expiresAt: T0 + 10_000 });
    const b = await kit.grant({ expiresAt: T0 + 20_000 });
    const c = await kit.grant({ expiresAt: T0 + 3_600_000 });
    const r1 = reaper();
    await r1.start();
    assert.equal(deletes(), 0);
    await r1.stop();
    kit.clock.t += 60_000; // down for a minute
    await kit.reopen();
    const r2 = reaper();
    await r2.start();
    assert.equal(deletes(), 2);
    assert.equal((await kit.store.getById(a.id))?.state, 'revoked');
    assert.equal((await kit.store.getById(b.id))?.state, 'revoked');
    assert.equal((await kit.store.getById(c.id))?.state, 'active');
    assert.equal(await kit.store.oldestOverdue(kit.clock.t), undefined);
  });

  it('revokes a grant whose client asked for revocation while GitLab was down, before its TTL', async () => {
    const g = await kit.grant({ expiresAt: T0 + 3_600_000 });
    await kit.store.requestRevoke(g.id, T0);
    assert.deepEqual(await reaper().runOnce(), { revoked: 1, failed: 0 });
    assert.equal((await kit.store.getById(g.id))?.state, 'revoked');
  });

  it('a 404 means already gone: the grant is marked revoked', async () => {
    const g = await kit.grant({ expiresAt: T0 });
    const t = kit.fake.tokens.get('project:group/app')?.[0];
    if (t) t.revoked = true;
    assert.deepEqual(await reaper().runOnce(), { revoked: 1, failed: 0 });
    assert.deepEqual(revoked, [{ id: g.id, outcome: 'absent' }]);
    assert.equal((await kit.store.getById(g.id))?.state, 'revoked');
  });

  it('honours 429 Retry-After: no requests until it has passed', async () => {
    for (let i = 0; i < 3; i++) await kit.grant({ expiresAt: T0 });
    let first = true;
    kit.fake.intercept = () => {
      if (!first) return undefined;
      first = false;
      return { status: 429, headers: { 'retry-after': '30' }, body: 'Retry later' };
    };
    const r = reaper({ concurrency: 1 });
    assert.deepEqual(await r.runOnce(), { revoked: 0, failed: 1 });
    assert.equal(deletes(), 1, 'stopped at the 429');
    assert.equal(r.pausedUntil(), T0 + 30_000);
    kit.clock.t += 29_000;
    assert.deepEqual(await r.runOnce(), { revoked: 0, failed: 0 });
    assert.equal(deletes(), 1, 'no hammering while Retry-After runs');
    kit.clock.t += 1_000;
    assert.deepEqual(await r.runOnce(), { revoked: 3, failed: 0 });
    assert.equal(deletes(), 4);
    assert.equal(await kit.store.countAllActive(), 0);
  });

  it('RateLimit-Remaining at 0 pauses until RateLimit-Reset', async () => {
    for (let i = 0; i < 3; i++) await kit.grant({ expiresAt: T0 });
    const resetAt = T0 + 10_000;
    let remaining = 0;
    kit.fake.extraHeaders = () => ({
      'ratelimit-remaining': String(remaining),
      'ratelimit-reset': String(resetAt / 1000),
    });
    const r = reaper({ concurrency: 1, rateLimitReserve: 0 });
    assert.deepEqual(await r.runOnce(), { revoked: 1, failed: 0 });
    assert.equal(deletes(), 1);
    assert.equal(r.pausedUntil(), resetAt);
    // The claimed-but-unstarted grants were handed back for the reset time, not left leased.
    assert.equal(await kit.store.nextDueAt(), resetAt);
    remaining = 100;
    kit.clock.t = resetAt - 1;
    assert.deepEqual(await r.runOnce(), { revoked: 0, failed: 0 });
    assert.equal(deletes(), 1);
    kit.clock.t = resetAt;
    assert.deepEqual(await r.runOnce(), { revoked: 2, failed: 0 });
    assert.equal(deletes(), 3);
  });

  it('retries 5xx with exponential backoff, then succeeds', async () => {
    const g = await kit.grant({ expiresAt: T0 });
    let n = 0;
    kit.fake.intercept = (req) =>
      req.method === 'DELETE' && n++ < 2
        ? { status: 503, body: { message: '503 Service Unavailable' } }
        : undefined;
    const r = reaper({ retryBaseMs: 1000, retryMaxMs: 60_000 });
    assert.deepEqual(await r.runOnce(), { revoked: 0, failed: 1 });
    let got = await kit.store.getById(g.id);
    assert.equal(got?.attempts, 1);
    assert.equal(got?.nextAttemptAt, T0 + 1000, 'first backoff: base');
    assert.match(got?.lastError ?? '', /HTTP 503/);
    assert.deepEqual(await r.runOnce(), { revoked: 0, failed: 0 }, 'nothing before the backoff ends');
    kit.clock.t = T0 + 1000;
    assert.deepEqual(await r.runOnce(), { revoked: 0, failed: 1 });
    got = await kit.store.getById(g.id);
    assert.equal(got?.attempts, 2);
    assert.equal(got?.nextAttemptAt, T0 + 1000 + 2000, 'second backoff: doubled');
    kit.clock.t = T0 + 3000;
    assert.deepEqual(await r.runOnce(), { revoked: 1, failed: 0 });
    assert.equal(deletes(), 3);
    assert.equal((await kit.store.getById(g.id))?.state, 'revoked');
  });

  it("uses the client's own retries within one pass when configured", async () => {
    await kit.gitlab.close();
    const { createGitlabClient } = await import('../gitlab/index.ts');
    const { FAKE_ADMIN_TOKEN } = await import('../gitlab/fake-gitlab.testutil.ts');
    kit.gitlab = createGitlabClient({
      url: kit.fake.url,
      token: FAKE_ADMIN_TOKEN,
      timeoutMs: 2000,
      maxRetries: 2,
      retryBaseDelayMs: 5,
    });
    await kit.grant({ expiresAt: T0 });
    let n = 0;
    kit.fake.intercept = () => (n++ < 2 ? { status: 502, body: '' } : undefined);
    assert.deepEqual(await reaper().runOnce(), { revoked: 1, failed: 0 });
    assert.equal(deletes(), 3);
  });

  it('a GitLab that is down stops the pass instead of trying the whole backlog', async () => {
    for (let i = 0; i < 50; i++) await kit.grant({ expiresAt: T0 });
    kit.fake.intercept = () => ({ status: 502, body: 'Bad Gateway' });
    const r = reaper({ concurrency: 4 });
    const res = await r.runOnce();
    assert.ok(deletes() <= 4, `${deletes()} requests`);
    assert.equal(res.failed, deletes());
    assert.ok(r.pausedUntil() !== undefined);
    assert.equal(await kit.store.countAllActive(), 50, 'all still waiting');
    kit.fake.intercept = undefined;
    kit.clock.t += 120_000;
    const after = await r.runOnce();
    assert.equal(after.revoked, 50);
  });

  it('a 401 (the STS token expired) holds the backlog back too', async () => {
    for (let i = 0; i < 20; i++) await kit.grant({ expiresAt: T0 });
    kit.fake.intercept = () => ({ status: 401, body: { message: '401 Unauthorized' } });
    const r = reaper({ concurrency: 2 });
    const res = await r.runOnce();
    assert.ok(deletes() <= 2, `${deletes()} requests`);
    assert.equal(res.failed, deletes());
    assert.ok(r.pausedUntil() !== undefined);
  });

  it('a deleted target: its grants settle as gone (GitLab deleted its bots), without holding back others', async () => {
    const gone = await kit.grant({ expiresAt: T0, targetRef: '999', targetId: 999 });
    const live = await kit.grant({ expiresAt: T0 });
    kit.fake.intercept = (req) =>
      req.ref === '999' ? { status: 404, body: { message: '404 Project Not Found' } } : undefined;
    const r = reaper();
    assert.deepEqual(await r.runOnce(), { revoked: 2, failed: 0 });
    assert.equal(r.pausedUntil(), undefined);
    assert.deepEqual(
      revoked.sort((a, b) => a.id.localeCompare(b.id)),
      [
        { id: gone.id, outcome: 'gone' },
        { id: live.id, outcome: 'revoked' },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
    // Gone only after GitLab said the id does not exist and the STS's own token still works.
    assert.ok(kit.fake.requests.some((x) => x.method === 'GET' && x.url === '/api/v4/projects/999'));
    assert.ok(kit.fake.requests.some((x) => x.url === '/api/v4/personal_access_tokens/self'));
  });

  it('a target the STS cannot reach (403, or a 404 while the id still resolves) fails that grant alone', async () => {
    const forbidden = await kit.grant({ expiresAt: T0, targetRef: '998', targetId: 998 });
    const hidden = await kit.grant({ expiresAt: T0, targetRef: '997', targetId: 997 });
    const live = await kit.grant({ expiresAt: T0 });
    kit.fake.intercept = (req) => {
      if (req.ref === '998') return { status: 403, body: { message: '403 Forbidden' } };
      if (req.ref === '997' && req.url.includes('/access_tokens'))
        return { status: 404, body: { message: '404 Not Found' } };
      return undefined;
    };
    const r = reaper();
    assert.deepEqual(await r.runOnce(), { revoked: 1, failed: 2 });
    assert.equal(r.pausedUntil(), undefined, 'other grants are not held back');
    assert.equal((await kit.store.getById(live.id))?.state, 'revoked');
    for (const id of [forbidden.id, hidden.id]) {
      const g = await kit.store.getById(id);
      assert.equal(g?.state, 'active', 'never settled without proof');
      assert.equal(g?.attempts, 1);
    }
  });

  it('works through a backlog concurrently, never above the bound', async () => {
    for (let i = 0; i < 300; i++) await kit.grant({ expiresAt: T0 });
    kit.fake.latencyMs = 20;
    let inFlight = 0;
    let peak = 0;
    const counting: Pick<
      GitlabClient,
      | 'revokeAccessToken'
      | 'listAccessTokens'
      | 'revokeDeployToken'
      | 'listDeployTokens'
      | 'resolveTarget'
      | 'checkHealth'
      | 'rateLimit'
    > = {
      rateLimit: () => kit.gitlab.rateLimit(),
      revokeDeployToken: (kind, ref, id) => kit.gitlab.revokeDeployToken(kind, ref, id),
      listDeployTokens: (kind, ref, opts) => kit.gitlab.listDeployTokens(kind, ref, opts),
      resolveTarget: (kind, ref) => kit.gitlab.resolveTarget(kind, ref),
      checkHealth: () => kit.gitlab.checkHealth(),
      listAccessTokens: (kind, ref, opts) => kit.gitlab.listAccessTokens(kind, ref, opts),
      async revokeAccessToken(kind, ref, id) {
        inFlight++;
        peak = Math.max(peak, inFlight);
        try {
          return await kit.gitlab.revokeAccessToken(kind, ref, id);
        } finally {
          inFlight--;
        }
      },
    };
    // How fast is for `npm run bench` (reaper_rate); here: all of them, with exactly the bound in flight.
    const res = await reaper({ gitlab: counting, concurrency: 32, batchSize: 64 }).runOnce();
    assert.deepEqual(res, { revoked: 300, failed: 0 });
    assert.equal(peak, 32);
    assert.equal(deletes(), 300);
    assert.equal(new Set(revoked.map((x) => x.id)).size, 300);
  });

  it('marks grants stuck in minting as failed (orphan suspects)', async () => {
    const stuck = newGrant({ createdAt: T0 - 5 * 60_000 });
    const fresh = newGrant({ createdAt: T0 - 10_000 });
    await kit.store.insertMinting(stuck);
    await kit.store.insertMinting(fresh);
    await reaper().runOnce();
    assert.equal((await kit.store.getById(stuck.id))?.state, 'failed');
    assert.equal((await kit.store.getById(fresh.id))?.state, 'minting');
  });

  it('a refused DELETE is settled by the listing; refused listings are retried even past the GitLab expiry date', async () => {
    const g = await kit.grant({ expiresAt: T0, gitlabExpiresAt: '2030-06-02' });
    // Everything refused: nothing proves the grant dead, and no date does either (a rotation picks a new one).
    kit.fake.intercept = () => ({ status: 403, body: { message: '403 Forbidden' } });
    const r = reaper();
    assert.deepEqual(await r.runOnce(), { revoked: 0, failed: 1 });
    kit.clock.t = Date.parse('2030-06-03T00:00:00Z');
    assert.deepEqual(await r.runOnce(), { revoked: 0, failed: 1 });
    assert.equal((await kit.store.getById(g.id))?.state, 'active');
    // The DELETE is still refused, but the listing shows nothing of the grant active: done.
    kit.fake.intercept = (req) =>
      req.method === 'DELETE' ? { status: 403, body: { message: '403 Forbidden' } } : undefined;
    for (const t of kit.fake.tokens.get('project:group/app') ?? []) t.active = false;
    kit.clock.t += 120_000;
    assert.deepEqual(await r.runOnce(), { revoked: 1, failed: 0 });
    assert.deepEqual(revoked, [{ id: g.id, outcome: 'absent' }]);
  });

  it('revokes the rotated copies of a grant: a 404 on the recorded id is not the end', async () => {
    const g = await kit.grant({ expiresAt: T0 });
    // The holder rotated twice: the recorded id and the next are revoked, the newest lives on.
    const [orig] = kit.fake.tokens.get('project:group/app') ?? [];
    assert.ok(orig);
    orig.revoked = true;
    orig.active = false;
    const mid = kit.fake.addToken('project', 'group/app', orig.name, { revoked: true, active: false });
    const head = kit.fake.addToken('project', 'group/app', orig.name, { expires_at: '2031-06-01' });
    // Another grant's token and a similar name that merely contains this one are left alone.
    const other = await kit.grant({ expiresAt: T0 + 60_000 });
    const lookalike = kit.fake.addToken('project', 'group/app', `${orig.name}-x`);
    const res = await reaper().runOnce();
    assert.deepEqual(res, { revoked: 1, failed: 0 });
    assert.equal(head.revoked, true, 'the newest token of the chain is revoked');
    assert.equal(mid.revoked, true);
    assert.equal(lookalike.revoked, false);
    assert.equal((await kit.store.getById(other.id))?.state, 'active');
    assert.deepEqual(revoked, [{ id: g.id, outcome: 'revoked' }]);
    const lists = kit.fake.requests.filter((x) => x.method === 'GET');
    assert.ok(
      lists.length >= 1 && lists.every((x) => x.query.search === orig.name && x.query.state === 'active'),
    );
  });

  it('a holder that rotates as fast as we revoke: retried soon, without pausing other grants', async () => {
    const g = await kit.grant({ expiresAt: T0 });
    const plain = await kit.grant({ expiresAt: T0 });
    const [orig] = kit.fake.tokens.get('project:group/app') ?? [];
    assert.ok(orig);
    // Every DELETE of this grant's tokens is answered as if a rotation had just replaced the token.
    kit.fake.intercept = (req) => {
      if (req.method !== 'DELETE') return undefined;
      const t = (kit.fake.tokens.get('project:group/app') ?? []).find((x) => x.id === req.tokenId);
      if (t?.name !== orig.name) return undefined;
      t.revoked = true;
      t.active = false;
      kit.fake.addToken('project', 'group/app', orig.name);
      return { status: 404, body: { message: '404 project Access Token Not Found' } };
    };
    const r = reaper();
    assert.deepEqual(await r.runOnce(), { revoked: 1, failed: 1 });
    assert.equal((await kit.store.getById(plain.id))?.state, 'revoked');
    const after = await kit.store.getById(g.id);
    assert.equal(after?.state, 'active');
    assert.match(after?.lastError ?? '', /still active after \d+ rounds/);
    assert.ok((after?.nextAttemptAt ?? Infinity) <= T0 + 1000, 'back within a second');
    assert.equal(r.pausedUntil(), undefined, 'the reaper as a whole is not held back');
    // The holder stops: the next pass ends the chain.
    kit.fake.intercept = undefined;
    kit.clock.t += 1000;
    assert.deepEqual(await r.runOnce(), { revoked: 1, failed: 0 });
    assert.ok(
      (kit.fake.tokens.get('project:group/app') ?? []).every((t) => t.name !== orig.name || t.revoked),
    );
  });

  it('stop() waits for the pass and releases claimed grants', async () => {
    for (let i = 0; i < 10; i++) await kit.grant({ expiresAt: T0 });
    kit.fake.latencyMs = 50;
    const r = reaper({ concurrency: 2 });
    const pass = r.runOnce();
    await waitFor(() => deletes() >= 2, 1000, 'first requests');
    await r.stop();
    await pass;
    const left = await kit.store.countAllActive();
    assert.ok(left >= 6 && left <= 8, `${left} left`);
    assert.equal(await kit.store.nextDueAt(), T0, 'released for now, not leased for a minute');
  });
});
