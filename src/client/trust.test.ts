import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  azureScopeProblem,
  checkMetadataAzureScope,
  checkTransport,
  isLoopbackHost,
  isTokenShaped,
  shellQuote,
} from './trust.ts';

describe('azure_scope from the STS metadata', () => {
  for (const ok of [
    'api://72f988bf-86f1-41af-91ab-2d7cd011db47/tanuki-sts/.default', // api://<tenant ID>/<string>
    'api://tanuki/2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default', // api://<string>/<app ID>
    'api://my-sts/.default', // a legacy URI: tenants from before Entra's identifier URI restriction keep them
    'api://contoso.onmicrosoft.com/tanuki-sts/.default',
    'api://contoso.example/apis/tanuki/.default',
    'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default',
    '2F5B4A0E-8C1D-4F8E-9A7B-3C2D1E0F9A8B/.default',
  ]) {
    it(`accepts ${ok}`, () => assert.equal(azureScopeProblem(ok), undefined));
  }
  for (const [bad, why] of [
    ['https://management.azure.com/.default', /form/],
    ['https://tanuki-sts.contoso.com/.default', /form/],
    ['api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b', /form/],
    ['api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default ', /form/],
    ['api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default?x=1', /form/],
    ['api:///.default', /form/],
    ['openid profile', /form/],
    ['api://management.azure.com/.default', /first-party/],
    ['api://MANAGEMENT.AZURE.COM/.default', /first-party/],
    ['api://management.usgovcloudapi.net/.default', /first-party/],
    ['api://x.vault.azure.net/.default', /first-party/],
    ['api://mystorage.blob.core.windows.net/.default', /first-party/],
    ['api://graph.microsoft.com:443/.default', /first-party/],
    ['api://AzureADTokenExchangeUSGov/.default', /first-party/],
    ['797f4846-ba00-4fd7-ba43-dac1f8f63013/.default', /first-party/],
    ['a232010e-820c-4083-83bb-3ace5fc29d0b/.default', /first-party/], // Cosmos DB (found by review)
    ['18a66f5f-dbdf-4c17-9dd7-1634712a9cbe/.default', /first-party/], // Azure Machine Learning
    ['api://4962773b-9cdb-44cf-a8bf-237846a00ab7/.default', /first-party/], // Event Grid
    ['00000003-0000-0000-c000-000000000000/.default', /first-party/],
    ['00000009-0000-0000-c000-000000000000/.default', /first-party/],
    ['00000003-0000-0ff1-ce00-000000000000/.default', /first-party/],
    ['api://00000002-0000-0000-c000-000000000000/.default', /first-party/],
    [`api://${'a'.repeat(300)}/.default`, /256/],
  ] as const) {
    it(`refuses ${bad.slice(0, 60)}`, () => assert.match(azureScopeProblem(bad) ?? '', why));
  }
  it('the error is a usage error (exit 2) naming the rule and the pin', () => {
    assert.throws(
      () => checkMetadataAzureScope('https://graph.microsoft.com/.default'),
      (e: Error & { exitCode?: number }) =>
        e.exitCode === 2 &&
        /api:\/\/<App ID URI>\/\.default/.test(e.message) &&
        /TANUKI_AZURE_SCOPE/.test(e.message),
    );
    assert.throws(() => checkMetadataAzureScope(['api://x/.default']), /not a string/);
  });
});

describe('transport', () => {
  it('loopback hosts', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]', '::1', 'LOCALHOST'])
      assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['localhost.example.com', '128.0.0.1', '10.0.0.1', '0.0.0.0', '[::]', 'example.com'])
      assert.equal(isLoopbackHost(h), false, h);
  });
  it('https anywhere, http on loopback only', () => {
    checkTransport(new URL('https://sts.example.com'), 'x');
    checkTransport(new URL('http://127.0.0.1:1'), 'x');
    assert.throws(() => checkTransport(new URL('http://sts.example.com'), '--sts'), /--sts must be https/);
    assert.throws(() => checkTransport(new URL('http://127.0.0.1.nip.io'), '--sts'), /https/);
  });
});

describe('issued token shape', () => {
  it("GitLab's formats pass, anything a shell or git would read as syntax does not", () => {
    for (const t of [
      'glpat-abcdefghij0123456789',
      'glpat-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab.01.123456789',
      'gldt-0123456789',
      'custom_prefix-abc.def',
    ])
      assert.equal(isTokenShaped(t), true, t);
    for (const t of [
      '',
      'short',
      'glpat-abc\nusername=x',
      'glpat-abc def',
      'glpat-$(id)',
      "glpat-'x'",
      'glpat-a;b',
      `glpat-${'a'.repeat(507)}`,
      undefined,
      42,
    ])
      assert.equal(isTokenShaped(t), false, String(t));
    assert.equal(isTokenShaped(`glpat-${'a'.repeat(506)}`), true, '512 characters');
  });
  it('shellQuote survives quotes', () => assert.equal(shellQuote("a'b"), `'a'\\''b'`));
});
