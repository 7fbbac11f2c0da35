/**
 * "Nothing lost": grants die on time without the client's help, across
 * restarts, and a token GitLab minted but the ledger never recorded is found
 * and revoked by the reconciler. Time moves by a fake clock, never by sleeping.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acquireLedgerLock, LedgerLockedError, openSqliteLedger, tokenName } from '../../src/ledger/index.ts';
import { createMemoryAuditSink } from '../../src/service/audit.ts';
import { startSts } from '../../src/service/server.ts';
import { utcDate } from '../../src/util/utc-date.ts';
import {
  EXCHANGE,
  gitlabTokens,
  PROJECT,
  pipelineToken,
  postForm,
  type Stack,
  startStack,
} from '../helpers/stack.ts';

describe('grant lifecycle', () => {
  let s: Stack;
  let subject: string;
  before(async () => {
    s = await startStack();
    subject = await pipelineToken(s);
  });
  after(() => s.close());

  async function exchange(ttlSeconds: number): Promise<{ token: string; gitlabId: number }> {
    const res = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      audience: PROJECT,
      expires_in: String(ttlSeconds),
    });
    assert.equal(res.status, 200, res.text);
    const granted = s.audit.events.filter((e) => e.event === 'exchange' && e.outcome === 'granted').at(-1);
    assert.ok(granted?.gitlabTokenId);
    return { token: res.json.access_token, gitlabId: granted.gitlabTokenId };
  }

  async function isActive(id: number): Promise<boolean> {
    const t = (await gitlabTokens(s.gitlab.url)).find((x) => x.id === id);
    assert.ok(t, `token ${id} exists in GitLab`);
    return t.active === true && t.revoked !== true;
  }

  it('clamps the TTL to the policy maximum', async () => {
    const res = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      audience: PROJECT,
      expires_in: '86400',
    });
    assert.equal(res.status, 200);
    assert.equal(res.json.expires_in, 3600);
    await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token });
  });

  it('the reaper revokes a 1-minute grant once its TTL ends, not before', async () => {
    const { gitlabId } = await exchange(60);
    await s.sts.reapNow();
    assert.equal(await isActive(gitlabId), true, 'still active before its TTL');
    s.clock.advance(61_000);
    await s.sts.reapNow();
    assert.equal(await isActive(gitlabId), false, 'revoked after its TTL');
  });

  it('a restarted STS revokes grants that fell due while it was down', async () => {
    const { gitlabId } = await exchange(60);
    await s.sts.close();
    s.clock.advance(120_000);
    assert.equal(await isActive(gitlabId), true);
    // Start-up revokes overdue grants before serving (background loops on).
    await s.restartSts({ background: true });
    assert.equal(await isActive(gitlabId), false);
    await s.restartSts({ background: false });
  });

  it('the reconciler revokes a token GitLab minted but the ledger never recorded', async () => {
    await exchange(600); // so that the ledger knows this project as a target
    // Mint a token as the STS would have, then "crash" before recording it.
    const orphanName = `tanuki-sts/test/image-build/${randomUUID()}`;
    const otherName = `tanuki-sts/other-deployment/image-build/${randomUUID()}`;
    const ids: number[] = [];
    for (const name of [orphanName, otherName]) {
      const res = await fetch(
        `${s.gitlab.url}/api/v4/projects/${encodeURIComponent(PROJECT)}/access_tokens`,
        {
          method: 'POST',
          headers: { 'PRIVATE-TOKEN': s.gitlab.adminToken, 'content-type': 'application/json' },
          body: JSON.stringify({
            name,
            scopes: ['read_repository'],
            access_level: 20,
            expires_at: utcDate(Date.now() + 2 * 86400_000),
          }),
        },
      );
      assert.equal(res.status, 201);
      ids.push(((await res.json()) as { id: number }).id);
    }
    const live = s.audit.events.filter((e) => e.outcome === 'granted').at(-1)?.gitlabTokenId as number;
    await s.sts.reconcileNow();
    assert.equal(await isActive(ids[0]!), false, 'orphan revoked');
    assert.equal(await isActive(ids[1]!), true, "another deployment's token left alone");
    assert.equal(await isActive(live), true, 'a live grant left alone');
  });

  it('a second process cannot serve from the same SQLite ledger while the first lives', () => {
    assert.throws(() => acquireLedgerLock(join(s.dir, 'ledger.db')), LedgerLockedError);
  });

  it('a failed start-up (listen port taken) releases the ledger lock it took', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const ledger = join(s.dir, 'second.db');
    try {
      await assert.rejects(
        startSts({
          config: {
            ...s.config,
            store: { sqlite: ledger },
            server: { ...s.config.server, listen: { ...s.config.server.listen, port } },
          },
          logger: false,
          audit: createMemoryAuditSink(),
          background: false,
        }),
        /EADDRINUSE/,
      );
      acquireLedgerLock(ledger).release(); // free again
    } finally {
      blocker.close();
    }
  });

  it('a grant the previous process left minting is failed at start-up and its token revoked at once', async () => {
    await exchange(600); // the ledger knows the project as a target
    await s.sts.close();
    // What a SIGKILL between GitLab's answer and markActive leaves: a minting row, a live token.
    const grantId = randomUUID();
    const store = openSqliteLedger(join(s.dir, 'ledger.db'));
    const t0 = s.clock.now();
    await store.insertMinting({
      id: grantId,
      requestId: randomUUID(),
      issuer: 'contoso',
      identityKey: 'crash-test',
      subject: 'crash-test',
      policy: 'image-build',
      targetKind: 'project',
      targetRef: PROJECT,
      scopes: ['read_repository'],
      accessLevel: 20,
      createdAt: t0,
      expiresAt: t0 + 600_000,
      gitlabExpiresAt: utcDate(t0 + 2 * 86400_000),
    });
    await store.close();
    const res = await fetch(`${s.gitlab.url}/api/v4/projects/${encodeURIComponent(PROJECT)}/access_tokens`, {
      method: 'POST',
      headers: { 'PRIVATE-TOKEN': s.gitlab.adminToken, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: tokenName('test', 'image-build', grantId),
        scopes: ['read_repository'],
        access_level: 20,
        expires_at: utcDate(Date.now() + 2 * 86400_000),
      }),
    });
    assert.equal(res.status, 201);
    const orphan = ((await res.json()) as { id: number }).id;

    // No clock movement: the stale-minting deadline has not passed, start-up alone decides.
    await s.restartSts({ background: false });
    const recovered = s.audit.events.find((e) => e.event === 'recover' && e.grantId === grantId);
    assert.ok(recovered, 'the recovery is audited');
    assert.equal((await s.sts.context.store.getById(grantId))?.state, 'failed');
    await s.sts.reconcileNow();
    assert.equal(await isActive(orphan), false, 'its token is revoked by the first reconcile pass');
  });
});
