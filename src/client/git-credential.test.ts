import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type FakeSts, okToken, startFakeSts } from '../../test/helpers/fake-sts.ts';
import { isFresh, TokenCache } from './cache.ts';
import {
  formatCredentialOutput,
  type HelperDeps,
  helperErase,
  helperGet,
  matchRequest,
  parseCredentialInput,
} from './git-credential.ts';
import { resolveSettings } from './settings.ts';
import { StsClient } from './sts.ts';

describe('credential protocol', () => {
  it('parses git input up to the blank line', () => {
    const m = parseCredentialInput('protocol=https\nhost=gitlab.example.com\npath=g/p.git\n\nignored=1\n');
    assert.deepEqual(
      [...m],
      [
        ['protocol', 'https'],
        ['host', 'gitlab.example.com'],
        ['path', 'g/p.git'],
      ],
    );
    assert.equal(
      formatCredentialOutput('glpat-tok0', 1_700_000_000_500),
      'username=oauth2\npassword=glpat-tok0\npassword_expiry_utc=1700000000\n',
    );
    // Never an extra protocol line, whoever produced the token.
    assert.throws(() => formatCredentialOutput('glpat-tok0\nquit=1', undefined), /one line/);
  });

  it('matches only our host, strips .git and a path prefix', () => {
    const input = (o: Record<string, string>) => new Map(Object.entries(o));
    assert.deepEqual(
      matchRequest(
        input({ protocol: 'https', host: 'gitlab.example.com', path: 'g/p.git' }),
        'https://gitlab.example.com',
      ),
      {
        gitlabUrl: 'https://gitlab.example.com',
        path: 'g/p',
      },
    );
    assert.deepEqual(
      matchRequest(input({ protocol: 'https', host: 'h', path: 'gl/g/p.git' }), 'https://h/gl/'),
      { gitlabUrl: 'https://h/gl', path: 'g/p' },
    );
    assert.equal(
      matchRequest(
        input({ protocol: 'https', host: 'github.com', path: 'x/y' }),
        'https://gitlab.example.com',
      ),
      undefined,
    );
    assert.equal(
      matchRequest(
        input({ protocol: 'http', host: 'gitlab.example.com', path: 'x' }),
        'https://gitlab.example.com',
      ),
      undefined,
    );
    assert.throws(
      () => matchRequest(input({ protocol: 'https', host: 'h' }), 'https://h'),
      /useHttpPath true/,
    );
  });

  it('a path is only ever a path: URLs, traversal and odd characters are refused', () => {
    const input = (path: string) =>
      new Map([
        ['protocol', 'https'],
        ['host', 'gitlab.example.com'],
        ['path', path],
      ]);
    for (const path of [
      'https://evil.example/g/p.git',
      'file:///etc/passwd',
      '//evil.example/g/p',
      'g/../p',
      'g/p?x',
      'g p',
    ])
      assert.throws(
        () => matchRequest(input(path), 'https://gitlab.example.com'),
        /not a repository path/,
        path,
      );
  });
});

describe('helper get/erase with the cache', () => {
  let fake: FakeSts;
  let dir: string;
  let deps: HelperDeps;
  const made: string[] = [];
  const env = { TANUKI_SUBJECT_TOKEN_VAR: 'JWT', JWT: 'eyJsubject.token.value', CI_JOB_ID: '42' };
  const settings = () => resolveSettings({ sts: fake.url }, env);
  const req = { gitlabUrl: 'https://gitlab.example.com', path: 'platform/lib' };
  before(async () => {
    fake = await startFakeSts();
  });
  after(async () => {
    await fake.close();
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  beforeEach(() => {
    const root = mkdtempSync(join(tmpdir(), 'tanuki-cache-test-'));
    made.push(root);
    dir = join(root, 'cache');
    fake.requests.length = 0;
    fake.tokenAnswers = [okToken('glpat-first-token-aaaa'), okToken('glpat-second-token-bbbb')];
    deps = {
      env,
      log: () => {},
      notice: () => {},
      sts: new StsClient({ baseUrl: fake.url }),
      cache: new TokenCache(dir),
    };
  });

  it('mints once for several gets, in a private directory and file', async () => {
    const a = await helperGet(settings(), deps, req);
    const b = await helperGet(settings(), deps, req);
    assert.equal(a.token, 'glpat-first-token-aaaa');
    assert.equal(b.token, a.token);
    assert.equal(b.cached, true);
    assert.equal(fake.requests.filter((r) => r.path === '/token').length, 1);
    assert.equal(fake.requests[0]?.form.resource, 'https://gitlab.example.com/platform/lib');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const files = readdirSync(dir);
    assert.equal(files.length, 1, `only the entry, no lock or temp file: ${files}`);
    assert.equal(statSync(join(dir, files[0]!)).mode & 0o777, 0o600);
  });

  it('concurrent gets mint once (lock)', async () => {
    const results = await Promise.all([1, 2, 3, 4].map(() => helperGet(settings(), deps, req)));
    assert.equal(new Set(results.map((r) => r.token)).size, 1);
    assert.equal(fake.requests.filter((r) => r.path === '/token').length, 1);
  });

  it('another job (CI_JOB_ID) does not reuse the token', async () => {
    await helperGet(settings(), deps, req);
    const other = await helperGet(settings(), { ...deps, env: { ...env, CI_JOB_ID: '43' } }, req);
    assert.equal(other.token, 'glpat-second-token-bbbb');
  });

  it('erase revokes our token and forgets it; a foreign password is never sent', async () => {
    const a = await helperGet(settings(), deps, req);
    assert.equal(await helperErase(settings(), deps, req, 'someone-elses-password'), false);
    assert.equal(
      fake.requests.some((r) => r.path === '/revoke'),
      false,
    );
    assert.equal(await helperErase(settings(), deps, req, a.token), true);
    assert.equal(fake.requests.at(-1)?.form.token, a.token);
    const b = await helperGet(settings(), deps, req);
    assert.equal(b.token, 'glpat-second-token-bbbb');
  });

  it('refreshes when a quarter of the life (max 2 min) remains', () => {
    const e = { token: 't', issuedAt: 0, expiresAt: 900_000, scopes: undefined, resource: 'r' };
    assert.equal(isFresh(e, 700_000), true);
    assert.equal(isFresh(e, 790_000), false);
    const short = { ...e, expiresAt: 60_000 };
    assert.equal(isFresh(short, 44_000), true);
    assert.equal(isFresh(short, 46_000), false);
  });
});
