/**
 * Personal access tokens in the GitLab emulator, as GitLab 17.x–19.x answers them
 * (`doc/api/personal_access_tokens.md` of gitlabhq/gitlabhq; `lib/api/personal_access_tokens.rb`,
 * `lib/api/personal_access_tokens/self_rotation.rb`, `lib/gitlab/auth/auth_finders.rb`,
 * `app/services/personal_access_tokens/rotate_service.rb` and `revoke_token_family_service.rb`):
 * `GET /personal_access_tokens/self` and `/:id`, `POST /personal_access_tokens/self/rotate` and
 * `/:id/rotate`, their errors, reuse detection, and the dev seed's admin token (the one
 * `tanuki-sts dev` gives the STS) rotated and kept across restarts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultGitlabSeed, type GitlabSeedInput } from '../../src/emulators/gitlab/config.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { dayUtc, http, type Json } from '../helpers/gitlab-http.ts';

const ALICE = 'glpat-aliceAliceAlice000000';
const BOB_1 = 'glpat-bobBobBobBobBob1000000';
const BOB_2 = 'glpat-bobBobBobBobBob2000000';
const CAROL_READ = 'glpat-carolCarolCarol000000';
const FRANK_SELF = 'glpat-frankFrankFrank000000';
const GINA = 'glpat-ginaGinaGinaGina000000';
const HANK = 'glpat-hankHankHankHank000000';
const IVAN = 'glpat-ivanIvanIvanIvan000000';
const JUDY = 'glpat-judyJudyJudyJudy000000';

/** `Entities::PersonalAccessTokenWithToken` as the emulator (GitLab 19.x: `granular`) answers rotate. */
const ROTATED_KEYS = [
  'id',
  'name',
  'revoked',
  'created_at',
  'description',
  'scopes',
  'user_id',
  'last_used_at',
  'active',
  'granular',
  'expires_at',
  'token',
];

function seed(): GitlabSeedInput {
  const user = (
    username: string,
    id: number,
    tokens: Array<{ name: string; scopes: string[]; token: string }>,
  ) => ({
    username,
    id,
    tokens,
  });
  return {
    users: [
      { username: 'root', id: 1, admin: true, tokens: [{ name: 'admin', scopes: ['api'] }] },
      user('alice', 2, [{ name: 'a', scopes: ['api'], token: ALICE }]),
      user('bob', 3, [
        { name: 'b1', scopes: ['api'], token: BOB_1 },
        { name: 'b2', scopes: ['read_api'], token: BOB_2 },
      ]),
      user('carol', 4, [{ name: 'c', scopes: ['read_api'], token: CAROL_READ }]),
      user('frank', 6, [{ name: 'f', scopes: ['self_rotate'], token: FRANK_SELF }]),
      user('gina', 7, [{ name: 'g', scopes: ['api'], token: GINA }]),
      user('hank', 8, [{ name: 'h', scopes: ['api'], token: HANK }]),
      user('ivan', 9, [{ name: 'i', scopes: ['api'], token: IVAN }]),
      user('judy', 10, [{ name: 'j', scopes: ['api'], token: JUDY }]),
    ],
    groups: [{ path: 'acme', id: 100 }],
    projects: [{ path: 'acme/app', id: 1000, repository: false }],
  };
}

let dir: string;
let emu: GitlabEmulatorHandle;
const call = (path: string, o: Parameters<typeof http>[2] = {}) => http(emu.url, `/api/v4${path}`, o);
const idOf = async (token: string): Promise<number> =>
  (await call('/personal_access_tokens/self', { token })).json.id;
/** Whether a token still authenticates (GET /user). */
const works = async (token: string) => (await call('/user', { token })).status === 200;

const REVOKED_401 = {
  error: 'invalid_token',
  error_description: 'Token was revoked. You have to re-authorize from the user.',
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tanuki-gl-pat-'));
  emu = await startGitlabEmulator({ stateDir: join(dir, 'shared'), config: seed() });
});

after(async () => {
  await emu?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('GET /personal_access_tokens/self and /:id', () => {
  test('self: the token that authenticates, with last_used_ips', async () => {
    const r = await call('/personal_access_tokens/self', { token: IVAN });
    assert.equal(r.status, 200);
    assert.deepEqual([r.json.name, r.json.user_id, r.json.scopes, r.json.active], ['i', 9, ['api'], true]);
    assert.deepEqual(r.json.last_used_ips, ['127.0.0.1']);
    assert.equal(r.json.token, undefined);
  });

  test(":id: own token 200; another user's 401; an administrator sees any, and 404 for none", async () => {
    const ivanId = await idOf(IVAN);
    const own = await call(`/personal_access_tokens/${ivanId}`, { token: IVAN });
    assert.equal(own.status, 200);
    assert.equal(own.json.id, ivanId);
    assert.ok(Array.isArray(own.json.last_used_ips));
    const other = await call(`/personal_access_tokens/${ivanId}`, { token: HANK });
    assert.deepEqual([other.status, other.json], [401, { message: '401 Unauthorized' }]);
    const missing = await call('/personal_access_tokens/999999', { token: HANK });
    assert.deepEqual([missing.status, missing.json], [401, { message: '401 Unauthorized' }]);
    assert.equal((await call(`/personal_access_tokens/${ivanId}`, { token: emu.adminToken })).status, 200);
    const adminMissing = await call('/personal_access_tokens/999999', { token: emu.adminToken });
    assert.deepEqual([adminMissing.status, adminMissing.json], [404, { message: '404 Not found' }]);
  });
});

describe('POST /personal_access_tokens/self/rotate', () => {
  test('a new id and value, same name and scopes, one week by default; the old token revoked at once', async () => {
    const oldId = await idOf(ALICE);
    const r = await call('/personal_access_tokens/self/rotate', { method: 'POST', token: ALICE });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ROTATED_KEYS);
    assert.notEqual(r.json.id, oldId);
    assert.notEqual(r.json.token, ALICE);
    assert.deepEqual(
      [r.json.name, r.json.scopes, r.json.user_id, r.json.revoked, r.json.active],
      ['a', ['api'], 2, false, true],
    );
    assert.equal(r.json.expires_at, dayUtc(7));
    const old = await call('/user', { token: ALICE });
    assert.deepEqual([old.status, old.json], [401, REVOKED_401]);
    assert.ok(await works(r.json.token));
    assert.equal(await idOf(r.json.token), r.json.id);
  });

  test('expires_at: as given; not a date 400 {"error":"expires_at is invalid"}; past or over the maximum 400', async () => {
    const given = await call('/personal_access_tokens/self/rotate', {
      method: 'POST',
      token: IVAN,
      json: { expires_at: dayUtc(3) },
    });
    assert.equal(given.status, 200, given.text);
    assert.equal(given.json.expires_at, dayUtc(3));
    const ivan = given.json.token as string;
    for (const bad of ['tomorrow', '2030-02-30', ['2030-01-01']]) {
      const r = await call('/personal_access_tokens/self/rotate', {
        method: 'POST',
        token: ivan,
        json: { expires_at: bad },
      });
      assert.deepEqual([r.status, r.json], [400, { error: 'expires_at is invalid' }], JSON.stringify(bad));
    }
    const past = await call('/personal_access_tokens/self/rotate', {
      method: 'POST',
      token: ivan,
      json: { expires_at: dayUtc(-1) },
    });
    assert.deepEqual(
      [past.status, past.json],
      [400, { message: '400 Bad request - Expires at cannot be in the past' }],
    );
    const far = await call('/personal_access_tokens/self/rotate', {
      method: 'POST',
      token: ivan,
      json: { expires_at: dayUtc(400) },
    });
    assert.equal(far.status, 400);
    assert.match(far.json.message, /^400 Bad request - Expires at must be before \d{4}-\d{2}-\d{2}$/);
    assert.ok(await works(ivan), 'a refused rotation leaves the token working');
  });

  test('scopes: api or self_rotate may rotate themselves; read_api is 403 insufficient_scope; no token 401', async () => {
    const read = await call('/personal_access_tokens/self/rotate', { method: 'POST', token: CAROL_READ });
    assert.equal(read.status, 403);
    assert.equal(read.json.error, 'insufficient_scope');
    assert.equal(read.json.scope, 'api self_rotate');
    assert.ok(await works(CAROL_READ), 'a refused rotation leaves the token working');
    const self = await call('/personal_access_tokens/self/rotate', { method: 'POST', token: FRANK_SELF });
    assert.equal(self.status, 200, self.text);
    assert.deepEqual(self.json.scopes, ['self_rotate']);
    const none = await call('/personal_access_tokens/self/rotate', { method: 'POST' });
    assert.deepEqual([none.status, none.json], [401, { message: '401 Unauthorized' }]);
  });
});

describe('POST /personal_access_tokens/:id/rotate', () => {
  test("one's own other token: rotated, the old one revoked, the caller's token untouched", async () => {
    const b2 = await idOf(BOB_2);
    const r = await call(`/personal_access_tokens/${b2}/rotate`, {
      method: 'POST',
      token: BOB_1,
      json: { expires_at: dayUtc(5) },
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ROTATED_KEYS);
    assert.deepEqual([r.json.name, r.json.scopes, r.json.expires_at], ['b2', ['read_api'], dayUtc(5)]);
    assert.notEqual(r.json.id, b2);
    const old = await call('/personal_access_tokens/self', { token: BOB_2 });
    assert.deepEqual([old.status, old.json], [401, REVOKED_401]);
    assert.ok(await works(BOB_1));
    // Rotating the now revoked token by id: 400, and nothing else is revoked (no reuse: the caller is valid).
    const again = await call(`/personal_access_tokens/${b2}/rotate`, { method: 'POST', token: BOB_1 });
    assert.deepEqual(
      [again.status, again.json],
      [400, { message: '400 Bad request - Token already revoked' }],
    );
    assert.equal((await call('/personal_access_tokens/self', { token: r.json.token })).status, 200);
  });

  test("another user's token: 401 for a user, rotated for an administrator; none: 401 / 404", async () => {
    const hank = await idOf(HANK);
    const other = await call(`/personal_access_tokens/${hank}/rotate`, { method: 'POST', token: BOB_1 });
    assert.deepEqual([other.status, other.json], [401, { message: '401 Unauthorized' }]);
    assert.ok(await works(HANK));
    const missing = await call('/personal_access_tokens/999999/rotate', { method: 'POST', token: BOB_1 });
    assert.deepEqual([missing.status, missing.json], [401, { message: '401 Unauthorized' }]);
    const adminMissing = await call('/personal_access_tokens/999999/rotate', {
      method: 'POST',
      token: emu.adminToken,
    });
    assert.deepEqual([adminMissing.status, adminMissing.json], [404, { message: '404 Not found' }]);
    const judy = await idOf(JUDY);
    const byAdmin = await call(`/personal_access_tokens/${judy}/rotate`, {
      method: 'POST',
      token: emu.adminToken,
    });
    assert.equal(byAdmin.status, 200, byAdmin.text);
    assert.equal(byAdmin.json.user_id, 10);
    assert.equal(await works(JUDY), false);
    assert.ok(await works(byAdmin.json.token));
  });

  test('Grape checks expires_at first (400 even for a token one may not see); self_rotate is not enough (403)', async () => {
    const bad = await call('/personal_access_tokens/999999/rotate', {
      method: 'POST',
      token: BOB_1,
      json: { expires_at: 'soon' },
    });
    assert.deepEqual([bad.status, bad.json], [400, { error: 'expires_at is invalid' }]);
    const seedFrank = await startGitlabEmulator({ stateDir: join(dir, 'frank'), config: seed() });
    try {
      const id = (await http(seedFrank.url, '/api/v4/personal_access_tokens/self', { token: FRANK_SELF }))
        .json.id;
      const r = await http(seedFrank.url, `/api/v4/personal_access_tokens/${id}/rotate`, {
        method: 'POST',
        token: FRANK_SELF,
      });
      assert.equal(r.status, 403);
      assert.deepEqual([r.json.error, r.json.scope], ['insufficient_scope', 'api']);
    } finally {
      await seedFrank.close();
    }
  });
});

describe('reuse detection ("Automatic reuse detection", GitLab 16.3+)', () => {
  test('a rotate request with an already-rotated token revokes the newest token of its family; 401', async () => {
    const b = await call('/personal_access_tokens/self/rotate', { method: 'POST', token: GINA });
    const c = await call('/personal_access_tokens/self/rotate', { method: 'POST', token: b.json.token });
    assert.equal(c.status, 200);
    assert.ok(await works(c.json.token));
    // The first value again (a retry after a crash, or a thief): refused, and the live token dies.
    const reuse = await call('/personal_access_tokens/self/rotate', { method: 'POST', token: GINA });
    assert.deepEqual([reuse.status, reuse.json], [401, REVOKED_401]);
    const newest = await call('/user', { token: c.json.token });
    assert.deepEqual([newest.status, newest.json], [401, REVOKED_401]);
    const admin = await call(`/personal_access_tokens/${c.json.id}`, { token: emu.adminToken });
    assert.deepEqual([admin.json.revoked, admin.json.active], [true, false]);
  });

  test('through /:id/rotate too (the path GitLab matches: access_tokens/(\\d+|self)/rotate)', async () => {
    const fresh = await startGitlabEmulator({ stateDir: join(dir, 'reuse-id'), config: seed() });
    try {
      const c = (p: string, o: Parameters<typeof http>[2] = {}) => http(fresh.url, `/api/v4${p}`, o);
      const next = (await c('/personal_access_tokens/self/rotate', { method: 'POST', token: GINA })).json;
      const reuse = await c(`/personal_access_tokens/${next.id}/rotate`, { method: 'POST', token: GINA });
      assert.deepEqual([reuse.status, reuse.json], [401, REVOKED_401]);
      assert.equal((await c('/user', { token: next.token })).status, 401);
    } finally {
      await fresh.close();
    }
  });

  test('any other use of a rotated token is a plain 401: the family lives (the docs name the rotate API only)', async () => {
    const next = await call('/personal_access_tokens/self/rotate', { method: 'POST', token: HANK });
    assert.equal(next.status, 200);
    for (const path of ['/user', '/personal_access_tokens/self', '/projects/1000']) {
      const r = await call(path, { token: HANK });
      assert.deepEqual([r.status, r.json], [401, REVOKED_401], path);
    }
    assert.ok(await works(next.json.token));
  });

  test('a project access token rotating itself with its old value: the same', async () => {
    const created = await call('/projects/1000/access_tokens', {
      method: 'POST',
      token: emu.adminToken,
      json: { name: 'ci', scopes: ['api'], access_level: 30, expires_at: dayUtc(10) },
    });
    assert.equal(created.status, 201, created.text);
    const rotated = await call('/projects/1000/access_tokens/self/rotate', {
      method: 'POST',
      token: created.json.token,
    });
    assert.equal(rotated.status, 200, rotated.text);
    const reuse = await call('/projects/1000/access_tokens/self/rotate', {
      method: 'POST',
      token: created.json.token,
    });
    assert.equal(reuse.status, 401);
    assert.equal((await call('/projects/1000', { token: rotated.json.token })).status, 401);
  });
});

describe("the dev seed's admin token (the STS's GitLab credential in `tanuki-sts dev`)", () => {
  test('a personal access token with api scope that self/rotate and /:id/rotate rotate; the new value is kept', async () => {
    const stateDir = join(dir, 'dev');
    const first = await startGitlabEmulator({ stateDir, config: defaultGitlabSeed(), persist: true });
    let rotatedTwice: Json;
    let firstValue: string;
    try {
      firstValue = first.adminToken;
      const c = (p: string, o: Parameters<typeof http>[2] = {}) => http(first.url, `/api/v4${p}`, o);
      const self = await c('/personal_access_tokens/self', { token: firstValue });
      assert.deepEqual(
        [self.json.name, self.json.scopes, self.json.user_id, self.json.expires_at],
        ['tanuki-sts-admin', ['api'], 1, null],
      );
      const once = await c('/personal_access_tokens/self/rotate', { method: 'POST', token: firstValue });
      assert.equal(once.status, 200, once.text);
      assert.equal(first.adminToken, once.json.token, 'handle.adminToken follows the rotation');
      assert.equal(readFileSync(join(stateDir, 'admin-token'), 'utf8').trim(), once.json.token);
      rotatedTwice = (
        await c(`/personal_access_tokens/${once.json.id}/rotate`, {
          method: 'POST',
          token: once.json.token,
          json: { expires_at: dayUtc(7) },
        })
      ).json;
      assert.equal(first.adminToken, rotatedTwice.token);
      assert.equal((await c('/user', { token: once.json.token })).status, 401);
    } finally {
      await first.close();
    }
    // A restart keeps the rotated token: same id, same expiry, the old values still revoked.
    const second = await startGitlabEmulator({ stateDir, config: defaultGitlabSeed(), persist: true });
    try {
      const c = (p: string, o: Parameters<typeof http>[2] = {}) => http(second.url, `/api/v4${p}`, o);
      assert.equal(second.adminToken, rotatedTwice.token);
      const self = await c('/personal_access_tokens/self', { token: second.adminToken });
      assert.equal(self.status, 200, self.text);
      assert.deepEqual([self.json.id, self.json.expires_at], [rotatedTwice.id, dayUtc(7)]);
      const old = await c('/user', { token: firstValue });
      assert.deepEqual([old.status, old.json], [401, REVOKED_401]);
      // Reuse detection still knows the family after the restart.
      const reuse = await c('/personal_access_tokens/self/rotate', { method: 'POST', token: firstValue });
      assert.equal(reuse.status, 401);
      assert.equal((await c('/user', { token: second.adminToken })).status, 401);
    } finally {
      await second.close();
    }
  });
});
