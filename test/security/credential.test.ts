/**
 * Attacks on the STS's own GitLab credential (docs/security.md rows 140–149):
 * the ledger read or written by someone else, the token leaking through the
 * commands, the audit or the log, a rotation with nowhere to go, readiness
 * lying about a dying credential. The real STS, the emulated Key Vault, GitLab
 * and Entra ID (its managed identity).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.ts';
import { createCredentialHolder, openSealedToken, sealToken } from '../../src/credential/index.ts';
import { openSqliteCredentialRotations } from '../../src/ledger/index.ts';
import { createMemoryAuditSink } from '../../src/service/audit.ts';
import { pendingLookup } from '../../src/service/credential.ts';
import { startSts } from '../../src/service/server.ts';
import { sha256Hex } from '../../src/util/hash.ts';
import { findToken } from '../../src/util/token-patterns.ts';
import {
  type CredentialEmulators,
  gitlabAccepts,
  keyVaultStsConfig,
  startCredentialEmulators,
  vaultFaults,
} from '../helpers/credential-stack.ts';
import { dayUtc } from '../helpers/gitlab-http.ts';
import { runCli } from '../helpers/run-cli.ts';
import { assertNoSecrets } from '../helpers/stack.ts';

describe("attacks on the STS's own GitLab credential", () => {
  let dir: string;
  let e: CredentialEmulators;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-sec-cred-'));
    e = await startCredentialEmulators(dir, { stsTokenExpiresAt: dayUtc(1) });
  });
  after(async () => {
    await e.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('149: /readyz is not ready when the credential has < 24 h left while its rotation fails, or has expired', async () => {
    // The STS's token expires tomorrow at 00:00 UTC (< 24 h); GitLab fails every rotate request.
    const faults = (body: unknown) =>
      fetch(`${e.gitlab.url}/_emulator/faults`, {
        method: body ? 'POST' : 'DELETE',
        ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
      });
    await faults({ errorRate: 1, errorStatuses: [500], paths: '/api/v4/personal_access_tokens/self/rotate' });
    const config = parseConfig(
      keyVaultStsConfig(e, {
        store: { sqlite: join(dir, 'ready.db') },
        gitlab: { rotation: { every: '1d', lifetime: '7d' } },
      }),
      { env: {} },
    );
    let now = Date.now();
    const sts = await startSts({ config, logger: false, background: false, now: () => now });
    try {
      const readyz = async () => {
        const res = await fetch(`${sts.url}/readyz`);
        return { status: res.status, credential: ((await res.json()) as any).checks.credential };
      };
      // The pass finds the token due (it expires within `every`) and its rotation fails.
      await sts.credential.tick();
      assert.equal(sts.credential.state().lastAttempt?.outcome, 'failed');
      assert.deepEqual(await readyz(), { status: 503, credential: false });
      const m = await (await fetch(sts.metricsUrl as string)).text();
      assert.match(m, /^tanuki_sts_credential_rotations_total\{outcome="failed"\} 1$/m);
      assert.equal(await gitlabAccepts(e, e.gitlab.adminToken), true, 'nothing was rotated');
      // GitLab rotates again: a week ahead, ready.
      await faults(null);
      assert.equal((await sts.credential.rotateNow()).outcome, 'success');
      assert.deepEqual(await readyz(), { status: 200, credential: true });
      // Past its expiry date (on the STS's clock): not ready.
      now += 8 * 86_400_000;
      assert.deepEqual(await readyz(), { status: 503, credential: false });
    } finally {
      await faults(null);
      await sts.close();
    }
  });

  it('141: a ledger dump between the rotation and the write-back holds no token; the seal opens only with the old one and is erased after', async () => {
    const db = join(dir, 'dump.db');
    const audit = createMemoryAuditSink();
    const config = parseConfig(
      keyVaultStsConfig(e, { store: { sqlite: db }, gitlab: { rotation: { every: '1d', lifetime: '7d' } } }),
      { env: {} },
    );
    const old = e.gitlab.adminToken;
    const sts = await startSts({ config, logger: false, audit });
    try {
      await vaultFaults(e, { status: 503, operations: ['setSecret'] });
      const r = await sts.credential.rotateNow();
      assert.equal(r.outcome, 'writeback_failed');
      // Everything the ledger file holds, as a thief with a copy of it would read it.
      const raw = readFileSync(db).toString('latin1') + readFileSync(`${db}-wal`).toString('latin1');
      assert.equal(findToken(raw), undefined, 'no token-shaped string in the database files');
      const copy = new Database(db, { readonly: true });
      const row = copy.prepare(`SELECT * FROM credential_rotations WHERE state = 'pending'`).get() as Record<
        string,
        any
      >;
      copy.close();
      assert.equal(row.old_sha256, sha256Hex(old));
      assert.equal(openSealedToken(row.sealed, 'glpat-a-guess-of-the-old-token-01', row.id), undefined);
      const opened = openSealedToken(row.sealed, old, row.id) as string;
      assert.equal(sha256Hex(opened), row.new_sha256);
      assert.equal(await gitlabAccepts(e, opened), true);
      // The vault takes writes again: the next completion writes it back and erases the seal.
      await vaultFaults(e, null);
      assert.equal((await sts.credential.rotateNow()).outcome, 'recovered');
      const after = new Database(db, { readonly: true });
      const done = after.prepare('SELECT state, sealed FROM credential_rotations').all();
      after.close();
      assert.deepEqual(done, [{ state: 'done', sealed: null }]);
      assertNoSecrets(
        audit.events.map((x) => JSON.stringify(x)),
        'audit',
      );
    } finally {
      await vaultFaults(e, null);
      await sts.close();
    }
  });

  it('142: a pending rotation planted in the ledger (a token of the attacker’s choice) is not taken by a replica', async () => {
    const db = join(dir, 'planted.db');
    const rotations = openSqliteCredentialRotations(db);
    const held = 'glpat-the-token-the-sts-holds-0001';
    const planted = 'glpat-attacker-chosen-token-00001';
    try {
      // The attacker can write the ledger but does not hold the STS's token: the seal is made with a guess.
      await rotations.begin({ id: 'evil', startedAt: Date.now(), owner: 'x', oldSha256: sha256Hex(held) });
      await rotations.recordNewToken('evil', {
        newSha256: sha256Hex(planted),
        newTokenId: 99,
        sealed: sealToken(planted, 'glpat-a-guess-of-the-sts-token-01', 'evil'),
      });
      // GitLab refuses the held token (revoked, say): the replica looks for a rotation of it.
      const holder = createCredentialHolder({
        source: {
          kind: 'keyVault',
          description: 'test',
          writable: false,
          read: async () => held,
          write: async () => ({}),
          close: async () => {},
        },
        initial: held,
        pending: pendingLookup(() => rotations),
        waitMs: 200,
        pollMs: 10,
      });
      assert.equal(await holder.unauthorized(held), false);
      assert.equal(holder.current(), held);
    } finally {
      await rotations.close();
    }
  });

  it('145/146: the commands print no token; a rotation with nowhere to write the new one is refused', async () => {
    const file = join(dir, 'cli.yaml');
    writeFileSync(
      file,
      stringify(
        keyVaultStsConfig(e, { store: { sqlite: join(dir, 'cli.db') }, audit: join(dir, 'cli-audit.log') }),
      ),
    );
    const status = await runCli(['credential', 'status', '--config', file, '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(Object.keys(JSON.parse(status.stdout)), [
      'source',
      'location',
      'tokenId',
      'name',
      'scopes',
      'expiresAt',
      'active',
      'lastRotation',
      'pendingRotation',
      'rotation',
    ]);
    const rotate = await runCli(['credential', 'rotate', '--config', file]);
    assert.equal(rotate.code, 0, rotate.stderr);
    const auditLine = readFileSync(join(dir, 'cli-audit.log'), 'utf8');
    assert.match(auditLine, /"event":"credential-rotation","outcome":"success","via":"cli"/);
    assertNoSecrets(
      [status.stdout, status.stderr, rotate.stdout, rotate.stderr, auditLine],
      'credential commands',
    );

    const envFile = join(dir, 'env.yaml');
    const raw = keyVaultStsConfig(e, { store: { sqlite: join(dir, 'env.db') } });
    raw.gitlab.token = { env: 'TANUKI_TEST_GITLAB_TOKEN' };
    writeFileSync(envFile, stringify(raw));
    const token = 'glpat-from-the-environment-000001';
    const refused = await runCli(['credential', 'rotate', '--config', envFile], {
      ...process.env,
      TANUKI_TEST_GITLAB_TOKEN: token,
    });
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      'tanuki-sts: gitlab.token is an environment variable: a rotated token has nowhere to go (use gitlab.token: { keyVault: … } or { file: … })\n',
    );
    assert.equal(await gitlabAccepts(e, token), false, 'not a GitLab token: nothing was sent anywhere');
  });
});
