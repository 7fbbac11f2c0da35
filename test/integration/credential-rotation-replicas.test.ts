/**
 * Two `tanuki-sts serve` replicas on one PostgreSQL ledger, their GitLab token in
 * the emulated Key Vault. Only the leader rotates (the token is due at start: the
 * leader rotates it, the follower never does), and a rotation under load
 * (`tanuki-sts credential rotate`, another process, while both replicas serve a
 * stream of exchanges) fails no exchange: each replica meets GitLab's 401 for
 * the old token, reads the vault (or the ledger's sealed value) and sends the
 * request again — no restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { azureToken } from '../helpers/azure.ts';
import {
  type CredentialEmulators,
  keyVaultStsConfig,
  startCredentialEmulators,
  stsUserTokens,
  vaultVersions,
} from '../helpers/credential-stack.ts';
import { dayUtc } from '../helpers/gitlab-http.ts';
import { PG_URL, testSchema } from '../helpers/pg.ts';
import { type ServeProcess, spawnServe } from '../helpers/replicas.ts';
import { runCli } from '../helpers/run-cli.ts';
import { EXCHANGE, PROJECT, postForm } from '../helpers/stack.ts';

async function metric(s: ServeProcess, line: RegExp): Promise<string | undefined> {
  const text = await (await fetch(s.metricsUrl)).text();
  return line.exec(text)?.[1];
}

describe('replicas and the rotation of their GitLab token', () => {
  let dir: string;
  let e: CredentialEmulators;
  let drop: () => Promise<void>;
  let configFile: string;
  const replicas: ServeProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-cred-replicas-'));
    const t = await testSchema();
    drop = t.drop;
    e = await startCredentialEmulators(dir, { stsTokenExpiresAt: dayUtc(2) });
    configFile = join(dir, 'tanuki-sts.yaml');
    writeFileSync(
      configFile,
      JSON.stringify(
        keyVaultStsConfig(e, {
          store: { postgres: { url: PG_URL, schema: t.schema, poolSize: 4 } },
          gitlab: { rotation: { every: '2d', lifetime: '7d' }, healthInterval: '30s' },
          audit: join(dir, 'audit.log'),
        }),
      ),
    );
  });
  after(async () => {
    for (const r of replicas) await r.kill('SIGKILL');
    await e.close();
    await drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the leader rotates the due token; the follower does not, and reads the new one', async () => {
    const a = await spawnServe(configFile, { logFile: join(dir, 'a.log') });
    replicas.push(a);
    const success = /^tanuki_sts_credential_rotations_total\{outcome="success"\} (\d+)$/m;
    const deadline = Date.now() + 30_000;
    while ((await metric(a, success)) !== '1') {
      assert.ok(Date.now() < deadline, 'the leader rotated');
      await sleep(100);
    }
    const b = await spawnServe(configFile, { logFile: join(dir, 'b.log') });
    replicas.push(b);
    await sleep(500);
    assert.equal(await metric(a, /^tanuki_sts_leader (\d)$/m), '1');
    assert.equal(await metric(b, /^tanuki_sts_leader (\d)$/m), '0');
    assert.equal(await metric(b, success), '0');
    assert.equal((await stsUserTokens(e)).filter((t) => t.active).length, 1);
  });

  it('a rotation under load: 0 failed exchanges on either replica, the old token refused, a new version', async () => {
    const [a, b] = replicas as [ServeProcess, ServeProcess];
    const subject = await azureToken({
      caFile: e.entra.caFile,
      authorityHost: e.entra.url,
      tenantId: e.seed.tenantId,
      clientId: e.seed.pipelineClientId,
      clientSecret: e.seed.pipelineClientSecret,
      scope: `${e.seed.resourceUri}/.default`,
    });
    const before = (await vaultVersions(e)).at(-1)?.sha256;
    const statuses = new Map<number, number>();
    let stop = false;
    let done = 0;
    const loop = async (url: string) => {
      while (!stop) {
        const r = await postForm(`${url}/token`, {
          ...EXCHANGE,
          subject_token: subject,
          resource: `${e.gitlab.url}/${PROJECT}`,
        });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        done++;
      }
    };
    const loops = [a, b, a, b, a, b].map((s) => loop(s.url));
    while (done < 20) await sleep(20);
    const atRotation = done;
    const cli = await runCli(['credential', 'rotate', '--config', configFile]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(
      cli.stdout,
      /^rotated the GitLab credential: token \d+ → \d+, expires \d{4}-\d\d-\d\d; written to Key Vault /,
    );
    const afterRotation = done;
    await sleep(1500);
    stop = true;
    await Promise.all(loops);
    assert.deepEqual([...statuses.keys()], [200], `statuses: ${JSON.stringify([...statuses])}`);
    assert.ok(
      atRotation > 10 && done - afterRotation > 10,
      `exchanges before (${atRotation}) and after (${done - afterRotation}) the rotation`,
    );
    const tokens = await stsUserTokens(e);
    assert.equal(tokens.find((t) => t.sha256 === before)?.active, false, 'the old token is refused');
    const now = (await vaultVersions(e)).at(-1)?.sha256;
    assert.notEqual(now, before);
    assert.deepEqual(
      tokens.filter((t) => t.active).map((t) => t.sha256),
      [now],
    );
    for (const r of [a, b]) assert.match(r.log(), /GitLab credential replaced/);
  });
});
