/**
 * The GitLab emulator against unmodified clients: @gitbeaker/rest for the
 * REST API and real `git` over smart HTTP, plus its operator controls.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GitbeakerRequestError, Gitlab } from '@gitbeaker/rest';
import { defaultGitlabSeed, type GitlabSeedInput } from '../../src/emulators/gitlab/config.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { dayUtc, http, type Json } from '../helpers/gitlab-http.ts';

const PAGES = 1002;
const ALICE = 'glpat-aliceAliceAlice000000';
const ALICE_READ_API = 'glpat-aliceReadApiOnly00000';
const BOB = 'glpat-bobMaintainerBob000000';

/** The dev seed plus bob (Maintainer of internal-lib) and a read_api-only PAT of alice. */
function testSeed(): GitlabSeedInput {
  const seed = defaultGitlabSeed();
  seed.users = [
    seed.users[0]!,
    {
      username: 'alice',
      name: 'Alice Developer',
      id: 2,
      tokens: [
        { name: 'alice-pat', scopes: ['api', 'read_repository', 'write_repository'], token: ALICE },
        { name: 'alice-read-api', scopes: ['read_api'], token: ALICE_READ_API },
      ],
    },
    {
      username: 'bob',
      name: 'Bob Maintainer',
      id: 3,
      tokens: [{ name: 'bob-pat', scopes: ['api'], token: BOB }],
    },
  ];
  seed.projects![0]!.members!.push({ user: 'bob', access_level: 'maintainer' });
  // A project of its own for the pagination tests, so other tests' tokens do not count.
  seed.projects!.push({ path: 'platform/pagination', id: 1002, repository: false });
  return seed;
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Real git, asynchronously (the emulator runs in this process), without any user or system config. */
function git(
  args: string[],
  cwd: string,
  home: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'git',
      args,
      {
        cwd,
        timeout: 20_000,
        env: {
          PATH: process.env.PATH,
          HOME: home,
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_TERMINAL_PROMPT: '0',
          GIT_AUTHOR_NAME: 'Test',
          GIT_AUTHOR_EMAIL: 'test@example.com',
          GIT_COMMITTER_NAME: 'Test',
          GIT_COMMITTER_EMAIL: 'test@example.com',
        },
      },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('GitLab emulator', () => {
  let emu: GitlabEmulatorHandle;
  let dir: string;
  let api: InstanceType<typeof Gitlab>;
  const call = (path: string, o: Parameters<typeof http>[2] = {}) => http(emu.url, `/api/v4${path}`, o);
  const admin = async (path: string, o: Parameters<typeof http>[2] = {}) =>
    http(emu.url, `/_emulator${path}`, o);
  const mint = async (project: string, body: Record<string, unknown>) => {
    const r = await call(`/projects/${encodeURIComponent(project)}/access_tokens`, {
      token: emu.adminToken,
      json: { name: 'test', expires_at: dayUtc(3), ...body },
    });
    assert.equal(r.status, 201, r.text);
    return r.json as { id: number; token: string; user_id: number };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gitlab-emu-test-'));
    emu = await startGitlabEmulator({ stateDir: join(dir, 'state'), config: testSeed() });
    api = new Gitlab({ host: emu.url, token: emu.adminToken });
  });

  after(async () => {
    await emu?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the admin token is a glpat- PAT of root, kept in the state dir', async () => {
    // GitLab 18.x's routable format (see gitlab-emulator-gitlab19.test.ts).
    assert.match(emu.adminToken, /^glpat-[A-Za-z0-9_-]{27,}\.01\.[0-9a-z]{9}$/);
    const me = await api.Users.showCurrentUser();
    assert.equal(me.username, 'root');
    assert.equal(me.is_admin, true);
    assert.equal(readFileSync(join(dir, 'state', 'admin-token'), 'utf8').trim(), emu.adminToken);
    const self = await call('/personal_access_tokens/self', { token: emu.adminToken });
    assert.equal(self.status, 200);
    assert.deepEqual(self.json.scopes, ['api']);
    assert.equal(self.json.active, true);
    assert.equal(self.json.token, undefined);
  });

  test('projects and groups by id or URL-encoded path; invisible ones are 404', async () => {
    const byPath = await call('/projects/platform%2Finternal-lib', { token: ALICE });
    assert.equal(byPath.status, 200);
    assert.equal(byPath.json.id, 1000);
    assert.equal(byPath.json.path_with_namespace, 'platform/internal-lib');
    assert.equal((await call('/projects/1000', { token: ALICE })).json.name, 'internal-lib');
    assert.deepEqual((await call('/projects/1001', { token: ALICE })).json, {
      message: '404 Project Not Found',
    });
    assert.deepEqual((await call('/groups/platform', { token: ALICE })).json, {
      message: '404 Group Not Found',
    });
    assert.equal((await call('/groups/100', { token: emu.adminToken })).json.full_path, 'platform');
    const unknown = await call('/nope', { token: ALICE });
    assert.deepEqual([unknown.status, unknown.json], [404, { error: '404 Not Found' }]);
  });

  test('gitbeaker creates, lists across pages, rotates and revokes project access tokens', async () => {
    const created = [];
    for (let i = 0; i < 23; i++) {
      created.push(
        await api.ProjectAccessTokens.create(PAGES, `page-${i}`, ['read_repository'], dayUtc(5), {
          accessLevel: 20,
        }),
      );
    }
    const first = created[0]!;
    assert.match(first.token as string, /^glpat-/);
    assert.equal(first.access_level, 20);
    assert.equal(first.expires_at, dayUtc(5));
    assert.equal(first.resource_type, 'project');
    assert.equal(first.resource_id, PAGES);
    // The bot user is a Reporter of the project.
    const bot = await call('/user', { token: first.token as string });
    assert.equal(bot.status, 403, 'read_repository is not an API scope');

    // All pages by Link rel="next" (gitbeaker follows it), then maxPages.
    const all = await api.ProjectAccessTokens.all(PAGES);
    assert.equal(all.length, 23);
    assert.deepEqual(
      all.map((t) => t.name),
      created.map((t) => t.name),
    );
    const onePage = await api.ProjectAccessTokens.all(PAGES, { perPage: 10, maxPages: 1 });
    assert.equal(onePage.length, 10);
    const expanded = await api.ProjectAccessTokens.all(PAGES, {
      perPage: 20,
      page: 2,
      showExpanded: true,
    });
    assert.equal(expanded.data.length, 3);
    assert.equal(expanded.paginationInfo.total, 23);
    assert.equal(expanded.paginationInfo.totalPages, 2);
    assert.equal(expanded.paginationInfo.previous, 1);
    assert.equal(expanded.paginationInfo.next, null);

    const rotated = await api.ProjectAccessTokens.rotate(PAGES, first.id, { expiresAt: dayUtc(2) });
    assert.notEqual(rotated.token, first.token);
    assert.notEqual(rotated.id, first.id);
    assert.equal(rotated.expires_at, dayUtc(2));
    assert.equal(rotated.access_level, 20);
    const old = await api.ProjectAccessTokens.show(PAGES, first.id);
    assert.equal(old.revoked, true);
    assert.equal(old.active, false);
    assert.equal(old.token, undefined);

    // Rotating the revoked token again is reuse: the whole family is revoked.
    await assert.rejects(api.ProjectAccessTokens.rotate(PAGES, first.id), (err: unknown) => {
      assert.ok(err instanceof GitbeakerRequestError);
      assert.equal((err.cause as { response: Response }).response.status, 400);
      assert.equal(err.message, '400 Bad request - token already revoked');
      return true;
    });
    assert.equal((await api.ProjectAccessTokens.show(PAGES, rotated.id)).revoked, true);

    const second = created[1]!;
    await api.ProjectAccessTokens.revoke(PAGES, second.id);
    const revoked = await api.ProjectAccessTokens.show(PAGES, second.id);
    assert.deepEqual([revoked.revoked, revoked.active], [true, false]);
    const again = await call(`/projects/${PAGES}/access_tokens/${second.id}`, {
      method: 'DELETE',
      token: emu.adminToken,
    });
    assert.deepEqual([again.status, again.json], [404, { message: '404 project Access Token Not Found' }]);
    const active = await api.ProjectAccessTokens.all(PAGES, { state: 'active' } as object);
    assert.equal(active.length, 21);
    const inactive = await call(`/projects/${PAGES}/access_tokens?revoked=true`, {
      token: emu.adminToken,
    });
    assert.equal(inactive.json.length, 3);
  });

  test('gitbeaker manages group access tokens', async () => {
    const t = await api.GroupAccessTokens.create(100, 'group-bot', ['read_api'], dayUtc(1), {
      accessLevel: 50,
    });
    assert.equal(t.resource_type, 'group');
    assert.equal(t.access_level, 50);
    const listed = await api.GroupAccessTokens.all('platform');
    assert.ok(listed.some((x) => x.id === t.id && x.token === undefined));
    // A group token's bot reads the group's projects through the API.
    assert.equal((await call('/projects/1001', { token: t.token as string })).status, 200);
    const r = await api.GroupAccessTokens.rotate(100, t.id);
    assert.equal(r.expires_at, dayUtc(7), 'rotation without expires_at: one week');
    await api.GroupAccessTokens.revoke(100, r.id);
    assert.equal((await api.GroupAccessTokens.show(100, r.id)).revoked, true);
    // Bob is no Owner of the group.
    const bob = await call('/groups/100/access_tokens', { token: BOB, json: { name: 'x', scopes: ['api'] } });
    assert.deepEqual([bob.status, bob.json], [404, { message: '404 Group Not Found' }]);
  });

  test('invalid requests get GitLab status codes and bodies', async () => {
    const bobApi = new Gitlab({ host: emu.url, token: BOB });
    await assert.rejects(
      bobApi.ProjectAccessTokens.create(1000, 'owner', ['api'], dayUtc(1), { accessLevel: 50 }),
      (err: unknown) => {
        assert.ok(err instanceof GitbeakerRequestError);
        assert.equal((err.cause as { response: Response }).response.status, 400);
        assert.equal(
          err.message,
          '400 Bad request - Access level of the token contains permissions not held by the creating user',
        );
        return true;
      },
    );
    // Bob (Maintainer) may create a Maintainer token.
    assert.equal((await bobApi.ProjectAccessTokens.create(1000, 'm', ['api'], dayUtc(1))).access_level, 40);

    const projectToken = (await mint('platform/internal-lib', { scopes: ['api'], access_level: 40 })).token;
    const tooLate = dayUtc(400);
    const cases: Array<[string, string, Record<string, unknown>, number, unknown]> = [
      [
        'bad scope',
        emu.adminToken,
        { name: 'x', scopes: ['read_user'] },
        400,
        { error: 'scopes does not have a valid value' },
      ],
      [
        'sudo scope',
        emu.adminToken,
        { name: 'x', scopes: ['api', 'sudo'] },
        400,
        { error: 'scopes does not have a valid value' },
      ],
      ['missing name', emu.adminToken, { scopes: ['api'] }, 400, { error: 'name is missing' }],
      ['missing both', emu.adminToken, {}, 400, { error: 'name is missing, scopes is missing' }],
      [
        'bad access level',
        emu.adminToken,
        { name: 'x', scopes: ['api'], access_level: 35 },
        400,
        { error: 'access_level does not have a valid value' },
      ],
      [
        'bad date',
        emu.adminToken,
        { name: 'x', scopes: ['api'], expires_at: '2030-02-30' },
        400,
        { error: 'expires_at is invalid' },
      ],
      [
        'expires_at > 365 days',
        emu.adminToken,
        { name: 'x', scopes: ['api'], expires_at: tooLate },
        400,
        { message: `400 Bad request - Expires at must be before ${dayUtc(365)}` },
      ],
      [
        'expires_at in the past',
        emu.adminToken,
        { name: 'x', scopes: ['api'], expires_at: dayUtc(-1) },
        400,
        { message: '400 Bad request - Expires at cannot be in the past' },
      ],
      [
        'a project access token creating a token',
        projectToken,
        { name: 'x', scopes: ['api'], access_level: 10 },
        400,
        { message: '400 Bad request - User does not have permission to create project access token' },
      ],
      [
        'alice (Developer)',
        ALICE,
        { name: 'x', scopes: ['api'], access_level: 10 },
        400,
        { message: '400 Bad request - User does not have permission to create project access token' },
      ],
      [
        'a read_api PAT',
        ALICE_READ_API,
        { name: 'x', scopes: ['api'] },
        403,
        {
          error: 'insufficient_scope',
          error_description: 'The request requires higher privileges than provided by the access token.',
          scope: 'api',
        },
      ],
      ['no token', '', { name: 'x', scopes: ['api'] }, 401, { message: '401 Unauthorized' }],
      [
        'unknown token',
        'glpat-unknownUnknown0000000',
        { name: 'x', scopes: ['api'] },
        401,
        { message: '401 Unauthorized' },
      ],
    ];
    for (const [label, token, body, status, expected] of cases) {
      const r = await call('/projects/platform%2Finternal-lib/access_tokens', { token, json: body });
      assert.deepEqual([r.status, r.json], [status, expected], label);
    }
    const other = await call('/projects/1001/access_tokens', {
      token: ALICE,
      json: { name: 'x', scopes: ['api'] },
    });
    assert.deepEqual([other.status, other.json], [404, { message: '404 Project Not Found' }]);
    // Listing needs Maintainer: alice gets 401, as `unauthorized!` in resource_access_tokens.rb.
    assert.deepEqual((await call('/projects/1000/access_tokens', { token: ALICE })).json, {
      message: '401 Unauthorized',
    });
    // read_api is enough for GETs.
    assert.equal((await call('/projects/1000', { token: ALICE_READ_API })).status, 200);
  });

  test('form-encoded scopes[] and the default role', async () => {
    const r = await call('/projects/1000/access_tokens', {
      token: emu.adminToken,
      form: `name=form&scopes[]=read_api&scopes[]=read_repository&expires_at=${dayUtc(2)}`,
    });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json.scopes, ['read_api', 'read_repository']);
    assert.equal(r.json.access_level, 40);
  });

  test('revoked and expired tokens answer 401 invalid_token', async () => {
    const t = await mint('platform/internal-lib', { scopes: ['api'], expires_at: dayUtc(2) });
    assert.equal((await call('/user', { token: t.token })).status, 200);
    try {
      await admin('/clock', { json: { offsetSeconds: 2 * 86_400 + 3600 } });
      const expired = await call('/user', { token: t.token });
      assert.equal(expired.status, 401);
      assert.deepEqual(expired.json, {
        error: 'invalid_token',
        error_description: 'Token is expired. You can either do re-authorization or token refresh.',
      });
    } finally {
      await admin('/clock', { json: { offsetSeconds: 0 } });
    }
    const self = await call('/personal_access_tokens/self', { method: 'DELETE', token: t.token });
    assert.equal(self.status, 204);
    const revoked = await call('/user', { token: t.token });
    assert.deepEqual(
      [revoked.status, revoked.json],
      [
        401,
        {
          error: 'invalid_token',
          error_description: 'Token was revoked. You have to re-authorize from the user.',
        },
      ],
    );
  });

  test('personal access token self rotation', async () => {
    const seedEmu = await startGitlabEmulator({
      stateDir: join(dir, 'rotate'),
      config: { users: [{ username: 'root', admin: true, tokens: [{ name: 'a', scopes: ['api'] }] }] },
    });
    const original = seedEmu.adminToken;
    try {
      const r = await http(seedEmu.url, '/api/v4/personal_access_tokens/self/rotate', {
        method: 'POST',
        token: seedEmu.adminToken,
      });
      assert.equal(r.status, 200, r.text);
      assert.match(r.json.token, /^glpat-/);
      assert.equal((await http(seedEmu.url, '/api/v4/user', { token: original })).status, 401);
      assert.equal((await http(seedEmu.url, '/api/v4/user', { token: r.json.token })).status, 200);
      assert.equal(seedEmu.adminToken, r.json.token, 'the handle follows the rotated admin token');
    } finally {
      await seedEmu.close();
    }
    // A restart uses the rotated value, not the first one.
    const restarted = await startGitlabEmulator({
      stateDir: join(dir, 'rotate'),
      config: { users: [{ username: 'root', admin: true, tokens: [{ name: 'a', scopes: ['api'] }] }] },
    });
    try {
      assert.equal(restarted.adminToken, seedEmu.adminToken);
      assert.notEqual(restarted.adminToken, original);
      assert.equal((await http(restarted.url, '/api/v4/user', { token: restarted.adminToken })).status, 200);
    } finally {
      await restarted.close();
    }
  });

  test('real git: clone, refused project, read-only push, push, revocation, expiry', async () => {
    const home = mkdtempSync(join(dir, 'home-'));
    const repo = (token: string, project = 'platform/internal-lib') =>
      `http://oauth2:${token}@127.0.0.1:${emu.port}/${project}.git`;

    const reader = await mint('platform/internal-lib', {
      scopes: ['read_repository'],
      access_level: 20,
      expires_at: dayUtc(2),
    });
    const clone = await git(['clone', '-q', repo(reader.token), 'c1'], home, home);
    assert.equal(clone.code, 0, clone.stderr);
    assert.match(readFileSync(join(home, 'c1', 'README.md'), 'utf8'), /platform\/internal-lib/);

    // A token of another project's bot does not see this one.
    const otherToken = await mint('platform/other-service', {
      scopes: ['read_repository', 'write_repository'],
    });
    const refused = await git(['clone', '-q', repo(otherToken.token), 'c2'], home, home);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /could not be found or you don't have permission to view it/);

    // read_repository cannot push.
    writeFileSync(join(home, 'c1', 'pushed.txt'), 'hello\n');
    assert.equal((await git(['add', 'pushed.txt'], join(home, 'c1'), home)).code, 0);
    assert.equal((await git(['commit', '-q', '-m', 'push test'], join(home, 'c1'), home)).code, 0);
    const denied = await git(['push', '-q', 'origin', 'HEAD:main'], join(home, 'c1'), home);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /not allowed to upload code|403/);

    // write_repository with Developer pushes.
    const writer = await mint('platform/internal-lib', { scopes: ['write_repository'], access_level: 30 });
    const pushed = await git(['push', '-q', repo(writer.token), 'HEAD:main'], join(home, 'c1'), home);
    assert.equal(pushed.code, 0, pushed.stderr);
    const file = await call('/projects/platform%2Finternal-lib/repository/files/pushed.txt/raw?ref=main', {
      token: emu.adminToken,
    });
    assert.deepEqual([file.status, file.text], [200, 'hello\n']);
    const missing = await call('/projects/1000/repository/files/nope.txt/raw?ref=main', {
      token: emu.adminToken,
    });
    assert.deepEqual([missing.status, missing.json], [404, { message: '404 File Not Found' }]);

    // write_repository with Reporter cannot push.
    const weakWriter = await mint('platform/internal-lib', {
      scopes: ['write_repository'],
      access_level: 20,
    });
    const weak = await git(
      ['push', '-q', repo(weakWriter.token), 'HEAD:refs/heads/other'],
      join(home, 'c1'),
      home,
    );
    assert.notEqual(weak.code, 0);
    assert.match(weak.stderr, /not allowed to push code to this project/);

    // Without credentials: 401 with the Basic challenge.
    const anon = await fetch(`${emu.url}/platform/internal-lib.git/info/refs?service=git-upload-pack`);
    assert.equal(anon.status, 401);
    assert.equal(anon.headers.get('www-authenticate'), 'Basic realm="GitLab"');

    // After expiry (clock moved past expires_at) and after revocation: authentication fails.
    try {
      await admin('/clock', { json: { offsetSeconds: 3 * 86_400 } });
      const expired = await git(['ls-remote', repo(reader.token)], home, home);
      assert.notEqual(expired.code, 0);
      assert.match(expired.stderr, /Authentication failed/);
    } finally {
      await admin('/clock', { json: { offsetSeconds: 0 } });
    }
    assert.equal((await git(['ls-remote', repo(reader.token)], home, home)).code, 0);
    const del = await call(`/projects/1000/access_tokens/${reader.id}`, {
      method: 'DELETE',
      token: emu.adminToken,
    });
    assert.equal(del.status, 204);
    const afterRevoke = await git(['clone', '-q', repo(reader.token), 'c3'], home, home);
    assert.notEqual(afterRevoke.code, 0);
    assert.match(afterRevoke.stderr, /Authentication failed/);
    assert.equal(existsSync(join(home, 'c3', 'README.md')), false);
  });

  test('rate limit: RateLimit-* headers, then 429 Retry later with Retry-After', async () => {
    await admin('/faults', { json: { rateLimit: { limit: 3, periodSeconds: 60 } } });
    try {
      const remaining: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await call('/user', { token: ALICE });
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('ratelimit-name'), 'throttle_authenticated_api');
        assert.equal(r.headers.get('ratelimit-limit'), '3');
        assert.equal(r.headers.get('ratelimit-observed'), String(i + 1));
        assert.ok(Number(r.headers.get('ratelimit-reset')) > Date.now() / 1000);
        remaining.push(r.headers.get('ratelimit-remaining') ?? '');
      }
      assert.deepEqual(remaining, ['2', '1', '0']);
      const limited = await call('/user', { token: ALICE });
      assert.equal(limited.status, 429);
      assert.equal(limited.text.trim(), 'Retry later');
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter));
      assert.ok(limited.headers.get('ratelimit-resettime'));
      assert.equal(limited.headers.get('ratelimit-remaining'), '0');
      // The limit is per token.
      assert.equal((await call('/user', { token: BOB })).status, 200);
    } finally {
      await admin('/faults', { method: 'DELETE' });
    }
    const free = await call('/user', { token: ALICE });
    assert.equal(free.status, 200);
    assert.equal(free.headers.get('ratelimit-limit'), null);
  });

  test('fault injection: error statuses, burst 429, latency, dropped connections, path filter', async () => {
    try {
      await admin('/faults', { json: { errorRate: 1, errorStatuses: [502] } });
      const before = (await admin('/tokens')).json.length;
      const failed = await call('/projects/1000/access_tokens', {
        token: emu.adminToken,
        json: { name: 'x', scopes: ['api'] },
      });
      assert.deepEqual([failed.status, failed.json], [502, { message: '502 Bad Gateway' }]);
      assert.equal((await admin('/tokens')).json.length, before, 'a faulted request does nothing');

      await admin('/faults', {
        json: { errorRate: 1, errorStatuses: [500, 503], paths: '/api/v4/projects' },
      });
      assert.equal((await call('/user', { token: ALICE })).status, 200, 'outside the path filter');
      assert.ok([500, 503].includes((await call('/projects/1000', { token: ALICE })).status));

      await admin('/faults', { json: { burst429: { count: 2, retryAfterSeconds: 7 } } });
      const b1 = await call('/user', { token: ALICE });
      assert.deepEqual([b1.status, b1.headers.get('retry-after')], [429, '7']);
      assert.equal((await call('/user', { token: ALICE })).status, 429);
      assert.equal((await call('/user', { token: ALICE })).status, 200);

      await admin('/faults', { json: { latencyMs: 300 } });
      const t0 = performance.now();
      assert.equal((await call('/user', { token: ALICE })).status, 200);
      assert.ok(performance.now() - t0 >= 295);
      const t1 = performance.now();
      assert.equal((await admin('/stats')).status, 200);
      assert.ok(performance.now() - t1 < 295, '/_emulator is never delayed');

      await admin('/faults', { json: { dropRate: 1 } });
      await assert.rejects(fetch(`${emu.url}/api/v4/user`, { headers: { 'PRIVATE-TOKEN': ALICE } }));
      assert.equal((await admin('/faults')).json.dropRate, 1);

      const bad = await admin('/faults', { json: { errorRate: 2 } });
      assert.equal(bad.status, 400);
    } finally {
      await admin('/faults', { method: 'DELETE' });
    }
    assert.equal((await call('/user', { token: ALICE })).status, 200);
  });

  test('/_emulator/tokens shows every token without its value; /_emulator/stats counts by route', async () => {
    await admin('/stats/reset', { method: 'POST' });
    const t = await mint('platform/internal-lib', { name: 'inspect-me', scopes: ['read_api'] });
    await call('/user', { token: ALICE });
    await call(`/projects/1000/access_tokens/${t.id}`, { method: 'DELETE', token: emu.adminToken });

    const stats = (await admin('/stats')).json;
    assert.equal(stats.total, 3);
    assert.equal(stats.apiRequests, 3);
    assert.equal(stats.byRoute['POST /projects/:id/access_tokens'], 1);
    assert.equal(stats.byRoute['GET /user'], 1);
    assert.equal(stats.byRoute['DELETE /projects/:id/access_tokens/:token_id'], 1);

    const tokens = (await admin('/tokens')).json as Array<Record<string, Json>>;
    assert.ok(!JSON.stringify(tokens).includes('glpat-'), 'no token value');
    const mine = tokens.find((x) => x.id === t.id)!;
    assert.equal(mine.sha256, sha256(t.token));
    assert.deepEqual(
      [mine.kind, mine.resource, mine.name, mine.revoked, mine.active],
      ['project', { type: 'project', id: 1000, path: 'platform/internal-lib' }, 'inspect-me', true, false],
    );
    const rootPat = tokens.find((x) => x.sha256 === sha256(emu.adminToken))!;
    assert.deepEqual([rootPat.kind, rootPat.username, rootPat.active], ['personal', 'root', true]);
  });

  test('persist: a restarted emulator keeps its admin token and minted tokens', async () => {
    const stateDir = join(dir, 'persisted');
    const first = await startGitlabEmulator({ stateDir, persist: true });
    let token: string;
    let revokedToken: string;
    try {
      const r = await http(first.url, '/api/v4/projects/1000/access_tokens', {
        token: first.adminToken,
        json: { name: 'keep', scopes: ['api'], expires_at: dayUtc(3) },
      });
      token = r.json.token;
      const r2 = await http(first.url, '/api/v4/projects/1000/access_tokens', {
        token: first.adminToken,
        json: { name: 'gone', scopes: ['api'], expires_at: dayUtc(3) },
      });
      revokedToken = r2.json.token;
      await http(first.url, `/api/v4/projects/1000/access_tokens/${r2.json.id}`, {
        method: 'DELETE',
        token: first.adminToken,
      });
    } finally {
      await first.close();
    }
    const second = await startGitlabEmulator({ stateDir, persist: true });
    try {
      assert.equal(second.adminToken, first.adminToken);
      assert.equal(
        (await http(second.url, '/api/v4/user', { token })).json.username.startsWith('project_1000_bot_'),
        true,
      );
      assert.equal((await http(second.url, '/api/v4/user', { token: revokedToken })).status, 401);
      const list = await http(second.url, '/api/v4/projects/1000/access_tokens', {
        token: second.adminToken,
      });
      assert.deepEqual(
        list.json.map((x: { name: string; active: boolean }) => [x.name, x.active]),
        [
          ['keep', true],
          ['gone', false],
        ],
      );
    } finally {
      await second.close();
    }
  });

  test('pagination headers and Link built from the request URL', async () => {
    const r = await call(`/projects/${PAGES}/access_tokens?per_page=2&page=2`, {
      token: emu.adminToken,
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.length, 2);
    assert.equal(r.headers.get('x-page'), '2');
    assert.equal(r.headers.get('x-per-page'), '2');
    assert.equal(r.headers.get('x-prev-page'), '1');
    assert.equal(r.headers.get('x-next-page'), '3');
    assert.equal(r.headers.get('x-total'), '24', '23 created, 1 by rotation');
    assert.equal(r.headers.get('x-total-pages'), '12');
    const link = r.headers.get('link') ?? '';
    assert.match(
      link,
      /<http:\/\/127\.0\.0\.1:\d+\/api\/v4\/projects\/1002\/access_tokens\?per_page=2&page=3>; rel="next"/,
    );
    assert.match(link, /page=1[^>]*>; rel="first"/);
    assert.match(link, /page=12[^>]*>; rel="last"/);
    const capped = await call('/projects/1000/access_tokens?per_page=500', { token: emu.adminToken });
    assert.equal(capped.headers.get('x-per-page'), '100');
    const withQueryToken = await call(
      `/projects/1000/access_tokens?per_page=1&private_token=${emu.adminToken}`,
    );
    assert.equal(withQueryToken.status, 200);
    assert.ok(!(withQueryToken.headers.get('link') ?? '').includes('glpat-'), 'no token in Link');
  });
});
