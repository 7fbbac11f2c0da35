/**
 * Faults: GitLab failing in each way the emulator can fail, the
 * Entra JWKS going down, and the ledger becoming unwritable. In every case the
 * client gets `503 temporarily_unavailable` with `Retry-After`, and no GitLab
 * token is left active that the ledger does not account for.
 * (SIGKILL mid-exchange: test/chaos/sigkill.chaos.ts, `npm run test:chaos`.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { gitlabTokens, postForm, type Stack, startStack } from '../helpers/stack.ts';
import {
  assertAuditClean,
  closeEntraAgent,
  entraRequest,
  exchange,
  gitlabApiCalls,
  mintEntra,
  parts,
} from './helpers/attack.ts';

/** One exchange and its revocation: afterwards the target's id is cached and the next exchange calls GitLab once. */
async function warmTargetCache(s: Stack, subject: string): Promise<void> {
  const res = await exchange(s, subject);
  assert.equal(res.status, 200, res.text);
  assert.equal((await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token })).status, 200);
}

async function setFaults(s: Stack, faults: Record<string, unknown> | null): Promise<void> {
  const res = await fetch(`${s.gitlab.url}/_emulator/faults`, {
    method: faults ? 'POST' : 'DELETE',
    headers: faults ? { 'content-type': 'application/json' } : {},
    body: faults ? JSON.stringify(faults) : undefined,
  });
  assert.ok(res.ok, `setting faults: ${res.status}`);
}

/** Tokens of this STS (server id `test`) that GitLab still accepts. */
async function activeOurs(s: Stack): Promise<Array<Record<string, unknown>>> {
  return (await gitlabTokens(s.gitlab.url)).filter(
    (t) => String(t.name).startsWith('tanuki-sts/test/') && t.active === true && t.revoked !== true,
  );
}

function assertUnavailable(res: Awaited<ReturnType<typeof exchange>>, minRetryAfter = 1): void {
  assert.equal(res.status, 503, res.text);
  assert.equal(res.json?.error, 'temporarily_unavailable');
  assert.equal(typeof res.json?.request_id, 'string');
  assert.ok(
    Number(res.headers.get('retry-after')) >= minRetryAfter,
    `Retry-After ${res.headers.get('retry-after')}`,
  );
}

describe('faults: GitLab fails', () => {
  let s: Stack;
  let subject: string;
  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        raw.gitlab.timeout = '1s';
        // The target lookup is cached for the run, so that the faults below hit the mint itself.
        raw.gitlab.targetCacheTtl = '1h';
      },
    });
    subject = await mintEntra(s);
    await warmTargetCache(s, subject);
  });
  after(async () => {
    assertAuditClean(s, [subject]);
    await closeEntraAgent(s);
    await s.close();
  });

  const cases: Array<[string, Record<string, unknown>, number]> = [
    ['500', { errorRate: 1, errorStatuses: [500] }, 1],
    ['502', { errorRate: 1, errorStatuses: [502] }, 1],
    ['503', { errorRate: 1, errorStatuses: [503] }, 1],
    ['a dropped connection', { dropRate: 1 }, 1],
    ['an answer slower than gitlab.timeout (1 s)', { latencyMs: 1800 }, 1],
    [
      '429 with Retry-After: 7 (GitLab’s own value is passed on)',
      { burst429: { count: 1, retryAfterSeconds: 7 } },
      7,
    ],
  ];
  for (const [name, faults, minRetryAfter] of cases) {
    it(`${name}: 503 + Retry-After, one create attempt (POST is never retried), nothing left active`, async () => {
      await setFaults(s, faults);
      const calls0 = await gitlabApiCalls(s);
      let res: Awaited<ReturnType<typeof exchange>>;
      try {
        res = await exchange(s, subject);
      } finally {
        await setFaults(s, null);
      }
      assertUnavailable(res, minRetryAfter);
      assert.equal((await gitlabApiCalls(s)) - calls0, 1, 'exactly one GitLab request');
      const grantId = s.audit.events.find((e) => e.requestId === res.json.request_id)?.grantId;
      assert.ok(grantId, 'the grant was recorded before GitLab was called');
      assert.equal((await s.sts.context.store.getById(grantId))?.state, 'failed');
      // A slow GitLab may still create the token after the STS gave up: the reconciler takes it back.
      if (faults.latencyMs) await sleep(Number(faults.latencyMs));
      await s.sts.reconcileNow();
      assert.deepEqual(await activeOurs(s), []);
    });
  }

  it('after the faults, exchanges work again', async () => {
    const res = await exchange(s, subject);
    assert.equal(res.status, 200, res.text);
    assert.equal((await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token })).status, 200);
    assert.deepEqual(await activeOurs(s), []);
  });
});

describe('faults: GitLab fails at the target lookup', () => {
  let s: Stack;
  let subject: string;
  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        raw.gitlab.timeout = '1s';
        raw.gitlab.targetCacheTtl = 0;
      },
    });
    subject = await mintEntra(s);
  });
  after(async () => {
    assertAuditClean(s, [subject]);
    await closeEntraAgent(s);
    await s.close();
  });

  it('503 + Retry-After, nothing recorded, no token created', async () => {
    const tokens0 = (await gitlabTokens(s.gitlab.url)).length;
    await setFaults(s, { errorRate: 1, errorStatuses: [503] });
    let res: Awaited<ReturnType<typeof exchange>>;
    try {
      res = await exchange(s, subject);
    } finally {
      await setFaults(s, null);
    }
    assertUnavailable(res);
    const event = s.audit.events.find((e) => e.requestId === res.json.request_id);
    assert.equal(event?.grantId, undefined, 'no grant recorded before the target is known');
    assert.equal((await gitlabTokens(s.gitlab.url)).length, tokens0);
  });
});

describe('faults: the Entra JWKS goes down', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await closeEntraAgent(s);
    await s.close();
  });

  it('cached keys keep working; a new kid whose refetch fails gets 503 + Retry-After, a forgery still 400', async () => {
    const cached = await mintEntra(s);
    const rotated = await entraRequest(s, '/_emulator/rotate-keys', { json: {} });
    assert.equal(rotated.status, 200, rotated.text);
    const newKid = await mintEntra(s);
    assert.notEqual(parts(newKid).header.kid, parts(cached).header.kid, 'signed with the new key');
    await closeEntraAgent(s);
    await s.entra.close(); // discovery and JWKS unreachable from now on

    const ok = await exchange(s, cached);
    assert.equal(ok.status, 200, ok.text);

    const unknown = await exchange(s, newKid);
    assertUnavailable(unknown);
    assert.match(
      s.audit.events.find((e) => e.requestId === unknown.json.request_id)?.reason ?? '',
      /JWKS|keys/,
    );

    // A forged token under the known kid is not "unavailable": it is refused as invalid.
    const { header, payload } = parts(cached);
    const forged = `${cached.split('.').slice(0, 2).join('.')}.${Buffer.alloc(256, 1).toString('base64url')}`;
    assert.ok(header.kid && payload.iss);
    const refused = await exchange(s, forged);
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json.error, 'invalid_request');
  });
});

describe('faults: the ledger cannot be written', () => {
  let s: Stack;
  let subject: string;
  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        raw.gitlab.targetCacheTtl = '1h';
      },
    });
    subject = await mintEntra(s);
    await warmTargetCache(s, subject);
  });
  after(async () => {
    await setFaults(s, null);
    assertAuditClean(s, [subject]);
    await closeEntraAgent(s);
    await s.close();
  });

  /** Another connection holds SQLite's write lock: the ledger's writes wait out busy_timeout (5 s), then fail. */
  function lockLedger(): () => void {
    const db = new Database(join(s.dir, 'ledger.db'));
    db.exec('BEGIN EXCLUSIVE');
    return () => {
      db.exec('ROLLBACK');
      db.close();
    };
  }

  it('before the mint: 503 and GitLab is never called (no token without a ledger record)', async () => {
    const calls0 = await gitlabApiCalls(s);
    const unlock = lockLedger();
    let res: Awaited<ReturnType<typeof exchange>>;
    try {
      res = await exchange(s, subject);
    } finally {
      unlock();
    }
    assertUnavailable(res);
    assert.equal(await gitlabApiCalls(s), calls0, 'no GitLab request');
    assert.deepEqual(await activeOurs(s), []);
  });

  it('after the mint: the STS takes the token back from GitLab and answers 503', async () => {
    // GitLab answers slowly, so the ledger can be locked while the mint is in flight.
    await setFaults(s, { latencyMs: 1200 });
    const before = (await gitlabTokens(s.gitlab.url)).length;
    const pending = exchange(s, subject);
    await sleep(500);
    const unlock = lockLedger();
    let res: Awaited<ReturnType<typeof exchange>>;
    try {
      res = await pending;
    } finally {
      unlock();
      await setFaults(s, null);
    }
    assertUnavailable(res);
    const all = await gitlabTokens(s.gitlab.url);
    assert.equal(all.length, before + 1, 'GitLab did mint');
    assert.deepEqual(await activeOurs(s), [], 'and the minted token was revoked');
  });
});
