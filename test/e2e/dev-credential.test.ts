/**
 * `npm start` (`tanuki-sts dev`) keeps the STS's GitLab token in the emulated
 * Key Vault and reads it with the managed identity emulator; `tanuki-sts
 * credential rotate --config <dev config>` rotates it: the old token answers 401
 * at GitLab, the vault holds a new version, exchanges keep working without a
 * restart, and a restart of the stack uses the new token (no new version).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import type { DevJson } from '../../src/cli/dev-stack.ts';
import { sha256Hex } from '../../src/util/hash.ts';
import { azureToken } from '../helpers/azure.ts';
import { spawnDev } from '../helpers/dev-process.ts';
import { runCli } from '../helpers/run-cli.ts';
import { assertNoSecrets, EXCHANGE, postForm } from '../helpers/stack.ts';

describe('the dev stack: its GitLab token in Key Vault, rotated by `credential rotate`', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-dev-cred-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function vault(dev: DevJson): Promise<string[]> {
    const agent = new Agent({ connect: { ca: readFileSync(dev.caFile, 'utf8') } });
    try {
      const res = await undiciFetch(`${dev.keyVault.url}/_emulator/secrets`, { dispatcher: agent });
      const all = (await res.json()) as Array<{ name: string; versions: Array<{ sha256: string }> }>;
      return all.find((s) => s.name === dev.keyVault.secret)?.versions.map((v) => v.sha256) ?? [];
    } finally {
      await agent.close();
    }
  }

  const adminTokens = async (dev: DevJson) =>
    ((await (await fetch(`${dev.gitlab.url}/_emulator/tokens`)).json()) as Array<Record<string, any>>).filter(
      (t) => t.kind === 'personal' && t.user_id === 1,
    );

  async function exchange(dev: DevJson): Promise<number> {
    const subject = await azureToken({
      caFile: dev.caFile,
      authorityHost: dev.entra.authorityHost,
      tenantId: dev.entra.tenantId,
      clientId: dev.entra.clientId,
      clientSecret: dev.entra.clientSecret,
      scope: dev.entra.scope,
    });
    const r = await postForm(`${dev.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      resource: `${dev.gitlab.url}/${dev.gitlab.project}`,
    });
    return r.status;
  }

  it('npm start reads the token from the vault; credential rotate rotates it; a restart uses the new one', async () => {
    const stateDir = join(dir, 'state');
    const first = spawnDev(stateDir, ['--port-base', '0']);
    let dev: DevJson;
    let rotatedSha: string | undefined;
    try {
      dev = await first.ready();
      assert.equal(dev.keyVault.secret, 'gitlab-token');
      assert.match(dev.keyVault.url, /^https:\/\/localhost:\d+$/);
      const config = readFileSync(dev.sts.config, 'utf8');
      assert.match(config, /keyVault:/);
      assert.equal(
        config.includes(dev.gitlab.adminToken),
        false,
        'the token is in the vault, not the config',
      );
      assert.deepEqual(await vault(dev), [sha256Hex(dev.gitlab.adminToken)]);
      assert.equal(await exchange(dev), 200);

      const rotate = await runCli(['credential', 'rotate', '--config', dev.sts.config]);
      assert.equal(rotate.code, 0, rotate.stderr);
      assert.match(
        rotate.stdout,
        /^rotated the GitLab credential: token 1 → \d+, expires \d{4}-\d\d-\d\d; written to Key Vault https:\/\/localhost:\d+, secret gitlab-token \(version [0-9a-f]{32}\)\n$/,
      );
      const old = await fetch(`${dev.gitlab.url}/api/v4/personal_access_tokens/self`, {
        headers: { 'PRIVATE-TOKEN': dev.gitlab.adminToken },
      });
      assert.equal(old.status, 401, 'the old token is refused at GitLab');
      const versions = await vault(dev);
      assert.equal(versions.length, 2, 'a new version');
      rotatedSha = versions[1];
      const active = (await adminTokens(dev)).filter((t) => t.active);
      assert.deepEqual(
        active.map((t) => t.sha256),
        [rotatedSha],
        'the one active token of the STS user is the one in the vault',
      );
      // The running STS still held the old token: GitLab's 401 makes it read the vault again.
      assert.equal(await exchange(dev), 200);
      assert.equal(await exchange(dev), 200);
      assertNoSecrets([rotate.stdout, rotate.stderr], 'credential rotate');
    } finally {
      await first.stop();
    }

    const second = spawnDev(stateDir, ['--port-base', '0']);
    try {
      const again = await second.ready();
      assert.deepEqual(await vault(again), [sha256Hex(dev.gitlab.adminToken), rotatedSha], 'no new version');
      const status = await runCli(['credential', 'status', '--config', again.sts.config, '--json']);
      assert.equal(status.code, 0, status.stderr);
      const s = JSON.parse(status.stdout);
      const live = (await adminTokens(again)).find((t) => t.active);
      assert.deepEqual(
        {
          source: s.source,
          tokenId: s.tokenId,
          scopes: s.scopes,
          expiresAt: s.expiresAt,
          last: s.lastRotation?.tokenId,
        },
        {
          source: 'keyVault',
          tokenId: live?.id,
          scopes: ['api'],
          expiresAt: live?.expires_at,
          last: live?.id,
        },
      );
      assert.equal(await exchange(again), 200);
    } finally {
      await second.stop();
    }
  });
});
