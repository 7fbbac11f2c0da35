import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FAKE_ADMIN_TOKEN, type FakeGitlab, startFakeGitlab } from './fake-gitlab.testutil.ts';
import {
  backoffDelay,
  createGitlabClient,
  type GitlabClient,
  type GitlabClientOptions,
  GitlabMovedError,
  GitlabNotFoundError,
  GitlabRejectedError,
  type GitlabRequestInfo,
  GitlabUnavailableError,
} from './index.ts';
import { parseLinkNext } from './link.ts';

const input = {
  kind: 'project' as const,
  ref: 'group/sub/app',
  name: 'tanuki-sts/dev/ci/2b1c',
  description: 'Minted by tanuki-sts for issuer=x',
  scopes: ['read_repository', 'read_api'],
  accessLevel: 30,
  expiresAt: '2030-01-02',
};

describe('GitLab client', () => {
  let fake: FakeGitlab;
  let client: GitlabClient;
  let seen: GitlabRequestInfo[];
  const clients: GitlabClient[] = [];
  const make = (o: Partial<GitlabClientOptions> = {}): GitlabClient => {
    const c = createGitlabClient({
      url: fake.url,
      token: FAKE_ADMIN_TOKEN,
      timeoutMs: 2000,
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 50,
      onRequest: (i) => seen.push(i),
      ...o,
    });
    clients.push(c);
    return c;
  };

  before(async () => {
    fake = await startFakeGitlab();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await fake.close();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.tokens.clear();
    fake.intercept = undefined;
    fake.extraHeaders = undefined;
    seen = [];
    client = make();
  });

  it('create sends exactly the documented JSON, URL-encodes the path, and returns the token', async () => {
    const created = await client.createAccessToken(input);
    assert.equal(fake.requests.length, 1);
    const r = fake.requests[0]!;
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/api/v4/projects/group%2Fsub%2Fapp/access_tokens');
    assert.equal(r.privateToken, FAKE_ADMIN_TOKEN);
    assert.deepEqual(r.body, {
      name: 'tanuki-sts/dev/ci/2b1c',
      description: 'Minted by tanuki-sts for issuer=x',
      scopes: ['read_repository', 'read_api'],
      access_level: 30,
      expires_at: '2030-01-02',
    });
    const stored = fake.tokens.get('project:group/sub/app')?.[0];
    assert.ok(stored);
    assert.deepEqual(created, {
      id: stored.id,
      token: stored.token,
      expiresAt: '2030-01-02',
      userId: stored.user_id,
      resourceId: 77,
    });
    assert.deepEqual(
      seen.map((s) => [s.method, s.route, s.status]),
      [['POST', '/projects/:id/access_tokens', 201]],
    );
  });

  it('create for a group uses /groups/:id', async () => {
    await client.createAccessToken({ ...input, kind: 'group', ref: '42' });
    assert.equal(fake.requests[0]?.url, '/api/v4/groups/42/access_tokens');
  });

  it('create is never retried, even on 503', async () => {
    fake.intercept = () => ({ status: 503, body: { message: '503 Service Unavailable' } });
    const err = await client.createAccessToken(input).catch((e: unknown) => e);
    assert.ok(err instanceof GitlabUnavailableError);
    assert.equal(err.code, 'ERR_GITLAB_UNAVAILABLE');
    assert.equal(err.status, 503);
    assert.equal(fake.count('POST'), 1);
  });

  it('create maps 404 to GitlabNotFoundError and 400/403 to GitlabRejectedError with GitLab message', async () => {
    const nf = await client.createAccessToken({ ...input, ref: 'missing/app' }).catch((e: unknown) => e);
    assert.ok(nf instanceof GitlabNotFoundError);
    assert.equal(nf.code, 'ERR_GITLAB_NOT_FOUND');
    assert.equal(nf.status, 404);

    fake.intercept = () => ({
      status: 400,
      body: { message: { expires_at: ['must be before 2031-01-01'] } },
    });
    const bad = await client.createAccessToken(input).catch((e: unknown) => e);
    assert.ok(bad instanceof GitlabRejectedError && !(bad instanceof GitlabNotFoundError));
    assert.equal(bad.code, 'ERR_GITLAB_REJECTED');
    assert.equal(bad.status, 400);
    assert.equal(bad.gitlabMessage, '{"expires_at":["must be before 2031-01-01"]}');

    fake.intercept = () => ({
      status: 403,
      body: { error: 'insufficient_scope', error_description: 'The request requires higher privileges' },
    });
    const forbidden = await client.createAccessToken(input).catch((e: unknown) => e);
    assert.ok(forbidden instanceof GitlabRejectedError);
    assert.equal(forbidden.status, 403);
    assert.match(forbidden.message, /insufficient_scope/);
  });

  it('429 maps to GitlabUnavailableError with Retry-After, and is remembered', async () => {
    fake.intercept = () => ({ status: 429, headers: { 'retry-after': '17' }, body: 'Retry later' });
    const err = await client.createAccessToken(input).catch((e: unknown) => e);
    assert.ok(err instanceof GitlabUnavailableError);
    assert.equal(err.retryAfterSeconds, 17);
    assert.equal(err.retryAfterFromServer, true);
    const rl = client.rateLimit();
    assert.ok(rl.retryAfterUntil !== undefined && rl.retryAfterUntil > Date.now() + 15_000);
  });

  it('5xx without Retry-After gets the default retryAfterSeconds', async () => {
    fake.intercept = () => ({ status: 502, body: '<html>bad gateway</html>' });
    const err = await client.createAccessToken(input).catch((e: unknown) => e);
    assert.ok(err instanceof GitlabUnavailableError);
    assert.equal(err.retryAfterSeconds, 5);
    assert.equal(err.retryAfterFromServer, false);
  });

  it('a malformed 201 is GitlabUnavailableError (the reconciler cleans up)', async () => {
    fake.intercept = () => ({ status: 201, body: { id: 'x' } });
    await assert.rejects(client.createAccessToken(input), GitlabUnavailableError);
  });

  it('a slow GitLab times out as GitlabUnavailableError, once, and the error has no token', async () => {
    const slow = make({ timeoutMs: 100 });
    fake.intercept = () => ({ status: 201, body: {}, delayMs: 400 });
    const started = Date.now();
    const err = await slow.createAccessToken(input).catch((e: unknown) => e);
    assert.ok(err instanceof GitlabUnavailableError);
    assert.match(err.message, /timed out after 100 ms/);
    assert.ok(!err.message.includes(FAKE_ADMIN_TOKEN));
    assert.ok(Date.now() - started < 350, 'deadline honoured');
    assert.equal(fake.count('POST'), 1);
    assert.equal(seen.at(-1)?.status, 'error');
    assert.equal(slow.lastStatus()?.ok, false);
  });

  it('a refused connection is GitlabUnavailableError', async () => {
    const port = await freePort();
    const dead = make({ url: `http://127.0.0.1:${port}`, maxRetries: 0 });
    const err = await dead.checkHealth().catch((e: unknown) => e);
    assert.ok(err instanceof GitlabUnavailableError);
    assert.match(err.message, /ECONNREFUSED/);
  });

  it('revoke: 204 → revoked, 404 → absent', async () => {
    const t = fake.addToken('group', 'platform/team', 'x');
    assert.equal(await client.revokeAccessToken('group', 'platform/team', t.id), 'revoked');
    assert.equal(fake.requests[0]?.url, `/api/v4/groups/platform%2Fteam/access_tokens/${t.id}`);
    assert.equal(await client.revokeAccessToken('group', 'platform/team', t.id), 'absent');
    assert.equal(await client.revokeAccessToken('project', '9', 12345), 'absent');
  });

  it('revoke retries 5xx with backoff, then succeeds', async () => {
    const t = fake.addToken('project', '9', 'x');
    let n = 0;
    fake.intercept = () => (++n <= 2 ? { status: 503, body: 'down' } : undefined);
    assert.equal(await client.revokeAccessToken('project', '9', t.id), 'revoked');
    assert.equal(fake.count('DELETE'), 3);
  });

  it('revoke gives up after maxRetries', async () => {
    fake.intercept = () => ({ status: 500, body: { message: '500 Internal Server Error' } });
    const c = make({ maxRetries: 1 });
    await assert.rejects(c.revokeAccessToken('project', '9', 1), GitlabUnavailableError);
    assert.equal(fake.count('DELETE'), 2);
  });

  it('revoke does not sleep through a long Retry-After: the caller schedules it', async () => {
    fake.intercept = () => ({ status: 429, headers: { 'retry-after': '60' }, body: 'Retry later' });
    const err = await client.revokeAccessToken('project', '9', 1).catch((e: unknown) => e);
    assert.ok(err instanceof GitlabUnavailableError);
    assert.equal(err.retryAfterSeconds, 60);
    assert.equal(fake.count('DELETE'), 1);
  });

  it('revoke does not retry a 403', async () => {
    fake.intercept = () => ({ status: 403, body: { message: '403 Forbidden' } });
    await assert.rejects(client.revokeAccessToken('project', '9', 1), GitlabRejectedError);
    assert.equal(fake.count('DELETE'), 1);
  });

  it('resolveTarget: id and canonical path of a project (path URL-encoded) or a group', async () => {
    assert.deepEqual(await client.resolveTarget('project', 'group/sub/app'), {
      kind: 'project',
      id: 4242,
      fullPath: 'group/sub/app',
    });
    assert.deepEqual(await client.resolveTarget('group', '55'), {
      kind: 'group',
      id: 55,
      fullPath: 'id-path/55',
    });
    const gets = fake.requests.filter((r) => r.method === 'GET').map((r) => r.url);
    assert.deepEqual(gets, ['/api/v4/projects/group%2Fsub%2Fapp', '/api/v4/groups/55?with_projects=false']);
  });

  it('resolveTarget: a redirect is GitlabMovedError and is not followed; 404 is GitlabNotFoundError', async () => {
    fake.intercept = (r) =>
      r.method === 'GET' && r.ref === 'old/app'
        ? { status: 301, headers: { location: `${fake.url}/api/v4/projects/9` }, body: 'moved' }
        : undefined;
    await assert.rejects(client.resolveTarget('project', 'old/app'), GitlabMovedError);
    assert.equal(fake.requests.filter((r) => r.url.includes('/projects/9')).length, 0, 'not followed');
    await assert.rejects(client.resolveTarget('project', 'missing/app'), GitlabNotFoundError);
  });

  it('resolveTarget: an answer without a numeric id or a path is GitlabUnavailableError', async () => {
    fake.intercept = (r) =>
      r.method === 'GET' ? { status: 200, body: { id: '7', path_with_namespace: 'a/b' } } : undefined;
    await assert.rejects(client.resolveTarget('project', 'a/b'), GitlabUnavailableError);
    fake.intercept = (r) => (r.method === 'GET' ? { status: 200, body: { id: 7 } } : undefined);
    await assert.rejects(client.resolveTarget('project', 'a/b'), GitlabUnavailableError);
  });

  it('list follows X-Next-Page over several pages with per_page=100, state and search', async () => {
    for (let i = 0; i < 250; i++) fake.addToken('project', '7', `tanuki-sts/dev/p/${i}`);
    fake.addToken('project', '7', 'someone-else');
    const list = await client.listAccessTokens('project', '7', {
      search: 'tanuki-sts/dev/',
      state: 'active',
    });
    assert.equal(list.length, 250);
    assert.deepEqual(new Set(list.map((t) => t.name)).size, 250);
    const gets = fake.requests.filter((r) => r.method === 'GET');
    assert.deepEqual(
      gets.map((r) => [r.query.page, r.query.per_page, r.query.state, r.query.search]),
      [
        [undefined, '100', 'active', 'tanuki-sts/dev/'],
        ['2', '100', 'active', 'tanuki-sts/dev/'],
        ['3', '100', 'active', 'tanuki-sts/dev/'],
      ],
    );
    const first = list[0]!;
    assert.deepEqual(Object.keys(first).sort(), [
      'active',
      'createdAt',
      'expiresAt',
      'id',
      'name',
      'revoked',
      'userId',
    ]);
    assert.equal(first.active, true);
    assert.equal(typeof first.userId, 'number');
  });

  it('list follows Link rel="next" when X-Next-Page is absent', async () => {
    const linkFake = await startFakeGitlab({ linkOnly: true, perPageMax: 2 });
    try {
      for (let i = 0; i < 5; i++) linkFake.addToken('group', 'g', `t${i}`);
      const c = make({ url: linkFake.url });
      const list = await c.listAccessTokens('group', 'g');
      assert.deepEqual(
        list.map((t) => t.name),
        ['t0', 't1', 't2', 't3', 't4'],
      );
      assert.equal(linkFake.count('GET'), 3);
    } finally {
      await linkFake.close();
    }
  });

  it('list refuses a Link rel="next" to another origin (it would carry our token there)', async () => {
    let n = 0;
    fake.intercept = () =>
      n++ === 0
        ? { status: 200, headers: { link: '<https://evil.example/api/v4/x?page=2>; rel="next"' }, body: [] }
        : undefined;
    await assert.rejects(client.listAccessTokens('project', '7'), /outside the GitLab API/);
    assert.equal(fake.count('GET'), 1);
  });

  it('list retries a 502 in the middle of the pages', async () => {
    for (let i = 0; i < 150; i++) fake.addToken('project', '7', `t${i}`);
    let n = 0;
    fake.intercept = (r) => (r.query.page === '2' && n++ === 0 ? { status: 502, body: '' } : undefined);
    const list = await client.listAccessTokens('project', '7');
    assert.equal(list.length, 150);
    assert.equal(fake.count('GET'), 3);
  });

  it('checkHealth sets lastStatus; a 401 makes it not ok', async () => {
    assert.equal(client.lastStatus(), undefined);
    await client.checkHealth();
    assert.equal(client.lastStatus()?.ok, true);
    assert.equal(fake.requests[0]?.url, '/api/v4/personal_access_tokens/self');
    const bad = make({ token: 'glpat-wrong' });
    const err = await bad.checkHealth().catch((e: unknown) => e);
    assert.ok(err instanceof GitlabRejectedError);
    assert.equal(err.status, 401);
    assert.equal(bad.lastStatus()?.ok, false);
    assert.ok(!err.message.includes('glpat-wrong'));
  });

  it('remembers RateLimit-Remaining and RateLimit-Reset', async () => {
    fake.extraHeaders = () => ({ 'ratelimit-remaining': '3', 'ratelimit-reset': '1900000000' });
    await client.checkHealth();
    assert.deepEqual(
      { remaining: client.rateLimit().remaining, resetAt: client.rateLimit().resetAt },
      { remaining: 3, resetAt: 1_900_000_000_000 },
    );
  });

  it('redacts its own token if GitLab ever echoes it', async () => {
    fake.intercept = () => ({ status: 400, body: { message: `bad token ${FAKE_ADMIN_TOKEN}` } });
    const err = await client.createAccessToken(input).catch((e: unknown) => e);
    assert.ok(err instanceof GitlabRejectedError);
    assert.ok(!err.message.includes(FAKE_ADMIN_TOKEN));
    assert.ok(!err.gitlabMessage.includes(FAKE_ADMIN_TOKEN));
    assert.match(err.message, /\[redacted\]/);
  });

  it('a throwing onRequest hook does not fail the call; close() is idempotent', async () => {
    const c = make({
      onRequest: () => {
        throw new Error('metrics broke');
      },
    });
    await c.checkHealth();
    await c.close();
    await c.close();
  });

  it('keeps requests concurrent over keep-alive connections', async () => {
    // Measured by how many requests GitLab saw at once, not by a stopwatch (timings: npm run bench).
    fake.latencyMs = 200;
    fake.maxConcurrent = 0;
    try {
      await Promise.all(Array.from({ length: 64 }, () => client.revokeAccessToken('project', '1', 1)));
      assert.ok(
        fake.maxConcurrent >= 32,
        `at most ${fake.maxConcurrent} of 64 requests were in flight at once`,
      );
    } finally {
      fake.latencyMs = 0;
    }
  });
});

describe('helpers', () => {
  it('parseLinkNext', () => {
    assert.equal(
      parseLinkNext(
        '<https://g/api/v4/x?page=1>; rel="first", <https://g/api/v4/x?page=3&a=b,c>; rel="next"',
      ),
      'https://g/api/v4/x?page=3&a=b,c',
    );
    assert.equal(parseLinkNext('<https://g/x?page=1>; rel="prev"'), undefined);
    assert.equal(parseLinkNext('<https://g/x?page=2>; rel=next'), 'https://g/x?page=2');
    assert.equal(parseLinkNext(undefined), undefined);
  });

  it('backoffDelay grows exponentially, is capped, and jitters within [exp/2, exp]', () => {
    assert.equal(
      backoffDelay(0, 100, 10_000, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(0, 100, 10_000, () => 1),
      100,
    );
    assert.equal(
      backoffDelay(3, 100, 10_000, () => 1),
      800,
    );
    assert.equal(
      backoffDelay(20, 100, 10_000, () => 1),
      10_000,
    );
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}
