/**
 * Issue 18 on the wire (fastify inject, the stub validator, the fake GitLab):
 * `POST /oauth/token` = `POST /token`; client authentication and its `401
 * invalid_client` with `WWW-Authenticate: Basic`; a policy's `client`; the
 * target of a request that names none; `server.deny`; and the refusal counter.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type FakeGitlab, startFakeGitlab } from '../gitlab/fake-gitlab.testutil.ts';
import { sha256Hex } from '../util/hash.ts';
import { buildApp } from './app.ts';
import { APP, POLICIES, STRANGER_APP, type TestContext, TOKENS, testContext } from './context.testutil.ts';
import {
  ACCESS_TOKEN_TYPE,
  assertErrorWire,
  BASIC_CHALLENGE,
  DESCRIPTIONS as D,
  FORM,
  formBody,
  GRANT_TYPE,
} from './wire.testutil.ts';

const SECRET = 'runner-secret-0123456789';
const CLIENTS = { runner: { secret: SECRET }, other: { secret: 'other-secret-0123456789' } };
/** The request people write for GitLab's /oauth/token: no resource, no scope. */
const QUESTION = {
  grant_type: GRANT_TYPE,
  subject_token: TOKENS.stranger,
  subject_token_type: ACCESS_TOKEN_TYPE,
  client_id: 'runner',
  client_secret: SECRET,
};
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

interface S {
  fake: FakeGitlab;
  ctx: TestContext;
  app: FastifyInstance;
  close(): Promise<void>;
}

async function stack(o: { server?: Record<string, unknown>; policies?: unknown[] } = {}): Promise<S> {
  const fake = await startFakeGitlab();
  const ctx = testContext(fake.url, {
    server: o.server,
    extra: {
      clients: CLIENTS,
      policies: o.policies ?? [
        ...POLICIES,
        {
          // One policy, one project: what a request without resource/audience gets.
          name: 'single',
          issuer: 'contoso',
          match: { appid: STRANGER_APP },
          grant: { projects: ['platform/app'], scopes: ['read_repository'], role: 'reporter' },
        },
      ],
    },
  });
  const app = buildApp(ctx);
  return {
    fake,
    ctx,
    app,
    async close() {
      await app.close();
      await ctx.close();
      await fake.close();
    },
  };
}

function post(
  s: S,
  url: string,
  body: Record<string, string | undefined>,
  headers: Record<string, string> = {},
) {
  return s.app.inject({
    method: 'POST',
    url,
    payload: formBody(body),
    headers: { 'content-type': FORM, ...headers },
  });
}

function auditOf(ctx: TestContext, requestId: string) {
  const events = ctx.audit.events.filter((e) => e.requestId === requestId);
  assert.equal(events.length, 1);
  return events[0]!;
}

async function refusals(ctx: TestContext): Promise<Record<string, number>> {
  const m = await ctx.metrics.refusals.get();
  return Object.fromEntries(
    m.values.filter((v) => v.value > 0).map((v) => [String(v.labels.reason), v.value]),
  );
}

describe('POST /oauth/token: the request people already write', () => {
  let s: S;
  before(async () => {
    s = await stack();
  });
  after(() => s.close());
  beforeEach(() => {
    s.fake.requests.length = 0;
    s.ctx.validator.calls.length = 0;
  });

  it("the question's request: no resource, client_id + client_secret → a token on the caller's only project", async () => {
    const res = await post(s, '/oauth/token', QUESTION);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as Record<string, unknown>;
    assert.equal(body.issued_token_type, ACCESS_TOKEN_TYPE);
    assert.equal(body.scope, 'read_repository');
    assert.match(String(body.access_token), /^glpat-/);
    const event = auditOf(s.ctx, String(res.headers['x-request-id']));
    assert.deepEqual(
      [event.outcome, event.policy, event.target, event.client, event.clientAuth],
      ['granted', 'single', 'platform/app', 'runner', 'client_secret_post'],
    );
    assert.ok(!JSON.stringify(s.ctx.audit.events).includes(SECRET), 'the secret is never audited');
  });

  it('/token takes it too, and /oauth/token takes everything /token does', async () => {
    const a = await post(s, '/token', QUESTION);
    assert.equal(a.statusCode, 200, a.body);
    const b = await post(s, '/oauth/token', {
      ...QUESTION,
      subject_token: TOKENS.good,
      audience: 'platform/app',
      client_id: undefined,
      client_secret: undefined,
    });
    assert.equal(b.statusCode, 200, b.body);
    const wrong = await s.app.inject({ method: 'GET', url: '/oauth/token' });
    assert.equal(wrong.statusCode, 405);
    assert.equal(wrong.headers.allow, 'POST');
  });

  it('HTTP Basic works the same; the metadata keeps /token and lists the methods', async () => {
    const res = await post(
      s,
      '/oauth/token',
      { ...QUESTION, client_id: undefined, client_secret: undefined },
      {
        authorization: basic('runner', SECRET),
      },
    );
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(auditOf(s.ctx, String(res.headers['x-request-id'])).clientAuth, 'client_secret_basic');
    const meta = (
      await s.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })
    ).json();
    assert.equal(meta.token_endpoint, 'https://sts.example.test/token');
    assert.deepEqual(meta.token_endpoint_auth_methods_supported, [
      'none',
      'client_secret_basic',
      'client_secret_post',
    ]);
  });

  const failures: Array<[string, Record<string, string | undefined>, Record<string, string>, string]> = [
    [
      'a wrong secret',
      { client_secret: 'wrong-secret-0123456789' },
      {},
      'wrong secret for client runner (client_secret_post)',
    ],
    [
      'an unknown client with a secret',
      { client_id: 'nobody' },
      {},
      `unknown client ${'sha256:'}${sha256Hex('nobody').slice(0, 16)} (client_secret_post)`,
    ],
    ['a secret without client_id', { client_id: undefined }, {}, 'client_secret without client_id'],
    [
      'both methods at once',
      {},
      { authorization: basic('runner', SECRET) },
      'two client authentication methods (HTTP Basic and client_secret)',
    ],
    [
      'a wrong Basic secret',
      { client_id: undefined, client_secret: undefined },
      { authorization: basic('runner', 'nope') },
      'wrong secret for client runner (client_secret_basic)',
    ],
    [
      'another scheme',
      { client_id: undefined, client_secret: undefined },
      { authorization: 'Bearer abc' },
      'unsupported authentication scheme Bearer',
    ],
  ];
  for (const [name, over, headers, reason] of failures) {
    it(`401 invalid_client with WWW-Authenticate: ${name}; the subject token is not even read`, async () => {
      const res = await post(s, '/oauth/token', { ...QUESTION, ...over }, headers);
      const requestId = assertErrorWire(res, 401, 'invalid_client', D.invalidClient, BASIC_CHALLENGE);
      const event = auditOf(s.ctx, requestId);
      assert.deepEqual([event.outcome, event.reason], ['invalid_client', reason]);
      assert.deepEqual(s.ctx.validator.calls, [], 'no subject token validation');
      assert.deepEqual(s.fake.requests, [], 'no GitLab call');
    });
  }

  it('a bare client_id (a public client) is accepted and audited, as a hash (it may be a misplaced secret)', async () => {
    const res = await post(s, '/oauth/token', {
      ...QUESTION,
      client_id: 'a-gitlab-app-id',
      client_secret: undefined,
    });
    assert.equal(res.statusCode, 200, res.body);
    const event = auditOf(s.ctx, String(res.headers['x-request-id']));
    assert.deepEqual(
      [event.clientId, event.client, event.clientAuth],
      [`sha256:${sha256Hex('a-gitlab-app-id').slice(0, 16)}`, undefined, undefined],
    );
  });

  it('no resource for a caller with several targets: invalid_target asking to name one, nothing of the policy shown', async () => {
    const res = await post(s, '/oauth/token', { ...QUESTION, subject_token: TOKENS.good });
    const requestId = assertErrorWire(res, 400, 'invalid_target', D.nameTarget);
    assert.ok(!res.body.includes('platform/'), 'no target named');
    assert.deepEqual(s.fake.requests, []);
    assert.equal(auditOf(s.ctx, requestId).outcome, 'invalid_target');
  });

  it('no resource for a caller no policy accepts: the generic refusal, as with a resource', async () => {
    for (const subject of [TOKENS.expired, 'garbage']) {
      const res = await post(s, '/oauth/token', { ...QUESTION, subject_token: subject });
      assertErrorWire(res, 400, 'invalid_request', D.subjectToken);
    }
  });
});

describe('a policy with `client`: the subject token alone is not enough', () => {
  let s: S;
  before(async () => {
    s = await stack({
      policies: [
        {
          ...POLICIES[0],
          client: 'runner',
          grant: { ...POLICIES[0]!.grant, projects: ['platform/app'], groups: [] },
        },
      ],
    });
  });
  after(() => s.close());

  it('granted with the client, refused (generically) without it or as another client', async () => {
    const base = { ...QUESTION, subject_token: TOKENS.good };
    assert.equal((await post(s, '/oauth/token', base)).statusCode, 200);
    for (const over of [
      { client_id: undefined, client_secret: undefined },
      { client_id: 'runner', client_secret: undefined },
      { client_id: 'other', client_secret: 'other-secret-0123456789' },
    ]) {
      const res = await post(s, '/oauth/token', { ...base, ...over });
      const requestId = assertErrorWire(res, 400, 'invalid_request', D.subjectToken);
      assert.match(
        auditOf(s.ctx, requestId).reason ?? '',
        /client: the request did not authenticate as the client this policy requires/,
      );
    }
  });
});

describe('server.deny', () => {
  let s: S;
  before(async () => {
    s = await stack({ server: { deny: [{ issuer: 'contoso', match: { appid: APP } }] } });
  });
  after(() => s.close());

  it('refuses a matching identity with the generic refusal, before any policy or GitLab call; counted as denied', async () => {
    const before = await refusals(s.ctx);
    const res = await post(s, '/token', {
      ...QUESTION,
      subject_token: TOKENS.good,
      audience: 'platform/app',
      client_id: undefined,
      client_secret: undefined,
    });
    const requestId = assertErrorWire(res, 400, 'invalid_request', D.subjectToken);
    assert.equal(auditOf(s.ctx, requestId).reason, 'denied by server.deny[0]');
    assert.deepEqual(s.fake.requests, []);
    assert.equal((await refusals(s.ctx)).denied, (before.denied ?? 0) + 1);
    // Others are untouched.
    assert.equal((await post(s, '/oauth/token', QUESTION)).statusCode, 200);
  });

  it('refusal reasons are a bounded set of words: no_policy, subject_token, invalid_client, invalid_target …', async () => {
    await post(s, '/token', { ...QUESTION, subject_token: 'garbage' });
    await post(s, '/token', { ...QUESTION, client_secret: 'wrong-secret-0123456789' });
    await post(s, '/token', { ...QUESTION, audience: 'elsewhere/x' });
    const r = await refusals(s.ctx);
    for (const reason of ['subject_token', 'invalid_client', 'invalid_target', 'denied']) {
      assert.ok((r[reason] ?? 0) >= 1, `${reason} in ${JSON.stringify(r)}`);
    }
    const all = (await s.ctx.metrics.refusals.get()).values.map((v) => String(v.labels.reason));
    assert.deepEqual([...new Set(all)].sort(), [
      'denied',
      'invalid_client',
      'invalid_request',
      'invalid_scope',
      'invalid_target',
      'no_policy',
      'rate_limited',
      'server_error',
      'subject_token',
      'unavailable',
      'unsupported_grant_type',
    ]);
  });
});
