import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DiscoveryError, readDiscovery, sourcesFor } from './discovery.ts';
import type { EntraIssuerConfig, OidcIssuerConfig } from './issuer-config.ts';

const TENANT = '3f1e8a2c-5b7d-4c9e-a1f0-2b6d8e4c7a90';
const entra: EntraIssuerConfig = {
  name: 'e',
  kind: 'entra',
  tenant: TENANT,
  authorityHost: 'https://login.microsoftonline.com',
  allowDelegated: false,
  audiences: ['api://x'],
  maxTokenLifetime: 86_700,
};
const oidc: OidcIssuerConfig = {
  name: 'o',
  kind: 'oidc',
  issuer: 'https://gitlab.example.com',
  audiences: ['x'],
  maxTokenLifetime: 3600,
};

describe('sourcesFor', () => {
  it('Entra: the tenant’s own v1 and v2 discovery documents under the authority host', () => {
    const s = sourcesFor('e', entra);
    assert.deepEqual(
      s.map((x) => [x.version, x.discoveryUrl]),
      [
        ['1.0', `https://login.microsoftonline.com/${TENANT}/.well-known/openid-configuration`],
        ['2.0', `https://login.microsoftonline.com/${TENANT}/v2.0/.well-known/openid-configuration`],
      ],
    );
    assert.equal(s[0]?.issuer, undefined, 'Entra issuer strings come from discovery');
  });

  it('OIDC: issuer byte for byte; discovery URL without a doubled slash; none with jwksUri', () => {
    assert.equal(
      sourcesFor('o', oidc)[0]?.discoveryUrl,
      'https://gitlab.example.com/.well-known/openid-configuration',
    );
    const slash = sourcesFor('o', { ...oidc, issuer: 'https://idp.example/realm/' })[0];
    assert.equal(slash?.issuer, 'https://idp.example/realm/');
    assert.equal(slash?.discoveryUrl, 'https://idp.example/realm/.well-known/openid-configuration');
    const explicit = sourcesFor('o', {
      ...oidc,
      jwksUri: 'https://gitlab.example.com/oauth/discovery/keys',
    })[0];
    assert.equal(explicit?.discoveryUrl, undefined);
    assert.equal(explicit?.jwksUri, 'https://gitlab.example.com/oauth/discovery/keys');
  });
});

describe('readDiscovery', () => {
  const [v1, v2] = sourcesFor('e', entra) as [
    ReturnType<typeof sourcesFor>[0],
    ReturnType<typeof sourcesFor>[0],
  ];
  const jwks = `https://login.microsoftonline.com/${TENANT}/discovery/v2.0/keys`;

  it('takes Entra’s issuer as published, substituting a {tenantid} template', () => {
    assert.deepEqual(readDiscovery(v1, { issuer: `https://sts.windows.net/${TENANT}/`, jwks_uri: jwks }), {
      issuer: `https://sts.windows.net/${TENANT}/`,
      jwksUri: jwks,
    });
    assert.equal(
      readDiscovery(v2, { issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0', jwks_uri: jwks })
        .issuer,
      `https://login.microsoftonline.com/${TENANT}/v2.0`,
    );
  });

  const bad: Array<[string, ReturnType<typeof sourcesFor>[0], unknown]> = [
    ['not an object', v2, []],
    ['issuer missing', v2, { jwks_uri: jwks }],
    ['issuer a number', v2, { issuer: 1, jwks_uri: jwks }],
    ['jwks_uri missing', v2, { issuer: `https://login.microsoftonline.com/${TENANT}/v2.0` }],
    [
      'jwks_uri http',
      v2,
      { issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`, jwks_uri: 'http://evil/keys' },
    ],
    [
      'Entra issuer of another tenant',
      v2,
      { issuer: 'https://login.microsoftonline.com/common/v2.0', jwks_uri: jwks },
    ],
    ['Entra issuer not https', v2, { issuer: `http://evil.example/${TENANT}/`, jwks_uri: jwks }],
    [
      'OIDC issuer with a trailing slash added',
      sourcesFor('o', oidc)[0]!,
      { issuer: `${oidc.issuer}/`, jwks_uri: jwks },
    ],
    [
      'OIDC issuer case variant',
      sourcesFor('o', oidc)[0]!,
      { issuer: oidc.issuer.toUpperCase(), jwks_uri: jwks },
    ],
  ];
  for (const [label, spec, doc] of bad) {
    it(`refuses: ${label}`, () => {
      assert.throws(() => readDiscovery(spec, doc), DiscoveryError);
    });
  }
});
