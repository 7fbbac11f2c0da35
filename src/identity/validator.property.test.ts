/**
 * Properties over arbitrary input, with an in-memory `fetchJson` (the
 * injection point) instead of a server: whatever the token, `validate` either
 * returns an Identity for the one genuine token or throws a SubjectTokenError
 * (never another error type, never a success for a mutated token), and makes
 * no request beyond the one JWKS refetch its cooldown allows.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { SubjectTokenError } from './errors.ts';
import {
  entraClaims,
  makeKey,
  sign,
  T0,
  TENANT,
  type TestKey,
  V1_ISS,
  V2_ISS,
} from './fake-issuers.testutil.ts';
import { createTokenValidator, type TokenValidatorHandle } from './index.ts';
import { parseStrictJson, StrictJsonError } from './strict-json.ts';

const AUTHORITY = 'https://login.example.test';

describe('validate over arbitrary and mutated tokens', () => {
  let key: TestKey;
  let v: TokenValidatorHandle;
  let genuine: string;
  const requested: string[] = [];

  before(async () => {
    key = await makeKey('prop-key', 'RS256');
    const jwks = { keys: [key.publicJwk] };
    const docs: Record<string, unknown> = {
      [`${AUTHORITY}/${TENANT}/.well-known/openid-configuration`]: {
        issuer: V1_ISS,
        jwks_uri: `${AUTHORITY}/${TENANT}/discovery/keys`,
      },
      [`${AUTHORITY}/${TENANT}/v2.0/.well-known/openid-configuration`]: {
        issuer: V2_ISS,
        jwks_uri: `${AUTHORITY}/${TENANT}/discovery/v2.0/keys`,
      },
      [`${AUTHORITY}/${TENANT}/discovery/keys`]: jwks,
      [`${AUTHORITY}/${TENANT}/discovery/v2.0/keys`]: jwks,
    };
    v = createTokenValidator({
      issuers: {
        entra: {
          name: 'entra',
          kind: 'entra',
          tenant: TENANT,
          authorityHost: AUTHORITY,
          allowDelegated: false,
          audiences: ['api://99999999-8888-4777-8666-555555555555', '99999999-8888-4777-8666-555555555555'],
          maxTokenLifetime: 86_700,
        },
      },
      clockSkewSeconds: 300,
      now: () => T0,
      backgroundRefreshMs: 0,
      fetchJson: async (url) => {
        requested.push(url);
        if (!(url in docs)) throw new Error(`unexpected fetch ${url}`);
        return structuredClone(docs[url]);
      },
    });
    await v.init();
    assert.equal(v.ready(), true);
    genuine = await sign({ alg: 'RS256', typ: 'JWT', kid: key.kid }, entraClaims(2), key.privateKey);
    assert.equal((await v.validate(genuine)).version, '2.0');
    requested.length = 0;
  });

  const onlySubjectTokenErrors = async (token: string) => {
    try {
      await v.validate(token);
    } catch (err) {
      if (err instanceof SubjectTokenError) return false;
      throw err;
    }
    return true;
  };

  it('arbitrary strings are refused with a SubjectTokenError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.base64String({ maxLength: 300 }),
          fc.array(fc.base64String({ maxLength: 80 }), { maxLength: 6 }).map((a) => a.join('.')),
        ),
        async (token) => {
          assert.equal(await onlySubjectTokenErrors(token), false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('any single-character change, deletion or insertion of the genuine token is refused', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 10_000 }),
        fc.constantFrom(...alphabet.split('')),
        fc.constantFrom('replace', 'delete', 'insert'),
        async (n, ch, op) => {
          const i = n % genuine.length;
          const mutated =
            op === 'replace'
              ? genuine.slice(0, i) + ch + genuine.slice(i + 1)
              : op === 'delete'
                ? genuine.slice(0, i) + genuine.slice(i + 1)
                : genuine.slice(0, i) + ch + genuine.slice(i);
          fc.pre(mutated !== genuine);
          assert.equal(
            await onlySubjectTokenErrors(mutated),
            false,
            `accepted a mutation at ${i} (${op} ${ch})`,
          );
        },
      ),
      { numRuns: 400 },
    );
    // A mutated kid may cost the one refetch the cooldown allows, nothing more.
    assert.ok(requested.length <= 1, requested.join());
  });
});

describe('parseStrictJson agrees with JSON.parse', () => {
  it('on every JSON text without duplicates, NUL, lone surrogates or deep nesting', () => {
    fc.assert(
      fc.property(fc.json({ depthSize: 'small' }), (text) => {
        let strict: unknown;
        try {
          strict = parseStrictJson(text, 64);
        } catch (err) {
          assert.ok(err instanceof StrictJsonError);
          // The only documented differences.
          assert.match(err.message, /NUL|surrogate|too deep|duplicate/, `${err.message} on ${text}`);
          return;
        }
        assert.deepEqual(strict, JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });
});
