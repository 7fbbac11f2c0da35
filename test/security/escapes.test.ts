/**
 * Escapes: what the holder of a minted token (or a moved project) can do to
 * outlive or outgrow the grant, tried against the real STS and the GitLab
 * emulator.
 *
 * - A token with `api` rotates itself (once, or in a loop every 2 s), choosing
 *   a year-long expiry and getting a new id: the chain still dies at the TTL.
 * - A path that GitLab resolves through a redirect route (the project was
 *   moved out of the granted group) is refused, whichever way GitLab answers.
 * - The per-identity active-grant cap holds under a burst.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TargetKind } from '../../src/util/target-kind.ts';
import { utcDate } from '../../src/util/utc-date.ts';
import { gitlabTokens, PROJECT, postForm, type Stack, startStack } from '../helpers/stack.ts';
import { assertAuditClean, auditOf, closeEntraAgent, exchange, mintEntra } from './helpers/attack.ts';

const PROJECT_ID = 1000; // platform/internal-lib in the emulator's dev seed
const GROUP_ID = 100; // platform
const OTHER_ID = 1001; // platform/other-service

async function gitlabApi(
  s: Stack,
  method: string,
  path: string,
  token: string,
  json?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${s.gitlab.url}/api/v4${path}`, {
    method,
    redirect: 'manual',
    headers: { 'private-token': token, ...(json ? { 'content-type': 'application/json' } : {}) },
    body: json ? JSON.stringify(json) : undefined,
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body };
}

/** The ledger's grant for a token the STS handed out (success answers carry no request id). */
async function grantOf(s: Stack, token: string) {
  const grant = await s.sts.context.store.findActiveByTokenSha(
    createHash('sha256').update(token).digest('hex'),
  );
  assert.ok(grant, 'the token is in the ledger');
  return grant;
}

/** What GitLab says of a token now: 200 while it works, 401 once it is revoked. */
async function tokenStatus(s: Stack, token: string): Promise<number> {
  return (await gitlabApi(s, 'GET', '/personal_access_tokens/self', token)).status;
}

function yearAhead(): string {
  return utcDate(Date.now() + 364 * 86_400_000);
}

/** The holder rotates its own token (`…/access_tokens/self/rotate`), as GitLab allows with `api`. */
async function rotateSelf(s: Stack, kind: TargetKind, token: string): Promise<string | undefined> {
  const base = kind === 'project' ? `/projects/${PROJECT_ID}` : `/groups/${GROUP_ID}`;
  const r = await gitlabApi(s, 'POST', `${base}/access_tokens/self/rotate`, token, {
    expires_at: yearAhead(),
  });
  return r.status === 200 && typeof r.body?.token === 'string' ? r.body.token : undefined;
}

async function until(what: string, deadlineMs: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(200);
  }
  assert.fail(`${what}: not within ${deadlineMs} ms`);
}

describe('escapes: a minted token rotates itself', () => {
  let s: Stack;
  let subject: string;
  before(async () => {
    s = await startStack({
      background: true,
      tweak: (raw) => {
        raw.reaper = { interval: '1s', reconcileInterval: '1h' }; // the reaper must do it alone
        raw.policies.push(
          {
            name: 'rotator',
            issuer: 'contoso',
            match: { appid: raw.policies[0].match.appid },
            grant: {
              projects: [PROJECT],
              scopes: ['api'],
              role: 'developer',
              ttl: { default: '1m', max: '1m' },
            },
          },
          {
            name: 'rotator-group',
            issuer: 'contoso',
            match: { appid: raw.policies[0].match.appid },
            grant: {
              groups: ['platform'],
              scopes: ['api'],
              role: 'developer',
              ttl: { default: '1m', max: '1m' },
            },
          },
        );
      },
    });
    subject = await mintEntra(s);
  });
  after(async () => {
    assertAuditClean(s, [subject]);
    await closeEntraAgent(s);
    await s.close();
  });

  async function mint(kind: TargetKind): Promise<{ token: string; grantId: string }> {
    const res = await exchange(
      s,
      subject,
      kind === 'project' ? { policy: 'rotator' } : { policy: 'rotator-group', audience: 'groups/platform' },
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.expires_in, 60);
    return { token: res.json.access_token, grantId: (await grantOf(s, res.json.access_token)).id };
  }

  it('rotated once or every 2 s, project and group: the last token of each chain answers 401 within TTL + 30 s', async () => {
    const chains: Array<{
      label: string;
      kind: TargetKind;
      current: string;
      rotations: number;
      grantId: string;
    }> = [];
    for (const kind of ['project', 'group'] as const) {
      for (const mode of ['once', 'loop'] as const) {
        const m = await mint(kind);
        chains.push({ label: `${kind}/${mode}`, kind, current: m.token, rotations: 0, grantId: m.grantId });
      }
    }
    // Rotate each once: a new token, with a new id and a year-long expiry.
    for (const c of chains) {
      const next = await rotateSelf(s, c.kind, c.current);
      assert.ok(next, `${c.label}: GitLab lets an api token rotate itself`);
      assert.equal(await tokenStatus(s, c.current), 401, 'rotation revoked the previous token');
      c.current = next;
      c.rotations++;
    }
    // The loop holders keep rotating every 2 s until GitLab refuses them.
    let stop = false;
    const loops = chains
      .filter((c) => c.label.endsWith('/loop'))
      .map(async (c) => {
        while (!stop) {
          await sleep(2000);
          const next = await rotateSelf(s, c.kind, c.current);
          if (!next) return;
          c.current = next;
          c.rotations++;
        }
      });
    await sleep(4500);
    // The TTL ends (the STS's clock), and the clock starts for the 30 s.
    s.clock.advance(61_000);
    try {
      await until('every chain dead', 30_000, async () => {
        for (const c of chains) if ((await tokenStatus(s, c.current)) !== 401) return false;
        return true;
      });
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    for (const c of chains) {
      assert.ok(
        c.rotations >= (c.label.endsWith('/loop') ? 2 : 1),
        `${c.label} rotated ${c.rotations} times`,
      );
      assert.equal(await tokenStatus(s, c.current), 401, `${c.label}: the newest token is dead`);
      assert.equal((await s.sts.context.store.getById(c.grantId))?.state, 'revoked');
      const named = (await gitlabTokens(s.gitlab.url)).filter((t) => String(t.name).endsWith(c.grantId));
      assert.ok(named.length >= 2, `${c.label}: the chain is in GitLab`);
      assert.ok(
        named.every((t) => t.revoked === true || t.active === false),
        `${c.label}: nothing named for the grant is active`,
      );
      const reap = s.audit.events.find((e) => e.event === 'reap' && e.grantId === c.grantId);
      assert.ok(reap, `${c.label}: audited`);
    }
  });

  it('self_rotate is never granted: a request for it is invalid_scope', async () => {
    const res = await exchange(s, subject, { policy: 'rotator', scope: 'self_rotate' });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error, 'invalid_scope');
  });
});

describe('escapes: paths that GitLab redirects', () => {
  let s: Stack;
  let subject: string;
  const admin = () => s.gitlab.adminToken;
  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        raw.policies.push({
          name: 'platform-read',
          issuer: 'contoso',
          match: { appid: raw.policies[0].match.appid },
          grant: { groups: ['platform'], scopes: ['read_repository'], role: 'reporter' },
        });
      },
    });
    subject = await mintEntra(s);
    // platform/other-service moves out of the granted group into `secret`.
    const g = await gitlabApi(s, 'POST', '/groups', admin(), { name: 'Secret', path: 'secret' });
    assert.equal(g.status, 201, JSON.stringify(g.body));
    const t = await gitlabApi(s, 'PUT', `/projects/${OTHER_ID}/transfer`, admin(), { namespace: 'secret' });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.equal(t.body.path_with_namespace, 'secret/other-service');
  });
  after(async () => {
    assertAuditClean(s, [subject]);
    await closeEntraAgent(s);
    await s.close();
  });

  for (const mode of ['redirect', 'follow', 'not_found'] as const) {
    it(`a project moved out of the granted group is refused under its old path (GitLab answering "${mode}")`, async () => {
      const set = await fetch(`${s.gitlab.url}/_emulator/settings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ movedProjects: mode }),
      });
      assert.equal(set.status, 200);
      s.clock.advance(11_000); // past gitlab.targetCacheTtl: each mode is asked of GitLab
      const before = (await gitlabTokens(s.gitlab.url)).length;
      const res = await exchange(s, subject, { policy: 'platform-read', audience: 'platform/other-service' });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json.error, 'invalid_target');
      assert.equal((await gitlabTokens(s.gitlab.url)).length, before, 'no GitLab token created');
      const event = auditOf(s, res.json.request_id);
      assert.equal(event?.grantId, undefined, 'nothing recorded');
      assert.match(event?.reason ?? '', mode === 'not_found' ? /not found/ : /redirect/);
    });
  }

  it('the audit and the ledger name the canonical path and numeric id, whatever the spelling asked for', async () => {
    const res = await exchange(s, subject, { policy: 'platform-read', audience: 'Platform/Internal-Lib' });
    assert.equal(res.status, 200, res.text);
    const grant = await grantOf(s, res.json.access_token);
    const event = s.audit.events.find((e) => e.event === 'exchange' && e.grantId === grant.id);
    assert.equal(event?.target, PROJECT);
    assert.equal(event?.targetId, PROJECT_ID);
    assert.equal(grant?.targetRef, PROJECT);
    assert.equal(grant?.targetId, PROJECT_ID);
    assert.equal((await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token })).status, 200);
  });

  it('a grant whose project is renamed after the mint is still revoked, by id (client revoke and reaper)', async () => {
    const a = await exchange(s, subject, { policy: 'platform-read', audience: PROJECT });
    const b = await exchange(s, subject, { policy: 'platform-read', audience: PROJECT });
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    const grantB = await grantOf(s, b.json.access_token);
    const renamed = await gitlabApi(s, 'PUT', `/projects/${PROJECT_ID}`, admin(), { path: 'renamed-lib' });
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    try {
      assert.equal((await postForm(`${s.sts.url}/revoke`, { token: a.json.access_token })).status, 200);
      assert.equal(await tokenStatus(s, a.json.access_token), 401);
      s.clock.advance(16 * 60_000);
      await s.sts.reapNow();
      assert.equal(await tokenStatus(s, b.json.access_token), 401);
      assert.equal((await s.sts.context.store.getById(grantB.id))?.state, 'revoked');
    } finally {
      await gitlabApi(s, 'PUT', `/projects/${PROJECT_ID}`, admin(), { path: 'internal-lib' });
    }
  });

  it('a move is noticed once the resolution cache entry ages out (gitlab.targetCacheTtl, 10 s)', async () => {
    const set = await fetch(`${s.gitlab.url}/_emulator/settings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ movedProjects: 'follow' }),
    });
    assert.equal(set.status, 200);
    const first = await exchange(s, subject, { policy: 'platform-read', audience: PROJECT });
    assert.equal(first.status, 200, first.text);
    assert.equal((await postForm(`${s.sts.url}/revoke`, { token: first.json.access_token })).status, 200);
    const moved = await gitlabApi(s, 'PUT', `/projects/${PROJECT_ID}/transfer`, admin(), {
      namespace: 'secret',
    });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    try {
      s.clock.advance(11_000);
      const res = await exchange(s, subject, { policy: 'platform-read', audience: PROJECT });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json.error, 'invalid_target');
    } finally {
      await gitlabApi(s, 'PUT', `/projects/${PROJECT_ID}/transfer`, admin(), { namespace: 'platform' });
    }
  });
});

describe('escapes: the active-grant cap under a burst', () => {
  for (const cap of [20, 3]) {
    it(`60 parallel exchanges with a cap of ${cap} grant exactly ${cap}`, async () => {
      const s = await startStack({
        tweak: (raw) => {
          raw.server.maxActiveGrantsPerIdentity = cap;
        },
      });
      try {
        const subject = await mintEntra(s);
        const answers = await Promise.all(Array.from({ length: 60 }, () => exchange(s, subject)));
        const granted = answers.filter((r) => r.status === 200);
        assert.equal(granted.length, cap);
        for (const r of answers) {
          if (r.status !== 200) {
            assert.equal(r.status, 429, r.text);
            assert.equal(r.json.error, 'temporarily_unavailable');
          }
        }
        const active = (await gitlabTokens(s.gitlab.url)).filter(
          (t) => String(t.name).startsWith('tanuki-sts/test/') && t.active === true,
        );
        assert.equal(active.length, cap, 'GitLab holds exactly the cap');
        await closeEntraAgent(s);
      } finally {
        await s.close();
      }
    });
  }
});
