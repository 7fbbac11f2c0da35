/**
 * `clients.NAME.secret: { keyVault: … }`: the same sources as `gitlab.token`,
 * Key Vault included, read by the service at start-up and at each reload
 * (src/service/runtime.ts `readClientSecrets`), with the Entra ID emulator's
 * managed identity against the Key Vault emulator. A secret the identity may
 * not read, or one too short, is an error naming the key and the source,
 * never a value; a client whose secret was never read can never authenticate.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/index.ts';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import { DEV_SYSTEM_MI_OBJECT_ID, defaultKeyVaultConfig } from '../../src/emulators/keyvault/dev-seed.ts';
import { type KeyVaultEmulatorHandle, startKeyVaultEmulator } from '../../src/emulators/keyvault/index.ts';
import { authenticateClient, createClientRegistry } from '../../src/service/client-auth.ts';
import { readClientSecrets } from '../../src/service/runtime.ts';

const SECRET = 'ci-client-secret-from-the-vault';

describe('client secrets in Key Vault', () => {
  let dir: string;
  let entra: EntraEmulatorHandle;
  let kv: KeyVaultEmulatorHandle;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-client-kv-'));
    entra = await startEntraEmulator({ stateDir: join(dir, 'entra') });
    const config = defaultKeyVaultConfig();
    config.roleAssignments.push(
      { objectId: DEV_SYSTEM_MI_OBJECT_ID, role: 'Key Vault Secrets User', secret: 'sts-client-ci' },
      { objectId: DEV_SYSTEM_MI_OBJECT_ID, role: 'Key Vault Secrets User', secret: 'sts-client-short' },
    );
    kv = await startKeyVaultEmulator({
      stateDir: join(dir, 'kv'),
      caDir: join(dir, 'entra'),
      authority: entra.url,
      config,
    });
    kv.setSecret('sts-client-ci', SECRET);
    kv.setSecret('sts-client-short', 'too-short');
    kv.setSecret('sts-client-forbidden', 'forbidden-secret-0123456789');
  });
  after(async () => {
    await kv?.close();
    await entra?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const configWith = (secret: string) =>
    parseConfig(
      {
        server: { publicUrl: 'https://sts.example.com' },
        gitlab: { url: 'https://gitlab.example.com', token: 'glpat-placeholder' },
        issuers: { ci: { oidc: { issuer: 'https://ci.example.com' }, audiences: ['x'] } },
        clients: {
          ci: {
            secret: {
              keyVault: {
                vaultUrl: kv.url,
                secret,
                caFile: kv.caFile,
                managedIdentityEndpoint: entra.imdsUrl,
              },
            },
          },
        },
        policies: [
          {
            name: 'p',
            issuer: 'ci',
            client: 'ci',
            match: { sub: 's' },
            grant: { projects: ['a/b'], scopes: ['read_api'], role: 'reporter' },
          },
        ],
      },
      { env: {} },
    );

  it('the loader leaves the secret to the service; until then the client cannot authenticate', () => {
    const c = configWith('sts-client-ci');
    assert.equal(c.clients.ci?.secret, '');
    assert.equal(c.clients.ci?.source.kind, 'keyVault');
    const registry = createClientRegistry(c.clients);
    assert.throws(() =>
      authenticateClient(
        registry,
        new Map([
          ['client_id', 'ci'],
          ['client_secret', ''],
        ]),
        undefined,
      ),
    );
  });

  it("read with the managed identity: the client authenticates with the vault's value", async () => {
    const c = await readClientSecrets(configWith('sts-client-ci'), 10_000);
    assert.equal(c.clients.ci?.secret, SECRET);
    const registry = createClientRegistry(c.clients);
    const params = new Map([
      ['client_id', 'ci'],
      ['client_secret', SECRET],
    ]);
    assert.equal(authenticateClient(registry, params, undefined).client, 'ci');
  });

  it('a secret the identity may not read, or a short one: a ConfigError naming the key and the vault, no value', async () => {
    for (const [name, line] of [
      [
        'sts-client-forbidden',
        /^clients\.ci\.secret: .*Key Vault https:\/\/localhost:\d+, secret sts-client-forbidden/,
      ],
      ['sts-client-short', /^clients\.ci\.secret: shorter than 16 characters$/],
    ] as const) {
      try {
        await readClientSecrets(configWith(name), 10_000);
        assert.fail('expected a ConfigError');
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.issues.length, 1);
        assert.match(err.issues[0] ?? '', line);
        assert.ok(!err.message.includes('forbidden-secret-0123456789') && !err.message.includes('too-short'));
      }
    }
  });
});
