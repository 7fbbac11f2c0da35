/**
 * Exchanges for a deploy-token grant (`grant.via: deploy-token`), through inject() against the
 * fake GitLab: one lookup and one `POST …/deploy_tokens` on the numeric id with the exact JSON, an
 * `expires_at` to the second, the username in the answer (`gitlab_username`) and in the ledger;
 * an API scope refused before GitLab is called; POST /revoke deletes the deploy token.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type FakeGitlab, startFakeGitlab } from '../gitlab/fake-gitlab.testutil.ts';
import { sha256Hex } from '../util/hash.ts';
import { buildApp } from './app.ts';
import { APP, NOW, POLICIES, type TestContext, TOKENS, testContext } from './context.testutil.ts';
import { ACCESS_TOKEN_TYPE, FORM, formBody, GRANT_TYPE, JWT_TYPE } from './wire.testutil.ts';

const VALID = { grant_type: GRANT_TYPE, subject_token: TOKENS.good, subject_token_type: JWT_TYPE };
const PULL = {
  name: 'pull',
  issuer: 'contoso',
  match: { appid: APP },
  grant: {
    via: 'deploy-token',
    projects: ['platform/images'],
    scopes: ['read_repository', 'read_registry'],
    ttl: { default: '10m', max: '1h' },
  },
};

describe('POST /token with a deploy-token grant', () => {
  let fake: FakeGitlab;
  let ctx: TestContext;
  let app: FastifyInstance;
  const exchange = (form: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/token',
      payload: formBody({ ...VALID, ...form }),
      headers: { 'content-type': FORM },
    });

  before(async () => {
    fake = await startFakeGitlab();
    ctx = testContext(fake.url, { extra: { policies: [...POLICIES, PULL] } });
    app = buildApp(ctx);
  });
  after(async () => {
    await app.close();
    await ctx.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.intercept = undefined;
  });

  it('mints a deploy token on the numeric id, to the second, and answers its username', async () => {
    const res = await exchange({ audience: 'platform/images' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      fake.requests.map((r) => `${r.method} ${r.url}`),
      ['GET /api/v4/projects/platform%2Fimages', 'POST /api/v4/projects/4242/deploy_tokens'],
    );
    const sent = fake.requests[1]!.body as { name: string };
    const grantId = /^tanuki-sts\/unit\/pull\/([0-9a-f-]{36})$/.exec(sent.name)?.[1];
    assert.ok(grantId, sent.name);
    // NOW + 600 s + the 60 s margin: GitLab ends a deploy token at this second (expiry.ts).
    assert.deepEqual(sent, {
      name: sent.name,
      scopes: ['read_repository', 'read_registry'],
      expires_at: '2025-06-16T00:01:00Z',
    });
    assert.equal(NOW, Date.parse('2025-06-15T23:50:00Z'));
    const minted = fake.deployTokens.get('project:4242')?.find((t) => t.name === sent.name);
    assert.ok(minted);
    assert.deepEqual(res.json(), {
      access_token: minted.token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: 600,
      scope: 'read_repository read_registry',
      gitlab_username: minted.username,
    });

    const grant = await ctx.store.getById(grantId);
    assert.equal(grant?.state, 'active');
    assert.equal(grant?.tokenKind, 'deploy-token');
    assert.equal(grant?.gitlabUsername, minted.username);
    assert.equal(grant?.gitlabTokenId, minted.id);
    assert.equal(grant?.accessLevel, 0);
    assert.equal(grant?.gitlabExpiresAt, '2025-06-16T00:01:00Z');
    assert.equal(grant?.gitlabUserId, undefined, 'no user behind a deploy token');
    assert.equal(grant?.tokenSha256, sha256Hex(minted.token));

    const event = ctx.audit.events.find((e) => e.grantId === grantId);
    assert.equal(event?.tokenKind, 'deploy-token');
    assert.equal(event?.gitlabUsername, minted.username);
    assert.equal(event?.role, undefined);
    assert.ok(!JSON.stringify(ctx.audit.events).includes(minted.token));
  });

  it('an access-token grant answers gitlab_username oauth2', async () => {
    const res = await exchange({ audience: 'platform/app' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().gitlab_username, 'oauth2');
  });

  it('a deploy-token grant asked for an API scope: invalid_scope, GitLab never called', async () => {
    for (const scope of ['api', 'read_api', 'read_repository api', 'write_repository', 'write_registry']) {
      const res = await exchange({ audience: 'platform/images', scope });
      assert.equal(res.statusCode, 400, scope);
      assert.equal(res.json().error, 'invalid_scope', scope);
    }
    assert.equal(fake.requests.length, 0);
  });

  it('POST /revoke deletes the deploy token in GitLab and revokes the grant', async () => {
    const res = await exchange({ audience: 'platform/images' });
    const token = res.json().access_token as string;
    const grant = await ctx.store.findActiveByTokenSha(sha256Hex(token));
    assert.ok(grant);
    fake.requests.length = 0;
    const revoke = await app.inject({
      method: 'POST',
      url: '/revoke',
      payload: formBody({ token }),
      headers: { 'content-type': FORM },
    });
    assert.equal(revoke.statusCode, 200);
    assert.deepEqual(
      fake.requests.map((r) => `${r.method} ${r.url}`),
      [`DELETE /api/v4/projects/4242/deploy_tokens/${grant.gitlabTokenId}`],
    );
    assert.equal((await ctx.store.getById(grant.id))?.state, 'revoked');
    const minted = fake.deployTokens.get('project:4242')?.find((t) => t.id === grant.gitlabTokenId);
    assert.equal(minted?.deleted, true);
  });

  it('GitLab answers the deploy token already expired: 500, the token deleted, the grant failed', async () => {
    fake.intercept = (r) => {
      if (r.method !== 'POST') return undefined;
      const t = fake.addDeployToken('project', '4242', (r.body as { name: string }).name, {
        expires_at: '2025-06-15T23:00:00.000Z',
      });
      return { status: 201, body: { ...t, deleted: undefined } };
    };
    const res = await exchange({ audience: 'platform/images' });
    assert.equal(res.statusCode, 500, res.body);
    assert.equal(res.json().error, 'server_error');
    const event = ctx.audit.events.find((e) => e.requestId === String(res.headers['x-request-id']));
    assert.match(event?.reason ?? '', /inactive/);
    assert.equal((await ctx.store.getById(event?.grantId ?? ''))?.state, 'failed');
    assert.ok(fake.requests.some((r) => r.method === 'DELETE' && r.url.includes('/deploy_tokens/')));
  });
});
