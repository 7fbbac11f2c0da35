import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aadstsAdvice, findAadstsCode } from './aadsts.ts';
import { describeAzureError } from './azure.ts';
import type { AzurePlan } from './azure-plan.ts';
import { Redactor } from './redact.ts';

describe('Redactor', () => {
  it('masks registered secrets and token shapes', () => {
    const r = new Redactor();
    r.add('my-very-secret-value');
    const text = r.redact(
      'secret my-very-secret-value jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl pat glpat-abcdefghijklmnop ' +
        'form client_secret=abc123&x=1 header Bearer abcdefghijkl json {"access_token":"zzz"}',
    );
    for (const leaked of ['my-very-secret', 'eyJhbGci', 'glpat-abcdef', 'abc123', 'abcdefghijkl', 'zzz']) {
      assert.doesNotMatch(text, new RegExp(leaked), leaked);
    }
    assert.match(text, /client_secret=\[redacted\]/);
  });

  it('masks a current-format GitLab token whole, `.01.` and suffix included', () => {
    const token = 'glpat-Ab3dEfGhIjKlMnOpQrStUvWxYz0123456.01.a1b2c3d4e';
    assert.equal(new Redactor().redact(`got ${token}.`), 'got [redacted-token].');
  });
});

describe('Azure errors', () => {
  const plan: AzurePlan = {
    mode: 'secret',
    auto: false,
    description: 'client secret (AZURE_CLIENT_SECRET) of app c in tenant t',
    disableInstanceDiscovery: true,
  };
  it('finds AADSTS codes and has advice for the common ones', () => {
    assert.equal(findAadstsCode('AADSTS7000215: Invalid client secret provided.'), 7000215);
    assert.match(aadstsAdvice(7000215), /Value, not its Secret ID/);
    for (const code of [700016, 7000222, 70021, 500011, 90002, 700024])
      assert.doesNotMatch(aadstsAdvice(code), /look the code up/);
    assert.match(aadstsAdvice(50034), /Entra ID refused/);
    assert.match(aadstsAdvice(12345), /login.microsoftonline.com\/error\?code=12345/);
  });

  it('turns an AuthenticationError into exit 3 with the code, advice and no secret', () => {
    const err = Object.assign(
      new Error(
        'invalid_client Status code: 401\nMore details:\nAADSTS7000215: Invalid client secret. client_secret=hunter2hunter2',
      ),
      {
        name: 'AuthenticationError',
        errorResponse: {
          errorDescription: 'AADSTS7000215: Invalid client secret provided.',
          errorCodes: [7000215],
        },
      },
    );
    const e = describeAzureError(err, plan, 'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default');
    assert.equal(e.exitCode, 3);
    assert.equal(e.aadsts, 7000215);
    assert.match(e.message, /AADSTS7000215: the client secret is wrong/);
    assert.doesNotMatch(e.message, /hunter2/);
  });

  it('explains an unavailable managed identity', () => {
    const err = Object.assign(
      new Error('ManagedIdentityCredential: Attempted to use the IMDS endpoint, but it is not available.'),
      {
        name: 'CredentialUnavailableError',
      },
    );
    const e = describeAzureError(
      err,
      { ...plan, mode: 'managed-identity', description: 'system-assigned managed identity' },
      's',
    );
    assert.equal(e.exitCode, 3);
    assert.match(e.message, /no managed identity endpoint answered/);
  });

  it('scrubs JWTs from library messages', () => {
    const e = describeAzureError(
      new Error('bad assertion eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'),
      plan,
      's',
    );
    assert.doesNotMatch(e.message, /eyJhbGci/);
  });
});
