import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as entraSeed from '../entra/dev-seed.ts';
import {
  KEY_VAULT_APP_ID as ENTRA_KEY_VAULT_APP_ID,
  KEY_VAULT_RESOURCE as ENTRA_KEY_VAULT_RESOURCE,
} from '../entra/first-party.ts';
import { acceptedIssuers, challengeHeader } from './auth.ts';
import { isAllowed, KeyVaultConfigError, parseKeyVaultConfig, vaultResourceId } from './config.ts';
import * as seed from './dev-seed.ts';
import { KEY_VAULT_APP_ID, KEY_VAULT_RESOURCE } from './errors.ts';
import { matchOperation } from './secrets.ts';

const T = seed.DEV_TENANT_ID;
const A = '11111111-2222-4333-8444-555555555555';
const B = '66666666-7777-4888-9999-aaaaaaaaaaaa';

describe('Key Vault emulator config', () => {
  test('the dev seed parses: vault tanuki-dev, no secrets, Officer on gitlab-token for both managed identities', () => {
    const cfg = parseKeyVaultConfig(seed.defaultKeyVaultConfig(), 'dev seed');
    assert.equal(cfg.name, 'tanuki-dev');
    assert.deepEqual(cfg.secrets, []);
    for (const oid of [seed.DEV_SYSTEM_MI_OBJECT_ID, seed.DEV_USER_MI_OBJECT_ID]) {
      for (const action of ['getSecret', 'setSecret', 'readMetadata'] as const) {
        assert.equal(isAllowed(cfg, oid, action, 'gitlab-token'), true, `${oid} ${action}`);
      }
      assert.equal(isAllowed(cfg, oid, 'getSecret', 'other'), false);
      assert.equal(isAllowed(cfg, oid, 'readMetadata', undefined), false, 'no vault-wide listing');
    }
    assert.equal(isAllowed(cfg, entraSeed.DEV_PIPELINE_OBJECT_ID, 'getSecret', 'gitlab-token'), false);
  });

  test("the dev seed's GUIDs and Key Vault's identifiers are the Entra emulator's (they share no code)", () => {
    assert.equal(seed.DEV_TENANT_ID, entraSeed.DEV_TENANT_ID);
    assert.equal(seed.DEV_SYSTEM_MI_OBJECT_ID, entraSeed.DEV_SYSTEM_MI_OBJECT_ID);
    assert.equal(seed.DEV_USER_MI_OBJECT_ID, entraSeed.DEV_USER_MI_OBJECT_ID);
    assert.equal(KEY_VAULT_APP_ID, ENTRA_KEY_VAULT_APP_ID);
    assert.equal(KEY_VAULT_RESOURCE, ENTRA_KEY_VAULT_RESOURCE);
  });

  test('errors name the key', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{}, /tenantId/],
      [{ tenantId: 'nope' }, /tenantId: must be a GUID/],
      [{ tenantId: T, name: 'ab' }, /name: must be 3-24/],
      [{ tenantId: T, authority: 'http://localhost:1' }, /authority: must be an https:\/\/ URL/],
      [{ tenantId: T, secrets: [{ name: 'a_b', value: 'x' }] }, /secrets\[0\]\.name/],
      [{ tenantId: T, secrets: [{ name: 'a' }] }, /secrets\[0\]\.value/],
      [
        {
          tenantId: T,
          secrets: [
            { name: 'A', value: '1' },
            { name: 'a', value: '2' },
          ],
        },
        /secrets\[1\]\.name: duplicate secret a/,
      ],
      [{ tenantId: T, roleAssignments: [{ objectId: A, role: 'Owner' }] }, /roleAssignments\[0\]\.role/],
      [
        { tenantId: T, roleAssignments: [{ objectId: 'x', role: 'Key Vault Reader' }] },
        /roleAssignments\[0\]\.objectId/,
      ],
      [{ tenantId: T, surprise: 1 }, /surprise|Unrecognized/],
    ];
    for (const [raw, re] of cases) {
      assert.throws(
        () => parseKeyVaultConfig(raw),
        (err: unknown) => err instanceof KeyVaultConfigError && re.test(err.message),
        JSON.stringify(raw),
      );
    }
  });

  test('RBAC: the built-in roles, scoped to the vault or one secret, names case-insensitive', () => {
    const cfg = parseKeyVaultConfig({
      tenantId: T,
      roleAssignments: [
        { objectId: A, role: 'Key Vault Secrets User', secret: 'Token' },
        { objectId: B, role: 'Key Vault Reader' },
      ],
    });
    assert.equal(isAllowed(cfg, A, 'getSecret', 'token'), true);
    assert.equal(isAllowed(cfg, A.toUpperCase(), 'readMetadata', 'TOKEN'), true);
    assert.equal(isAllowed(cfg, A, 'setSecret', 'token'), false);
    assert.equal(isAllowed(cfg, A, 'getSecret', 'other'), false);
    assert.equal(isAllowed(cfg, A, 'readMetadata', undefined), false);
    assert.equal(isAllowed(cfg, B, 'readMetadata', 'anything'), true);
    assert.equal(isAllowed(cfg, B, 'readMetadata', undefined), true);
    assert.equal(isAllowed(cfg, B, 'getSecret', 'anything'), false);
    assert.equal(
      vaultResourceId(cfg),
      '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/tanuki-dev/providers/Microsoft.KeyVault/vaults/tanuki-dev',
    );
  });
});

describe('Key Vault emulator: challenge, issuers, routes', () => {
  test('the challenge names the authority and tenant, and the resource without a trailing slash', () => {
    assert.equal(
      challengeHeader('https://localhost:8443', T),
      `Bearer authorization="https://localhost:8443/${T}", resource="https://vault.azure.net"`,
    );
  });

  test("accepted issuers: v1 and v2; Microsoft's authority has the sts.windows.net v1 issuer", () => {
    assert.deepEqual(acceptedIssuers('https://localhost:8443', T), [
      `https://localhost:8443/${T}/`,
      `https://localhost:8443/${T}/v2.0`,
    ]);
    assert.deepEqual(acceptedIssuers('https://login.microsoftonline.com', T), [
      `https://sts.windows.net/${T}/`,
      `https://login.microsoftonline.com/${T}/v2.0`,
    ]);
  });

  test('routes as @azure/keyvault-secrets calls them', () => {
    const cases: Array<[string, string, unknown]> = [
      ['PUT', '/secrets/a', { name: 'setSecret', action: 'setSecret', secret: 'a' }],
      ['GET', '/secrets/a', { name: 'getSecret', action: 'getSecret', secret: 'a' }],
      ['GET', '/secrets/a/', { name: 'getSecret', action: 'getSecret', secret: 'a' }],
      ['GET', '/secrets/a/0f', { name: 'getSecret', action: 'getSecret', secret: 'a', version: '0f' }],
      ['GET', '/secrets/a/versions', { name: 'getSecretVersions', action: 'readMetadata', secret: 'a' }],
      ['GET', '/secrets', { name: 'getSecrets', action: 'readMetadata' }],
    ];
    for (const [method, path, want] of cases)
      assert.deepEqual(matchOperation(method, path), want, `${method} ${path}`);
    const status = (method: string, path: string) => {
      try {
        matchOperation(method, path);
        return 0;
      } catch (err) {
        return (err as { status: number }).status;
      }
    };
    assert.equal(status('DELETE', '/secrets/a'), 501);
    assert.equal(status('PATCH', '/secrets/a/0f'), 501);
    assert.equal(status('GET', '/keys/k'), 501);
    assert.equal(status('GET', '/secrets/a/b/c'), 404);
    assert.equal(status('GET', '/'), 404);
  });
});
