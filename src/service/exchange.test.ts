/**
 * The token exchange end to end through inject(), against the fake GitLab,
 * which records every request: a grant is one target lookup and one mint on
 * the numeric id, with exactly the scopes, access level, expiry date and
 * name the policy and the clock say. Also the request-shape checks
 * (parseExchangeRequest) with their stable error codes.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { FAKE_ADMIN_TOKEN, type FakeGitlab, startFakeGitlab } from '../gitlab/fake-gitlab.testutil.ts';
import { sha256Hex } from '../util/hash.ts';
import { buildApp } from './app.ts';
import { APP, NOW, OBJECT_ID, TENANT, type TestContext, TOKENS, testContext } from './context.testutil.ts';
import { StsError } from './errors.ts';
import { parseExchangeRequest } from './exchange.ts';
import { parseForm } from './form.ts';
import {
  ACCESS_TOKEN_TYPE,
  FORM,
  formBody,
  GRANT_TYPE,
  headersOf,
  JSON_HEADERS,
  JWT_TYPE,
  UUID,
} from './wire.testutil.ts';

const VALID = {
  grant_type: GRANT_TYPE,
  subject_token: TOKENS.good,
  subject_token_type: JWT_TYPE,
};
const DESCRIPTION = `Minted by tanuki-sts for issuer=contoso tenant=${TENANT} app=${APP} oid=${OBJECT_ID}`;
const NAME = /^tanuki-sts\/unit\/deploy\/([0-9a-f-]{36})$/;

describe('POST /token: a grant, exactly as GitLab is asked for it', () => {
  let fake: FakeGitlab;
  let ctx: TestContext;
  let app: FastifyInstance;
  before(async () => {
    fake = await startFakeGitlab();
    ctx = testContext(fake.url);
    app = buildApp(ctx);
  });
  after(async () => {
    await app.close();
    await ctx.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.requests.length = 0;
  });

  // NOW is 2025-06-15T23:50:00Z; GitLab's expiry is the first midnight strictly after the TTL's
  // end (plus a few minutes' margin for GitLab's clock: src/gitlab/expiry.ts).
  const cases: Array<{
    name: string;
    form: Record<string, string>;
    lookup: string;
    mint: string;
    kind: 'project' | 'group';
    targetRef: string;
    scopes: string[];
    ttl: number;
    expiresAt: string;
  }> = [
    {
      name: 'a project by path, policy defaults (900 s, every granted scope)',
      form: { audience: 'platform/app' },
      lookup: '/api/v4/projects/platform%2Fapp',
      mint: '/api/v4/projects/4242/access_tokens',
      kind: 'project',
      targetRef: 'platform/app',
      scopes: ['read_repository', 'read_api'],
      ttl: 900,
      expiresAt: '2025-06-17',
    },
    {
      name: 'a project as a resource URL, one scope, a TTL ending at midnight exactly',
      form: { resource: 'GITLAB/platform/app.git', scope: 'read_api', expires_in: '600' },
      lookup: '/api/v4/projects/platform%2Fapp',
      mint: '/api/v4/projects/4242/access_tokens',
      kind: 'project',
      targetRef: 'platform/app',
      scopes: ['read_api'],
      ttl: 600,
      expiresAt: '2025-06-17',
    },
    {
      name: 'a 60 s TTL, ending well before midnight',
      form: { audience: 'Platform/App', expires_in: '60', scope: 'read_api read_repository' },
      lookup: '/api/v4/projects/platform%2Fapp',
      mint: '/api/v4/projects/4242/access_tokens',
      kind: 'project',
      targetRef: 'platform/app',
      scopes: ['read_repository', 'read_api'],
      ttl: 60,
      expiresAt: '2025-06-16',
    },
    {
      name: 'a TTL over ttl.max, clamped to 3600 s',
      form: { audience: 'platform/app', expires_in: '7200', policy: 'deploy' },
      lookup: '/api/v4/projects/platform%2Fapp',
      mint: '/api/v4/projects/4242/access_tokens',
      kind: 'project',
      targetRef: 'platform/app',
      scopes: ['read_repository', 'read_api'],
      ttl: 3600,
      expiresAt: '2025-06-17',
    },
    {
      name: 'a group token for a granted group',
      form: { audience: 'platform/tools' },
      lookup: '/api/v4/groups/platform%2Ftools?with_projects=false',
      mint: '/api/v4/groups/4242/access_tokens',
      kind: 'group',
      targetRef: 'platform/tools',
      scopes: ['read_repository', 'read_api'],
      ttl: 900,
      expiresAt: '2025-06-17',
    },
    {
      name: 'a project token for a project under a granted group',
      form: { audience: 'platform/tools/cli' },
      lookup: '/api/v4/projects/platform%2Ftools%2Fcli',
      mint: '/api/v4/projects/4242/access_tokens',
      kind: 'project',
      targetRef: 'platform/tools/cli',
      scopes: ['read_repository', 'read_api'],
      ttl: 900,
      expiresAt: '2025-06-17',
    },
    {
      name: 'a project by numeric id (no path to compare; GitLab names it)',
      form: { audience: '4242' },
      lookup: '/api/v4/projects/4242',
      mint: '/api/v4/projects/4242/access_tokens',
      kind: 'project',
      targetRef: 'id-path/4242',
      scopes: ['read_repository', 'read_api'],
      ttl: 900,
      expiresAt: '2025-06-17',
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const form = Object.fromEntries(
        Object.entries(c.form).map(([k, v]) => [k, v.replace('GITLAB', fake.url)]),
      );
      const res = await app.inject({
        method: 'POST',
        url: '/token',
        payload: formBody({ ...VALID, ...form }),
        headers: { 'content-type': FORM },
      });

      // The wire: RFC 8693 §2.2.1, and RFC 6749 §5.1's Cache-Control and Pragma.
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(headersOf(res), JSON_HEADERS);
      const body = res.json() as { access_token: string };
      const requestId = String(res.headers['x-request-id']);

      // GitLab: one lookup of the path, one mint on the numeric id, with the admin token.
      const [lookup, mint, ...rest] = fake.requests;
      assert.deepEqual(rest, []);
      assert.deepEqual(
        { method: lookup?.method, url: lookup?.url, privateToken: lookup?.privateToken },
        { method: 'GET', url: c.lookup, privateToken: FAKE_ADMIN_TOKEN },
      );
      const sent = mint?.body as { name: string };
      const grantId = NAME.exec(sent.name)?.[1];
      assert.match(String(grantId), UUID, sent.name);
      assert.deepEqual(
        { method: mint?.method, url: mint?.url, privateToken: mint?.privateToken, body: mint?.body },
        {
          method: 'POST',
          url: c.mint,
          privateToken: FAKE_ADMIN_TOKEN,
          body: {
            name: `tanuki-sts/unit/deploy/${grantId}`,
            description: DESCRIPTION,
            scopes: c.scopes,
            access_level: 20,
            expires_at: c.expiresAt,
          },
        },
      );
      const minted = fake.tokens.get(`${c.kind}:4242`)?.find((t) => t.name === sent.name);
      assert.ok(minted);

      assert.deepEqual(body, {
        access_token: minted.token,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: c.ttl,
        scope: c.scopes.join(' '),
        gitlab_username: 'oauth2',
      });

      // The ledger: active, by id, the token only as its hash.
      const grant = await ctx.store.getById(grantId!);
      assert.deepEqual(grant, {
        id: grantId,
        state: 'active',
        requestId,
        issuer: 'contoso',
        identityKey: `contoso|${TENANT}|${OBJECT_ID}`,
        subject: OBJECT_ID,
        tenant: TENANT,
        clientId: APP,
        objectId: OBJECT_ID,
        policy: 'deploy',
        targetKind: c.kind,
        targetRef: c.targetRef,
        targetId: 4242,
        scopes: c.scopes,
        accessLevel: 20,
        createdAt: NOW,
        expiresAt: NOW + c.ttl * 1000,
        gitlabExpiresAt: c.expiresAt,
        gitlabTokenId: minted.id,
        gitlabUserId: minted.user_id,
        tokenSha256: sha256Hex(minted.token),
        attempts: 0,
        nextAttemptAt: NOW + c.ttl * 1000,
      });

      // The audit: one event, with hashes, never the tokens.
      const events = ctx.audit.events.filter((e) => e.requestId === requestId);
      assert.equal(events.length, 1);
      const { durationMs, ...event } = events[0]!;
      assert.equal(typeof durationMs, 'number');
      assert.deepEqual(event, {
        event: 'exchange',
        requestId,
        clientIp: '127.0.0.1',
        outcome: 'granted',
        subjectTokenSha256: sha256Hex(TOKENS.good),
        issuer: 'contoso',
        tenant: TENANT,
        appId: APP,
        objectId: OBJECT_ID,
        subject: OBJECT_ID,
        subjectTokenId: 'uti-1',
        policy: 'deploy',
        target: c.targetRef,
        targetKind: c.kind,
        targetId: 4242,
        scopes: c.scopes,
        role: 'reporter',
        ttlSeconds: c.ttl,
        grantId,
        gitlabTokenId: minted.id,
        gitlabUserId: minted.user_id,
        tokenSha256: sha256Hex(minted.token),
      });
      assert.ok(!JSON.stringify(ctx.audit.events).includes(minted.token));
    });
  }

  const refusedMints: Array<[string, Record<string, unknown>, RegExp]> = [
    ['GitLab created the token inactive (expires_at today on its clock)', { active: false }, /inactive/],
    ['GitLab says it minted on another resource', { resource_id: 9999 }, /minted on resource 9999/],
  ];
  for (const [name, extra, reason] of refusedMints) {
    it(`${name}: 500, the token taken back where it lives, the grant failed`, async () => {
      fake.intercept = (r) => {
        if (r.method !== 'POST') return undefined;
        const t = fake.addToken('project', '4242', (r.body as { name: string }).name);
        return { status: 201, body: { ...t, resource_id: 4242, ...extra } };
      };
      try {
        const res = await app.inject({
          method: 'POST',
          url: '/token',
          payload: formBody({ ...VALID, audience: 'platform/app' }),
          headers: { 'content-type': FORM },
        });
        assert.equal(res.statusCode, 500, res.body);
        assert.equal(res.json().error, 'server_error');
        const requestId = String(res.headers['x-request-id']);
        const event = ctx.audit.events.find((e) => e.requestId === requestId);
        assert.match(event?.reason ?? '', reason);
        assert.equal((await ctx.store.getById(event?.grantId ?? ''))?.state, 'failed');
        const del = fake.requests.find((x) => x.method === 'DELETE');
        assert.equal(del?.url.split('/access_tokens')[0], `/api/v4/projects/${extra.resource_id ?? 4242}`);
      } finally {
        fake.intercept = undefined;
      }
    });
  }
});

describe('parseExchangeRequest: the request shape, with stable codes', () => {
  const base = { ...VALID, audience: 'platform/app' };
  const form = (over: Record<string, string | undefined>) => parseForm(formBody({ ...base, ...over }));

  it('a valid request', () => {
    assert.deepEqual(
      parseExchangeRequest(form({ scope: ' read_api  api ', expires_in: '60', policy: 'p' })),
      {
        subjectToken: TOKENS.good,
        scopes: ['read_api', 'api'],
        ttlSeconds: 60,
        policyName: 'p',
        resource: [],
        audience: ['platform/app'],
      },
    );
    assert.deepEqual(parseExchangeRequest(form({ scope: '  ', audience: undefined, resource: 'x' })), {
      subjectToken: TOKENS.good,
      scopes: undefined,
      ttlSeconds: undefined,
      policyName: undefined,
      resource: ['x'],
      audience: [],
    });
  });

  const refusals: Array<[string, Record<string, string | undefined>, string, string]> = [
    ['no grant_type', { grant_type: undefined }, 'ERR_INVALID_REQUEST', 'invalid_request'],
    [
      'another grant_type',
      { grant_type: 'password' },
      'ERR_UNSUPPORTED_GRANT_TYPE',
      'unsupported_grant_type',
    ],
    ['no subject_token', { subject_token: undefined }, 'ERR_INVALID_REQUEST', 'invalid_request'],
    [
      'a subject_token over 16 KiB',
      { subject_token: 'x'.repeat(16_385) },
      'ERR_INVALID_REQUEST',
      'invalid_request',
    ],
    [
      'an unknown subject_token_type',
      { subject_token_type: 'jwt' },
      'ERR_INVALID_REQUEST',
      'invalid_request',
    ],
    ['an actor token', { actor_token: 'x' }, 'ERR_INVALID_REQUEST', 'invalid_request'],
    ['a scope with a capital', { scope: 'Api' }, 'ERR_INVALID_SCOPE', 'invalid_scope'],
    ['a scope over 40 characters', { scope: 'a'.repeat(41) }, 'ERR_INVALID_SCOPE', 'invalid_scope'],
    ['a negative expires_in', { expires_in: '-5' }, 'ERR_INVALID_REQUEST', 'invalid_request'],
    ['a leading-zero expires_in', { expires_in: '060' }, 'ERR_INVALID_REQUEST', 'invalid_request'],
    ['an expires_in below the minimum TTL', { expires_in: '59' }, 'ERR_INVALID_REQUEST', 'invalid_request'],
    ['a scope GitLab does not know', { scope: 'read_repositry' }, 'ERR_INVALID_SCOPE', 'invalid_scope'],
    [
      'a policy name over 64 characters',
      { policy: 'p'.repeat(65) },
      'ERR_INVALID_REQUEST',
      'invalid_request',
    ],
  ];
  it("no target is a valid shape: the caller's only target is chosen after its token is checked", () => {
    const r = parseExchangeRequest(form({ audience: undefined }));
    assert.deepEqual([r.resource, r.audience], [[], []]);
  });

  for (const [name, over, code, error] of refusals) {
    it(`${code}: ${name}`, () => {
      assert.throws(
        () => parseExchangeRequest(form(over)),
        (err: unknown) =>
          err instanceof StsError && err.code === code && err.error === error && err.status === 400,
      );
    });
  }
});
