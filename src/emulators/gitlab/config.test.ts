import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultGitlabSeed, resolveSeed } from './config.ts';
import { GitlabSeedError } from './errors.ts';
import { checkExpiry, parseDate } from './expiry.ts';
import { RateLimiter } from './faults.ts';
import { Params } from './http.ts';
import { paginate } from './pagination.ts';

describe('GitLab emulator seed', () => {
  test('the dev seed: root admin, alice developer, two projects with repositories', () => {
    const s = resolveSeed(defaultGitlabSeed());
    assert.deepEqual(
      s.users.map((u) => [u.id, u.username, u.admin]),
      [
        [1, 'root', true],
        [2, 'alice', false],
      ],
    );
    assert.deepEqual(s.users[0]!.tokens[0]!.scopes, ['api']);
    assert.deepEqual(
      s.projects.map((p) => [p.id, p.path, p.members, p.repositoryFiles !== null]),
      [
        [1000, 'platform/internal-lib', [{ userId: 2, accessLevel: 30 }], true],
        [1001, 'platform/other-service', [], true],
      ],
    );
    assert.equal(s.settings.maxTokenLifetimeDays, 365);
    assert.equal(s.settings.movedProjects, 'redirect');
  });

  test('missing parent groups are created; ids fill in around fixed ones', () => {
    const s = resolveSeed({
      users: [{ username: 'root', admin: true, tokens: [{ name: 'a', scopes: ['api'] }] }],
      groups: [{ path: 'a/b', id: 100 }],
      projects: [{ path: 'a/b/c/app', members: [{ user: 'root', access_level: 50 }] }],
    });
    assert.deepEqual(
      s.groups.map((g) => [g.path, g.id, g.parentPath]),
      [
        ['a', 101, null],
        ['a/b', 100, 'a'],
        ['a/b/c', 102, 'a/b'],
      ],
    );
    assert.equal(s.projects[0]!.id, 1000);
    assert.equal(s.projects[0]!.namespacePath, 'a/b/c');
  });

  test('errors name the key', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ users: [] }, /users/],
      [
        { users: [{ username: 'x', tokens: [{ name: 't', scopes: ['nope'] }] }] },
        /users\.0\.tokens\.0\.scopes\.0/,
      ],
      [{ users: [{ username: 'x', tokens: [{ name: 't', scopes: ['api'], token: 'short' }] }] }, /token/],
      [
        {
          users: [{ username: 'x' }],
          projects: [{ path: 'g/p', members: [{ user: 'y', access_level: 30 }] }],
        },
        /unknown user y/,
      ],
      [
        {
          users: [{ username: 'x' }],
          projects: [{ path: 'g/p', members: [{ user: 'x', access_level: 'boss' }] }],
        },
        /boss/,
      ],
      [{ users: [{ username: 'x' }], projects: [{ path: 'noGroup' }] }, /group\/project/],
      [{ users: [{ username: 'x' }], settings: { movedProjects: 'always' } }, /settings\.movedProjects/],
    ];
    for (const [seed, message] of bad) {
      assert.throws(
        () => resolveSeed(seed),
        (err: unknown) => err instanceof GitlabSeedError && message.test(err.message),
      );
    }
  });
});

describe('GitLab emulator helpers', () => {
  test('expires_at: calendar dates only, at most the maximum lifetime, today or later', () => {
    assert.equal(parseDate('2030-02-28'), '2030-02-28');
    assert.equal(parseDate('2030-02-30'), undefined);
    assert.equal(parseDate('2030-2-3'), undefined);
    assert.doesNotThrow(() => checkExpiry('2027-01-01', '2026-01-01', 365));
    assert.throws(() => checkExpiry('2027-01-02', '2026-01-01', 365), /Expires at must be before 2027-01-01/);
    // Today is accepted as GitLab 17.11–19.1 accept it (the token is born inactive):
    // recordings paths/{17.11.7,18.11.5,19.0.2}/TestGitlabClient_CreateAccessToken_And_Revoke.yaml.
    assert.doesNotThrow(() => checkExpiry('2026-01-01', '2026-01-01', 365));
    assert.throws(() => checkExpiry('2025-12-31', '2026-01-01', 365), /cannot be in the past/);
  });

  test('settings.tokenFormat: routable by default, legacy on request, anything else refused', () => {
    assert.equal(resolveSeed(defaultGitlabSeed()).settings.tokenFormat, 'routable');
    assert.equal(
      resolveSeed({ ...defaultGitlabSeed(), settings: { tokenFormat: 'legacy' } }).settings.tokenFormat,
      'legacy',
    );
    assert.throws(
      () => resolveSeed({ ...defaultGitlabSeed(), settings: { tokenFormat: 'glpat' } }),
      /settings\.tokenFormat/,
    );
    // A fixed seed token may have either shape.
    for (const token of [
      'glpat-aaaaaaaaaaaaaaaaaaaa',
      'glpat-SeedSeedSeedSeedSeedSeedSeedSeed.01.0w0000000',
    ]) {
      const s = resolveSeed({
        users: [{ username: 'x', admin: true, tokens: [{ name: 't', scopes: ['api'], token }] }],
      });
      assert.equal(s.users[0]!.tokens[0]!.value, token);
    }
  });

  test('pagination: the last page, X-* headers and Link', () => {
    const items = Array.from({ length: 45 }, (_, i) => i);
    const url = new URL(
      'http://127.0.0.1:1/api/v4/projects/1/access_tokens?search=x&private_token=glpat-secret',
    );
    const { page, headers } = paginate(items, { page: 3, perPage: 20 }, url);
    assert.deepEqual(page, [40, 41, 42, 43, 44]);
    assert.equal(headers['x-total-pages'], '3');
    assert.equal(headers['x-next-page'], '');
    assert.equal(headers['x-prev-page'], '2');
    assert.ok(!headers.link!.includes('rel="next"'));
    assert.ok(!headers.link!.includes('secret'));
    assert.match(headers.link!, /search=x&page=2&per_page=20>; rel="prev"/);
  });

  test('rate limiter: fixed window per key', () => {
    const rl = new RateLimiter();
    const limit = { limit: 2, periodSeconds: 10 };
    assert.equal(rl.check('a', 'n', limit, 0).limited, false);
    assert.equal(rl.check('a', 'n', limit, 1000).limited, false);
    const third = rl.check('a', 'n', limit, 2000);
    assert.equal(third.limited, true);
    assert.equal(third.headers['retry-after'], '8');
    assert.equal(third.headers['ratelimit-limit'], '12');
    assert.equal(rl.check('b', 'n', limit, 2000).limited, false);
    assert.equal(rl.check('a', 'n', limit, 10_000).limited, false);
  });

  test('params: query arrays with [] and JSON bodies', async () => {
    const { Readable } = await import('node:stream');
    const req = Object.assign(
      Readable.from([Buffer.from('{"scopes":["api"],"name":"n","access_level":30}')]),
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      },
    );
    const p = await Params.from(req as never, new URLSearchParams('scopes[]=read_api&page=2'));
    assert.deepEqual(p.array('scopes'), ['api']);
    assert.equal(p.string('access_level'), '30');
    assert.equal(p.string('page'), '2');
    const q = await Params.from(
      { method: 'GET', headers: {} } as never,
      new URLSearchParams('scopes[]=a&scopes[]=b'),
    );
    assert.deepEqual(q.array('scopes'), ['a', 'b']);
  });
});
