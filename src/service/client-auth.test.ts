/**
 * authenticateClient (RFC 6749 §2.3): body (`client_secret_post`) and HTTP
 * Basic (`client_secret_basic`, parts form-urlencoded per §2.3.1), the
 * failures that are `401 invalid_client`, and the bare `client_id` of a public
 * client. The wire (401 with `WWW-Authenticate`) is in oauth-token.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../util/hash.ts';
import { authenticateClient, createClientRegistry } from './client-auth.ts';
import { InvalidClientError } from './errors.ts';

const SECRET = 's3cret with spaces & symbols: ü%+';
const registry = createClientRegistry({
  ci: { secret: SECRET },
  'gitlab-app': { secret: 'another-secret-value' },
});
const params = (p: Record<string, string>) => new Map(Object.entries(p));
/** RFC 6749 §2.3.1: each part form-urlencoded (application/x-www-form-urlencoded), then base64. */
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${new URLSearchParams({ a: id }).toString().slice(2)}:${new URLSearchParams({ a: secret }).toString().slice(2)}`).toString('base64')}`;

function refused(p: Record<string, string>, authorization?: string): string {
  try {
    authenticateClient(registry, params(p), authorization);
  } catch (err) {
    assert.ok(err instanceof InvalidClientError, String(err));
    assert.equal(err.status, 401);
    assert.equal(err.error, 'invalid_client');
    assert.equal(err.description, 'client authentication failed');
    return err.reason;
  }
  assert.fail('expected invalid_client');
}

describe('client authentication', () => {
  it('client_id + client_secret in the body', () => {
    assert.deepEqual(
      authenticateClient(registry, params({ client_id: 'ci', client_secret: SECRET }), undefined),
      {
        client: 'ci',
        method: 'client_secret_post',
      },
    );
  });

  it('HTTP Basic, both parts form-urlencoded (spaces as +, reserved characters percent-encoded)', () => {
    const header = basic('ci', SECRET);
    assert.match(Buffer.from(header.slice(6), 'base64').toString(), /^ci:s3cret\+with\+spaces\+%26/);
    assert.deepEqual(authenticateClient(registry, params({}), header), {
      client: 'ci',
      method: 'client_secret_basic',
    });
    // The scheme is case-insensitive (RFC 9110 §11.1); the same client_id in the body is allowed.
    assert.equal(
      authenticateClient(registry, params({ client_id: 'ci' }), `bAsIc ${header.slice(6)}`).client,
      'ci',
    );
  });

  it('no client authentication: none; a bare client_id is a public client, audited (hashed)', () => {
    assert.deepEqual(authenticateClient(registry, params({}), undefined), { method: 'none' });
    assert.deepEqual(authenticateClient(registry, params({ client_id: 'some-gitlab-app-id' }), undefined), {
      method: 'none',
      // A public client's name is audited as a hash: it may be a secret sent in the wrong field.
      publicClientId: `sha256:${sha256Hex('some-gitlab-app-id').slice(0, 16)}`,
    });
    // A configured client named without its secret authenticates nothing (its name is audited as is).
    assert.deepEqual(authenticateClient(registry, params({ client_id: 'ci' }), undefined), {
      method: 'none',
      publicClientId: 'ci',
    });
    // Anything but a plain name is audited as a hash.
    const odd = authenticateClient(
      registry,
      params({ client_id: 'glpat-xxxxxxxxxxxxxxxxxxxx<script>' }),
      undefined,
    );
    assert.match(odd.publicClientId ?? '', /^sha256:[0-9a-f]{16}$/);
  });

  it('401 for a wrong secret, an unknown client, a secret without client_id, two methods', () => {
    assert.equal(
      refused({ client_id: 'ci', client_secret: `${SECRET}x` }),
      'wrong secret for client ci (client_secret_post)',
    );
    assert.equal(
      refused({ client_id: 'ci', client_secret: '' }),
      'wrong secret for client ci (client_secret_post)',
    );
    assert.equal(refused({}, basic('ci', 'nope')), 'wrong secret for client ci (client_secret_basic)');
    assert.equal(
      refused({ client_id: 'nobody', client_secret: SECRET }),
      `unknown client sha256:${sha256Hex('nobody').slice(0, 16)} (client_secret_post)`,
    );
    assert.equal(refused({ client_secret: SECRET }), 'client_secret without client_id');
    assert.equal(
      refused({ client_secret: SECRET }, basic('ci', SECRET)),
      'two client authentication methods (HTTP Basic and client_secret)',
    );
    assert.equal(
      refused({ client_id: 'gitlab-app' }, basic('ci', SECRET)),
      'client_id in the body differs from the HTTP Basic one',
    );
  });

  it('401 for a malformed Authorization header, or another scheme; the reason never quotes it', () => {
    const cases: Array<[string, RegExp]> = [
      ['Bearer glpat-abcdefghijklmnopqrst', /^unsupported authentication scheme Bearer$/],
      ['Basic', /^malformed Basic credentials$/],
      ['Basic !!!!', /^malformed Basic credentials$/],
      [`Basic ${Buffer.from('no-colon').toString('base64')}`, /\(no colon\)$/],
      [`Basic ${Buffer.from(':secret').toString('base64')}`, /without a client_id$/],
      [`Basic ${Buffer.from('ci:%zz').toString('base64')}`, /\(percent-encoding\)$/],
      [`Basic ${Buffer.from([0x63, 0x69, 0x3a, 0xc0, 0xaf]).toString('base64')}`, /\(UTF-8\)$/],
      ['Basic Y2k6c2VjcmV0===', /^malformed Basic credentials/],
      [`Basic ${'A'.repeat(5000)}`, /too long/],
    ];
    for (const [header, reason] of cases) {
      const r = refused({}, header);
      assert.match(r, reason, header);
      assert.ok(!r.includes('glpat-'), r);
    }
  });

  it('built-in property names are ordinary names: constructor needs its secret, toString is unknown', () => {
    const r = createClientRegistry({ constructor: { secret: 'constructor-secret-0123' } });
    assert.equal(
      authenticateClient(
        r,
        params({ client_id: 'constructor', client_secret: 'constructor-secret-0123' }),
        undefined,
      ).client,
      'constructor',
    );
    for (const [id, secret] of [
      ['constructor', 'wrong'],
      ['toString', 'x'],
      ['__proto__', 'x'],
      ['hasOwnProperty', 'x'],
    ]) {
      assert.throws(
        () =>
          authenticateClient(
            r,
            params({ client_id: id as string, client_secret: secret as string }),
            undefined,
          ),
        InvalidClientError,
      );
    }
  });

  it('the registry keeps digests, not secrets', () => {
    const seen = JSON.stringify([...registry.digests.entries()].map(([k, v]) => [k, v.toString('latin1')]));
    assert.ok(!seen.includes(SECRET));
    assert.equal(registry.digests.get('ci')?.length, 32);
  });
});
