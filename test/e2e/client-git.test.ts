/**
 * End to end: `tanuki-sts exec -- git clone …` and the git credential helper
 * against the dev stack. Proves the token works for git, is revoked after
 * the command (success, failure, SIGTERM), that the helper mints once for
 * several git commands, and that `erase` revokes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  activeCount,
  baseEnv,
  git,
  gitlabTokens,
  leaks,
  run,
  type Stack,
  startStack,
} from '../helpers/client-dev-stack.ts';

describe('tanuki-sts exec and git-credential (e2e)', { concurrency: 1 }, () => {
  let stack: Stack;
  let env: Record<string, string>;
  let repoUrl: string;

  before(async () => {
    stack = await startStack();
    env = baseEnv(stack, {
      AZURE_CLIENT_SECRET: stack.dev.entra.clientSecret,
      TANUKI_RESOURCE: stack.dev.gitlab.project,
    });
    repoUrl = `${stack.dev.gitlab.url}/${stack.dev.gitlab.project}.git`;
  });
  after(async () => {
    await stack?.stop();
  });

  const work = () => mkdtempSync(join(stack.dir, 'work-'));

  it('exec -- git clone works, and the token is revoked afterwards', async () => {
    const dir = work();
    const before = activeCount(await gitlabTokens(stack));
    const r = await run(['exec', '--', 'git', 'clone', '--quiet', repoUrl, join(dir, 'repo')], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'repo', '.git')));
    assert.equal(activeCount(await gitlabTokens(stack)), before, 'no token left active');
  });

  it('a failing command: its exit code, and the token is still revoked (and really dead)', async () => {
    const dir = work();
    const tokenFile = join(dir, 'token');
    const before = activeCount(await gitlabTokens(stack));
    const r = await run(
      [
        'exec',
        '--',
        '/bin/sh',
        '-c',
        `git ls-remote "${repoUrl}" >/dev/null && printf %s "$GITLAB_TOKEN" > "${tokenFile}" && exit 7`,
      ],
      { env },
    );
    assert.equal(r.code, 7, r.stderr);
    assert.equal(activeCount(await gitlabTokens(stack)), before);
    // The revoked token no longer opens the repository.
    const token = readFileSync(tokenFile, 'utf8');
    const header = `Authorization: Basic ${Buffer.from(`oauth2:${token}`).toString('base64')}`;
    const denied = await git(['ls-remote', repoUrl], {
      env: {
        ...env,
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: `http.${stack.dev.gitlab.url}/.extraHeader`,
        GIT_CONFIG_VALUE_0: header,
      },
    });
    assert.notEqual(denied.code, 0);
  });

  it('SIGTERM to the client: forwarded to the command, token revoked, exit 143', async () => {
    const dir = work();
    const marker = join(dir, 'started');
    const before = activeCount(await gitlabTokens(stack));
    const r = await run(['exec', '--', '/bin/sh', '-c', `touch "${marker}"; exec sleep 30`], {
      env,
      onSpawn: (child) => {
        const poll = setInterval(() => {
          if (existsSync(marker)) {
            clearInterval(poll);
            child.kill('SIGTERM');
          }
        }, 50);
      },
    });
    assert.equal(r.code, 143, r.stderr);
    assert.equal(activeCount(await gitlabTokens(stack)), before);
  });

  it('exec of a missing command: 127, token revoked', async () => {
    const before = activeCount(await gitlabTokens(stack));
    const r = await run(['exec', '--', 'no-such-command-xyz'], { env });
    assert.equal(r.code, 127);
    assert.match(r.stderr, /command not found: no-such-command-xyz/);
    assert.equal(activeCount(await gitlabTokens(stack)), before);
  });

  it('git-credential --install, then clone + fetch + ls-remote mint one token; erase revokes it', async () => {
    const install = await run(['git-credential', '--install', '--sts', stack.dev.sts.url], { env });
    assert.equal(install.code, 0, install.stderr);
    const config = readFileSync(join(stack.home, '.gitconfig'), 'utf8');
    assert.match(config, /useHttpPath = true/);
    assert.match(config, /git-credential --sts/);

    const dir = work();
    const tokensBefore = (await gitlabTokens(stack)).length;
    const clone = await git(['clone', '--quiet', repoUrl, join(dir, 'repo')], { env });
    assert.equal(clone.code, 0, clone.stderr);
    const fetch = await git(['fetch', '--quiet'], { env, cwd: join(dir, 'repo') });
    assert.equal(fetch.code, 0, fetch.stderr);
    const ls = await git(['ls-remote', repoUrl], { env });
    assert.equal(ls.code, 0, ls.stderr);
    const minted = (await gitlabTokens(stack)).length - tokensBefore;
    assert.equal(minted, 1, 'one token for three git commands');

    // What git does when a server rejects the credential: `git credential reject` → helper erase.
    const url = new URL(repoUrl);
    const query = `protocol=${url.protocol.slice(0, -1)}\nhost=${url.host}\npath=${url.pathname.slice(1)}\n\n`;
    const fill = await git(['credential', 'fill'], { env, input: query, tokenOnStdout: true });
    assert.equal(fill.code, 0, fill.stderr);
    assert.match(fill.stdout, /username=oauth2/);
    const active = activeCount(await gitlabTokens(stack));
    const reject = await git(['credential', 'reject'], { env, input: fill.stdout });
    assert.equal(reject.code, 0, reject.stderr);
    assert.equal(activeCount(await gitlabTokens(stack)), active - 1, 'erase revoked the cached token');
  });

  it('git-credential revoke-all (after_script): cached tokens answer 401 at GitLab, the cache holds no token', async () => {
    // The helper is installed by the test above; two projects' worth of git commands fill the cache.
    const cacheDir = env.TANUKI_CACHE_DIR!;
    const dir = work();
    const clone = await git(['clone', '--quiet', repoUrl, join(dir, 'repo')], { env });
    assert.equal(clone.code, 0, clone.stderr);
    const cachedTokens = () =>
      readdirSync(cacheDir)
        .filter((n) => n.endsWith('.json'))
        .map((n) => (JSON.parse(readFileSync(join(cacheDir, n), 'utf8')) as { token: string }).token);
    const tokens = cachedTokens();
    assert.ok(tokens.length >= 1, 'the helper cached a token');
    const status = async (token: string) =>
      (
        await fetch(`${stack.dev.gitlab.url}/api/v4/personal_access_tokens/self`, {
          headers: { 'PRIVATE-TOKEN': token },
        })
      ).status;
    for (const t of tokens) assert.equal(await status(t), 200, 'live before revoke-all');

    const r = await run(['git-credential', 'revoke-all'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /revoked \d+ cached token/);
    for (const t of tokens) assert.equal(await status(t), 401, 'revoked at GitLab');
    const left = readdirSync(cacheDir).filter((n) => !n.endsWith('.lock'));
    assert.deepEqual(left, [], 'no cache file left');
    for (const n of readdirSync(cacheDir))
      for (const t of tokens) assert.equal(readFileSync(join(cacheDir, n), 'utf8').includes(t), false);
  });

  it('no output of any run shows a token or secret outside the requested stdout', () => {
    assert.deepEqual(leaks([stack.dev.entra.clientSecret, stack.dev.gitlab.adminToken]), []);
  });
});
