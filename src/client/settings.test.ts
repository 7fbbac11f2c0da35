import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planAzureAuth } from './azure-plan.ts';
import { UsageError } from './errors.ts';
import { type AzureAuthSettings, resolveSettings } from './settings.ts';

describe('resolveSettings', () => {
  it('reads every option from the environment so templates need no flags', () => {
    const s = resolveSettings(
      {},
      {
        TANUKI_STS_URL: 'https://sts.example.com/',
        TANUKI_RESOURCE: 'platform/lib',
        TANUKI_SCOPE: 'read_repository,read_api read_api',
        TANUKI_TTL: '15m',
        TANUKI_AZURE_AUTH: 'gitlab-oidc',
        AZURE_TENANT_ID: 't',
        AZURE_CLIENT_ID: 'c',
        TANUKI_ID_TOKEN_VAR: 'MY_JWT',
        TANUKI_VERBOSE: 'true',
        TANUKI_RETRIES: '0',
        TANUKI_TIMEOUT: '5s',
      },
    );
    assert.equal(s.stsUrl, 'https://sts.example.com');
    assert.equal(s.resource, 'platform/lib');
    assert.deepEqual(s.scopes, ['read_repository', 'read_api']);
    assert.equal(s.ttlSeconds, 900);
    assert.equal(s.verbose, true);
    assert.equal(s.retries, 0);
    assert.equal(s.timeoutMs, 5000);
    assert.equal(s.subject.kind, 'azure');
    if (s.subject.kind === 'azure') {
      assert.equal(s.subject.azure.mode, 'gitlab-oidc');
      assert.equal(s.subject.azure.idTokenVar, 'MY_JWT');
      assert.equal(s.subject.azure.tenantId, 't');
    }
  });

  it('flags win over the environment', () => {
    const s = resolveSettings(
      { sts: 'http://127.0.0.1:8080', ttl: '90' },
      { TANUKI_STS_URL: 'https://x', TANUKI_TTL: '1h' },
    );
    assert.equal(s.stsUrl, 'http://127.0.0.1:8080');
    assert.equal(s.ttlSeconds, 90);
  });

  it('direct OIDC mode skips Azure', () => {
    const s = resolveSettings({ sts: 'https://s', subjectTokenVar: 'CI_JWT' }, {});
    assert.deepEqual(s.subject, { kind: 'var', name: 'CI_JWT' });
  });

  for (const [name, raw, env, pattern] of [
    ['no STS', {}, {}, /TANUKI_STS_URL/],
    ['bad STS URL', { sts: 'sts.example.com' }, {}, /not a URL/],
    ['ftp STS', { sts: 'ftp://x' }, {}, /http\(s\)/],
    ['bad ttl', { sts: 'https://s', ttl: '15 minutes' }, {}, /--ttl/],
    [
      'bad scope',
      { sts: 'https://s', scope: 'read-api' },
      {},
      /unknown GitLab scope "read-api" — did you mean read_api\?/,
    ],
    ['unknown mode', { sts: 'https://s' }, { TANUKI_AZURE_AUTH: 'magic' }, /unknown mode "magic"/],
    ['file and var', { sts: 'https://s', subjectTokenFile: 'f', subjectTokenVar: 'v' }, {}, /not both/],
    ['bad retries', { sts: 'https://s', retries: 'many' }, {}, /--retries/],
  ] as const) {
    it(`refuses ${name} as a usage error`, () => {
      assert.throws(
        () => resolveSettings(raw, env),
        (e: unknown) => e instanceof UsageError && e.exitCode === 2 && pattern.test(e.message),
      );
    });
  }
});

describe('planAzureAuth', () => {
  const base: AzureAuthSettings = {
    mode: 'auto',
    tenantId: 'tenant',
    clientId: 'client',
    authorityHost: undefined,
    scope: undefined,
    idTokenVar: 'TANUKI_ID_TOKEN',
    serviceConnectionId: undefined,
  };
  const tokenFile = new URL(import.meta.url).pathname; // any existing file

  for (const [env, mode] of [
    [{ AZURE_CLIENT_SECRET: 's3cret-value' }, 'secret'],
    [{ AZURE_CLIENT_CERTIFICATE_PATH: tokenFile }, 'certificate'],
    [{ AZURE_FEDERATED_TOKEN_FILE: tokenFile }, 'workload-identity'],
    [{ TANUKI_ID_TOKEN: 'eyJ.x.y' }, 'gitlab-oidc'],
    [{}, 'managed-identity'],
  ] as const) {
    it(`auto picks ${mode}`, () => {
      const plan = planAzureAuth(base, env);
      assert.equal(plan.mode, mode);
      assert.equal(plan.auto, true);
      assert.doesNotMatch(plan.description, /s3cret/);
    });
  }

  it('auto picks azure-pipelines inside a pipeline with a service connection', () => {
    const plan = planAzureAuth(
      { ...base, serviceConnectionId: 'sc' },
      { SYSTEM_OIDCREQUESTURI: 'https://dev.azure.com/x', SYSTEM_ACCESSTOKEN: 'abcdefgh' },
    );
    assert.equal(plan.mode, 'azure-pipelines');
  });

  it('auto without tenant/client falls back to a system-assigned managed identity', () => {
    const plan = planAzureAuth(
      { ...base, tenantId: undefined, clientId: undefined },
      { AZURE_CLIENT_SECRET: 'x' },
    );
    assert.equal(plan.mode, 'managed-identity');
    assert.equal(plan.description, 'system-assigned managed identity');
  });

  it('disables instance discovery only for non-Microsoft authorities', () => {
    const emu = planAzureAuth(
      { ...base, mode: 'managed-identity', authorityHost: 'https://localhost:8443' },
      {},
    );
    assert.equal(emu.disableInstanceDiscovery, true);
    for (const host of [
      'https://login.microsoftonline.us',
      'https://login.chinacloudapi.cn/',
      'https://login.microsoftonline.com',
    ]) {
      assert.equal(
        planAzureAuth({ ...base, mode: 'managed-identity', authorityHost: host }, {})
          .disableInstanceDiscovery,
        false,
      );
    }
    assert.throws(() => planAzureAuth({ ...base, authorityHost: 'http://localhost' }, {}), /https/);
  });

  for (const [mode, env, pattern] of [
    ['secret', {}, /AZURE_CLIENT_SECRET/],
    ['certificate', { AZURE_CLIENT_CERTIFICATE_PATH: '/nope.pem' }, /does not exist/],
    ['workload-identity', {}, /AZURE_FEDERATED_TOKEN_FILE/],
    ['gitlab-oidc', {}, /id_tokens: \{ TANUKI_ID_TOKEN: \{ aud: api:\/\/AzureADTokenExchange/],
    ['azure-pipelines', { SYSTEM_OIDCREQUESTURI: 'x' }, /SYSTEM_ACCESSTOKEN/],
  ] as const) {
    it(`${mode} says what is missing`, () => {
      assert.throws(
        () => planAzureAuth({ ...base, mode }, env),
        (e: unknown) => e instanceof UsageError && pattern.test(e.message),
      );
    });
  }

  it('explicit modes need tenant and client', () => {
    assert.throws(
      () => planAzureAuth({ ...base, mode: 'secret', tenantId: undefined }, { AZURE_CLIENT_SECRET: 'x' }),
      /--tenant-id or AZURE_TENANT_ID/,
    );
  });
});
