/**
 * The GitLab emulator's deploy tokens, as GitLab documents them (`doc/api/deploy_tokens.md`) and
 * as the public recordings of 17.11–19.1 show them: the go-vcr cassettes of
 * `ilijamt/vault-plugin-secrets-gitlab`, `tests/integration/testdata/e2e/<version>/TestWithProjectDeployToken.yaml`
 * and `TestWithGroupDeployToken.yaml` (request `{"name":…,"expires_at":"2026-06-30T00:00:00Z","scopes":["read_repository"]}`,
 * answer `{"id":2,"name":…,"username":"gitlab+deploy-token-2","expires_at":"2026-06-30T00:00:00.000Z",
 * "scopes":["read_repository"],"revoked":false,"expired":false,"token":…}`, `DELETE` → 204, the list
 * then `[]`). Sources of the rules: `lib/api/deploy_tokens.rb`, `app/models/deploy_token.rb`,
 * `lib/gitlab/auth.rb` (`deploy_token_check`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { GitlabSeedInput } from '../../src/emulators/gitlab/config.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { gitClone } from '../helpers/git.ts';
import { dayUtc, http, type Json } from '../helpers/gitlab-http.ts';

const ALICE = 'glpat-aliceAliceAlice000000'; // Developer of acme (inherited)
const BOB = 'glpat-bobBobBobBobBob0000000'; // Maintainer of acme/app and of the group acme
const CAROL = 'glpat-carolCarolCarol000000'; // Owner of acme

function seed(): GitlabSeedInput {
  return {
    users: [
      { username: 'root', id: 1, admin: true, tokens: [{ name: 'admin', scopes: ['api'] }] },
      { username: 'alice', id: 2, tokens: [{ name: 'a', scopes: ['api'], token: ALICE }] },
      { username: 'bob', id: 3, tokens: [{ name: 'b', scopes: ['api'], token: BOB }] },
      { username: 'carol', id: 4, tokens: [{ name: 'c', scopes: ['api'], token: CAROL }] },
    ],
    groups: [
      {
        path: 'acme',
        id: 100,
        members: [
          { user: 'alice', access_level: 'developer' },
          { user: 'bob', access_level: 'maintainer' },
          { user: 'carol', access_level: 'owner' },
        ],
      },
      { path: 'acme/team', id: 101 },
      { path: 'other', id: 200 },
    ],
    projects: [
      { path: 'acme/app', id: 1000, members: [{ user: 'bob', access_level: 'maintainer' }] },
      { path: 'acme/team/lib', id: 1001 },
      { path: 'other/secret', id: 2000 },
    ],
  };
}

const KEYS = ['id', 'name', 'username', 'expires_at', 'scopes', 'revoked', 'expired'];

function basic(username: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
}

describe('GitLab emulator: deploy tokens', { concurrency: 1 }, () => {
  let dir: string;
  let gl: GitlabEmulatorHandle;
  const api = (path: string, o: Parameters<typeof http>[2] = {}) => http(gl.url, `/api/v4${path}`, o);
  /** `info/refs` of a repository, as git's first request of a clone (or push) sends it. */
  const refs = async (project: string, headers: Record<string, string>, service = 'git-upload-pack') => {
    const res = await fetch(`${gl.url}/${project}.git/info/refs?service=${service}`, { headers });
    return { status: res.status, text: await res.text() };
  };
  const setClock = (iso: string) =>
    fetch(`${gl.url}/_emulator/clock`, {
      method: 'POST',
      body: JSON.stringify({ offsetSeconds: (Date.parse(iso) - Date.now()) / 1000 }),
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-gl-deploy-'));
    gl = await startGitlabEmulator({ stateDir: dir, config: seed() });
  });
  after(async () => {
    await gl?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('create (TestWithProjectDeployToken): 201, the recorded keys in order, a time with milliseconds, gldt- token', async () => {
    const r = await api('/projects/1000/deploy_tokens', {
      token: BOB,
      json: { name: 'project-deploy', expires_at: '2030-06-30T00:00:00Z', scopes: ['read_repository'] },
    });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(Object.keys(r.json), [...KEYS, 'token']);
    assert.equal(r.json.username, `gitlab+deploy-token-${r.json.id}`);
    assert.equal(r.json.expires_at, '2030-06-30T00:00:00.000Z');
    assert.deepEqual(r.json.scopes, ['read_repository']);
    assert.equal(r.json.revoked, false);
    assert.equal(r.json.expired, false);
    assert.match(r.json.token, /^gldt-[A-Za-z0-9_-]{20}$/);
  });

  test('expires_at keeps its time to the second (any zone, UTC out); a date alone is midnight UTC; none is null', async () => {
    const cases: Array<[string | undefined, string | null]> = [
      ['2030-06-30T10:15:42+02:00', '2030-06-30T08:15:42.000Z'],
      ['2030-06-30T10:15:42.5Z', '2030-06-30T10:15:42.500Z'],
      ['2030-06-30', '2030-06-30T00:00:00.000Z'],
      [undefined, null],
    ];
    for (const [given, shown] of cases) {
      const r = await api('/projects/1000/deploy_tokens', {
        token: BOB,
        json: { name: 'x', scopes: ['read_repository'], ...(given ? { expires_at: given } : {}) },
      });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.expires_at, shown, String(given));
    }
  });

  test('a chosen username is kept; scopes come back in GitLab order; a comma-separated scopes string is split', async () => {
    const r = await api('/projects/1000/deploy_tokens', {
      token: BOB,
      form: 'name=ci&username=ci-puller&scopes=read_registry,read_repository',
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.username, 'ci-puller');
    assert.deepEqual(r.json.scopes, ['read_repository', 'read_registry']);
  });

  test("Grape's parameter errors, then the project, then the role (403), then the model's errors", async () => {
    const cases: Array<[string, string, unknown, number, Json]> = [
      ['/projects/1000/deploy_tokens', BOB, {}, 400, { error: 'name is missing, scopes is missing' }],
      [
        '/projects/1000/deploy_tokens',
        BOB,
        { name: 'x', scopes: ['api'] },
        400,
        { error: 'scopes does not have a valid value' },
      ],
      [
        '/projects/1000/deploy_tokens',
        BOB,
        { name: 'x', scopes: ['read_repository'], expires_at: 'tomorrow' },
        400,
        { error: 'expires_at is invalid' },
      ],
      [
        '/projects/2000/deploy_tokens',
        BOB,
        { name: 'x', scopes: ['read_repository'] },
        404,
        { message: '404 Project Not Found' },
      ],
      [
        '/projects/1000/deploy_tokens',
        ALICE,
        { name: 'x', scopes: ['read_repository'] },
        403,
        { message: '403 Forbidden' },
      ],
      [
        '/groups/100/deploy_tokens',
        BOB,
        { name: 'x', scopes: ['read_repository'] },
        403,
        { message: '403 Forbidden' },
      ],
      [
        '/projects/1000/deploy_tokens',
        BOB,
        { name: 'x', scopes: [] },
        400,
        { message: "Scopes can't be blank" },
      ],
      [
        '/projects/1000/deploy_tokens',
        BOB,
        { name: 'x', scopes: ['read_repository'], username: 'has space' },
        400,
        { message: "Username can contain only letters, digits, '_', '-', '+', and '.'" },
      ],
    ];
    for (const [path, token, json, status, body] of cases) {
      const r = await api(path, { token, json });
      assert.equal(r.status, status, `${path} ${JSON.stringify(json)}: ${r.text}`);
      assert.deepEqual(r.json, body, `${path} ${JSON.stringify(json)}`);
    }
  });

  test('list (with `active`), get and delete (TestWithGroupDeployToken): after DELETE the token is gone', async () => {
    const created = await api('/groups/acme/deploy_tokens', {
      token: CAROL,
      json: { name: 'group-deploy', expires_at: '2030-06-30T00:00:00Z', scopes: ['read_repository'] },
    });
    assert.equal(created.status, 201, created.text);
    const dead = await api('/groups/100/deploy_tokens', {
      token: CAROL,
      json: { name: 'dead', expires_at: '2020-01-01T00:00:00Z', scopes: ['read_repository'] },
    });
    assert.equal(dead.status, 201, 'GitLab has no rule against a past expiry: the token is created dead');
    assert.equal(dead.json.expired, true);

    // Maintainers may list a group's deploy tokens, only Owners create and delete them.
    const all = await api('/groups/acme/deploy_tokens', { token: BOB });
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(
      all.json.map((t: Json) => t.name),
      ['group-deploy', 'dead'],
    );
    assert.deepEqual(Object.keys(all.json[0]), KEYS, 'no token in a listing');
    assert.equal(all.headers.get('x-total'), '2');
    const active = await api('/groups/100/deploy_tokens?active=true', { token: BOB });
    assert.deepEqual(
      active.json.map((t: Json) => t.id),
      [created.json.id],
    );
    const one = await api(`/groups/100/deploy_tokens/${created.json.id}`, { token: BOB });
    assert.equal(one.status, 200);
    assert.deepEqual(one.json, all.json[0]);

    assert.deepEqual(
      (await api(`/groups/100/deploy_tokens/${created.json.id}`, { token: BOB, method: 'DELETE' })).json,
      {
        message: '403 Forbidden',
      },
    );
    const del = await api(`/groups/100/deploy_tokens/${created.json.id}`, { token: CAROL, method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    for (const method of ['GET', 'DELETE']) {
      const again = await api(`/groups/100/deploy_tokens/${created.json.id}`, { token: CAROL, method });
      assert.equal(again.status, 404, method);
      assert.deepEqual(again.json, { message: '404 Not found' });
    }
    // Another resource's token is not found either, and token_id must be a number.
    assert.equal((await api(`/projects/1000/deploy_tokens/${dead.json.id}`, { token: BOB })).status, 404);
    assert.deepEqual((await api('/projects/1000/deploy_tokens/abc', { token: BOB })).json, {
      error: 'token_id is invalid',
    });
    assert.deepEqual(
      (await api('/groups/100/deploy_tokens', { token: BOB })).json.map((t: Json) => t.name),
      ['dead'],
    );
  });

  test("the administrator's GET /deploy_tokens lists every deploy token; anyone else gets 403", async () => {
    const admin = await api('/deploy_tokens?per_page=100', { token: gl.adminToken });
    assert.equal(admin.status, 200);
    assert.ok(admin.json.length >= 3);
    assert.ok(admin.json.every((t: Json) => Object.keys(t).join() === KEYS.join()));
    assert.deepEqual((await api('/deploy_tokens', { token: BOB })).json, { message: '403 Forbidden' });
  });

  test('a deploy token is no API credential: 401 on every endpoint', async () => {
    const t = await api('/projects/1000/deploy_tokens', {
      token: BOB,
      json: { name: 'api-try', scopes: ['read_repository', 'read_registry'] },
    });
    for (const path of ['/user', '/projects/1000', '/projects/1000/deploy_tokens']) {
      const r = await api(path, { token: t.json.token });
      assert.equal(r.status, 401, path);
      assert.deepEqual(r.json, { message: '401 Unauthorized' }, path);
    }
  });

  test('git: a deploy token opens its own project with its own username and read_repository, nothing else', async () => {
    const mk = async (path: string, token: string, body: Json) =>
      (await api(path, { token, json: { name: 'git', ...body } })).json;
    const t = await mk('/projects/1000/deploy_tokens', BOB, { scopes: ['read_repository'] });
    const custom = await mk('/projects/1000/deploy_tokens', BOB, {
      scopes: ['read_repository'],
      username: 'puller',
    });
    const registryOnly = await mk('/projects/1000/deploy_tokens', BOB, { scopes: ['read_registry'] });
    const group = await mk('/groups/100/deploy_tokens', CAROL, { scopes: ['read_repository'] });

    // Real git, its own username: clones.
    const clone = await gitClone(`${gl.url}/acme/app.git`, t.token, t.username);
    assert.ok(clone.ok, clone.stderr);
    assert.equal((await refs('acme/app', basic('puller', custom.token))).status, 200);
    // Any other username (GitLab's `login != token.username`), even another deploy token's: 401.
    for (const user of ['oauth2', custom.username, t.username.toUpperCase(), 'root']) {
      const r = await refs('acme/app', basic(user, t.token));
      assert.equal(r.status, 401, user);
      assert.match(r.text, /HTTP Basic: Access denied/);
    }
    assert.equal((await gitClone(`${gl.url}/acme/app.git`, t.token)).ok, false, 'oauth2 is refused');
    // Another project: 401 (no credential found for it), not 404.
    assert.equal((await refs('other/secret', basic(t.username, t.token))).status, 401);
    assert.equal((await refs('acme/team/lib', basic(t.username, t.token))).status, 401);
    // A group token: every project of the group and its subgroups.
    assert.equal((await refs('acme/team/lib', basic(group.username, group.token))).status, 200);
    assert.equal((await refs('other/secret', basic(group.username, group.token))).status, 401);
    // No read_repository: 403; a push: 403 whatever the scopes.
    const noRead = await refs('acme/app', basic(registryOnly.username, registryOnly.token));
    assert.deepEqual(noRead, { status: 403, text: 'You are not allowed to download code.' });
    const push = await refs('acme/app', basic(t.username, t.token), 'git-receive-pack');
    assert.deepEqual(push, { status: 403, text: 'You are not allowed to upload code.' });
    // Deleted: 401.
    assert.equal(
      (await api(`/projects/1000/deploy_tokens/${t.id}`, { token: BOB, method: 'DELETE' })).status,
      204,
    );
    assert.equal((await refs('acme/app', basic(t.username, t.token))).status, 401);
  });

  test('expiry is enforced to the second (DeployToken.active), while the `expired` flag is day-granular', async () => {
    try {
      await setClock('2031-03-10T10:00:00Z');
      const t = (
        await api('/projects/1000/deploy_tokens', {
          token: BOB,
          json: { name: 'short', scopes: ['read_repository'], expires_at: '2031-03-10T10:01:00Z' },
        })
      ).json;
      assert.equal((await refs('acme/app', basic(t.username, t.token))).status, 200);
      await setClock('2031-03-10T10:00:59Z');
      assert.equal((await refs('acme/app', basic(t.username, t.token))).status, 200);
      await setClock('2031-03-10T10:01:02Z');
      assert.equal((await refs('acme/app', basic(t.username, t.token))).status, 401, 'dead one second after');
      const shown = (await api(`/projects/1000/deploy_tokens/${t.id}`, { token: BOB })).json;
      assert.equal(shown.expired, false, 'GitLab: expires_at < Date.today');
      const active = (await api('/projects/1000/deploy_tokens?active=true', { token: BOB })).json;
      assert.ok(!active.some((x: Json) => x.id === t.id), 'active=true: expires_at >= NOW()');
      await setClock('2031-03-11T00:00:01Z');
      assert.equal((await api(`/projects/1000/deploy_tokens/${t.id}`, { token: BOB })).json.expired, true);
    } finally {
      await fetch(`${gl.url}/_emulator/clock`, {
        method: 'POST',
        body: JSON.stringify({ offsetSeconds: 0 }),
      });
    }
  });

  test('deploy tokens create no user (GET /users), unlike access tokens (a bot each)', async () => {
    const count = async () => Number((await api('/users', { token: gl.adminToken })).headers.get('x-total'));
    const before = await count();
    for (let i = 0; i < 5; i++) {
      const r = await api('/projects/1000/deploy_tokens', {
        token: BOB,
        json: { name: `n${i}`, scopes: ['read_repository'] },
      });
      assert.equal(r.status, 201);
    }
    assert.equal(await count(), before);
    const pat = await api('/projects/1000/access_tokens', {
      token: BOB,
      json: { name: 'bot', scopes: ['read_repository'], access_level: 20, expires_at: dayUtc(2) },
    });
    assert.equal(pat.status, 201, pat.text);
    assert.equal(await count(), before + 1);
    const humans = await api('/users?without_project_bots=true&per_page=100', { token: gl.adminToken });
    assert.ok(humans.json.every((u: Json) => u.bot === false));
  });

  test('the operator view lists deploy tokens (deleted ones too, never a value)', async () => {
    const res = await fetch(`${gl.url}/_emulator/deploy_tokens`);
    const list = (await res.json()) as Json[];
    assert.ok(list.some((t) => t.deleted === true));
    assert.ok(list.every((t) => typeof t.sha256 === 'string' && !('token' in t)));
    assert.ok(list.every((t) => !JSON.stringify(t).includes('gldt-')));
  });
});

describe('GitLab emulator: deploy tokens persist', () => {
  test('a deploy token survives a restart with `persist`; a deleted one stays deleted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tanuki-gl-deploy-persist-'));
    try {
      let gl = await startGitlabEmulator({ stateDir: dir, config: seed(), persist: true });
      const mk = async () =>
        (
          await http(gl.url, '/api/v4/projects/1000/deploy_tokens', {
            token: BOB,
            json: { name: 'kept', scopes: ['read_repository'] },
          })
        ).json;
      const kept = await mk();
      const gone = await mk();
      await http(gl.url, `/api/v4/projects/1000/deploy_tokens/${gone.id}`, { token: BOB, method: 'DELETE' });
      await gl.close();
      gl = await startGitlabEmulator({ stateDir: dir, config: seed(), persist: true });
      try {
        const auth = (t: Json) => ({
          headers: basic(t.username, t.token),
        });
        const ok = await fetch(`${gl.url}/acme/app.git/info/refs?service=git-upload-pack`, auth(kept));
        assert.equal(ok.status, 200);
        const no = await fetch(`${gl.url}/acme/app.git/info/refs?service=git-upload-pack`, auth(gone));
        assert.equal(no.status, 401);
        const next = await mk();
        assert.ok(next.id > gone.id, 'ids are not reused');
      } finally {
        await gl.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
