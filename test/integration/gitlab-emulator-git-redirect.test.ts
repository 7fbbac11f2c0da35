/**
 * `git clone http://host/group/project` (no `.git`) against the GitLab
 * emulator, as against GitLab: `GET /group/project/info/refs` with an empty
 * query or exactly `service=git-upload-pack|git-receive-pack` is redirected
 * (301) to `/group/project.git/info/refs` with the same query, before any
 * credential check (gitlabhq: config/routes/git_http.rb, "Redirect
 * /group/project/info/refs to /group/project.git/info/refs";
 * lib/constraints/repository_redirect_url_constrainer.rb). Nothing else
 * without `.git` is a git route.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { dayUtc, http } from '../helpers/gitlab-http.ts';

function git(args: string[], home: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'git',
      args,
      {
        cwd: home,
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
      (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

describe('GitLab emulator: clone URLs without .git', () => {
  let emu: GitlabEmulatorHandle;
  let dir: string;
  let reader: string;
  let writer: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gitlab-emu-redirect-'));
    emu = await startGitlabEmulator({ stateDir: join(dir, 'state') });
    const mint = async (scopes: string[], access_level: number) => {
      const r = await http(emu.url, '/api/v4/projects/platform%2Finternal-lib/access_tokens', {
        token: emu.adminToken,
        json: { name: 'redirect-test', scopes, access_level, expires_at: dayUtc(2) },
      });
      assert.equal(r.status, 201, r.text);
      return r.json.token as string;
    };
    reader = await mint(['read_repository'], 20);
    writer = await mint(['write_repository'], 30);
  });
  after(async () => {
    await emu?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('git clone, ls-remote and push work on http://host/group/project', async () => {
    const home = mkdtempSync(join(dir, 'home-'));
    const url = (token: string) => `http://oauth2:${token}@127.0.0.1:${emu.port}/platform/internal-lib`;
    const clone = await git(['clone', '-q', url(reader), 'c1'], home);
    assert.equal(clone.code, 0, clone.stderr);
    assert.match(readFileSync(join(home, 'c1', 'README.md'), 'utf8'), /platform\/internal-lib/);
    assert.equal((await git(['ls-remote', url(reader)], home)).code, 0);
    // The access checks still apply after the redirect: a reader cannot push, a writer can.
    const repo = join(home, 'c1');
    assert.equal((await git(['-C', repo, 'commit', '-q', '--allow-empty', '-m', 'x'], home)).code, 0);
    const denied = await git(['-C', repo, 'push', '-q', url(reader), 'HEAD:refs/heads/redirect'], home);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /not allowed to upload code/);
    const pushed = await git(['-C', repo, 'push', '-q', url(writer), 'HEAD:refs/heads/redirect'], home);
    assert.equal(pushed.code, 0, pushed.stderr);
    // A project the caller cannot see is still "not found", at the .git URL git was sent to.
    const hidden = await git(
      ['clone', '-q', `http://oauth2:${reader}@127.0.0.1:${emu.port}/nope/missing`, 'c2'],
      home,
    );
    assert.notEqual(hidden.code, 0);
    assert.match(hidden.stderr, /could not be found or you don't have permission to view it/);
  });

  it('the redirect: 301 to the .git URL with the same query, before any credential check', async () => {
    for (const query of ['', '?service=git-upload-pack', '?service=git-receive-pack']) {
      const res = await fetch(`${emu.url}/platform/internal-lib/info/refs${query}`, { redirect: 'manual' });
      assert.equal(res.status, 301, query);
      assert.equal(res.headers.get('location'), `${emu.url}/platform/internal-lib.git/info/refs${query}`);
      assert.equal(res.headers.get('www-authenticate'), null);
    }
    // Any path that could be a project is redirected; the .git URL then answers as usual.
    const unknown = await fetch(`${emu.url}/nope/missing/info/refs?service=git-upload-pack`, {
      redirect: 'manual',
    });
    assert.equal(unknown.status, 301);
    const followed = await fetch(`${emu.url}/platform/internal-lib/info/refs?service=git-upload-pack`);
    assert.equal(followed.status, 401);
    assert.equal(followed.headers.get('www-authenticate'), 'Basic realm="GitLab"');
  });

  it('nothing else without .git is a git route', async () => {
    const notFound: Array<[string, string]> = [
      ['GET', '/platform/internal-lib/info/refs?service=git-upload-pack&x=1'],
      ['GET', '/platform/internal-lib/info/refs?service=other'],
      ['POST', '/platform/internal-lib/git-upload-pack'],
      ['POST', '/platform/internal-lib/info/refs'],
      ['GET', '/info/refs'],
      ['GET', '/platform/internal-lib/info/refs/x'],
    ];
    for (const [method, path] of notFound) {
      const res = await fetch(`${emu.url}${path}`, { method, redirect: 'manual' });
      assert.equal(res.status, 404, `${method} ${path}`);
    }
  });
});
