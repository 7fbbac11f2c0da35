/**
 * Property: whatever arrives at /token and /revoke — wrong methods and content
 * types, duplicated, missing and unknown parameters, invalid percent-encoding
 * and UTF-8, raw bytes, huge values, mutations of a valid request — the STS
 * answers a well-formed 4xx JSON error (or RFC 7009's 200 on /revoke, or a
 * well-formed token response when the mutation left the request valid), never
 * a 5xx, and keeps serving. 10,000 requests over keep-alive connections.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Pool } from 'undici';
import { EXCHANGE, PROJECT, type Stack, startStack } from '../helpers/stack.ts';
import { assertAuditClean, closeEntraAgent, exchange, mintEntra, parts } from './helpers/attack.ts';

const BATCH = 50;
const RUNS = 200; // 200 × 50 = 10,000 requests
const DESCRIPTION_CHARS = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

interface FuzzRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  body: string | Buffer | undefined;
  /** Client authentication attempts (issue 18): HTTP Basic, well-formed or not, other schemes. */
  authorization: string | undefined;
}

describe('fuzzing /token and /revoke', () => {
  let s: Stack;
  let pool: Pool;
  let valid: string;
  const tally = new Map<string, number>();

  before(async () => {
    s = await startStack();
    valid = await mintEntra(s);
    pool = new Pool(s.sts.url, { connections: 8, pipelining: 1, keepAliveTimeout: 30_000 });
  });
  after(async () => {
    await pool.close();
    assertAuditClean(s, []);
    await closeEntraAgent(s);
    await s.close();
  });

  function arbitraries() {
    const gitlab = s.gitlab.url;
    const [h, p, sig] = valid.split('.') as [string, string, string];
    const paramName = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.constantFrom(
          'grant_type',
          'subject_token',
          'subject_token_type',
          'requested_token_type',
          'resource',
          'audience',
          'scope',
          'actor_token',
          'actor_token_type',
          'token',
          'token_type_hint',
          'expires_in',
          'policy',
          'client_id',
          'client_secret',
        ),
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }) },
    );
    const tokenLike = fc.oneof(
      fc.constant(valid),
      fc.constant(`${h}.${p}.`),
      fc.constant(`${h}.${p}`),
      fc.constant(`${h}.${p}.${sig}.${sig}`),
      fc.constant('glpat-0000000000000000000000'),
      fc
        .string({ minLength: 1, maxLength: 40 })
        .map((x) => `${h}.${Buffer.from(x).toString('base64url')}.${sig}`),
      fc.base64String({ maxLength: 200 }),
    );
    const value = fc.oneof(
      { weight: 6, arbitrary: tokenLike },
      {
        weight: 6,
        arbitrary: fc.constantFrom(
          EXCHANGE.grant_type,
          EXCHANGE.subject_token_type,
          'urn:ietf:params:oauth:token-type:jwt',
          'urn:ietf:params:oauth:token-type:id_token',
          'client_credentials',
          PROJECT,
          `${gitlab}/${PROJECT}`,
          `${gitlab}/${PROJECT}#frag`,
          'https://gitlab.attacker.example/x',
          'platform',
          'read_repository read_api',
          'api sudo',
          '3600',
          '-1',
          '1e9',
          'image-build',
          'access_token',
          '',
        ),
      },
      { weight: 3, arbitrary: fc.string({ maxLength: 60 }) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
      { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
      { weight: 1, arbitrary: fc.integer({ min: 1000, max: 70_000 }).map((n) => 'A'.repeat(n)) },
    );
    const badEscape = fc.constantFrom(
      '%',
      '%4',
      '%zz',
      '%C0%AF',
      '%ED%A0%80',
      '%FF',
      '%E2%82',
      '%00',
      '%F4%90%80%80',
      '+',
      '%2B',
      '%26',
    );
    const encoding = fc.constantFrom('component', 'raw', 'broken');
    const pair = fc.tuple(paramName, value, encoding, badEscape).map(([n, v, enc, bad]) => {
      if (enc === 'raw') return `${n}=${v}`;
      if (enc === 'broken') return `${encodeURIComponent(n)}=${encodeURIComponent(v)}${bad}`;
      return `${encodeURIComponent(n)}=${encodeURIComponent(v)}`;
    });
    const validPairs = [
      `grant_type=${encodeURIComponent(EXCHANGE.grant_type)}`,
      `subject_token_type=${encodeURIComponent(EXCHANGE.subject_token_type)}`,
      `subject_token=${valid}`,
      `audience=${encodeURIComponent(PROJECT)}`,
    ];
    const form = fc.oneof(
      // Random parameter lists, duplicates likely.
      fc.array(pair, { maxLength: 12 }).map((ps) => ps.join('&')),
      // The valid request with one parameter missing, duplicated, or with extra ones.
      fc
        .tuple(fc.subarray(validPairs), fc.array(pair, { maxLength: 3 }), fc.boolean())
        .chain(([ps, extra, shuffle]) =>
          (shuffle
            ? fc.shuffledSubarray([...ps, ...extra], { minLength: ps.length + extra.length })
            : fc.constant([...ps, ...extra])
          ).map((all) => all.join('&')),
        ),
      fc.constantFrom(...validPairs).map((x) => `${validPairs.join('&')}&${x}`),
      // The valid request, mutated byte-wise.
      fc
        .array(fc.tuple(fc.nat(), fc.nat({ max: 30 }), fc.oneof(fc.string({ maxLength: 4 }), badEscape)), {
          minLength: 1,
          maxLength: 4,
        })
        .map((muts) => {
          let body = validPairs.join('&');
          for (const [at, del, ins] of muts) {
            const i = at % (body.length + 1);
            body = body.slice(0, i) + ins + body.slice(i + del);
          }
          return body;
        }),
      // Revocation requests.
      fc
        .tuple(tokenLike, fc.option(fc.constantFrom('access_token', 'refresh_token', 'x')))
        .map(([t, hint]) => `token=${encodeURIComponent(t)}${hint ? `&token_type_hint=${hint}` : ''}`),
    );
    const body = fc.oneof(
      { weight: 10, arbitrary: form },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)) },
      {
        weight: 1,
        arbitrary: form.map((f) =>
          // The same form as raw Latin-1 / UTF-8 bytes: invalid UTF-8 on the wire.
          Buffer.concat([Buffer.from(f), Buffer.from([0xc0, 0xaf, 0xff, 0xfe])]),
        ),
      },
      { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constant('') },
    );
    const contentType = fc.oneof(
      { weight: 10, arbitrary: fc.constant('application/x-www-form-urlencoded') },
      {
        weight: 4,
        arbitrary: fc.constantFrom(
          'application/x-www-form-urlencoded; charset=utf-8',
          'application/x-www-form-urlencoded; charset=iso-8859-1',
          'APPLICATION/X-WWW-FORM-URLENCODED',
          'application/x-www-form-urlencoded;',
          'application/json',
          'text/plain',
          'multipart/form-data; boundary=xyz',
          'application/x-www-form-urlencodedx',
          'application/octet-stream',
          '*/*',
          '',
        ),
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    );
    const method = fc.oneof(
      { weight: 12, arbitrary: fc.constant('POST') },
      { weight: 2, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') },
    );
    const path = fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom('/token', '/revoke', '/oauth/token') },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          '/token/',
          '/TOKEN',
          '//token',
          '/token?grant_type=x',
          '/revoke?token=glpat-x',
          '/%74oken',
          '/token/..',
          '/token;x',
          '/token%00',
          '/.well-known/oauth-authorization-server',
          '/nope',
        ),
      },
    );
    const authorization = fc.oneof(
      { weight: 10, arbitrary: fc.constant(undefined) },
      {
        weight: 2,
        arbitrary: fc
          .tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 }))
          .map(([id, secret]) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          'Basic',
          'Basic ===',
          'Bearer glpat-0000000000000000000000',
          'Basic %zz',
          '',
        ),
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((x) => `Basic ${x}`) },
    );
    return fc.record<FuzzRequest>({ method, path, contentType, body, authorization });
  }

  function check(req: FuzzRequest, status: number, type: string | undefined, text: string): void {
    const where = `${req.method} ${req.path} [${req.contentType}] ${String(req.body ?? '').slice(0, 200)}`;
    assert.ok(status < 500, `${status} for ${where}: ${text.slice(0, 300)}`);
    if (req.method === 'HEAD') return;
    if (status === 200) {
      if (req.method === 'GET') return; // the metadata document (fuzzed path)
      const body = JSON.parse(text);
      if (req.path.startsWith('/revoke')) assert.deepEqual(body, {}, where);
      else {
        // The mutation left the request valid: a well-formed RFC 8693 answer.
        assert.match(body.access_token, /^glpat-/, where);
        assert.equal(body.token_type, 'Bearer', where);
      }
      return;
    }
    assert.ok(status >= 400, `${status} for ${where}`);
    assert.match(
      String(type),
      /^application\/json/,
      `${status} without JSON for ${where}: ${text.slice(0, 200)}`,
    );
    const body = JSON.parse(text);
    assert.equal(typeof body.error, 'string', where);
    assert.match(body.error, /^[a-z_]+$/, where);
    assert.equal(typeof body.error_description, 'string', where);
    assert.match(body.error_description, DESCRIPTION_CHARS, where);
    assert.ok(!text.includes(valid), `the answer echoes the subject token: ${where}`);
  }

  it(`${BATCH * RUNS} random and mutated requests: never a 5xx, always a well-formed answer`, async (t) => {
    const started = performance.now();
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(arbitraries(), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        await Promise.all(
          batch.map(async (req) => {
            const headers: Record<string, string> = {};
            if (req.contentType !== undefined) headers['content-type'] = req.contentType;
            // Header values must be Latin-1 without CR/LF to be sent at all; others are dropped here.
            if (req.authorization !== undefined && /^[\x20-\x7e]*$/.test(req.authorization))
              headers.authorization = req.authorization;
            const withBody = req.method !== 'GET' && req.method !== 'HEAD';
            const res = await pool.request({
              method: req.method as 'POST',
              path: req.path,
              headers,
              body: withBody ? req.body : undefined,
            });
            const text = await res.body.text();
            sent++;
            const key = `${req.path.startsWith('/revoke') ? 'revoke' : 'token'} ${res.statusCode}`;
            tally.set(key, (tally.get(key) ?? 0) + 1);
            check(req, res.statusCode, res.headers['content-type'] as string | undefined, text);
          }),
        );
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(
      `${sent} requests in ${seconds.toFixed(1)} s; ${[...tally].map(([k, n]) => `${k}: ${n}`).join(', ')}`,
    );
    assert.ok(sent >= BATCH * RUNS);
  });

  it('the STS still serves: a valid exchange succeeds afterwards', async () => {
    const res = await exchange(s, await mintEntra(s));
    assert.equal(res.status, 200, res.text);
    assert.ok(parts(valid).payload);
    const health = await fetch(`${s.sts.url}/healthz`);
    assert.equal(health.status, 200);
  });
});
