import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type FakeSts, okToken, startFakeSts } from '../../test/helpers/fake-sts.ts';
import { TOKEN_TYPE_JWT } from '../util/oauth-urns.ts';
import { EXIT, StsRefusedError, StsUnavailableError } from './errors.ts';
import { StsClient } from './sts.ts';

describe('StsClient', () => {
  let fake: FakeSts;
  const sleeps: number[] = [];
  const client = (retries = 2) =>
    new StsClient({ baseUrl: `${fake.url}/`, retries, sleep: async (ms) => void sleeps.push(ms) });
  before(async () => {
    fake = await startFakeSts();
  });
  after(() => fake.close());
  beforeEach(() => {
    fake.requests.length = 0;
    fake.tokenAnswers = [okToken()];
    sleeps.length = 0;
  });

  it('sends an RFC 8693 form and returns the grant with the body as received', async () => {
    const res = await client().exchange({
      subjectToken: 'eyJhbGciOi.subject.token',
      subjectTokenType: TOKEN_TYPE_JWT,
      resource: 'https://gitlab.example.com/platform/lib',
      scopes: ['read_repository', 'read_api'],
      ttlSeconds: 600,
    });
    assert.deepEqual(fake.requests[0]?.form, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'eyJhbGciOi.subject.token',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      resource: 'https://gitlab.example.com/platform/lib',
      scope: 'read_repository read_api',
      expires_in: '600',
    });
    assert.equal(res.accessToken, 'glpat-FAKEtoken1234567890');
    assert.deepEqual(res.scopes, ['read_repository', 'read_api']);
    assert.equal(res.expiresIn, 900);
    assert.equal(JSON.parse(res.body).token_type, 'Bearer');
  });

  it('maps invalid_target to exit 4 with the resource and advice, never the subject token', async () => {
    fake.tokenAnswers = [
      {
        status: 400,
        body: {
          error: 'invalid_target',
          error_description: 'the requested resource is unknown',
          request_id: 'r-1',
        },
      },
    ];
    const err = await client()
      .exchange({ subjectToken: 'SECRET-SUBJECT-123', subjectTokenType: TOKEN_TYPE_JWT, audience: 'no/such' })
      .catch((e) => e);
    assert.ok(err instanceof StsRefusedError);
    assert.equal(err.exitCode, EXIT.refused);
    assert.match(err.message, /invalid_target/);
    assert.match(err.message, /no\/such/);
    assert.match(err.message, /request_id r-1/);
    assert.doesNotMatch(err.message, /SECRET-SUBJECT/);
  });

  it('maps invalid_request to advice about the identity and policy', async () => {
    fake.tokenAnswers = [
      {
        status: 400,
        body: { error: 'invalid_request', error_description: 'the subject token is invalid or not accepted' },
      },
    ];
    const err = await client()
      .exchange({ subjectToken: 'x', subjectTokenType: TOKEN_TYPE_JWT, audience: 'a/b' })
      .catch((e) => e);
    assert.equal(err.exitCode, 4);
    assert.match(err.message, /no STS policy accepts it/);
  });

  it('retries 503 after Retry-After, then succeeds', async () => {
    fake.tokenAnswers = [
      { status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '3' } },
      okToken(),
    ];
    const res = await client().exchange({
      subjectToken: 'x',
      subjectTokenType: TOKEN_TYPE_JWT,
      audience: 'a/b',
    });
    assert.equal(res.accessToken, 'glpat-FAKEtoken1234567890');
    assert.deepEqual(sleeps, [3000]);
    assert.equal(fake.requests.filter((r) => r.path === '/token').length, 2);
  });

  it('gives up on 429 with exit 5 and names Retry-After', async () => {
    fake.tokenAnswers = [
      {
        status: 429,
        body: { error: 'temporarily_unavailable', request_id: 'r-9' },
        headers: { 'retry-after': '7' },
      },
    ];
    const err = await client(0)
      .exchange({ subjectToken: 'x', subjectTokenType: TOKEN_TYPE_JWT, audience: 'a/b' })
      .catch((e) => e);
    assert.ok(err instanceof StsUnavailableError);
    assert.equal(err.exitCode, EXIT.unavailable);
    assert.equal(err.retryAfterSeconds, 7);
    assert.match(err.message, /rate limited.*retry after 7s \(Retry-After\)/);
  });

  it('does not wait for a Retry-After longer than its limit', async () => {
    fake.tokenAnswers = [{ status: 503, body: {}, headers: { 'retry-after': '600' } }];
    const err = await client(2)
      .exchange({ subjectToken: 'x', subjectTokenType: TOKEN_TYPE_JWT, audience: 'a/b' })
      .catch((e) => e);
    assert.equal(err.exitCode, 5);
    assert.deepEqual(sleeps, []);
  });

  it('500 is not retried and is exit 5', async () => {
    fake.tokenAnswers = [{ status: 500, body: { error: 'server_error' } }];
    const err = await client()
      .exchange({ subjectToken: 'x', subjectTokenType: TOKEN_TYPE_JWT, audience: 'a/b' })
      .catch((e) => e);
    assert.equal(err.exitCode, 5);
    assert.match(err.message, /HTTP 500 server_error/);
    assert.equal(fake.requests.length, 1);
  });

  it('an unreachable STS is exit 5 after retries, naming ECONNREFUSED and --sts', async () => {
    const c = new StsClient({
      baseUrl: `http://127.0.0.1:${await closedPort()}`,
      retries: 1,
      sleep: async () => {},
    });
    const err = await c
      .exchange({ subjectToken: 'x', subjectTokenType: TOKEN_TYPE_JWT, audience: 'a/b' })
      .catch((e) => e);
    assert.ok(err instanceof StsUnavailableError);
    assert.match(err.message, /ECONNREFUSED/);
    assert.match(err.message, /--sts/);
  });

  it('fetches metadata once and revokes with token=', async () => {
    const c = client();
    const [a, b] = await Promise.all([c.metadata(), c.metadata()]);
    assert.equal(a.azure_scope, 'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default');
    assert.equal(a, b);
    await c.revoke('glpat-revoke-me-please');
    assert.equal(fake.requests.filter((r) => r.path.startsWith('/.well-known')).length, 1);
    assert.equal(fake.requests.at(-1)?.form.token, 'glpat-revoke-me-please');
  });
});

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 1));
    });
  });
}
