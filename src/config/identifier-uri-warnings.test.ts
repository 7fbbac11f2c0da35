import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IDENTIFIER_URI_RESTRICTIONS_URL,
  identifierUriWarnings,
  isSecureApiUri,
} from './identifier-uri-warnings.ts';

const APP = '9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

const entra = (audiences: string[]) => ({ kind: 'entra', audiences });

describe('check-config: Entra identifier URI advice', () => {
  for (const uri of [
    `api://${APP}`,
    `api://${APP.toUpperCase()}`,
    `api://${APP}/`,
    `api://${TENANT}/tanuki-sts`,
    `api://${TENANT}/${APP}`,
    `api://${APP}/tanuki-sts`,
    `api://tanuki/${APP}`,
    'api://contoso.com/tanuki-sts', // may be a verified domain: not checkable offline
    'api://sts.contoso.onmicrosoft.com/api',
  ]) {
    it(`${uri}: secure pattern, no warning`, () => {
      assert.equal(isSecureApiUri(uri), true);
      assert.deepEqual(identifierUriWarnings({ contoso: entra([uri, APP]) }), []);
    });
  }

  for (const uri of [
    'api://my-sts',
    'api://my-sts/',
    'api://my-sts/v1',
    'api://contoso.com', // a domain needs a path in the api:// form
    `api://${TENANT.slice(0, 35)}`,
    'API://MY-STS',
  ]) {
    it(`${uri}: a warning naming the rule and the page`, () => {
      const warnings = identifierUriWarnings({ contoso: entra([uri, APP]) });
      assert.equal(warnings.length, 1);
      const [w] = warnings;
      assert.ok(w?.startsWith(`issuers.contoso.audiences: ${uri} matches none of Entra ID's secure`), w);
      assert.match(w!, /identifierUriRestriction \(uriAdditionWithoutUniqueTenantIdentifier\)/);
      assert.ok(w!.includes('api://<appId>, api://<tenantId>/<string>, api://<string>/<appId>'));
      assert.ok(w!.includes("api://<the STS app's client ID>"));
      assert.ok(w!.endsWith(IDENTIFIER_URI_RESTRICTIONS_URL));
    });
  }

  it('leaves https:// URIs, bare client IDs and OIDC issuers alone', () => {
    assert.deepEqual(
      identifierUriWarnings({
        contoso: entra(['https://sts.contoso.com', 'https://anything.example/api', APP]),
        ci: { kind: 'oidc', audiences: ['api://tanuki-bench', 'https://sts.example.com'] },
      }),
      [],
    );
  });

  it('one warning per offending audience, in order', () => {
    const warnings = identifierUriWarnings({
      a: entra(['api://one', `api://${APP}`]),
      b: entra(['api://two']),
    });
    assert.deepEqual(
      warnings.map((w) => w.split(' matches')[0]),
      ['issuers.a.audiences: api://one', 'issuers.b.audiences: api://two'],
    );
  });
});
