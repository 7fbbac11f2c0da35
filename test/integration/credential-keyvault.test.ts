/**
 * The STS reading its GitLab token from Key Vault (the emulator, through the
 * unmodified @azure/keyvault-secrets and @azure/identity, the managed identity
 * of the Entra emulator): exchanges work; start-up refuses, naming the vault,
 * the secret and Azure's error (403 with the missing permission, 404
 * SecretNotFound, an AADSTS code), never a stack trace or the token; a token
 * rotated elsewhere is picked up on GitLab's 401 without a failed exchange;
 * the metrics and `/readyz` show the credential.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.ts';
import { DEV_USER_MI_CLIENT_ID } from '../../src/emulators/entra/dev-seed.ts';
import { createMemoryAuditSink } from '../../src/service/audit.ts';
import { rotateCredentialNow } from '../../src/service/credential.ts';
import { startSts } from '../../src/service/server.ts';
import { azureToken } from '../helpers/azure.ts';
import {
  type CredentialEmulators,
  gitlabAccepts,
  keyVaultStsConfig,
  SECRET,
  startCredentialEmulators,
  vaultVersions,
} from '../helpers/credential-stack.ts';
import { runCli } from '../helpers/run-cli.ts';
import { assertNoSecrets, EXCHANGE, PROJECT, postForm } from '../helpers/stack.ts';

const quietLog = { info() {}, warn() {}, error() {} };

describe('gitlab.token from Key Vault', () => {
  let dir: string;
  let e: CredentialEmulators;
  let subject: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-cred-kv-'));
    e = await startCredentialEmulators(dir);
    subject = await azureToken({
      caFile: e.entra.caFile,
      authorityHost: e.entra.url,
      tenantId: e.seed.tenantId,
      clientId: e.seed.pipelineClientId,
      clientSecret: e.seed.pipelineClientSecret,
      scope: `${e.seed.resourceUri}/.default`,
    });
  });
  after(async () => {
    await e.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const exchange = (url: string) =>
    postForm(`${url}/token`, { ...EXCHANGE, subject_token: subject, resource: `${e.gitlab.url}/${PROJECT}` });

  it('read with the managed identity; exchanges work; a rotation elsewhere is picked up on the 401', async () => {
    const audit = createMemoryAuditSink();
    const config = parseConfig(keyVaultStsConfig(e, { store: { sqlite: join(dir, 'a.db') } }), { env: {} });
    const sts = await startSts({ config, logger: false, audit });
    try {
      assert.equal((await exchange(sts.url)).status, 200);
      const ready = (await (await fetch(`${sts.url}/readyz`)).json()) as { checks: Record<string, boolean> };
      assert.deepEqual(ready.checks, { store: true, keys: true, gitlab: true, credential: true });

      // `tanuki-sts credential rotate`, as another process would: the running STS still holds the old token.
      const before = e.gitlab.adminToken;
      const r = await rotateCredentialNow(config, { log: quietLog });
      assert.equal(r.outcome, 'success');
      assert.equal(await gitlabAccepts(e, before), false, 'the old token is refused now');
      const versions = await vaultVersions(e);
      assert.equal(versions.at(-1)?.sha256, r.newTokenSha256, 'the vault holds the new token');
      // The next exchange meets GitLab's 401, reads the vault again and goes on: no failure.
      for (let i = 0; i < 3; i++) assert.equal((await exchange(sts.url)).status, 200);
      assert.equal(sts.context.gitlab.lastStatus()?.ok, true);
      await sts.credential.tick();
      const metrics = await (await fetch(sts.metricsUrl as string)).text();
      assert.match(metrics, /^tanuki_sts_gitlab_credential_expiry_seconds \d+(\.\d+)?$/m);
      assert.match(
        metrics,
        /^tanuki_sts_credential_rotations_total\{outcome="success"\} 0$/m,
        'the CLI rotated, not this process',
      );
      assertNoSecrets(
        audit.events.map((x) => JSON.stringify(x)),
        'audit',
      );
    } finally {
      await sts.close();
    }
  });

  it('a restart reads the new version; rotating again on the leader: new version, audit with both SHA-256s', async () => {
    const audit = createMemoryAuditSink();
    const config = parseConfig(
      keyVaultStsConfig(e, {
        store: { sqlite: join(dir, 'b.db') },
        gitlab: { rotation: { every: '1d', lifetime: '7d' } },
      }),
      { env: {} },
    );
    const sts = await startSts({ config, logger: false, audit });
    try {
      const live = (await vaultVersions(e)).at(-1)?.sha256;
      const r = await sts.credential.rotateNow();
      assert.equal(r.outcome, 'success');
      assert.equal(r.oldTokenSha256, live);
      const ev = audit.events.find((x) => x.event === 'credential-rotation');
      assert.deepEqual(
        { outcome: ev?.outcome, old: ev?.oldTokenSha256, new: ev?.newTokenSha256, via: ev?.via },
        { outcome: 'success', old: live, new: (await vaultVersions(e)).at(-1)?.sha256, via: 'leader' },
      );
      assert.equal((await exchange(sts.url)).status, 200);
      const metrics = await (await fetch(sts.metricsUrl as string)).text();
      assert.match(metrics, /^tanuki_sts_credential_rotations_total\{outcome="success"\} 1$/m);
    } finally {
      await sts.close();
    }
  });

  const refusals: Array<[string, Record<string, unknown>, string]> = [
    [
      '403: an identity without access to that secret',
      { secret: 'another-secret' },
      'gitlab.token: Key Vault URL, secret another-secret: cannot read the secret: 403 Forbidden: identity 8b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0d1e lacks Microsoft.KeyVault/vaults/secrets/getSecret/action (it needs "Key Vault Secrets Officer" on this secret)',
    ],
    [
      '404 SecretNotFound: an identity that may read the vault, a secret that does not exist',
      { secret: 'missing', clientId: DEV_USER_MI_CLIENT_ID },
      'gitlab.token: Key Vault URL, secret missing: cannot read the secret: 404 SecretNotFound: no such secret in this vault (store the first token in it: docs/operations.md)',
    ],
  ];
  for (const [name, keyVault, message] of refusals) {
    it(`start-up refused, naming the vault, the secret and the error: ${name}`, async () => {
      const config = parseConfig(keyVaultStsConfig(e, { keyVault, store: { sqlite: join(dir, 'r.db') } }), {
        env: {},
      });
      const err = await startSts({ config, logger: false }).catch((x: unknown) => x);
      assert.ok(err instanceof Error);
      assert.equal(err.message, message.replace('URL', e.kv.url));
      // Nothing left open: the same ledger can be served at once.
      const ok = await startSts({
        config: parseConfig(keyVaultStsConfig(e, { store: { sqlite: join(dir, 'r.db') } }), { env: {} }),
        logger: false,
      });
      await ok.close();
    });
  }

  it('`tanuki-sts credential status` with a wrong client secret: the AADSTS code, exit 1, no stack, no secret', async () => {
    const file = join(dir, 'env-cred.yaml');
    const raw = keyVaultStsConfig(e, { store: { sqlite: join(dir, 'c.db') } });
    // DefaultAzureCredential (no managedIdentityEndpoint): the environment's service principal.
    raw.gitlab.token.keyVault = { vaultUrl: e.kv.url, secret: SECRET, caFile: e.kv.caFile };
    writeFileSync(file, stringify(raw));
    const wrong = 'not-the-secret-0123456789abcdefXYZ';
    const run = await runCli(['credential', 'status', '--config', file, '--json'], {
      PATH: process.env.PATH,
      NODE_EXTRA_CA_CERTS: e.entra.caFile,
      AZURE_AUTHORITY_HOST: e.entra.url,
      AZURE_TENANT_ID: e.seed.tenantId,
      AZURE_CLIENT_ID: e.seed.pipelineClientId,
      AZURE_CLIENT_SECRET: wrong,
      TANUKI_TEST: '1',
      TANUKI_RUN_FROM: 'src',
    });
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      new RegExp(
        `^tanuki-sts: gitlab\\.token: Key Vault ${e.kv.url.replace(/[.]/g, '\\.')}, secret gitlab-token: cannot read the secret: sign-in failed: AADSTS7000215: [^\\n]+\\n$`,
      ),
    );
    assert.equal(run.stderr.includes(wrong), false);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
    // The right secret, but the pipeline app has no role on the STS's secret: 403 and its action.
    const denied = await runCli(['credential', 'status', '--config', file], {
      PATH: process.env.PATH,
      NODE_EXTRA_CA_CERTS: e.entra.caFile,
      AZURE_AUTHORITY_HOST: e.entra.url,
      AZURE_TENANT_ID: e.seed.tenantId,
      AZURE_CLIENT_ID: e.seed.pipelineClientId,
      AZURE_CLIENT_SECRET: e.seed.pipelineClientSecret,
      TANUKI_RUN_FROM: 'src',
    });
    assert.equal(denied.code, 1);
    assert.match(
      denied.stderr,
      /cannot read the secret: 403 Forbidden: identity [0-9a-f-]{36} lacks Microsoft\.KeyVault\/vaults\/secrets\/getSecret\/action/,
    );
    assertNoSecrets([run.stdout, run.stderr, denied.stdout, denied.stderr], 'CLI output');
  });
});
