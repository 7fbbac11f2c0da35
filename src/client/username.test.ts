/**
 * The STS's `gitlab_username` (a deploy token authenticates only with its own) reaches every place
 * the client hands a credential to: `exec`'s environment and git header, `git-credential get` (cached
 * with the token), and the formats (formats.test.ts). A username that is not one is refused, and the
 * token revoked, before anything is printed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  FAKE_SUBJECT,
  type FakeSts,
  captureIo as io,
  okToken,
  startFakeSts,
} from '../../test/helpers/fake-sts.ts';
import { runExec, runGitCredential, runToken } from './commands.ts';

const DEPLOY = 'gldt-deployTokenValue0123';
const USERNAME = 'gitlab+deploy-token-9';

function deployAnswer(username: unknown = USERNAME) {
  const a = okToken(DEPLOY, 'read_repository read_registry');
  return { ...a, body: { ...(a.body as object), gitlab_username: username } };
}

describe('client: gitlab_username', () => {
  let fake: FakeSts;
  let root: string;
  let env: Record<string, string | undefined>;
  before(async () => {
    fake = await startFakeSts();
    root = mkdtempSync(join(tmpdir(), 'tanuki-username-'));
  });
  after(async () => {
    await fake.close();
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.tokenAnswers = [deployAnswer()];
    env = {
      PATH: process.env.PATH,
      TANUKI_STS_URL: fake.url,
      TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT',
      CI_JWT: FAKE_SUBJECT,
      TANUKI_RETRIES: '0',
      TANUKI_CACHE_DIR: join(root, `cache-${Math.random()}`),
    };
  });

  it('exec: GITLAB_USERNAME and the git header carry the username', async () => {
    const out = join(root, 'exec-out');
    const o = io(env);
    const script = `printf '%s\\n%s\\n' "$GITLAB_USERNAME" "$GIT_CONFIG_VALUE_0" > '${out}'`;
    assert.equal(await runExec(['/bin/sh', '-c', script], { resource: 'platform/images' }, o), 0, o.err);
    const [username, header] = readFileSync(out, 'utf8').split('\n');
    assert.equal(username, USERNAME);
    assert.equal(header, `Authorization: Basic ${Buffer.from(`${USERNAME}:${DEPLOY}`).toString('base64')}`);
  });

  it('git-credential get answers the username, also from its cache', async () => {
    const ask = 'protocol=https\nhost=gitlab.example.com\npath=platform/images.git\n\n';
    for (const round of ['minted', 'cached']) {
      const o = io(env, ask);
      assert.equal(await runGitCredential('get', {}, o), 0, o.err);
      assert.match(o.out, new RegExp(`^username=gitlab\\+deploy-token-9\\npassword=${DEPLOY}\\n`), round);
    }
    assert.equal(
      fake.requests.filter((r) => r.path === '/token').length,
      1,
      'the second answer came from the cache',
    );
  });

  it('a gitlab_username that is not one: exit 5, nothing printed, the token revoked', async () => {
    for (const bad of [
      'x\nmachine evil.example.com login a password b',
      'a b',
      "'; rm -rf ~; '",
      42,
      null,
      '',
    ]) {
      fake.requests.length = 0;
      fake.tokenAnswers = [deployAnswer(bad)];
      const o = io(env);
      assert.equal(
        await runToken({ resource: 'platform/images', format: 'netrc' }, o),
        5,
        JSON.stringify(bad),
      );
      assert.equal(o.out, '');
      assert.match(o.err, /gitlab_username that is not a username/);
      assert.equal(fake.requests.at(-1)?.path, '/revoke');
      assert.equal(fake.requests.at(-1)?.form.token, DEPLOY);
    }
  });
});
