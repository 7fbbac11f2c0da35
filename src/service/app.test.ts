/**
 * The STS's HTTP surface through fastify's inject() (no socket for the STS):
 * every error path of /token and /revoke, metadata, health and the absent
 * /metrics, with the exact status, JSON body and headers. The validator is a
 * stub (context.testutil.ts); policies, ledger (in-memory SQLite) and GitLab
 * client are real, against the fake GitLab.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { RecordedRequest } from '../gitlab/fake-gitlab.testutil.ts';
import { type FakeGitlab, type FakeReply, startFakeGitlab } from '../gitlab/fake-gitlab.testutil.ts';
import type { Grant } from '../ledger/index.ts';
import { sha256Hex } from '../util/hash.ts';
import { buildApp } from './app.ts';
import { type TestContext, TOKENS, testContext } from './context.testutil.ts';
import {
  assertErrorWire,
  DESCRIPTIONS as D,
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
  audience: 'platform/app',
};

interface Stack {
  fake: FakeGitlab;
  ctx: TestContext;
  app: FastifyInstance;
}

async function stack(server: Record<string, unknown> = {}): Promise<Stack & { close(): Promise<void> }> {
  const fake = await startFakeGitlab();
  const ctx = testContext(fake.url, { server });
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

function post(app: FastifyInstance, url: string, body: string, contentType: string | null = FORM) {
  return app.inject({
    method: 'POST',
    url,
    payload: body,
    headers: contentType === null ? {} : { 'content-type': contentType },
  });
}

/** The audit events of one request: every outcome is audited exactly once. */
function auditOf(ctx: TestContext, requestId: string) {
  const events = ctx.audit.events.filter((e) => e.requestId === requestId);
  assert.equal(events.length, 1, `one audit event for ${requestId}: ${JSON.stringify(events)}`);
  return events[0]!;
}

const requestLine = (r: RecordedRequest) => `${r.method} ${r.url}`;

interface TokenCase {
  name: string;
  /** Form fields (URL-encoded here) or a raw body. */
  body: Record<string, string | undefined> | string;
  contentType?: string | null;
  status: number;
  error: string;
  description: string;
  headers?: Record<string, string>;
  /** The audit outcome; default: `error`. */
  outcome?: string;
  /** The audit reason. */
  reason?: RegExp | string;
  /** GitLab answers, per request (undefined: the fake's normal answer). */
  intercept?: (r: RecordedRequest) => FakeReply | undefined;
  /** Exactly the GitLab requests made, as `METHOD url`; default none. */
  gitlab?: string[];
}

const LOOKUP = 'GET /api/v4/projects/platform%2Fapp';
const MINT = 'POST /api/v4/projects/4242/access_tokens';
const when =
  (method: string, urlPart: string, reply: FakeReply) =>
  (r: RecordedRequest): FakeReply | undefined =>
    r.method === method && r.url.includes(urlPart) ? reply : undefined;

const TOKEN_CASES: TokenCase[] = [
  // The form (app.ts, form.ts): refused before the exchange handler, audited there.
  {
    name: 'no content type',
    body: VALID,
    contentType: null,
    status: 400,
    error: 'invalid_request',
    description: D.notForm,
    reason: /^content type sha256:[0-9a-f]{16}$/,
  },
  {
    name: 'a JSON body',
    body: JSON.stringify(VALID),
    contentType: 'application/json',
    status: 400,
    error: 'invalid_request',
    description: D.notForm,
    reason: 'content type application/json',
  },
  {
    name: 'multipart',
    body: '',
    contentType: 'multipart/form-data; boundary=x',
    status: 400,
    error: 'invalid_request',
    description: D.notForm,
    reason: 'content type multipart/form-data',
  },
  {
    name: 'a non-ASCII body',
    body: `${formBody(VALID)}&x=é`,
    status: 400,
    error: 'invalid_request',
    description: D.notAscii,
    reason: 'non-ASCII byte in form body',
  },
  {
    name: 'a malformed %',
    body: `${formBody(VALID)}&x=%zz`,
    status: 400,
    error: 'invalid_request',
    description: D.badPercent,
    reason: 'bad percent-encoding',
  },
  {
    name: 'a duplicated parameter',
    body: `${formBody(VALID)}&audience=platform%2Fapp`,
    status: 400,
    error: 'invalid_request',
    description: D.duplicate,
    reason: 'duplicate parameter audience',
  },
  {
    name: 'a duplicated empty parameter',
    body: `${formBody(VALID)}&scope=&scope=`,
    status: 400,
    error: 'invalid_request',
    description: D.duplicate,
    reason: 'duplicate parameter scope',
  },
  {
    name: '33 parameters',
    body: `${formBody(VALID)}${'&x'.repeat(29)}`,
    status: 400,
    error: 'invalid_request',
    description: D.tooMany,
    reason: 'form has 33 parameters',
  },
  // The request's shape (exchange.ts parseExchangeRequest), in its order.
  {
    name: 'an empty form',
    body: '',
    status: 400,
    error: 'invalid_request',
    description: 'grant_type is required',
    reason: 'grant_type is required',
  },
  {
    name: 'no grant_type',
    body: { ...VALID, grant_type: undefined },
    status: 400,
    error: 'invalid_request',
    description: 'grant_type is required',
  },
  {
    name: 'another grant_type',
    body: { ...VALID, grant_type: 'client_credentials' },
    status: 400,
    error: 'unsupported_grant_type',
    description: 'grant_type must be urn:ietf:params:oauth:grant-type:token-exchange',
    reason: 'unsupported grant_type',
  },
  {
    name: 'an empty grant_type',
    body: { ...VALID, grant_type: '' },
    status: 400,
    error: 'unsupported_grant_type',
    description: 'grant_type must be urn:ietf:params:oauth:grant-type:token-exchange',
  },
  {
    name: 'no subject_token',
    body: { ...VALID, subject_token: undefined },
    status: 400,
    error: 'invalid_request',
    description: 'subject_token is required',
  },
  {
    name: 'an empty subject_token',
    body: { ...VALID, subject_token: '' },
    status: 400,
    error: 'invalid_request',
    description: 'subject_token is required',
  },
  {
    name: 'a subject_token over 16 KiB',
    body: { ...VALID, subject_token: 'x'.repeat(16 * 1024 + 1) },
    status: 400,
    error: 'invalid_request',
    description: D.subjectToken,
    reason: 'subject token of 16385 characters exceeds the limit',
  },
  {
    name: 'no subject_token_type',
    body: { ...VALID, subject_token_type: undefined },
    status: 400,
    error: 'invalid_request',
    description: 'subject_token_type is required',
  },
  {
    name: 'a SAML subject_token_type',
    body: { ...VALID, subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' },
    status: 400,
    error: 'invalid_request',
    description:
      'subject_token_type must be urn:ietf:params:oauth:token-type:jwt or urn:ietf:params:oauth:token-type:access_token',
  },
  {
    name: 'a JWT requested_token_type',
    body: { ...VALID, requested_token_type: JWT_TYPE },
    status: 400,
    error: 'invalid_request',
    description: 'requested_token_type must be urn:ietf:params:oauth:token-type:access_token',
  },
  {
    name: 'an actor_token',
    body: { ...VALID, actor_token: 'x', actor_token_type: JWT_TYPE },
    status: 400,
    error: 'invalid_request',
    description: 'actor tokens (delegation) are not supported',
  },
  {
    name: 'an actor_token_type alone',
    body: { ...VALID, actor_token_type: JWT_TYPE },
    status: 400,
    error: 'invalid_request',
    description: 'actor tokens (delegation) are not supported',
  },
  {
    // The caller's policy grants several targets: it must name one (oauth-token.test.ts: the one-target case).
    name: 'neither resource nor audience, for a caller with several targets',
    body: { ...VALID, audience: undefined },
    status: 400,
    error: 'invalid_target',
    description: D.nameTarget,
    reason: 'no resource or audience, and the caller may get more than one target',
  },
  {
    name: 'a malformed scope',
    body: { ...VALID, scope: 'READ_API' },
    status: 400,
    error: 'invalid_scope',
    description: D.malformedScope,
    reason: 'malformed scope parameter',
  },
  {
    name: 'a repeated scope',
    body: { ...VALID, scope: 'read_api read_api' },
    status: 400,
    error: 'invalid_scope',
    description: D.malformedScope,
    reason: 'malformed scope parameter',
  },
  {
    // GitLab's scope list is public: a typo is named, before the subject token is looked at.
    name: 'a scope GitLab does not know (a typo)',
    body: { ...VALID, scope: 'read_repositry' },
    status: 400,
    error: 'invalid_scope',
    description: 'unknown scope: read_repositry (did you mean read_repository?)',
  },
  {
    name: 'an unknown scope next to a known one',
    body: { ...VALID, scope: 'read_api nonsense_scope_name' },
    status: 400,
    error: 'invalid_scope',
    description: 'unknown scope: nonsense_scope_name',
  },
  {
    name: 'many unknown scopes (three are named)',
    body: { ...VALID, scope: 'a1 b2 c3 d4 e5' },
    status: 400,
    error: 'invalid_scope',
    description: 'unknown scope: a1 b2 c3 and 2 more',
  },
  {
    name: 'expires_in below the minimum TTL (59)',
    body: { ...VALID, expires_in: '59' },
    status: 400,
    error: 'invalid_request',
    description: 'expires_in must be at least 60 seconds (the minimum TTL)',
  },
  {
    name: 'expires_in 1',
    body: { ...VALID, expires_in: '1' },
    status: 400,
    error: 'invalid_request',
    description: 'expires_in must be at least 60 seconds (the minimum TTL)',
  },
  {
    name: 'expires_in 0',
    body: { ...VALID, expires_in: '0' },
    status: 400,
    error: 'invalid_request',
    description: 'expires_in must be a positive whole number of seconds',
  },
  {
    name: 'expires_in 1.5',
    body: { ...VALID, expires_in: '1.5' },
    status: 400,
    error: 'invalid_request',
    description: 'expires_in must be a positive whole number of seconds',
  },
  {
    name: 'expires_in 10^9',
    body: { ...VALID, expires_in: '1000000000' },
    status: 400,
    error: 'invalid_request',
    description: 'expires_in must be a positive whole number of seconds',
  },
  {
    name: 'a policy that is not a name',
    body: { ...VALID, policy: 'a/b' },
    status: 400,
    error: 'invalid_request',
    description: 'policy must be a policy name',
  },
  {
    name: 'a dot-segment target',
    body: { ...VALID, audience: 'platform/../app' },
    status: 400,
    error: 'invalid_request',
    description: 'resource or audience is not a valid GitLab project or group',
    reason: 'dot segment in path',
  },
  {
    name: 'resource and audience disagreeing',
    body: { ...VALID, resource: 'platform/other' },
    status: 400,
    error: 'invalid_request',
    description: 'resource or audience is not a valid GitLab project or group',
  },
  // The subject token (the validator's verdict; anything else it throws is a bug).
  {
    name: 'a refused subject token',
    body: { ...VALID, subject_token: TOKENS.expired },
    status: 400,
    error: 'invalid_request',
    description: D.subjectToken,
    reason: 'ERR_CLAIM_EXP: expired at 1',
  },
  {
    name: 'signing keys unavailable',
    body: { ...VALID, subject_token: TOKENS.keysDown },
    status: 503,
    error: 'temporarily_unavailable',
    description: D.keysUnavailable,
    headers: { 'retry-after': '13' },
    outcome: 'temporarily_unavailable',
    reason: 'signing keys unavailable: JWKS fetch failed',
  },
  {
    name: 'a validator bug (TypeError)',
    body: { ...VALID, subject_token: TOKENS.bug },
    status: 500,
    error: 'server_error',
    description: D.server,
    outcome: 'error',
    reason: "unexpected: Cannot read properties of undefined (reading 'kid')",
  },
  {
    name: 'a validator bug that looks like a refusal ({code, reason})',
    body: { ...VALID, subject_token: TOKENS.bugLikeRefusal },
    status: 500,
    error: 'server_error',
    description: D.server,
    outcome: 'error',
    reason: 'unexpected: [object Object]',
  },
  // The policies (decide.ts).
  {
    name: 'a caller no policy accepts',
    body: { ...VALID, subject_token: TOKENS.stranger },
    status: 400,
    error: 'invalid_request',
    description: D.subjectToken,
    reason: 'no policy matches: *: 1 other policy: issuer or indexed claim (appid) differs',
  },
  {
    name: 'a caller naming an unknown policy',
    body: { ...VALID, policy: 'nope' },
    status: 400,
    error: 'invalid_request',
    description: D.subjectToken,
    reason: /no such policy \(name sha256:/,
  },
  {
    name: 'a project not granted',
    body: { ...VALID, audience: 'platform/other' },
    status: 400,
    error: 'invalid_target',
    description: D.target,
    reason: 'deploy: project platform/other: not in this grant',
  },
  {
    name: 'a project on another GitLab',
    body: { ...VALID, audience: undefined, resource: 'https://gitlab.invalid/platform/app' },
    status: 400,
    error: 'invalid_target',
    description: D.target,
    reason: 'not on the configured GitLab',
  },
  {
    name: 'a scope not granted',
    body: { ...VALID, scope: 'write_repository' },
    status: 400,
    error: 'invalid_scope',
    description: D.scope,
    reason: 'deploy: scopes not granted for a project token: write_repository',
  },
  {
    // A GitLab scope, but never one of a project token: not granted, not unknown.
    name: 'a personal-token-only scope',
    body: { ...VALID, scope: 'sudo' },
    status: 400,
    error: 'invalid_scope',
    description: D.scope,
    reason: 'deploy: scopes not granted for a project token: sudo',
  },
  // GitLab (the target lookup, then the mint on the numeric id).
  {
    name: 'a project GitLab does not know',
    body: { ...VALID, audience: 'missing/app' },
    status: 400,
    error: 'invalid_target',
    description: D.target,
    reason: 'GitLab: project not found',
    gitlab: ['GET /api/v4/projects/missing%2Fapp'],
  },
  {
    name: 'a path GitLab redirects (moved project)',
    body: VALID,
    intercept: when('GET', '/projects/platform%2Fapp', {
      status: 200,
      body: { id: 9, path_with_namespace: 'elsewhere/app' },
    }),
    status: 400,
    error: 'invalid_target',
    description: D.target,
    reason: 'project platform/app is a redirect to elsewhere/app (id 9): renamed or moved, not followed',
    gitlab: [LOOKUP],
  },
  {
    name: 'a lookup answered 301',
    body: VALID,
    intercept: when('GET', '/projects/platform%2Fapp', {
      status: 301,
      headers: { location: '/api/v4/projects/9' },
    }),
    status: 400,
    error: 'invalid_target',
    description: D.target,
    reason: 'project platform/app is a redirect route (renamed or moved): not followed',
    gitlab: [LOOKUP],
  },
  {
    name: 'GitLab down at the lookup (Retry-After passed on)',
    body: VALID,
    intercept: when('GET', '/projects/', {
      status: 503,
      headers: { 'retry-after': '7' },
      body: { message: 'down' },
    }),
    status: 503,
    error: 'temporarily_unavailable',
    description: D.unavailable,
    headers: { 'retry-after': '7' },
    outcome: 'temporarily_unavailable',
    gitlab: [LOOKUP],
  },
  {
    name: 'GitLab refusing the lookup (403)',
    body: VALID,
    intercept: when('GET', '/projects/', { status: 403, body: { message: '403 Forbidden' } }),
    status: 500,
    error: 'server_error',
    description: D.server,
    outcome: 'server_error',
    reason: /^GitLab refused the project lookup: /,
    gitlab: [LOOKUP],
  },
  {
    name: 'GitLab down at the mint',
    body: VALID,
    intercept: when('POST', '/access_tokens', { status: 502, body: 'bad gateway' }),
    status: 503,
    error: 'temporarily_unavailable',
    description: D.unavailable,
    headers: { 'retry-after': '5' },
    outcome: 'temporarily_unavailable',
    gitlab: [LOOKUP, MINT],
  },
  {
    name: 'GitLab answering 404 at the mint',
    body: VALID,
    intercept: when('POST', '/access_tokens', { status: 404, body: { message: '404 Project Not Found' } }),
    status: 400,
    error: 'invalid_target',
    description: D.target,
    reason: 'GitLab: project not found',
    gitlab: [LOOKUP, MINT],
  },
  {
    name: 'GitLab refusing the mint (400)',
    body: VALID,
    intercept: when('POST', '/access_tokens', { status: 400, body: { message: 'expires_at is invalid' } }),
    status: 500,
    error: 'server_error',
    description: D.server,
    outcome: 'server_error',
    reason: /^GitLab refused the mint: /,
    gitlab: [LOOKUP, MINT],
  },
  {
    name: 'GitLab minting on another project (taken back where GitLab says it lives)',
    body: VALID,
    intercept: when('POST', '/access_tokens', {
      status: 201,
      body: { id: 31, token: 'glpat-elsewhere-0123456789', user_id: 3, resource_id: 5 },
    }),
    status: 500,
    error: 'server_error',
    description: D.server,
    outcome: 'server_error',
    reason: 'GitLab minted on resource 5, not 4242',
    gitlab: [LOOKUP, MINT, 'DELETE /api/v4/projects/5/access_tokens/31'],
  },
];

describe('POST /token: every refusal, on the wire', () => {
  let s: Awaited<ReturnType<typeof stack>>;
  before(async () => {
    s = await stack();
  });
  after(() => s.close());
  beforeEach(() => {
    s.fake.requests.length = 0;
    s.fake.intercept = undefined;
  });

  for (const c of TOKEN_CASES) {
    it(`${c.status} ${c.error}: ${c.name}`, async () => {
      s.fake.intercept = c.intercept;
      const body = typeof c.body === 'string' ? c.body : formBody(c.body);
      const res = await post(s.app, '/token', body, c.contentType === undefined ? FORM : c.contentType);
      const requestId = assertErrorWire(res, c.status, c.error, c.description, c.headers);
      const event = auditOf(s.ctx, requestId);
      assert.equal(event.event, 'exchange');
      assert.equal(event.outcome, c.outcome ?? c.error);
      if (typeof c.reason === 'string') assert.equal(event.reason, c.reason);
      else if (c.reason) assert.match(event.reason ?? '', c.reason);
      assert.deepEqual(s.fake.requests.map(requestLine), c.gitlab ?? []);
    });
  }

  it('a validator bug is logged once, with its stack, and no token', async () => {
    const res = await post(s.app, '/token', formBody({ ...VALID, subject_token: TOKENS.bug }));
    const requestId = assertErrorWire(res, 500, 'server_error', D.server);
    const lines = s.ctx.logLines.filter((l) => l.requestId === requestId);
    assert.equal(lines.length, 1);
    const [line] = lines as [
      { level: number; msg: string; error: { type: string; message: string; stack: string } },
    ];
    assert.equal(line.level, 50);
    assert.equal(line.msg, 'unexpected error during token exchange');
    assert.equal(line.error.type, 'TypeError');
    assert.equal(line.error.message, "Cannot read properties of undefined (reading 'kid')");
    assert.match(line.error.stack, /^TypeError: Cannot read properties.*\n\s+at /);
    assert.ok(!JSON.stringify(s.ctx.logLines).includes(TOKENS.bug));
  });

  it('a bug whose message quotes the token: token-shaped text redacted in log and audit', async () => {
    const res = await post(s.app, '/token', formBody({ ...VALID, subject_token: TOKENS.bugQuotingToken }));
    const requestId = assertErrorWire(res, 500, 'server_error', D.server);
    const line = s.ctx.logLines.find((l) => l.requestId === requestId) as
      | { error: { type: string; message: string; stack: string } }
      | undefined;
    assert.equal(line?.error.type, 'SyntaxError');
    assert.match(line?.error.message ?? '', /^cannot parse \[redacted sha256:[0-9a-f]{16}\]$/);
    assert.match(line?.error.stack ?? '', /^SyntaxError: cannot parse \[redacted sha256:[0-9a-f]{16}\]\n/);
    assert.match(auditOf(s.ctx, requestId).reason ?? '', /^unexpected: cannot parse \[redacted sha256:/);
    assert.ok(!JSON.stringify([s.ctx.logLines, s.ctx.audit.events]).includes(TOKENS.bugQuotingToken));
  });

  it('refusals are not logged: only bugs are', async () => {
    const before = s.ctx.logLines.length;
    for (const token of [TOKENS.expired, TOKENS.keysDown, TOKENS.stranger, 'garbage']) {
      await post(s.app, '/token', formBody({ ...VALID, subject_token: token }));
    }
    assert.equal(s.ctx.logLines.length, before);
  });

  it('a failed mint leaves the grant failed in the ledger, and nothing active', async () => {
    s.fake.intercept = when('POST', '/access_tokens', { status: 502, body: 'bad gateway' });
    const res = await post(s.app, '/token', formBody(VALID));
    const requestId = assertErrorWire(res, 503, 'temporarily_unavailable', D.unavailable, {
      'retry-after': '5',
    });
    const { grantId } = auditOf(s.ctx, requestId);
    assert.match(String(grantId), UUID);
    const grant = (await s.ctx.store.getById(grantId!)) as Grant;
    assert.equal(grant.state, 'failed');
    assert.equal(await s.ctx.store.countAllActive(), 0);
  });

  it('a body over server.bodyLimit: 413 before anything else, audited', async () => {
    const res = await post(s.app, '/token', `subject_token=${'a'.repeat(70_000)}`);
    const requestId = assertErrorWire(res, 413, 'invalid_request', D.tooLarge);
    assert.equal(
      res.headers.connection,
      'close',
      'Fastify closes the connection after refusing to read the body',
    );
    assert.deepEqual(
      { ...auditOf(s.ctx, requestId), requestId: 'x' },
      {
        event: 'exchange',
        requestId: 'x',
        clientIp: '127.0.0.1',
        outcome: 'invalid_request',
        reason: 'FST_ERR_CTP_BODY_TOO_LARGE',
      },
    );
  });

  it('a Content-Length that is not the body length: 400, audited', async () => {
    const res = await s.app.inject({
      method: 'POST',
      url: '/token',
      payload: formBody(VALID),
      headers: { 'content-type': FORM, 'content-length': '5' },
    });
    const requestId = assertErrorWire(res, 400, 'invalid_request', D.malformed);
    assert.equal(res.headers.connection, 'close');
    assert.equal(auditOf(s.ctx, requestId).reason, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH');
  });

  it('the content type may carry parameters and any case', async () => {
    for (const type of [
      'application/x-www-form-urlencoded; charset=utf-8',
      'Application/X-WWW-Form-Urlencoded',
    ]) {
      const res = await post(s.app, '/token', formBody({ ...VALID, grant_type: undefined }), type);
      assertErrorWire(res, 400, 'invalid_request', 'grant_type is required');
    }
  });
});

describe('POST /token: error precedence (invalid_request → invalid_target → invalid_scope)', () => {
  let s: Awaited<ReturnType<typeof stack>>;
  before(async () => {
    s = await stack();
  });
  after(() => s.close());

  const ELSEWHERE = 'https://gitlab.invalid/platform/app';
  // Each row is wrong in several ways; the first error in the order wins.
  const table: Array<[string, Record<string, string | undefined>, string]> = [
    [
      'bad token + other GitLab + scope not granted',
      { subject_token: TOKENS.expired, audience: undefined, resource: ELSEWHERE, scope: 'api' },
      'invalid_request',
    ],
    [
      'caller no policy accepts + other GitLab + scope not granted',
      { subject_token: TOKENS.stranger, audience: undefined, resource: ELSEWHERE, scope: 'api' },
      'invalid_request',
    ],
    [
      'caller no policy accepts + target not granted + scope not granted',
      { subject_token: TOKENS.stranger, audience: 'platform/other', scope: 'api' },
      'invalid_request',
    ],
    [
      'unknown policy named + target not granted',
      { policy: 'nope', audience: 'platform/other' },
      'invalid_request',
    ],
    [
      'target not granted + scope not granted',
      { audience: 'platform/other', scope: 'api' },
      'invalid_target',
    ],
    [
      'other GitLab + scope not granted',
      { audience: undefined, resource: ELSEWHERE, scope: 'api' },
      'invalid_target',
    ],
    ['scope not granted only', { scope: 'api' }, 'invalid_scope'],
    // The request's shape comes before everything, the token included.
    ['malformed target + bad token', { subject_token: TOKENS.expired, audience: 'a//b' }, 'invalid_request'],
    [
      'missing subject_token_type + target not granted',
      { subject_token_type: undefined, audience: 'platform/other' },
      'invalid_request',
    ],
    // A malformed scope is a shape error, answered invalid_scope (RFC 6749 §5.2) before the token is looked at.
    [
      'malformed scope + bad token + other GitLab',
      { subject_token: TOKENS.expired, audience: undefined, resource: ELSEWHERE, scope: 'API' },
      'invalid_scope',
    ],
  ];
  for (const [name, override, error] of table) {
    it(`${error}: ${name}`, async () => {
      const res = await post(s.app, '/token', formBody({ ...VALID, ...override }));
      assert.equal(res.statusCode, 400);
      assert.equal((res.json() as { error: string }).error, error);
      assert.deepEqual(s.fake.requests, [], 'no GitLab call for a refusal the policies decide');
    });
  }
});

describe('POST /token: limits (429 temporarily_unavailable with Retry-After)', () => {
  it('per client IP, before the token is looked at', async () => {
    const s = await stack({ rateLimit: { perIdentity: 0, perIp: 1 } });
    try {
      await post(s.app, '/token', formBody({ ...VALID, subject_token: TOKENS.expired }));
      const res = await post(s.app, '/token', formBody(VALID));
      const requestId = assertErrorWire(
        res,
        429,
        'temporarily_unavailable',
        'too many requests from this address; retry later',
        { 'retry-after': '60' },
      );
      assert.equal(auditOf(s.ctx, requestId).reason, 'per-IP rate limit');
      assert.deepEqual(s.ctx.validator.calls, [TOKENS.expired]);
    } finally {
      await s.close();
    }
  });

  it('per identity, after the token and before the policies', async () => {
    const s = await stack({ rateLimit: { perIdentity: 1, perIp: 0 } });
    try {
      await post(s.app, '/token', formBody({ ...VALID, audience: 'platform/other' }));
      const res = await post(s.app, '/token', formBody(VALID));
      const requestId = assertErrorWire(
        res,
        429,
        'temporarily_unavailable',
        'too many exchanges for this identity; retry later',
        { 'retry-after': '60' },
      );
      assert.equal(auditOf(s.ctx, requestId).reason, 'per-identity rate limit');
    } finally {
      await s.close();
    }
  });

  it('active grants per identity, checked as the grant is recorded', async () => {
    const s = await stack({ maxActiveGrantsPerIdentity: 1 });
    try {
      assert.equal((await post(s.app, '/token', formBody(VALID))).statusCode, 200);
      s.fake.requests.length = 0;
      const res = await post(s.app, '/token', formBody(VALID));
      const requestId = assertErrorWire(
        res,
        429,
        'temporarily_unavailable',
        'this identity holds too many active tokens; revoke some or wait for them to expire',
        { 'retry-after': '60' },
      );
      assert.equal(auditOf(s.ctx, requestId).reason, 'active grant cap 1 reached');
      assert.deepEqual(s.fake.requests.map(requestLine), [LOOKUP], 'no mint past the cap');
    } finally {
      await s.close();
    }
  });

  it('a ledger that cannot record the grant: 503, and no mint', async () => {
    const s = await stack();
    try {
      s.ctx.store.insertMinting = async () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      };
      const res = await post(s.app, '/token', formBody(VALID));
      const requestId = assertErrorWire(res, 503, 'temporarily_unavailable', D.unavailable, {
        'retry-after': '5',
      });
      assert.equal(
        auditOf(s.ctx, requestId).reason,
        'store unavailable: SQLITE_FULL: database or disk is full',
      );
      assert.deepEqual(s.fake.requests.map(requestLine), [LOOKUP]);
    } finally {
      await s.close();
    }
  });
});

describe('POST /revoke (RFC 7009)', () => {
  let s: Awaited<ReturnType<typeof stack>>;
  before(async () => {
    s = await stack();
  });
  after(() => s.close());
  beforeEach(() => {
    s.fake.requests.length = 0;
    s.fake.intercept = undefined;
  });

  const assertEmptyOk = (res: LightMyRequestResponse) => {
    assert.deepEqual({ status: res.statusCode, body: res.json() }, { status: 200, body: {} });
    assert.deepEqual(headersOf(res), JSON_HEADERS);
  };

  const refusals: Array<[string, string, string | null, string]> = [
    ['no content type', 'token=x', null, D.notForm],
    ['a duplicated token', 'token=a&token=b', FORM, D.duplicate],
    ['no token', '', FORM, 'token is required'],
    ['an empty token', 'token=', FORM, 'token is required'],
    ['a malformed %', 'token=%', FORM, D.badPercent],
  ];
  for (const [name, body, type, description] of refusals) {
    it(`400 invalid_request: ${name}`, async () => {
      const res = await post(s.app, '/revoke', body, type);
      const requestId = assertErrorWire(res, 400, 'invalid_request', description);
      assert.equal(auditOf(s.ctx, requestId).outcome, 'invalid_request');
    });
  }

  const ignored: Array<[string, string, string]> = [
    ['a token this STS never issued', 'glpat-never-issued-0123456789', 'not an active token of this STS'],
    ['a token too long to be ours', 'x'.repeat(4097), 'token too long to be ours'],
  ];
  for (const [name, token, reason] of ignored) {
    it(`200 {} for ${name}, and no GitLab call`, async () => {
      const res = await post(s.app, '/revoke', formBody({ token, token_type_hint: 'access_token' }));
      assertEmptyOk(res);
      const event = auditOf(s.ctx, String(res.headers['x-request-id']));
      assert.deepEqual([event.outcome, event.reason], ['ignored', reason]);
      assert.deepEqual(s.fake.requests, []);
    });
  }

  it('200 {} for an active token: revoked in GitLab by numeric id, then in the ledger', async () => {
    const minted = await post(s.app, '/token', formBody(VALID));
    const token = (minted.json() as { access_token: string }).access_token;
    const grant = await s.ctx.store.findActiveByTokenSha(sha256Hex(token));
    assert.ok(grant);
    s.fake.requests.length = 0;
    const res = await post(s.app, '/revoke', formBody({ token }));
    assertEmptyOk(res);
    assert.equal(auditOf(s.ctx, String(res.headers['x-request-id'])).outcome, 'revoked');
    const name = encodeURIComponent(`tanuki-sts/unit/deploy/${grant.id}`);
    assert.deepEqual(s.fake.requests.map(requestLine), [
      `DELETE /api/v4/projects/4242/access_tokens/${grant.gitlabTokenId}`,
      `GET /api/v4/projects/4242/access_tokens?per_page=100&search=${name}&state=active`,
    ]);
    assert.equal((await s.ctx.store.getById(grant.id))?.state, 'revoked');
  });

  it('200 {} when GitLab is down: the revocation is left to the reaper', async () => {
    const minted = await post(s.app, '/token', formBody(VALID));
    const token = (minted.json() as { access_token: string }).access_token;
    s.fake.intercept = when('DELETE', '/access_tokens/', { status: 503, body: 'down' });
    const res = await post(s.app, '/revoke', formBody({ token }));
    assertEmptyOk(res);
    assert.equal(auditOf(s.ctx, String(res.headers['x-request-id'])).outcome, 'deferred');
    assert.equal((await s.ctx.store.findActiveByTokenSha(sha256Hex(token)))?.state, 'revoking');
  });

  it('503 with Retry-After when the ledger fails (nothing recorded)', async () => {
    const store = s.ctx.store;
    const original = store.findActiveByTokenSha;
    store.findActiveByTokenSha = async () => {
      throw new Error('SQLITE_IOERR: disk I/O error');
    };
    try {
      const res = await post(s.app, '/revoke', formBody({ token: 'glpat-whatever-0123456789' }));
      const requestId = assertErrorWire(res, 503, 'temporarily_unavailable', D.unavailable, {
        'retry-after': '5',
      });
      const event = auditOf(s.ctx, requestId);
      assert.deepEqual(
        [event.outcome, event.reason],
        ['error', 'store unavailable: SQLITE_IOERR: disk I/O error'],
      );
    } finally {
      store.findActiveByTokenSha = original;
    }
  });

  it('500 server_error for a bug (not a store failure), logged with its stack', async () => {
    const grant = { id: 'g-1', gitlabTokenId: 7, policy: 'deploy', targetKind: 'project' } as Grant;
    const broken = buildApp({
      ...s.ctx,
      store: { ...s.ctx.store, findActiveByTokenSha: async () => grant, requestRevoke: async () => {} },
      now: () => {
        throw new RangeError('clock broke');
      },
    });
    try {
      const res = await post(broken, '/revoke', formBody({ token: 'glpat-whatever-0123456789' }));
      const requestId = assertErrorWire(res, 500, 'server_error', D.server);
      const event = auditOf(s.ctx, requestId);
      assert.deepEqual([event.outcome, event.reason], ['error', 'unexpected: clock broke']);
      const line = s.ctx.logLines.find((l) => l.requestId === requestId) as
        | { msg: string; error: { type: string; stack: string } }
        | undefined;
      assert.equal(line?.msg, 'unexpected error during revocation');
      assert.equal(line?.error.type, 'RangeError');
      assert.match(line?.error.stack ?? '', /^RangeError: clock broke\n\s+at /);
    } finally {
      await broken.close();
    }
  });
});

describe('GET endpoints and the rest of the surface', () => {
  let s: Awaited<ReturnType<typeof stack>>;
  before(async () => {
    s = await stack();
  });
  after(() => s.close());
  const get = (url: string, method: 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS' = 'GET') =>
    s.app.inject({ method, url });

  it('GET /.well-known/oauth-authorization-server (RFC 8414)', async () => {
    const res = await get('/.well-known/oauth-authorization-server');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(headersOf(res), JSON_HEADERS);
    assert.deepEqual(res.json(), {
      issuer: 'https://sts.example.test',
      token_endpoint: 'https://sts.example.test/token',
      revocation_endpoint: 'https://sts.example.test/revoke',
      grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ['none'],
      revocation_endpoint_auth_methods_supported: ['none'],
      scopes_supported: [
        'api',
        'read_api',
        'read_repository',
        'write_repository',
        'read_registry',
        'write_registry',
        'read_virtual_registry',
        'write_virtual_registry',
        'create_runner',
        'manage_runner',
        'ai_features',
        'k8s_proxy',
        'read_package_registry',
        'write_package_registry',
      ],
      azure_scopes: { contoso: 'api://aaaaaaaa-0000-4000-8000-0000000000aa/.default' },
      azure_scope: 'api://aaaaaaaa-0000-4000-8000-0000000000aa/.default',
      gitlab_url: s.fake.url,
    });
  });

  it('GET /healthz', async () => {
    const res = await get('/healthz');
    assert.deepEqual({ status: res.statusCode, body: res.json() }, { status: 200, body: { status: 'ok' } });
    assert.deepEqual(headersOf(res), JSON_HEADERS);
  });

  it('GET /readyz: 200 when store, keys and GitLab are fine', async () => {
    const res = await get('/readyz');
    assert.deepEqual(
      { status: res.statusCode, body: res.json() },
      { status: 200, body: { status: 'ready', checks: { store: true, keys: true, gitlab: true } } },
    );
    assert.deepEqual(headersOf(res), JSON_HEADERS);
  });

  const notReady: Array<[string, (c: TestContext) => Partial<TestContext>, Record<string, boolean>]> = [
    [
      'the ledger is read-only',
      (c) => ({ store: { ...c.store, writable: () => false } }),
      { store: false, keys: true, gitlab: true },
    ],
    [
      'the ledger fails',
      (c) => ({ store: { ...c.store, countAllActive: () => Promise.reject(new Error('x')) } }),
      { store: false, keys: true, gitlab: true },
    ],
    [
      'no signing keys',
      (c) => ({ validator: { ...c.validator, ready: () => false } }),
      { store: true, keys: false, gitlab: true },
    ],
    [
      'GitLab failed its last check',
      (c) => ({ gitlab: { ...c.gitlab, lastStatus: () => ({ ok: false, at: 0 }) } }),
      { store: true, keys: true, gitlab: false },
    ],
  ];
  for (const [name, change, checks] of notReady) {
    it(`GET /readyz: 503 when ${name}`, async () => {
      const app = buildApp({ ...s.ctx, ...change(s.ctx) });
      try {
        const res = await app.inject({ method: 'GET', url: '/readyz' });
        assert.deepEqual(
          { status: res.statusCode, body: res.json() },
          { status: 503, body: { status: 'not ready', checks } },
        );
        assert.deepEqual(headersOf(res), JSON_HEADERS);
      } finally {
        await app.close();
      }
    });
  }

  it('GET /readyz: a bug in a check is a 500 server_error, logged', async () => {
    const gitlab = {
      ...s.ctx.gitlab,
      lastStatus: () => {
        throw new TypeError('lastStatus broke');
      },
    };
    const app = buildApp({ ...s.ctx, gitlab });
    try {
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      const requestId = assertErrorWire(res, 500, 'server_error', D.server);
      const line = s.ctx.logLines.find((l) => l.requestId === requestId);
      assert.equal(line?.msg, 'unexpected error during GET /readyz');
    } finally {
      await app.close();
    }
  });

  it('GET /metrics is 404 here (metrics have their own listener)', async () => {
    const res = await get('/metrics');
    assertErrorWire(res, 404, 'not_found', 'no such endpoint');
  });

  for (const url of ['/', '/nope', '/token/', '/.well-known/openid-configuration']) {
    it(`404 not_found for ${url}`, async () => {
      assertErrorWire(await get(url), 404, 'not_found', 'no such endpoint');
    });
  }

  it('OPTIONS /token is 404 not_found (no CORS preflight)', async () => {
    assertErrorWire(await get('/token', 'OPTIONS'), 404, 'not_found', 'no such endpoint');
  });

  for (const path of ['/token', '/revoke']) {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH'] as const) {
      it(`405 for ${method} ${path}, with Allow: POST (and no request_id in the body)`, async () => {
        const res = await get(path, method);
        assert.deepEqual(
          { status: res.statusCode, body: res.json() },
          { status: 405, body: { error: 'invalid_request', error_description: 'use POST' } },
        );
        assert.deepEqual(headersOf(res), { ...JSON_HEADERS, allow: 'POST' });
      });
    }
  }

  it('a URL that does not decode is 400 in our shape, not Fastify’s (which echoes the path)', async () => {
    for (const url of ['/%', '/token/%zz']) {
      const res = await get(url);
      assertErrorWire(res, 400, 'invalid_request', D.malformed);
      assert.ok(!res.body.includes('FST_ERR'), res.body);
    }
  });
});
