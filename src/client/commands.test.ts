import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { captureIo, FAKE_SUBJECT, type FakeSts, okToken, startFakeSts } from '../../test/helpers/fake-sts.ts';
import { helperCommand, runExec, runGitCredential, runRevoke, runToken } from './commands.ts';
import { OUTPUT_FORMATS } from './settings.ts';

const SUBJECT = FAKE_SUBJECT;

const io = captureIo;

describe('client commands against a fake STS', () => {
  let fake: FakeSts;
  let env: Record<string, string | undefined>;
  before(async () => {
    fake = await startFakeSts();
  });
  after(() => fake.close());
  beforeEach(() => {
    fake.requests.length = 0;
    fake.tokenAnswers = [okToken('glpat-issued-token-0123456789')];
    env = {
      PATH: process.env.PATH,
      TANUKI_STS_URL: fake.url,
      TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT',
      CI_JWT: SUBJECT,
      TANUKI_RETRIES: '0',
    };
  });

  it('token prints the token and nothing else; a path becomes a URL via gitlab_url', async () => {
    const o = io(env);
    assert.equal(await runToken({ resource: 'platform/lib', ttl: '10m' }, o), 0);
    assert.equal(o.out, 'glpat-issued-token-0123456789\n');
    assert.equal(o.err, '');
    const form = fake.requests.find((r) => r.path === '/token')?.form;
    assert.equal(form?.resource, 'https://gitlab.example.com/platform/lib');
    assert.equal(form?.expires_in, '600');
    assert.equal(form?.subject_token, SUBJECT);
  });

  it('--verbose explains without showing tokens', async () => {
    const o = io({ ...env, TANUKI_VERBOSE: '1' });
    assert.equal(await runToken({ resource: 'platform/lib' }, o), 0);
    assert.match(o.err, /exchange: resource=https:\/\/gitlab.example.com\/platform\/lib/);
    assert.doesNotMatch(o.err, /glpat-|eyJ/);
  });

  it('docker-config without read_registry: exit 4, nothing printed, the token revoked', async () => {
    const o = io(env);
    assert.equal(
      await runToken({ resource: 'platform/lib', format: 'docker-config', registry: 'reg.example.com' }, o),
      4,
    );
    assert.equal(o.out, '');
    assert.match(o.err, /without read_registry/);
    assert.equal(fake.requests.at(-1)?.path, '/revoke');
    assert.equal(fake.requests.at(-1)?.form.token, 'glpat-issued-token-0123456789');
  });

  it('docker-config without --registry is a usage error before any exchange', async () => {
    const o = io(env);
    assert.equal(await runToken({ resource: 'platform/lib', format: 'docker-config' }, o), 2);
    assert.equal(fake.requests.length, 0);
  });

  it('an STS refusal is exit 4 and the message has no token', async () => {
    fake.tokenAnswers = [
      {
        status: 400,
        body: { error: 'invalid_request', error_description: 'the subject token is invalid or not accepted' },
      },
    ];
    const o = io(env);
    assert.equal(await runToken({ resource: 'platform/lib' }, o), 4);
    assert.match(o.err, /^tanuki-sts: the STS refused the exchange: invalid_request/);
    assert.doesNotMatch(o.err, /eyJ/);
  });

  it('exec runs the command with GITLAB_TOKEN and git config, then revokes; exit code passes through', async () => {
    const o = io({ ...env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'user.name', GIT_CONFIG_VALUE_0: 'x' });
    const code = await runExec(
      [
        '/bin/sh',
        '-c',
        'test -n "$GITLAB_TOKEN" && test "$GIT_CONFIG_COUNT" = 2 && git config --get-urlmatch http.extraHeader https://gitlab.example.com/g/p >/dev/null && exit 9',
      ],
      { resource: 'g/p' },
      o,
    );
    assert.equal(code, 9, o.err);
    assert.equal(fake.requests.at(-1)?.path, '/revoke');
    assert.equal(o.out, '');
  });

  it('exec does not run the command when the exchange fails', async () => {
    fake.tokenAnswers = [
      { status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '5' } },
    ];
    const o = io(env);
    const code = await runExec(['/bin/sh', '-c', 'echo ran'], { resource: 'g/p' }, o);
    assert.equal(code, 5);
    assert.match(o.err, /Retry-After/);
    assert.equal(o.out, '');
  });

  it('git-credential get answers for our host and stays silent for others', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tanuki-cmd-'));
    after(() => rmSync(root, { recursive: true, force: true }));
    const cacheEnv = { ...env, TANUKI_CACHE_DIR: join(root, 'c') };
    const o = io(cacheEnv, 'protocol=https\nhost=gitlab.example.com\npath=platform/lib.git\n\n');
    assert.equal(await runGitCredential('get', {}, o), 0, o.err);
    assert.match(
      o.out,
      /^username=oauth2\npassword=glpat-issued-token-0123456789\npassword_expiry_utc=\d+\n$/,
    );
    const other = io(cacheEnv, 'protocol=https\nhost=github.com\npath=a/b.git\n');
    assert.equal(await runGitCredential('get', {}, other), 0);
    assert.equal(other.out, '');
    const store = io(cacheEnv, 'protocol=https\nhost=gitlab.example.com\nusername=oauth2\npassword=x\n');
    assert.equal(await runGitCredential('store', {}, store), 0);
  });

  it('revoke reads the token from stdin in raw, env or json form', async () => {
    for (const stdin of [
      'glpat-a-token-111\n',
      'GITLAB_TOKEN=glpat-a-token-111\n',
      '{"access_token":"glpat-a-token-111"}',
    ]) {
      const o = io(env, stdin);
      assert.equal(await runRevoke({}, o), 0, o.err);
      assert.equal(fake.requests.at(-1)?.form.token, 'glpat-a-token-111');
    }
    assert.equal(await runRevoke({}, io(env, '')), 2);
  });

  describe('revoke: `token --format X | revoke` for every format, and nothing else', () => {
    const ISSUED = 'glpat-round-trip-0123456789';
    for (const format of OUTPUT_FORMATS) {
      it(`token --format ${format} | revoke: the issued token is revoked`, async () => {
        fake.tokenAnswers = [okToken(ISSUED, 'read_repository read_registry')];
        const t = io(env);
        const registry = format === 'docker-config' ? 'registry.example.com' : undefined;
        assert.equal(await runToken({ resource: 'platform/lib', format, registry }, t), 0, t.err);
        fake.requests.length = 0;
        const r = io(env, t.out);
        assert.equal(await runRevoke({}, r), 0, r.err);
        assert.deepEqual(
          fake.requests.map((q) => [q.path, q.form.token]),
          [['/revoke', ISSUED]],
        );
        assert.equal(r.out, '');
        assert.equal(r.err, '');
      });
    }

    it('revoke --token-file in git-credentials format', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tanuki-revoke-'));
      after(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'creds');
      writeFileSync(file, `https://oauth2:${ISSUED}@gitlab.example.com\n`);
      assert.equal(await runRevoke({ tokenFile: file }, io(env)), 0);
      assert.equal(fake.requests.at(-1)?.form.token, ISSUED);
    });

    for (const [name, stdin] of [
      ['echo notatoken | revoke', 'notatoken\n'],
      ['an Entra token piped by mistake', `${SUBJECT}\n`],
      ['a netrc line for another login', 'machine gitlab.example.com login me password hunter22\n'],
      ['two tokens', `${ISSUED}\n${ISSUED}\n`],
      ['nothing', ''],
    ] as const) {
      it(`${name}: exit 2, says what it expected, sends nothing`, async () => {
        const o = io(env, stdin);
        assert.equal(await runRevoke({}, o), 2);
        assert.match(o.err, /^tanuki-sts: revoke: stdin: /);
        assert.match(o.err, /one GitLab token \(glpat-…\) in a format `tanuki-sts token` prints/);
        assert.doesNotMatch(o.err, /hunter22|eyJ/);
        assert.equal(fake.requests.length, 0, 'nothing sent to the STS');
      });
    }

    it('--verbose says the server cannot confirm unknown tokens (RFC 7009 answers 200)', async () => {
      const o = io({ ...env, TANUKI_VERBOSE: '1' }, `GITLAB_TOKEN='${ISSUED}'\n`);
      assert.equal(await runRevoke({}, o), 0, o.err);
      assert.match(o.err, /a GitLab token in env format from stdin \(sha256 [0-9a-f]{16}…\)/);
      assert.match(o.err, /answers 200 for a token it does not know .*RFC 7009.*cannot confirm/);
      assert.doesNotMatch(o.err, /glpat-/);
    });

    it('a failed revocation says how long the token stays valid (the reaper, then GitLab)', async () => {
      fake.revokeAnswers = [{ status: 503, body: { error: 'temporarily_unavailable' } }];
      try {
        const o = io(env, `${ISSUED}\n`);
        assert.equal(await runRevoke({}, o), 5);
        assert.match(o.err, /stays valid until the STS's reaper revokes it after its TTL ends/);
        assert.match(o.err, /GitLab ends it on its expiry date/);
      } finally {
        fake.revokeAnswers = [{ status: 200, body: {} }];
      }
    });
  });

  it('exec: a failed revocation names the reaper and GitLab expiry, not "up to Ns"', async () => {
    fake.revokeAnswers = [{ status: 503, body: { error: 'temporarily_unavailable' } }];
    try {
      const o = io(env);
      assert.equal(await runExec(['/bin/sh', '-c', 'exit 0'], { resource: 'g/p' }, o), 0);
      assert.match(
        o.err,
        /could not revoke the token: .*; it stays valid until the STS's reaper revokes it after its TTL ends \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\) — later if the STS is not reachable by then; at the latest GitLab ends it on its expiry date/,
      );
      assert.doesNotMatch(o.err, /up to \d+s/);
    } finally {
      fake.revokeAnswers = [{ status: 200, body: {} }];
    }
  });

  it('a typo in --scope is "unknown GitLab scope", refused before anything is sent', async () => {
    for (const scope of ['read_repositry', 'read_api read_repositry']) {
      const o = io(env);
      assert.equal(await runToken({ resource: 'platform/lib', scope }, o), 2);
      assert.match(o.err, /unknown GitLab scope "read_repositry" — did you mean read_repository\?/);
      assert.equal(fake.requests.length, 0, 'nothing sent');
    }
    const known = io(env);
    assert.equal(await runToken({ resource: 'platform/lib', scope: 'read_repository' }, known), 0, known.err);
  });

  it('the installed helper command is shell-quoted and absolute', () => {
    const cmd = helperCommand("https://sts.example.com/it's", '/does/not/exist/tanuki-sts.js');
    assert.equal(
      cmd,
      `!'${process.execPath}' '/does/not/exist/tanuki-sts.js' git-credential --sts 'https://sts.example.com/it'\\''s'`,
    );
  });
});
