/** The GitLab client's deploy-token calls (doc/api/deploy_tokens.md) and their expiry (expiry.ts). */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FAKE_ADMIN_TOKEN, type FakeGitlab, startFakeGitlab } from './fake-gitlab.testutil.ts';
import {
  createGitlabClient,
  DEPLOY_TOKEN_EXPIRY_MARGIN_MS,
  deployTokenExpiry,
  type GitlabClient,
  GitlabNotFoundError,
  GitlabRejectedError,
  GitlabUnavailableError,
} from './index.ts';

describe('GitLab client: deploy tokens', () => {
  let fake: FakeGitlab;
  let client: GitlabClient;

  before(async () => {
    fake = await startFakeGitlab({ perPageMax: 2 });
    client = createGitlabClient({
      url: fake.url,
      token: FAKE_ADMIN_TOKEN,
      timeoutMs: 2000,
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 50,
    });
  });
  after(async () => {
    await client.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.deployTokens.clear();
    fake.intercept = undefined;
  });

  it('create: exactly the documented JSON, one request, the token and its username back', async () => {
    const created = await client.createDeployToken({
      kind: 'project',
      ref: '1000',
      name: 'tanuki-sts/dev/pull/2b1c',
      scopes: ['read_repository', 'read_registry'],
      expiresAt: '2030-01-02T10:16:01Z',
    });
    assert.equal(fake.requests.length, 1);
    const r = fake.requests[0]!;
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/api/v4/projects/1000/deploy_tokens');
    assert.deepEqual(r.body, {
      name: 'tanuki-sts/dev/pull/2b1c',
      scopes: ['read_repository', 'read_registry'],
      expires_at: '2030-01-02T10:16:01Z',
    });
    assert.equal(created.username, `gitlab+deploy-token-${created.id}`);
    assert.match(created.token, /^gldt-/);
    assert.equal(created.expiresAt, '2030-01-02T10:16:01Z');
    assert.equal(created.active, undefined);
    const named = await client.createDeployToken({
      kind: 'group',
      ref: 'acme/sub',
      name: 'n',
      scopes: ['read_repository'],
      expiresAt: '2030-01-02T10:16:01Z',
      username: 'ci-puller',
    });
    assert.equal(named.username, 'ci-puller');
    assert.equal(fake.requests[1]!.url, '/api/v4/groups/acme%2Fsub/deploy_tokens');
  });

  it('create is never retried; a malformed answer (no token, an unusable username) is an outage, a 404 not-found', async () => {
    fake.intercept = () => ({ status: 503, body: { message: '503' } });
    await assert.rejects(
      client.createDeployToken({
        kind: 'project',
        ref: '1',
        name: 'n',
        scopes: ['read_repository'],
        expiresAt: 'x',
      }),
      GitlabUnavailableError,
    );
    assert.equal(fake.count('POST'), 1);
    for (const body of [
      { id: 1, username: 'gitlab+deploy-token-1' },
      { id: 1, token: 'gldt-x', username: 'has space' },
      { id: 1, token: 'gldt-x', username: 'a\nb' },
      { id: 1, token: 'gldt-x' },
    ]) {
      fake.intercept = () => ({ status: 201, body });
      await assert.rejects(
        client.createDeployToken({
          kind: 'project',
          ref: '1',
          name: 'n',
          scopes: ['read_repository'],
          expiresAt: 'x',
        }),
        GitlabUnavailableError,
        JSON.stringify(body),
      );
    }
    fake.intercept = undefined;
    await assert.rejects(
      client.createDeployToken({
        kind: 'project',
        ref: 'missing',
        name: 'n',
        scopes: ['read_repository'],
        expiresAt: 'x',
      }),
      GitlabNotFoundError,
    );
    fake.intercept = () => ({ status: 403, body: { message: '403 Forbidden' } });
    await assert.rejects(
      client.createDeployToken({
        kind: 'group',
        ref: '9',
        name: 'n',
        scopes: ['read_repository'],
        expiresAt: 'x',
      }),
      (e: unknown) =>
        e instanceof GitlabRejectedError && e.status === 403 && e.gitlabMessage === '403 Forbidden',
    );
  });

  it('list: every page, `active=true` when asked, no values', async () => {
    for (let i = 0; i < 5; i++) fake.addDeployToken('project', '7', `t${i}`);
    fake.addDeployToken('project', '7', 'old', { expired: true });
    const all = await client.listDeployTokens('project', '7');
    assert.deepEqual(
      all.map((t) => t.name),
      ['t0', 't1', 't2', 't3', 't4', 'old'],
    );
    assert.ok(all.every((t) => !('token' in t)));
    const active = await client.listDeployTokens('project', '7', { active: true });
    assert.equal(active.length, 5);
    assert.ok(fake.requests.some((r) => r.query.active === 'true'));
  });

  it('revoke: DELETE → revoked, 404 → absent, retried on 5xx', async () => {
    const t = fake.addDeployToken('group', '9', 'x');
    let fails = 1;
    fake.intercept = (r) => (r.method === 'DELETE' && fails-- > 0 ? { status: 502 } : undefined);
    assert.equal(await client.revokeDeployToken('group', '9', t.id), 'revoked');
    assert.equal(fake.count('DELETE'), 2);
    assert.equal(await client.revokeDeployToken('group', '9', t.id), 'absent');
    await assert.rejects(client.revokeDeployToken('group', '9', 0), TypeError);
  });
});

describe('deployTokenExpiry', () => {
  it('the TTL end plus the margin, rounded up to the second, as an ISO date-time without milliseconds', () => {
    assert.equal(DEPLOY_TOKEN_EXPIRY_MARGIN_MS, 60_000);
    assert.equal(deployTokenExpiry(Date.parse('2025-01-01T10:15:00.000Z')), '2025-01-01T10:16:00Z');
    assert.equal(deployTokenExpiry(Date.parse('2025-01-01T10:15:00.001Z')), '2025-01-01T10:16:01Z');
    assert.equal(deployTokenExpiry(Date.parse('2025-12-31T23:59:30.000Z')), '2026-01-01T00:00:30Z');
    assert.throws(() => deployTokenExpiry(Number.NaN), RangeError);
  });
});
