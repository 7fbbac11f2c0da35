import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configWith, TENANT } from './fixtures.testutil.ts';
import { IdentityFromClaimsError, identityFromClaims } from './identity-from-claims.ts';

const { issuers } = configWith([{ name: 'p', match: { sub: 'x' } }]);

describe('identityFromClaims (policy test)', () => {
  it('finds the Entra issuer by tid (any case) and copies azp to appid for v2 tokens', () => {
    const id = identityFromClaims(
      { tid: TENANT.toUpperCase(), azp: 'app', oid: 'o', sub: 's', ver: '2.0', roles: ['R', 1] },
      issuers,
    );
    assert.equal(id.issuer, 'contoso');
    assert.equal(id.kind, 'entra');
    assert.equal(id.claims.appid, 'app');
    assert.equal(id.claims.azp, 'app');
    assert.equal(id.clientId, 'app');
    assert.equal(id.objectId, 'o');
    assert.equal(id.version, '2.0');
    assert.deepEqual(id.roles, ['R']);
  });

  it('copies appid to azp for v1 tokens; both present must agree', () => {
    assert.equal(identityFromClaims({ tid: TENANT, appid: 'v1' }, issuers).claims.azp, 'v1');
    const both = identityFromClaims({ tid: TENANT, appid: 'a', azp: 'a' }, issuers);
    assert.deepEqual([both.claims.appid, both.claims.azp], ['a', 'a']);
    // The validator refuses a token whose appid and azp differ; so does policy test.
    assert.throws(() => identityFromClaims({ tid: TENANT, appid: 'a', azp: 'b' }, issuers), /differ/);
  });

  it('finds an OIDC issuer by exact iss, and never normalises its claims', () => {
    const id = identityFromClaims({ iss: 'https://gitlab.example.com', azp: 'x', project_id: '42' }, issuers);
    assert.equal(id.issuer, 'ci');
    assert.equal(Object.hasOwn(id.claims, 'appid'), false);
    assert.throws(
      () => identityFromClaims({ iss: 'https://gitlab.example.com/' }, issuers),
      IdentityFromClaimsError,
    );
  });

  it('takes --issuer over the claims, and refuses unknown issuers and non-objects', () => {
    assert.equal(identityFromClaims({ tid: TENANT }, issuers, 'ci').issuer, 'ci');
    assert.throws(() => identityFromClaims({}, issuers, 'nope'), /not configured/);
    assert.throws(() => identityFromClaims({}, issuers, 'toString'), /not configured/);
    assert.throws(() => identityFromClaims([], issuers), /JSON object/);
    assert.throws(() => identityFromClaims({}, issuers), /pass --issuer/);
  });
});
