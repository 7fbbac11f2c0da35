/**
 * The GitLab emulator's project and group moves: rename, transfer, group
 * creation, and the redirect routes they leave, followed by the REST API
 * (GitLab's 301/405) and by real `git` over smart HTTP.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Gitlab } from '@gitbeaker/rest';
import { defaultGitlabSeed, type GitlabSeedInput } from '../../src/emulators/gitlab/config.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { dayUtc, http, type Json } from '../helpers/gitlab-http.ts';

const ROOT = 'glpat-rootRootRootRoot0000000';
const ALICE = 'glpat-aliceAliceAlice000000';
const BOB = 'glpat-bobBobBobBobBob0000000';
const CAROL = 'glpat-carolCarolCarol0000000';

function seed(): GitlabSeedInput {
  const files = (text: string) => ({ files: { 'README.md': text } });
  return {
    users: [
      { username: 'root', id: 1, admin: true, tokens: [{ name: 'admin', scopes: ['api'], token: ROOT }] },
      {
        username: 'alice',
        id: 2,
        tokens: [{ name: 'a', scopes: ['api', 'read_repository', 'write_repository'], token: ALICE }],
      },
      { username: 'bob', id: 3, tokens: [{ name: 'b', scopes: ['api'], token: BOB }] },
      { username: 'carol', id: 4, tokens: [{ name: 'c', scopes: ['api'], token: CAROL }] },
    ],
    groups: [
      { path: 'platform', id: 100, members: [{ user: 'bob', access_level: 'reporter' }] },
      { path: 'secret', id: 200, members: [{ user: 'carol', access_level: 'developer' }] },
      { path: 'carol-land', id: 300, members: [{ user: 'carol', access_level: 'maintainer' }] },
      { path: 'bobs', id: 400, members: [{ user: 'bob', access_level: 'owner' }] },
      { path: 'team', id: 500 },
      { path: 'old-grp', id: 600 },
    ],
    projects: [
      {
        path: 'platform/old-app',
        id: 1000,
        members: [
          { user: 'alice', access_level: 'developer' },
          { user: 'bob', access_level: 'maintainer' },
        ],
        repository: files('# old-app original\n'),
      },
      { path: 'platform/other-service', id: 1001 },
      {
        path: 'platform/carol-app',
        id: 1002,
        members: [
          { user: 'carol', access_level: 'owner' },
          { user: 'bob', access_level: 'maintainer' },
        ],
      },
      { path: 'team/sub/deep', id: 1003, repository: files('# deep\n') },
      { path: 'platform/rotation', id: 1004, repository: false },
      {
        path: 'platform/git-app',
        id: 1005,
        members: [{ user: 'alice', access_level: 'developer' }],
        repository: files('# git-app\n'),
      },
      { path: 'platform/legacy', id: 1006, repository: files('# the crown jewels\n') },
      { path: 'platform/drop-me', id: 1007, repository: files('# drop-me original\n') },
      { path: 'old-grp/app', id: 1008 },
      { path: 'bobs/inner/app', id: 1009 },
    ],
  };
}

function git(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'git',
      args,
      {
        cwd,
        timeout: 20_000,
        env: {
          PATH: process.env.PATH,
          HOME: cwd,
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_TERMINAL_PROMPT: '0',
          GIT_AUTHOR_NAME: 'Test',
          GIT_AUTHOR_EMAIL: 'test@example.com',
          GIT_COMMITTER_NAME: 'Test',
          GIT_COMMITTER_EMAIL: 'test@example.com',
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const enc = encodeURIComponent;

describe('GitLab emulator: moves and redirect routes', () => {
  let emu: GitlabEmulatorHandle;
  let dir: string;
  let home: string;
  const call = (path: string, o: Parameters<typeof http>[2] = {}) => http(emu.url, `/api/v4${path}`, o);
  const admin = (path: string, o: Parameters<typeof http>[2] = {}) => http(emu.url, `/_emulator${path}`, o);
  const put = (path: string, token: string, json: unknown) => call(path, { method: 'PUT', token, json });
  const repoUrl = (token: string, path: string) => `http://oauth2:${token}@127.0.0.1:${emu.port}/${path}.git`;
  const mint = async (project: string, token = ROOT, body: Record<string, unknown> = {}) =>
    call(`/projects/${enc(project)}/access_tokens`, {
      token,
      json: { name: 'via-path', scopes: ['read_repository'], expires_at: dayUtc(3), ...body },
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gitlab-emu-moves-'));
    home = mkdtempSync(join(dir, 'home-'));
    emu = await startGitlabEmulator({ stateDir: join(dir, 'state'), config: seed() });
  });

  after(async () => {
    await emu?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('GET /projects/:id and /groups/:id carry the canonical path fields', async () => {
    const p = await call('/projects/platform%2Fother-service', { token: ROOT });
    assert.equal(p.status, 200);
    assert.deepEqual(
      [p.json.id, p.json.path, p.json.path_with_namespace, p.json.name],
      [1001, 'other-service', 'platform/other-service', 'other-service'],
    );
    assert.deepEqual([p.json.namespace.id, p.json.namespace.full_path], [100, 'platform']);
    const g = await call('/groups/platform', { token: ROOT });
    assert.deepEqual([g.json.id, g.json.path, g.json.full_path], [100, 'platform', 'platform']);
  });

  test('PUT /projects/:id renames; the old path answers 301 (GET) and 405 (other methods)', async () => {
    // Refusals first: alice is a Developer, bob a Maintainer.
    const denied = await put('/projects/1000', ALICE, { path: 'x' });
    assert.deepEqual([denied.status, denied.json], [403, { message: '403 Forbidden' }]);
    const taken = await put('/projects/1000', BOB, { path: 'other-service' });
    assert.deepEqual([taken.status, taken.json], [400, { message: { path: ['has already been taken'] } }]);
    const bad = await put('/projects/1000', BOB, { path: '-bad' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.message.path[0], /^can contain only letters, digits/);
    const none = await put('/projects/1000', BOB, {});
    assert.equal(none.status, 400);
    assert.match(none.json.error, /at least one parameter must be provided/);

    const renamed = await put('/projects/platform%2Fold-app', BOB, { path: 'new-app', name: 'New App' });
    assert.equal(renamed.status, 200, renamed.text);
    assert.deepEqual(
      [renamed.json.id, renamed.json.path, renamed.json.path_with_namespace, renamed.json.name],
      [1000, 'new-app', 'platform/new-app', 'New App'],
    );

    // GET through the old path (any case): 301 to the same URL with the id, query kept.
    const moved = await call('/projects/PLATFORM%2FOld-App/access_tokens?per_page=1', {
      token: BOB,
      redirect: 'manual',
    });
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.get('location'), `${emu.url}/api/v4/projects/1000/access_tokens?per_page=1`);
    // A client that follows redirects gets the moved project under its current path.
    const followed = await call('/projects/platform%2Fold-app', { token: BOB });
    assert.deepEqual([followed.status, followed.json.id], [200, 1000]);
    assert.equal(followed.json.path_with_namespace, 'platform/new-app');
    // gitbeaker follows it too.
    const viaGitbeaker = await new Gitlab({ host: emu.url, token: BOB }).Projects.show('platform/old-app');
    assert.equal(viaGitbeaker.path_with_namespace, 'platform/new-app');

    // Any other method through the old path: 405, and nothing is created.
    const before = (await admin('/tokens')).json.length;
    const post = await mint('platform/old-app');
    assert.deepEqual(
      [post.status, post.json],
      [405, { message: 'Non GET methods are not allowed for moved projects' }],
    );
    const renameAgain = await put('/projects/platform%2Fold-app', BOB, { name: 'nope' });
    assert.equal(renameAgain.status, 405);
    assert.equal((await admin('/tokens')).json.length, before);
    // Someone who cannot see the project gets 404, not the redirect.
    const hidden = await call('/projects/platform%2Fold-app', { token: CAROL, redirect: 'manual' });
    assert.deepEqual([hidden.status, hidden.json], [404, { message: '404 Project Not Found' }]);
    // The current path answers directly.
    const direct = await call('/projects/platform%2Fnew-app', { token: BOB, redirect: 'manual' });
    assert.equal(direct.status, 200);

    const redirects = (await admin('/redirects')).json as Json[];
    assert.ok(
      redirects.some(
        (r) => r.path === 'platform/old-app' && r.type === 'project' && r.target_path === 'platform/new-app',
      ),
    );
  });

  test('real git clones and pushes through the old path of a renamed project', async () => {
    const renamed = await put('/projects/1005', ROOT, { path: 'git-app-renamed' });
    assert.equal(renamed.status, 200, renamed.text);
    const clone = await git(['clone', '-q', repoUrl(ALICE, 'platform/git-app'), 'old-path'], home);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(readFileSync(join(home, 'old-path', 'README.md'), 'utf8'), '# git-app\n');

    writeFileSync(join(home, 'old-path', 'pushed.txt'), 'through the old path\n');
    assert.equal((await git(['add', 'pushed.txt'], join(home, 'old-path'))).code, 0);
    assert.equal((await git(['commit', '-q', '-m', 'x'], join(home, 'old-path'))).code, 0);
    const push = await git(['push', '-q', 'origin', 'HEAD:main'], join(home, 'old-path'));
    assert.equal(push.code, 0, push.stderr);
    const file = await call('/projects/platform%2Fgit-app-renamed/repository/files/pushed.txt/raw?ref=main', {
      token: ROOT,
    });
    assert.deepEqual([file.status, file.text], [200, 'through the old path\n']);
  });

  test('PUT /projects/:id/transfer moves a project; tokens through the old path per movedProjects', async () => {
    const transferred = await put('/projects/1006/transfer', ROOT, { namespace: 'secret' });
    assert.equal(transferred.status, 200, transferred.text);
    assert.deepEqual(
      [
        transferred.json.path_with_namespace,
        transferred.json.namespace.id,
        transferred.json.namespace.full_path,
      ],
      ['secret/legacy', 200, 'secret'],
    );
    const renamed = await put('/projects/1006', ROOT, { path: 'crown-jewels' });
    assert.equal(renamed.json.path_with_namespace, 'secret/crown-jewels');

    // platform/legacy now leads to secret/crown-jewels.
    const resolved = await call('/projects/platform%2Flegacy', { token: ROOT });
    assert.deepEqual([resolved.json.id, resolved.json.path_with_namespace], [1006, 'secret/crown-jewels']);
    const clone = await git(['clone', '-q', repoUrl(ROOT, 'platform/legacy'), 'jewels'], home);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(readFileSync(join(home, 'jewels', 'README.md'), 'utf8'), '# the crown jewels\n');

    // GitLab: a POST through the old path is refused.
    assert.equal((await mint('platform/legacy')).status, 405);
    try {
      // `follow` (not GitLab, a worst case): the token lands on the moved project.
      const set = await admin('/settings', { json: { movedProjects: 'follow' } });
      assert.deepEqual(set.json, { movedProjects: 'follow' });
      const landed = await mint('platform/legacy');
      assert.equal(landed.status, 201, landed.text);
      assert.deepEqual([landed.json.resource_type, landed.json.resource_id], ['project', 1006]);
      // `not_found` (older GitLab): the old path is unknown.
      await admin('/settings', { json: { movedProjects: 'not_found' } });
      const gone = await call('/projects/platform%2Flegacy', { token: ROOT, redirect: 'manual' });
      assert.deepEqual([gone.status, gone.json], [404, { message: '404 Project Not Found' }]);
      const invalid = await admin('/settings', { json: { movedProjects: 'sometimes' } });
      assert.equal(invalid.status, 400);
    } finally {
      await admin('/settings', { json: { movedProjects: 'redirect' } });
    }
    assert.equal(
      (await call('/projects/platform%2Flegacy', { token: ROOT, redirect: 'manual' })).status,
      301,
    );
  });

  test('project transfer refusals, as TransferService words them', async () => {
    const failed = (reason: string) => ({
      message: `Failed to transfer project {:new_namespace=>[${JSON.stringify(reason)}]}`,
    });
    const cases: Array<[string, string, unknown, number, unknown]> = [
      ['missing namespace', CAROL, {}, 400, { error: 'namespace is missing' }],
      ['bob is Maintainer, not Owner', BOB, { namespace: 'bobs' }, 403, { message: '403 Forbidden' }],
      ['an unknown namespace', CAROL, { namespace: 'nowhere' }, 404, { message: '404 Namespace Not Found' }],
      ['an invisible namespace', CAROL, { namespace: '400' }, 404, { message: '404 Namespace Not Found' }],
      [
        'the same namespace',
        ROOT,
        { namespace: 'platform' },
        400,
        failed('Project is already in this namespace.'),
      ],
      [
        'carol is only a Developer in secret',
        CAROL,
        { namespace: 'secret' },
        400,
        failed("You don't have permission to transfer projects into that namespace."),
      ],
    ];
    for (const [label, token, body, status, expected] of cases) {
      const r = await put('/projects/1002/transfer', token, body);
      assert.deepEqual([r.status, r.json], [status, expected], label);
    }
    // Carol is Owner of the project and Maintainer of carol-land: allowed, by path or id.
    const ok = await put('/projects/platform%2Fcarol-app/transfer', CAROL, { namespace: '300' });
    assert.deepEqual([ok.status, ok.json.path_with_namespace], [200, 'carol-land/carol-app']);
    // A project of the same path in the target.
    const other = await call('/projects', {
      token: ROOT,
      json: { path: 'carol-app', name: 'Other Carol', namespace_id: 100 },
    });
    assert.equal(other.status, 201, other.text);
    const clash = await put(`/projects/${other.json.id}/transfer`, ROOT, { namespace: 'carol-land' });
    assert.deepEqual(
      [clash.status, clash.json],
      [400, failed('Project with same name or path in target namespace already exists')],
    );
  });

  test('POST /groups creates groups; the creator is Owner; refusals', async () => {
    const missing = await call('/groups', { token: ROOT, json: {} });
    assert.deepEqual([missing.status, missing.json], [400, { error: 'name is missing, path is missing' }]);
    const created = await call('/groups', { token: ALICE, json: { name: 'Alice Team', path: 'alice-team' } });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(
      [created.json.path, created.json.full_path, created.json.name, created.json.parent_id],
      ['alice-team', 'alice-team', 'Alice Team', null],
    );
    // Alice is its Owner: she may create a group access token there, and subgroups.
    const token = await call(`/groups/${created.json.id}/access_tokens`, {
      token: ALICE,
      json: { name: 'team-bot', scopes: ['api'], access_level: 50, expires_at: dayUtc(2) },
    });
    assert.equal(token.status, 201, token.text);
    const sub = await call('/groups', {
      token: ALICE,
      json: { name: 'Sub', path: 'sub', parent_id: created.json.id },
    });
    assert.deepEqual(
      [sub.status, sub.json.full_path, sub.json.parent_id],
      [201, 'alice-team/sub', created.json.id],
    );

    const cases: Array<[string, string, unknown, number, unknown]> = [
      [
        'a taken path',
        ROOT,
        { name: 'x', path: 'Platform' },
        400,
        { message: 'Failed to save group {:path=>["has already been taken"]}' },
      ],
      [
        "a user's namespace",
        ROOT,
        { name: 'x', path: 'bob' },
        400,
        { message: 'Failed to save group {:path=>["has already been taken"]}' },
      ],
      [
        'a bad path',
        ROOT,
        { name: 'x', path: 'bad.' },
        400,
        {
          message: `Failed to save group {:path=>["can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'."]}`,
        },
      ],
      [
        'bob is no Owner of platform',
        BOB,
        { name: 'x', path: 'x', parent_id: 100 },
        403,
        { message: '403 Forbidden' },
      ],
      [
        'an invisible parent',
        CAROL,
        { name: 'x', path: 'x', parent_id: 400 },
        404,
        { message: '404 Group Not Found' },
      ],
      ['a bot', token.json.token, { name: 'x', path: 'bot-group' }, 403, { message: '403 Forbidden' }],
    ];
    for (const [label, t, body, status, expected] of cases) {
      const r = await call('/groups', { token: t, json: body });
      assert.deepEqual([r.status, r.json], [status, expected], label);
    }
  });

  test('PUT /groups/:id renames a group and everything below it; group paths do not redirect', async () => {
    const denied = await put('/groups/500', BOB, { path: 'x' });
    assert.deepEqual([denied.status, denied.json], [404, { message: '404 Group Not Found' }]);
    const taken = await put('/groups/500', ROOT, { path: 'platform' });
    assert.deepEqual([taken.status, taken.json], [400, { message: { path: ['has already been taken'] } }]);
    const renamed = await put('/groups/team', ROOT, { path: 'team-renamed', name: 'Team' });
    assert.deepEqual(
      [renamed.status, renamed.json.full_path, renamed.json.name],
      [200, 'team-renamed', 'Team'],
    );
    const deep = await call('/projects/team%2Fsub%2Fdeep', { token: ROOT });
    assert.deepEqual([deep.json.id, deep.json.path_with_namespace], [1003, 'team-renamed/sub/deep']);
    assert.equal(
      (await call('/groups/team-renamed%2Fsub', { token: ROOT })).json.full_path,
      'team-renamed/sub',
    );
    // GitLab's find_group does not follow redirect routes.
    const oldGroup = await call('/groups/team%2Fsub', { token: ROOT });
    assert.deepEqual([oldGroup.status, oldGroup.json], [404, { message: '404 Group Not Found' }]);
    try {
      await admin('/settings', { json: { movedProjects: 'follow' } });
      assert.equal((await call('/groups/team%2Fsub', { token: ROOT })).json.full_path, 'team-renamed/sub');
    } finally {
      await admin('/settings', { json: { movedProjects: 'redirect' } });
    }
    const clone = await git(['clone', '-q', repoUrl(ROOT, 'team/sub/deep'), 'deep'], home);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(readFileSync(join(home, 'deep', 'README.md'), 'utf8'), '# deep\n');
  });

  test('POST /groups/:id/transfer moves a group under another; refusals', async () => {
    const parent = await call('/groups', { token: BOB, json: { name: 'Bob Parent', path: 'bob-parent' } });
    assert.equal(parent.status, 201);
    const notOwner = await call('/groups/400/transfer', { token: BOB, json: { group_id: 100 } });
    assert.deepEqual(
      [notOwner.status, notOwner.json],
      [400, { message: "Transfer failed: You don't have enough permissions." }],
    );
    const badId = await call('/groups/400/transfer', { token: BOB, json: { group_id: 'x' } });
    assert.deepEqual([badId.status, badId.json], [400, { error: 'group_id is invalid' }]);
    const root = await call('/groups/400/transfer', { token: BOB, json: {} });
    assert.deepEqual(
      [root.status, root.json],
      [400, { message: 'Transfer failed: Group is already a root group.' }],
    );
    const notMine = await call('/groups/100/transfer', { token: BOB, json: { group_id: parent.json.id } });
    assert.deepEqual([notMine.status, notMine.json], [403, { message: '403 Forbidden' }]);
    const inner = await call('/groups/bobs%2Finner', { token: BOB });
    const intoChild = await call('/groups/400/transfer', { token: BOB, json: { group_id: inner.json.id } });
    assert.deepEqual(
      [intoChild.status, intoChild.json],
      [400, { message: 'Transfer failed: Cannot transfer group to one of its subgroup.' }],
    );
    const carol = await call('/groups/400/transfer', { token: CAROL, json: { group_id: parent.json.id } });
    assert.deepEqual([carol.status, carol.json], [404, { message: '404 Group Not Found' }]);

    const moved = await call('/groups/400/transfer', { token: BOB, json: { group_id: parent.json.id } });
    assert.deepEqual(
      [moved.status, moved.json.full_path, moved.json.parent_id],
      [201, 'bob-parent/bobs', parent.json.id],
    );
    const app = await call('/projects/bobs%2Finner%2Fapp', { token: BOB });
    assert.deepEqual([app.json.id, app.json.path_with_namespace], [1009, 'bob-parent/bobs/inner/app']);
  });

  test('a new project or group on an old path drops the redirects there and below', async () => {
    assert.equal(
      (await put('/projects/1007', ROOT, { path: 'dropped-away', name: 'Dropped away' })).status,
      200,
    );
    assert.equal(
      (await call('/projects/platform%2Fdrop-me', { token: ROOT, redirect: 'manual' })).status,
      301,
    );
    const fresh = await call('/projects', {
      token: ROOT,
      json: { name: 'drop-me', namespace_id: 100, initialize_with_readme: true },
    });
    assert.equal(fresh.status, 201, fresh.text);
    assert.equal(fresh.json.path_with_namespace, 'platform/drop-me');
    assert.notEqual(fresh.json.id, 1007);
    // The new project wins: no redirect, its own repository.
    const now = await call('/projects/platform%2Fdrop-me', { token: ROOT, redirect: 'manual' });
    assert.deepEqual([now.status, now.json.id], [200, fresh.json.id]);
    const clone = await git(['clone', '-q', repoUrl(ROOT, 'platform/drop-me'), 'drop-me'], home);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(readFileSync(join(home, 'drop-me', 'README.md'), 'utf8'), '# drop-me\n');
    const redirects = (await admin('/redirects')).json as Json[];
    assert.ok(!redirects.some((r) => r.path === 'platform/drop-me'));

    // A group: old-grp → new-grp leaves old-grp and old-grp/app; a new old-grp drops both.
    assert.equal((await put('/groups/600', ROOT, { path: 'new-grp' })).status, 200);
    assert.equal((await call('/projects/old-grp%2Fapp', { token: ROOT, redirect: 'manual' })).status, 301);
    assert.equal(
      (await call('/groups', { token: ROOT, json: { name: 'old', path: 'old-grp' } })).status,
      201,
    );
    const gone = await call('/projects/old-grp%2Fapp', { token: ROOT, redirect: 'manual' });
    assert.deepEqual([gone.status, gone.json], [404, { message: '404 Project Not Found' }]);
    const left = ((await admin('/redirects')).json as Json[]).map((r) => r.path);
    assert.ok(!left.includes('old-grp') && !left.includes('old-grp/app'), left.join(','));
    assert.ok(left.includes('platform/old-app'), 'other redirects stay');

    const denied = await call('/projects', { token: ALICE, json: { path: 'mine', namespace_id: 100 } });
    assert.deepEqual([denied.status, denied.json], [400, { message: { namespace: ['is not valid'] } }]);
  });

  test('token answers carry user_id and resource; rotation keeps name, scopes and bot', async () => {
    const created = await mint('platform/rotation', ROOT, {
      name: 'rot',
      scopes: ['read_api', 'read_repository'],
      access_level: 20,
    });
    assert.equal(created.status, 201, created.text);
    const bot = await call('/user', { token: created.json.token });
    assert.equal(created.json.user_id, bot.json.id);
    assert.deepEqual([created.json.resource_type, created.json.resource_id], ['project', 1004]);
    const listed = await call('/projects/1004/access_tokens', { token: ROOT });
    assert.deepEqual(
      listed.json.map((t: Json) => [t.id, t.user_id, t.token]),
      [[created.json.id, created.json.user_id, undefined]],
    );

    const rotated = await call(`/projects/1004/access_tokens/${created.json.id}/rotate`, {
      method: 'POST',
      token: ROOT,
    });
    assert.equal(rotated.status, 200, rotated.text);
    assert.notEqual(rotated.json.id, created.json.id);
    assert.deepEqual(
      [rotated.json.name, rotated.json.scopes, rotated.json.user_id, rotated.json.access_level],
      ['rot', ['read_api', 'read_repository'], created.json.user_id, 20],
    );
    assert.equal((await call('/user', { token: created.json.token })).status, 401);
    const old = await call(`/projects/1004/access_tokens/${created.json.id}`, { token: ROOT });
    assert.deepEqual([old.json.revoked, old.json.active], [true, false]);

    const selfRotating = await mint('platform/rotation', ROOT, { name: 'self', scopes: ['api'] });
    const self = await call('/projects/1004/access_tokens/self/rotate', {
      method: 'POST',
      token: selfRotating.json.token,
    });
    assert.equal(self.status, 200, self.text);
    assert.deepEqual(
      [self.json.name, self.json.scopes, self.json.user_id],
      ['self', ['api'], selfRotating.json.user_id],
    );
    assert.notEqual(self.json.id, selfRotating.json.id);
    assert.equal((await call('/user', { token: self.json.token })).json.id, selfRotating.json.user_id);
  });
});

describe('GitLab emulator: moves survive a restart (persist)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gitlab-emu-moves-persist-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('renames, transfers, created groups and redirects come back; a version 1 file still loads', async () => {
    const stateDir = join(dir, 'state');
    const first = await startGitlabEmulator({ stateDir, persist: true });
    const api = (path: string, o: Parameters<typeof http>[2] = {}) =>
      http(first.url, `/api/v4${path}`, { token: first.adminToken, ...o });
    let token: string;
    try {
      const group = await api('/groups', { json: { name: 'Moved', path: 'moved' } });
      assert.equal(group.status, 201);
      assert.equal((await api('/projects/1000', { method: 'PUT', json: { path: 'lib' } })).status, 200);
      const t = await api('/projects/1000/transfer', { method: 'PUT', json: { namespace: 'moved' } });
      assert.equal(t.json.path_with_namespace, 'moved/lib');
      const minted = await api('/projects/1000/access_tokens', {
        json: { name: 'keep', scopes: ['read_api', 'read_repository'], expires_at: dayUtc(3) },
      });
      token = minted.json.token;
    } finally {
      await first.close();
    }

    const second = await startGitlabEmulator({ stateDir, persist: true });
    try {
      const p = await http(second.url, '/api/v4/projects/1000', { token: second.adminToken });
      assert.equal(p.json.path_with_namespace, 'moved/lib');
      const viaOld = await http(second.url, '/api/v4/projects/platform%2Finternal-lib', {
        token: second.adminToken,
        redirect: 'manual',
      });
      assert.equal(viaOld.status, 301);
      const viaMiddle = await http(second.url, '/api/v4/projects/platform%2Flib', {
        token: second.adminToken,
      });
      assert.equal(viaMiddle.json.path_with_namespace, 'moved/lib');
      const home = mkdtempSync(join(dir, 'home-'));
      const clone = await git(
        ['clone', '-q', `http://x:${token}@127.0.0.1:${second.port}/platform/internal-lib.git`, 'c'],
        home,
      );
      assert.equal(clone.code, 0, clone.stderr);
      // A group created through the API comes back with its id.
      const group = await http(second.url, '/api/v4/groups/moved', { token: second.adminToken });
      assert.equal(group.json.full_path, 'moved');
    } finally {
      await second.close();
    }

    // Version 1 (bots and tokens only): tokens come back, the seed's paths stay.
    const file = join(stateDir, 'gitlab-state.json');
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(saved.version, 2);
    writeFileSync(file, JSON.stringify({ ...saved, version: 1, groups: undefined, projects: undefined }));
    const third = await startGitlabEmulator({ stateDir, persist: true });
    try {
      const p = await http(third.url, '/api/v4/projects/1000', { token: third.adminToken });
      assert.equal(p.json.path_with_namespace, 'platform/internal-lib');
      assert.equal(
        (await http(third.url, '/api/v4/user', { token })).json.username.startsWith('project_1000_bot_'),
        true,
      );
    } finally {
      await third.close();
    }

    // A seed that no longer fits (project 1000 at another seed path): the seed wins.
    const seedChanged = defaultGitlabSeed();
    seedChanged.projects![0]!.path = 'platform/renamed-in-seed';
    const stateDir2 = join(dir, 'state2');
    const a = await startGitlabEmulator({ stateDir: stateDir2, persist: true });
    try {
      await http(a.url, '/api/v4/projects/1000', {
        method: 'PUT',
        token: a.adminToken,
        json: { path: 'gone' },
      });
    } finally {
      await a.close();
    }
    const b = await startGitlabEmulator({ stateDir: stateDir2, persist: true, config: seedChanged });
    try {
      const p = await http(b.url, '/api/v4/projects/1000', { token: b.adminToken });
      assert.equal(p.json.path_with_namespace, 'platform/renamed-in-seed');
    } finally {
      await b.close();
    }
  });
});
