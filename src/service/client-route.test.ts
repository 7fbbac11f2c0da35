/**
 * GET /client/tanuki-sts.mjs and the metadata's `client_uri` / `client_sha256`
 * through fastify's inject(), with a small stand-in bundle (the real one is
 * built in test/integration/client-bundle.test.ts): exact headers, ETag and
 * 304, HEAD, the digest of exactly the served bytes, 404 everywhere else under
 * /client/ and when no bundle is served.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type FakeGitlab, startFakeGitlab } from '../gitlab/fake-gitlab.testutil.ts';
import { buildApp, etagMatches } from './app.ts';
import { clientBundleOf } from './client-bundle.ts';
import { type TestContext, testContext } from './context.testutil.ts';
import { assertErrorWire, headersOf } from './wire.testutil.ts';

// Not ASCII on purpose: the digest is of the bytes, and the length is in bytes.
const BYTES = Buffer.from("#!/usr/bin/env node\nconsole.log('tanuki — client');\n", 'utf8');
const SHA = createHash('sha256').update(BYTES).digest('hex');
const PATH = '/client/tanuki-sts.mjs';

/** Headers of a successful answer, X-Request-Id and transport aside (literals: these pin the wire). */
const CLIENT_HEADERS = {
  'content-type': 'text/javascript; charset=utf-8',
  'cache-control': 'public, max-age=300',
  etag: `"${SHA}"`,
  'x-content-type-options': 'nosniff',
};

describe('GET /client/tanuki-sts.mjs', () => {
  let fake: FakeGitlab;
  let ctx: TestContext;
  let app: FastifyInstance;
  before(async () => {
    fake = await startFakeGitlab();
    ctx = testContext(fake.url);
    ctx.clientBundle = clientBundleOf(BYTES, 'config');
    app = buildApp(ctx);
  });
  after(async () => {
    await app.close();
    await ctx.close();
    await fake.close();
  });

  it('answers the bytes, with a strong ETag (the SHA-256), Cache-Control and nosniff', async () => {
    const res = await app.inject({ method: 'GET', url: PATH });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.rawPayload, BYTES);
    assert.equal(res.headers['content-length'], String(BYTES.length));
    assert.deepEqual(headersOf(res), CLIENT_HEADERS);
  });

  it('the metadata advertises client_uri (absolute, from publicUrl) and client_sha256 of exactly those bytes', async () => {
    const meta = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
    assert.equal(meta.client_uri, 'https://sts.example.test/client/tanuki-sts.mjs');
    assert.match(meta.client_sha256, /^[0-9a-f]{64}$/);
    const served = await app.inject({ method: 'GET', url: new URL(meta.client_uri).pathname });
    assert.equal(createHash('sha256').update(served.rawPayload).digest('hex'), meta.client_sha256);
  });

  it('HEAD: the same headers and length, no body', async () => {
    const res = await app.inject({ method: 'HEAD', url: PATH });
    assert.equal(res.statusCode, 200);
    assert.equal(res.rawPayload.length, 0);
    assert.equal(res.headers['content-length'], String(BYTES.length));
    assert.deepEqual(headersOf(res), CLIENT_HEADERS);
  });

  for (const [name, header] of [
    ['the ETag', `"${SHA}"`],
    ['the weak form of the ETag', `W/"${SHA}"`],
    ['a list holding the ETag', `"other", "${SHA}"`],
    ['*', '*'],
  ] as const) {
    it(`If-None-Match with ${name}: 304, no body, the ETag and Cache-Control again`, async () => {
      for (const method of ['GET', 'HEAD'] as const) {
        const res = await app.inject({ method, url: PATH, headers: { 'if-none-match': header } });
        assert.equal(res.statusCode, 304, method);
        assert.equal(res.rawPayload.length, 0);
        assert.equal(res.headers.etag, `"${SHA}"`);
        assert.equal(res.headers['cache-control'], 'public, max-age=300');
        assert.equal(res.headers.pragma, undefined);
      }
    });
  }

  for (const header of ['"other"', SHA, `"${SHA.slice(0, 63)}"`, `"${SHA.toUpperCase()}"`, '']) {
    it(`If-None-Match ${JSON.stringify(header.slice(0, 20))}…: no match, 200 with the bytes`, async () => {
      const res = await app.inject({ method: 'GET', url: PATH, headers: { 'if-none-match': header } });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.rawPayload, BYTES);
    });
  }

  for (const url of [
    '/client/',
    '/client',
    '/client/tanuki-sts.js',
    '/client/tanuki-sts.mjs.map',
    '/client/tanuki-sts.mjs/',
    '/client//tanuki-sts.mjs',
    '/CLIENT/tanuki-sts.mjs',
    '/client/TANUKI-STS.MJS',
    '/client/../package.json',
    '/client/..%2fpackage.json',
    '/client/%2e%2e/%2e%2e/package.json',
    '/client/..%5c..%5cpackage.json',
    '/client/tanuki-sts-client.mjs',
    '/dist/tanuki-sts-client.mjs',
  ]) {
    it(`404 not_found (no-store) for ${url}`, async () => {
      const res = await app.inject({ method: 'GET', url });
      assertErrorWire(res, 404, 'not_found', 'no such endpoint');
    });
  }

  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
    it(`${method} ${PATH}: 404, nothing replaced`, async () => {
      const res = await app.inject({
        method,
        url: PATH,
        payload: 'x',
        headers: { 'content-type': 'text/plain' },
      });
      assertErrorWire(res, 404, 'not_found', 'no such endpoint');
      const again = await app.inject({ method: 'GET', url: PATH });
      assert.deepEqual(again.rawPayload, BYTES);
    });
  }
});

describe('no bundle served (server.clientBundle: false, or none found)', () => {
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

  it('GET and HEAD /client/tanuki-sts.mjs: 404', async () => {
    assertErrorWire(await app.inject({ method: 'GET', url: PATH }), 404, 'not_found', 'no such endpoint');
    const head = await app.inject({ method: 'HEAD', url: PATH });
    assert.equal(head.statusCode, 404);
  });

  it('the metadata has neither client_uri nor client_sha256', async () => {
    const meta = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
    assert.equal('client_uri' in meta, false);
    assert.equal('client_sha256' in meta, false);
    assert.equal(meta.issuer, 'https://sts.example.test');
  });
});

describe('etagMatches (RFC 9110 §13.1.2, weak comparison)', () => {
  const etag = '"abc"';
  const cases: Array<[string | string[] | undefined, boolean]> = [
    [undefined, false],
    ['"abc"', true],
    ['W/"abc"', true],
    [' "x" ,W/"abc" ', true],
    [['"x"', '"abc"'], true],
    ['*', true],
    [' * ', true],
    ['abc', false],
    ['"abcd"', false],
    ['"ABC"', false],
    ['w/"abc"', false],
    ['', false],
    [`${'"x", '.repeat(1000)}"abc"`, false],
  ];
  for (const [header, expected] of cases) {
    it(`${JSON.stringify(header)?.slice(0, 40)} → ${expected}`, () => {
      assert.equal(etagMatches(header, etag), expected);
    });
  }
});
