/** `gitlab.token: { keyVault }`, `gitlab.rotation`, `gitlab.credentialRefresh`: shapes, defaults, the rules across them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from './index.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const KV = { vaultUrl: 'https://tanuki.vault.azure.net', secret: 'gitlab-token' };

function withGitlab(gitlab: Record<string, unknown>): Record<string, unknown> {
  return {
    server: { publicUrl: 'https://sts.example.com' },
    gitlab: { url: 'https://gitlab.example.com', ...gitlab },
    issuers: { contoso: { entra: { tenant: TENANT }, audiences: [`api://${TENANT}/x`] } },
    policies: [
      {
        name: 'p',
        issuer: 'contoso',
        match: { appid: '11111111-2222-3333-4444-555555555555' },
        grant: { projects: ['a/b'], scopes: ['read_api'], role: 'reporter' },
      },
    ],
  };
}

function issues(gitlab: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(withGitlab(gitlab), { env, baseDir: '/etc/tanuki-sts' });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues;
  }
  assert.fail('expected a ConfigError');
}

describe('config: gitlab.token from Key Vault, gitlab.rotation', () => {
  it('keyVault: read by the service (the token is empty here), paths resolved, defaults', () => {
    const c = parseConfig(
      withGitlab({
        token: { keyVault: { ...KV, clientId: '0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a', caFile: 'ca.pem' } },
        rotation: { every: '24h', lifetime: '7d' },
      }),
      { env: {}, baseDir: '/etc/tanuki-sts' },
    );
    assert.equal(c.gitlab.token, '');
    assert.deepEqual(c.gitlab.tokenSource, {
      kind: 'keyVault',
      ...KV,
      clientId: '0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a',
      caFile: '/etc/tanuki-sts/ca.pem',
    });
    assert.deepEqual(c.gitlab.rotation, { every: 86400, lifetime: 604800 });
    assert.equal(c.gitlab.credentialRefresh, 300);
  });

  it('the other forms: their source, the value read at load time', () => {
    const f = parseConfig(withGitlab({ token: { env: 'GL' }, credentialRefresh: '1m' }), {
      env: { GL: 'glpat-x' },
    });
    assert.deepEqual(
      [f.gitlab.tokenSource, f.gitlab.token, f.gitlab.credentialRefresh],
      [{ kind: 'env', name: 'GL' }, 'glpat-x', 60],
    );
    const i = parseConfig(withGitlab({ token: 'glpat-inline' }), { env: {} });
    assert.deepEqual([i.gitlab.tokenSource, i.gitlab.rotation], [{ kind: 'inline' }, undefined]);
  });

  it('rotation needs somewhere to write the new token: env and inline refused, file and Key Vault taken', () => {
    const rotation = { every: '24h', lifetime: '7d' };
    assert.deepEqual(issues({ token: { env: 'GL' }, rotation }, { GL: 'glpat-x' }), [
      'gitlab.rotation: a token from an environment variable cannot be rotated (nowhere to write the new one): use gitlab.token: { keyVault: … } or { file: … }',
    ]);
    assert.deepEqual(issues({ token: 'glpat-inline', rotation }), [
      'gitlab.rotation: an inline gitlab.token cannot be rotated (nowhere to write the new one): use gitlab.token: { keyVault: … } or { file: … }',
    ]);
    assert.deepEqual(
      parseConfig(withGitlab({ token: { keyVault: KV }, rotation }), { env: {} }).gitlab.rotation,
      { every: 86400, lifetime: 604800 },
    );
  });

  it('rotation bounds: every ≥ 1h, lifetime 2d–365d and ≥ every + 1d', () => {
    const t = { token: { keyVault: KV } };
    assert.deepEqual(issues({ ...t, rotation: { every: '30m', lifetime: '7d' } }), [
      'gitlab.rotation.every: expected at least 1h',
    ]);
    assert.deepEqual(issues({ ...t, rotation: { every: '1h', lifetime: '400d' } }), [
      'gitlab.rotation.lifetime: expected 2d to 365d',
    ]);
    assert.deepEqual(issues({ ...t, rotation: { every: '7d', lifetime: '7d' } }), [
      'gitlab.rotation.lifetime: lifetime must be at least every + 1d (the token must outlive the next rotation)',
    ]);
    assert.deepEqual(issues({ ...t, rotation: { every: '1d' } }), [
      'gitlab.rotation.lifetime: expected a string or a number',
    ]);
  });

  it('keyVault: each key checked, nothing of the values quoted', () => {
    const secretish = 'glpat-pasted-into-the-wrong-key-0001';
    const got = issues({
      token: {
        keyVault: {
          vaultUrl: `https://user:${secretish}@x.vault.azure.net/secrets`,
          secret: `${secretish}!`,
          clientId: secretish,
          managedIdentityEndpoint: 'http://169.254.169.254',
        },
      },
    });
    assert.deepEqual(got, [
      'gitlab.token.keyVault.vaultUrl: expected the vault URL, https://NAME.vault.azure.net (no path)',
      'gitlab.token.keyVault.secret: expected a Key Vault secret name: 1-127 of 0-9, a-z, A-Z, "-"',
      'gitlab.token.keyVault.clientId: expected a client ID (a GUID)',
      'gitlab.token.keyVault.managedIdentityEndpoint: expected http://127.0.0.1:PORT (a loopback managed identity endpoint: the emulator)',
    ]);
    assert.equal(got.join('\n').includes('pasted'), false);
    assert.deepEqual(issues({ token: { keyVault: { vaultUrl: 'http://localhost:8443', secret: 's' } } }), [
      'gitlab.token.keyVault.vaultUrl: expected the vault URL, https://NAME.vault.azure.net (no path)',
    ]);
  });

  it('--no-secrets: the Key Vault form is checked for shape only', () => {
    const c = parseConfig(withGitlab({ token: { keyVault: KV } }), { env: {}, secrets: false });
    assert.equal(c.gitlab.tokenSource.kind, 'keyVault');
  });
});
