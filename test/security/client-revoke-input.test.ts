/**
 * `tanuki-sts revoke` must not report success when it revoked nothing. RFC 7009
 * has the STS answer 200 for a token it does not know (§2.2), so the client is
 * the only one who can tell that `echo notatoken | tanuki-sts revoke` — or a
 * file in a format it does not print — revokes nothing: it refuses such input
 * (exit 2, saying what it expected) and sends nothing. Run as a process, as a
 * pipeline runs it, against a fake STS that records what reaches it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FAKE_SUBJECT, type FakeSts, startFakeSts } from '../helpers/fake-sts.ts';

const ENTRY = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));
const TOKEN = 'glpat-revoke-input-0123456789';

function revoke(
  args: string[],
  env: NodeJS.ProcessEnv,
  stdin: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', ENTRY, 'revoke', ...args],
      { env, timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin);
  });
}

describe('revoke: input that holds no GitLab token is refused, and nothing is sent', () => {
  let fake: FakeSts;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    fake = await startFakeSts();
    dir = mkdtempSync(join(tmpdir(), 'tanuki-revoke-input-'));
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.requests.length = 0;
    env = { PATH: process.env.PATH, HOME: dir, TANUKI_STS_URL: fake.url, TANUKI_RETRIES: '0' };
  });

  for (const [name, stdin] of [
    ['echo notatoken | tanuki-sts revoke', 'notatoken\n'],
    ['the Entra ID / CI token piped instead of the GitLab token', `${FAKE_SUBJECT}\n`],
    [
      'a ~/.git-credentials with two lines',
      `https://oauth2:${TOKEN}@a.example\nhttps://oauth2:${TOKEN}@b.example\n`,
    ],
    [
      'a netrc entry with a password that is no token',
      'machine gitlab.example.com login me password Sup3r-S3cret\n',
    ],
    [
      'a docker config.json with another registry login',
      '{"auths":{"r.example":{"auth":"bWU6U3VwM3ItUzNjcmV0"}}}',
    ],
  ] as const) {
    it(`${name}: exit 2, what was expected, no request, no secret echoed`, async () => {
      const r = await revoke([], env, stdin);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /revoke needs one GitLab token \(glpat-…\) in a format `tanuki-sts token` prints: raw, env/,
      );
      assert.doesNotMatch(r.stderr, /Sup3r-S3cret|eyJ|glpat-revoke/);
      assert.equal(r.stdout, '');
      assert.deepEqual(fake.requests, [], 'nothing reached the STS');
    });
  }

  it('--token-file in git-credentials format (one line): revoked; --verbose says the server cannot confirm', async () => {
    const file = join(dir, 'git-credentials');
    writeFileSync(file, `https://oauth2:${TOKEN}@gitlab.example.com\n`);
    const r = await revoke(['--token-file', file, '--verbose'], env, '');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      fake.requests.map((q) => [q.path, q.form.token]),
      [['/revoke', TOKEN]],
    );
    assert.match(r.stderr, /git-credentials format/);
    assert.match(r.stderr, /the server cannot confirm this token was one it issued/);
    assert.doesNotMatch(r.stderr, /glpat-/);
  });
});
