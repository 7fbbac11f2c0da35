import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { EntraConfigError, loadEntraConfigFile, parseEntraConfig } from './config.ts';
import {
  DEV_PIPELINE_CLIENT_ID,
  DEV_RESOURCE_CLIENT_ID,
  DEV_RESOURCE_URI,
  DEV_TENANT_ID,
  DEV_USER_MI_CLIENT_ID,
  defaultEntraConfig,
  summarizeDevSeed,
} from './dev-seed.ts';
import { resolveEntraConfig } from './resolve.ts';

const dir = mkdtempSync(join(tmpdir(), 'entra-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function errorOf(raw: unknown): string {
  try {
    parseEntraConfig(raw);
  } catch (err) {
    assert.ok(err instanceof EntraConfigError);
    assert.equal(err.code, 'ERR_ENTRA_EMULATOR_CONFIG');
    return err.message;
  }
  assert.fail('the config was accepted');
}

describe('Entra emulator config', () => {
  test('the dev seed is valid and gets defaults', () => {
    const cfg = parseEntraConfig(defaultEntraConfig());
    assert.equal(cfg.signingKeyGraceSeconds, 3600);
    assert.equal(cfg.tenants[0]?.resources[0]?.accessTokenAcceptedVersion, 1);
  });

  test('errors name the wrong key', () => {
    const table: Array<[(c: ReturnType<typeof defaultEntraConfig>) => void, RegExp]> = [
      [
        (c) => Object.assign(c.tenants[0]!.apps[0]!, { colour: 'red' }),
        /tenants\[0\]\.apps\[0\]: Unrecognized key: "colour"/,
      ],
      [(c) => Object.assign(c.tenants[0]!, { id: 'x' }), /tenants\[0\]\.id: must be a GUID/],
      [
        (c) => c.tenants[0]!.apps[0]!.appRoleAssignments.push({ resource: 'api://nope', role: 'X' }),
        /tenants\[0\]\.apps\[0\]\.appRoleAssignments\[1\]\.resource: no resource api:\/\/nope/,
      ],
      [
        (c) =>
          c.tenants[0]!.apps[0]!.appRoleAssignments.push({
            resource: DEV_RESOURCE_URI,
            role: 'GitLab.Write',
          }),
        /appRoleAssignments\[1\]\.role: tanuki-sts has no app role GitLab.Write/,
      ],
      [
        (c) => Object.assign(c.tenants[0]!.managedIdentities[1]!, { clientId: DEV_PIPELINE_CLIENT_ID }),
        /tenants\[0\]\.managedIdentities\[1\]\.clientId: duplicate ID/,
      ],
      [
        (c) => Object.assign(c.tenants[0]!.resources[0]!, { accessTokenAcceptedVersion: 3 }),
        /tenants\[0\]\.resources\[0\]\.accessTokenAcceptedVersion/,
      ],
      [
        (c) => c.tenants[0]!.apps[0]!.clientCertificates.push({ name: 'x' }),
        /clientCertificates\[1\]: give exactly one/,
      ],
    ];
    for (const [change, expected] of table) {
      const cfg = defaultEntraConfig();
      change(cfg);
      assert.match(errorOf(cfg), expected);
    }
  });

  test("identifier URIs must match Entra's secure patterns unless the tenant allows legacy URIs", () => {
    const withUris = (uris: string[], tenant: Record<string, unknown> = {}) => {
      const cfg = defaultEntraConfig();
      Object.assign(cfg.tenants[0]!, tenant);
      cfg.tenants[0]!.resources[0]!.identifierUris = uris;
      for (const p of [...cfg.tenants[0]!.apps, ...cfg.tenants[0]!.managedIdentities]) {
        p.appRoleAssignments = [{ resource: DEV_RESOURCE_CLIENT_ID, role: 'GitLab.Read' }];
      }
      return cfg;
    };
    const app = DEV_RESOURCE_CLIENT_ID;
    const secure = [
      `api://${app}`,
      `api://${app.toUpperCase()}`,
      `api://${DEV_TENANT_ID}/tanuki-sts`,
      `api://${DEV_TENANT_ID}/${app}`,
      `api://tanuki/${app}`,
      `api://${app}/tanuki-sts`,
    ];
    for (const uri of secure) assert.doesNotThrow(() => parseEntraConfig(withUris([uri])), uri);

    const message = errorOf(withUris(['api://tanuki-sts']));
    assert.match(message, /tenants\[0\]\.resources\[0\]\.identifierUris\[0\]: api:\/\/tanuki-sts is refused/);
    assert.match(message, /identifierUriRestriction/);
    assert.match(message, /api:\/\/<appId>, api:\/\/<tenantId>\/<string>, api:\/\/<string>\/<appId>/);
    assert.ok(message.includes(`(here api://${app})`));
    assert.ok(
      message.includes(
        'https://learn.microsoft.com/en-us/entra/identity-platform/identifier-uri-restrictions',
      ),
    );
    assert.match(message, /allowLegacyIdentifierUris: true/);

    const refused = [
      `api://${DEV_TENANT_ID}`, // the tenant ID alone is not a secure pattern
      `api://${DEV_PIPELINE_CLIENT_ID}`, // another app's ID
      'api://tanuki/00000000-0000-4000-8000-000000000000',
      'https://tanuki-sts.example.com/api', // no verified domain
      'api://contoso.com/tanuki-sts',
      'urn:tanuki-sts',
    ];
    for (const uri of refused) assert.match(errorOf(withUris([uri])), /is refused by/, uri);

    const domains = { verifiedDomains: ['contoso.com'] };
    for (const uri of [
      'https://contoso.com/tanuki-sts',
      'https://sts.contoso.com',
      'api://contoso.com/tanuki-sts',
    ]) {
      assert.doesNotThrow(() => parseEntraConfig(withUris([uri], domains)), uri);
    }
    assert.match(errorOf(withUris(['https://notcontoso.com/x'], domains)), /is refused by/);

    const legacy = parseEntraConfig(withUris(['api://tanuki-sts'], { allowLegacyIdentifierUris: true }));
    assert.deepEqual(legacy.tenants[0]?.resources[0]?.identifierUris, ['api://tanuki-sts']);
    assert.equal(parseEntraConfig(defaultEntraConfig()).tenants[0]?.allowLegacyIdentifierUris, false);
  });

  test('YAML files load; unreadable ones say which file', () => {
    const file = join(dir, 'entra.yaml');
    writeFileSync(file, stringify(defaultEntraConfig()));
    assert.equal(loadEntraConfigFile(file).tenants[0]?.apps[0]?.name, 'pipeline');
    writeFileSync(file, 'tenants: [\n');
    assert.throws(
      () => loadEntraConfigFile(file),
      (e: Error) => e instanceof EntraConfigError && e.message.includes(file),
    );
  });

  test('resolving generates the secret and certificate once and reuses them', async () => {
    const stateDir = join(dir, 'state');
    const raw = parseEntraConfig(defaultEntraConfig());
    const a = await resolveEntraConfig(raw, { stateDir, emulatorUrl: 'https://localhost:1' });
    const b = await resolveEntraConfig(raw, { stateDir, emulatorUrl: 'https://localhost:2' });
    const appA = a.tenants[0]!.apps[0]!;
    const appB = b.tenants[0]!.apps[0]!;
    assert.ok(appA.clientSecrets[0]!.value.length >= 40);
    assert.equal(appB.clientSecrets[0]!.value, appA.clientSecrets[0]!.value);
    assert.equal(appB.clientCertificates[0]!.x5tS256, appA.clientCertificates[0]!.x5tS256);
    assert.equal(a.appServiceIdentityHeader, b.appServiceIdentityHeader);
    assert.equal(appB.federatedCredentials[0]!.issuer, 'https://localhost:2/_emulator/oidc');
    assert.equal(b.testIssuer, 'https://localhost:2/_emulator/oidc');
    const pem = readFileSync(appA.clientCertificates[0]!.pemFile!, 'utf8');
    assert.match(pem, /BEGIN PRIVATE KEY[\s\S]+BEGIN CERTIFICATE/, 'pemFile = key + certificate');
    assert.equal(statSync(join(stateDir, 'secrets.json')).mode & 0o077, 0, 'secrets are private');
    assert.ok(existsSync(appA.clientCertificates[0]!.certificateFile!));
    const seed = summarizeDevSeed(b);
    assert.equal(seed.pipelineClientSecret, appA.clientSecrets[0]!.value);
    assert.equal(seed.pipelineCertificatePath, appA.clientCertificates[0]!.pemFile);
    assert.equal(seed.resourceUri, `api://${DEV_RESOURCE_CLIENT_ID}`);
    assert.equal(seed.managedIdentityClientId, DEV_USER_MI_CLIENT_ID);
  });
});
