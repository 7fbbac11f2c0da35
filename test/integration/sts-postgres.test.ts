/**
 * The STS on a PostgreSQL ledger, several replicas in this process (each a
 * `startSts` of its own, as a `serve` process would be), with the Entra ID and
 * GitLab emulators: any replica revokes what another minted; the cap holds
 * across replicas; losing the database answers 503 before any GitLab call and
 * recovers without a restart; terminated backends and a database that is not
 * there at start-up. (Replicas as separate processes: sts-replicas.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PostgresLedger } from '../../src/ledger/index.ts';
import { type StsHandle, startSts } from '../../src/service/server.ts';
import { sha256Hex } from '../../src/util/hash.ts';
import {
  deadPort,
  PG_URL,
  type PgProxy,
  pgUrlAt,
  startPgProxy,
  terminateBackends,
  testSchema,
  withPg,
} from '../helpers/pg.ts';
import {
  EXCHANGE,
  gitlabTokens,
  PROJECT,
  pipelineToken,
  postForm,
  type Stack,
  startStack,
} from '../helpers/stack.ts';

async function waitFor(fn: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A stack whose STS keeps its ledger in `schema` (through `url`). */
function pgStack(schema: string, url = PG_URL, over: (raw: Record<string, any>) => void = () => {}) {
  return startStack({
    tweak: (raw) => {
      raw.store = { postgres: { url, schema, poolSize: 4 } };
      // Every exchange asks GitLab for the target: "no GitLab call" below is not a cache hit.
      raw.gitlab.targetCacheTtl = 0;
      over(raw);
    },
  });
}

/** Another replica of the stack's STS (same configuration and ledger, listeners of its own). */
function replica(s: Stack, config = s.config): Promise<StsHandle> {
  return startSts({ config, logger: false, audit: s.audit, now: s.clock.now, background: false });
}

async function gitlabApiCalls(s: Stack): Promise<number> {
  return ((await (await fetch(`${s.gitlab.url}/_emulator/stats`)).json()) as { apiRequests: number })
    .apiRequests;
}

async function scrapeLeader(sts: StsHandle): Promise<number> {
  const text = await (await fetch(sts.metricsUrl as string)).text();
  const m = /^tanuki_sts_leader (\d)$/m.exec(text);
  assert.ok(m, 'tanuki_sts_leader is exported');
  return Number(m[1]);
}

async function grantCount(schema: string): Promise<number> {
  return withPg(async (c) => (await c.query(`SELECT count(*)::int AS n FROM "${schema}".grants`)).rows[0].n);
}

describe('STS replicas on one PostgreSQL ledger', () => {
  let s: Stack;
  let b: StsHandle;
  let schema: string;
  let drop: () => Promise<void>;
  let subject: string;
  before(async () => {
    ({ schema, drop } = await testSchema());
    s = await pgStack(schema, PG_URL, (raw) => {
      raw.server.maxActiveGrantsPerIdentity = 20;
    });
    b = await replica(s);
    subject = await pipelineToken(s);
  });
  after(async () => {
    await b?.close();
    await s?.close();
    await drop?.();
  });

  it('one leader; a token minted through one replica is revoked through the other', async () => {
    assert.deepEqual([s.sts.isLeader(), b.isLeader()], [true, false], 'the first to start leads');
    assert.deepEqual([await scrapeLeader(s.sts), await scrapeLeader(b)], [1, 0]);
    const res = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      audience: PROJECT,
    });
    assert.equal(res.status, 200, res.text);
    const token = res.json.access_token as string;
    const sha = sha256Hex(token);
    const before = (await gitlabTokens(s.gitlab.url)).find((t) => t.sha256 === sha);
    assert.equal(before?.active, true);
    const revoked = await postForm(`${b.url}/revoke`, { token });
    assert.equal(revoked.status, 200, revoked.text);
    const after = (await gitlabTokens(s.gitlab.url)).find((t) => t.sha256 === sha);
    assert.equal(after?.revoked, true, 'revoked in GitLab');
    const grant = await withPg(
      async (c) =>
        (await c.query(`SELECT state FROM "${schema}".grants WHERE token_sha256 = $1`, [sha])).rows[0],
    );
    assert.equal(grant?.state, 'revoked');
  });

  it('the cap holds across replicas: 60 simultaneous exchanges, cap 20 → 20 granted, 40 × 429', async () => {
    const c = await replica(s);
    try {
      const targets = [s.sts.url, b.url, c.url];
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          postForm(`${targets[i % 3]}/token`, { ...EXCHANGE, subject_token: subject, audience: PROJECT }),
        ),
      );
      const statuses = results.map((r) => r.status);
      // One grant of this identity is already revoked (previous test); the cap counts live grants only.
      assert.equal(statuses.filter((x) => x === 200).length, 20, statuses.join(' '));
      assert.equal(statuses.filter((x) => x === 429).length, 40);
      for (const r of results.filter((x) => x.status === 429)) {
        assert.equal(r.json.error, 'temporarily_unavailable');
        assert.ok(r.headers.get('retry-after'));
      }
    } finally {
      await c.close();
    }
  });
});

describe('STS on PostgreSQL: losing the database', () => {
  let proxy: PgProxy;
  let s: Stack;
  let schema: string;
  let drop: () => Promise<void>;
  let subject: string;
  before(async () => {
    proxy = await startPgProxy();
    ({ schema, drop } = await testSchema());
    s = await pgStack(schema, proxy.url);
    subject = await pipelineToken(s);
  });
  after(async () => {
    proxy.restore();
    await s?.close();
    await proxy?.close();
    await drop?.();
  });

  it('503 everywhere, no GitLab call, nothing recorded; then back by itself, no restart', async () => {
    const kept = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      audience: PROJECT,
    });
    assert.equal(kept.status, 200, kept.text);
    assert.equal((await fetch(`${s.sts.url}/readyz`)).status, 200);
    const grantsBefore = await grantCount(schema);

    proxy.cut();
    await waitFor(
      async () => (await fetch(`${s.sts.url}/readyz`)).status === 503,
      10_000,
      '/readyz to say not ready',
    );
    const ready = (await (await fetch(`${s.sts.url}/readyz`)).json()) as { checks: Record<string, boolean> };
    assert.equal(ready.checks.store, false);
    const calls = await gitlabApiCalls(s);
    const refused = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      audience: PROJECT,
    });
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json.error, 'temporarily_unavailable');
    assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After');
    assert.equal(await gitlabApiCalls(s), calls, 'no GitLab call');
    // The revocation cannot be recorded: it says so (503, retry), rather than a 200 that did nothing.
    const revoke = await postForm(`${s.sts.url}/revoke`, { token: kept.json.access_token });
    assert.equal(revoke.status, 503, revoke.text);
    assert.ok(revoke.headers.get('retry-after'));
    assert.equal(await gitlabApiCalls(s), calls, 'no GitLab call for the revocation either');
    assert.equal(await grantCount(schema), grantsBefore, 'no minting row');
    const exchangeAudit = s.audit.events.filter((e) => e.event === 'exchange').at(-1);
    assert.equal(exchangeAudit?.outcome, 'temporarily_unavailable');

    proxy.restore();
    await waitFor(
      async () => (await fetch(`${s.sts.url}/readyz`)).status === 200,
      15_000,
      '/readyz to recover',
    );
    const again = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      audience: PROJECT,
    });
    assert.equal(again.status, 200, again.text);
    const revoked = await postForm(`${s.sts.url}/revoke`, { token: kept.json.access_token });
    assert.equal(revoked.status, 200);
    const kt = (await gitlabTokens(s.gitlab.url)).find((t) => t.sha256 === sha256Hex(kept.json.access_token));
    assert.equal(kt?.revoked, true);
  });

  it('its backends terminated: it reconnects, serves, and leads again', async () => {
    const store = s.sts.context.store as PostgresLedger;
    // After the outage above, the election connection came back too.
    await waitFor(() => s.sts.isLeader(), 15_000, 'the replica to lead after the outage');
    assert.ok((await terminateBackends(`tanuki-sts/${store.instanceId}`)) >= 1);
    await waitFor(
      async () =>
        (await postForm(`${s.sts.url}/token`, { ...EXCHANGE, subject_token: subject, audience: PROJECT }))
          .status === 200,
      15_000,
      'exchanges to work again',
    );
    await waitFor(() => s.sts.isLeader(), 15_000, 'leadership to be taken again');
    assert.equal(await scrapeLeader(s.sts), 1);
  });
});

describe('STS on PostgreSQL: nothing listens at the configured port', () => {
  it('starts not ready, answers 503 without calling GitLab, and is not the leader', async () => {
    const { schema, drop } = await testSchema();
    const s = await pgStack(schema, pgUrlAt(await deadPort()));
    try {
      const ready = await fetch(`${s.sts.url}/readyz`);
      assert.equal(ready.status, 503);
      const calls = await gitlabApiCalls(s);
      const res = await postForm(`${s.sts.url}/token`, {
        ...EXCHANGE,
        subject_token: await pipelineToken(s),
        audience: PROJECT,
      });
      assert.equal(res.status, 503, res.text);
      assert.ok(res.headers.get('retry-after'));
      assert.equal(await gitlabApiCalls(s), calls);
      assert.equal(s.sts.isLeader(), false);
      assert.equal(await scrapeLeader(s.sts), 0);
      const health = await fetch(`${s.sts.url}/healthz`);
      assert.equal(health.status, 200, 'alive (liveness), only not ready');
    } finally {
      await s.close();
      await drop();
    }
  });
});
