/**
 * End to end, deploy tokens (`grant.via: deploy-token`): the STS in-process against the Entra ID
 * and GitLab emulators, the client as a pipeline runs it (a process of its own), real git.
 *
 * - `tanuki-sts exec -- git clone …` clones with a deploy token (and its own username), which is
 *   deleted when the command ends;
 * - `token --format git-credentials` and `--format docker-config` carry the deploy token's username
 *   (and work: git with the git-credentials URL);
 * - the reaper deletes the token at its TTL, POST /revoke at once;
 * - 100 exchanges create no GitLab user (`GET /users`), where one access-token exchange creates one.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gitClone } from '../helpers/git.ts';
import {
  assertNoSecrets,
  EXCHANGE,
  PROJECT,
  pipelineToken,
  postForm,
  type Stack,
  startStack,
} from '../helpers/stack.ts';

const ENTRY = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('deploy tokens end to end (via: deploy-token)', { concurrency: 1 }, () => {
  let s: Stack;
  let subject: string;
  let env: NodeJS.ProcessEnv;
  const outputs: string[] = [];

  /** The pipeline client, as a process of its own. */
  const client = (args: string[], stdin = ''): Promise<Run> =>
    new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        ['--import', 'tsx', ENTRY, ...args],
        { env, timeout: 60_000, cwd: ROOT },
        (err, stdout, stderr) => {
          outputs.push(stderr);
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
        },
      );
      child.stdin?.end(stdin);
    });

  const deployTokens = async (): Promise<Array<Record<string, any>>> =>
    (await fetch(`${s.gitlab.url}/_emulator/deploy_tokens`)).json() as Promise<Array<Record<string, any>>>;
  const refs = async (username: string, token: string) =>
    (
      await fetch(`${s.gitlab.url}/${PROJECT}.git/info/refs?service=git-upload-pack`, {
        headers: { authorization: `Basic ${Buffer.from(`${username}:${token}`).toString('base64')}` },
      })
    ).status;
  const userCount = async () =>
    Number(
      (
        await fetch(`${s.gitlab.url}/api/v4/users?per_page=1`, {
          headers: { 'PRIVATE-TOKEN': s.gitlab.adminToken },
        })
      ).headers.get('x-total'),
    );
  const exchange = (form: Record<string, string> = {}) =>
    postForm(`${s.sts.url}/token`, { ...EXCHANGE, subject_token: subject, audience: PROJECT, ...form });

  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        const imageBuild = raw.policies[0];
        // First in file order: the pipeline app gets a deploy token for the dev project.
        raw.policies.unshift({
          name: 'pull',
          issuer: 'contoso',
          match: { ...imageBuild.match },
          grant: {
            via: 'deploy-token',
            projects: [PROJECT],
            scopes: ['read_repository', 'read_registry'],
            ttl: { default: '15m', max: '1h' },
          },
        });
      },
    });
    subject = await pipelineToken(s);
    env = {
      PATH: process.env.PATH,
      HOME: s.dir,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      TANUKI_STS_URL: s.sts.url,
      TANUKI_RETRIES: '0',
      TANUKI_SUBJECT_TOKEN_VAR: 'PIPELINE_TOKEN',
      PIPELINE_TOKEN: subject,
      TANUKI_RESOURCE: PROJECT,
    };
  });
  after(async () => {
    await s?.close();
  });

  it('exec -- git clone clones with a deploy token and its username; the token is deleted afterwards', async () => {
    const dir = join(s.dir, 'clone-exec');
    const r = await client(['exec', '--', 'git', 'clone', '--quiet', `${s.gitlab.url}/${PROJECT}.git`, dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'README.md')));
    const granted = s.audit.events.filter((e) => e.event === 'exchange' && e.outcome === 'granted');
    assert.equal(granted.length, 1);
    assert.equal(granted[0]?.tokenKind, 'deploy-token');
    assert.match(String(granted[0]?.gitlabUsername), /^gitlab\+deploy-token-\d+$/);
    const [token] = await deployTokens();
    assert.equal(token?.username, granted[0]?.gitlabUsername);
    assert.ok(token?.last_used_at, 'git used the deploy token');
    assert.equal(token?.deleted, true, 'exec revoked it when git was done');
    assert.equal(token?.name, `tanuki-sts/test/pull/${granted[0]?.grantId}`);
  });

  it('token --format git-credentials and --format docker-config carry the username; git works with the URL', async () => {
    const creds = await client(['token', '--format', 'git-credentials']);
    assert.equal(creds.code, 0, creds.stderr);
    const url = new URL(creds.stdout.trim());
    const username = decodeURIComponent(url.username);
    const token = decodeURIComponent(url.password);
    assert.match(username, /^gitlab\+deploy-token-\d+$/);
    assert.match(token, /^gldt-/);
    assert.equal(`${url.protocol}//${url.host}`, s.gitlab.url);
    const clone = await gitClone(`${s.gitlab.url}/${PROJECT}.git`, token, username);
    assert.ok(clone.ok, clone.stderr);
    assert.equal(await refs('oauth2', token), 401, 'not with another username');

    const docker = await client([
      'token',
      '--format',
      'docker-config',
      '--registry',
      'registry.example.test',
    ]);
    assert.equal(docker.code, 0, docker.stderr);
    const auth = Buffer.from(
      JSON.parse(docker.stdout).auths['registry.example.test'].auth,
      'base64',
    ).toString();
    assert.match(auth, /^gitlab\+deploy-token-\d+:gldt-/);

    const env_ = await client(['token', '--format', 'env']);
    assert.match(env_.stdout, /^GITLAB_TOKEN='gldt-[^']+'\nGITLAB_USERNAME='gitlab\+deploy-token-\d+'\n$/);

    // `revoke` takes each of them back (the docker-config's user is the deploy token's, not oauth2).
    for (const printed of [creds.stdout, docker.stdout, env_.stdout]) {
      const r = await client(['revoke'], printed);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(await refs(username, token), 401);
    assert.equal((await deployTokens()).filter((t) => t.active).length, 0, 'all three revoked');
  });

  it('the reaper deletes the deploy token when its TTL ends; POST /revoke at once', async () => {
    const timed = await exchange({ expires_in: '60' });
    assert.equal(timed.status, 200, timed.text);
    const { access_token: token, gitlab_username: username } = timed.json;
    assert.match(username, /^gitlab\+deploy-token-\d+$/);
    await s.sts.reapNow();
    assert.equal(await refs(username, token), 200, 'alive before its TTL');
    s.clock.advance(61_000);
    await s.sts.reapNow();
    assert.equal(await refs(username, token), 401, 'deleted at its TTL');
    const reaped = s.audit.events.find((e) => e.event === 'reap' && e.tokenKind === 'deploy-token');
    assert.ok(reaped, 'the reap is audited as a deploy token');

    const revoked = await exchange();
    assert.equal(revoked.status, 200, revoked.text);
    const r = await postForm(`${s.sts.url}/revoke`, { token: revoked.json.access_token });
    assert.equal(r.status, 200);
    assert.equal(await refs(revoked.json.gitlab_username, revoked.json.access_token), 401);
  });

  it('100 exchanges create no GitLab user (GET /users); one access-token exchange creates one', async () => {
    const before = await userCount();
    const tokens: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => exchange({ scope: 'read_repository' })),
      );
      for (const a of answers) {
        assert.equal(a.status, 200, a.text);
        assert.match(a.json.gitlab_username, /^gitlab\+deploy-token-\d+$/);
        tokens.push(a.json.access_token);
      }
    }
    assert.equal(new Set(tokens).size, 100);
    assert.equal(await userCount(), before, 'no user for a deploy token');
    const access = await exchange({ policy: 'image-build' });
    assert.equal(access.status, 200, access.text);
    assert.equal(access.json.gitlab_username, 'oauth2');
    assert.equal(await userCount(), before + 1, 'a bot user for an access token');
    await Promise.all(
      [...tokens, access.json.access_token].map((token) => postForm(`${s.sts.url}/revoke`, { token })),
    );
    assert.equal((await deployTokens()).filter((t) => t.active).length, 0);
  });

  it('no token in any client output but the promised stdout, nor in the audit', () => {
    assertNoSecrets(outputs, 'client stderr');
    assertNoSecrets(
      s.audit.events.map((e) => JSON.stringify(e)),
      'audit',
    );
  });
});
