/**
 * Attacks on deploy-token grants (`grant.via: deploy-token`), rows 150–155 of docs/security.md,
 * against the real STS and the GitLab emulator (which follows GitLab's `deploy_token_check`,
 * `DeployToken.active` and the API guard: test/integration/gitlab-emulator-deploy-tokens.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXCHANGE, PROJECT, pipelineToken, postForm, type Stack, startStack } from '../helpers/stack.ts';
import { assertAuditClean, auditOf, gitlabApiCalls } from './helpers/attack.ts';

const PROJECT_ID = 1000; // platform/internal-lib in the emulator's dev seed
const OTHER = 'platform/other-service';

describe('deploy-token grants: attacks', { concurrency: 1 }, () => {
  let s: Stack;
  let subject: string;

  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        // The pipeline app's only policy (the access-token one it replaces would grant read_api).
        raw.policies[0] = {
          name: 'pull',
          issuer: 'contoso',
          match: { ...raw.policies[0].match },
          grant: {
            via: 'deploy-token',
            projects: [PROJECT],
            scopes: ['read_repository', 'read_registry'],
            ttl: { default: '15m', max: '1h' },
          },
        };
      },
    });
    subject = await pipelineToken(s);
  });
  after(async () => {
    await fetch(`${s.gitlab.url}/_emulator/clock`, { method: 'POST', body: '{"offsetSeconds":0}' }).catch(
      () => {},
    );
    await s?.close();
  });

  const exchange = (form: Record<string, string> = {}) =>
    postForm(`${s.sts.url}/token`, { ...EXCHANGE, subject_token: subject, audience: PROJECT, ...form });
  const minted = async () => {
    const res = await exchange();
    assert.equal(res.status, 200, res.text);
    return { token: res.json.access_token as string, username: res.json.gitlab_username as string };
  };
  const basic = (username: string, token: string) => ({
    authorization: `Basic ${Buffer.from(`${username}:${token}`).toString('base64')}`,
  });
  const git = async (project: string, headers: Record<string, string>, service = 'git-upload-pack') =>
    (await fetch(`${s.gitlab.url}/${project}.git/info/refs?service=${service}`, { headers })).status;
  const api = async (method: string, path: string, token: string, json?: unknown) => {
    const res = await fetch(`${s.gitlab.url}/api/v4${path}`, {
      method,
      headers: { 'private-token': token, ...(json ? { 'content-type': 'application/json' } : {}) },
      body: json ? JSON.stringify(json) : undefined,
    });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as unknown };
  };

  it('150: a deploy-token grant asked for an API scope: invalid_scope, nothing minted, no GitLab call', async () => {
    const before = await gitlabApiCalls(s);
    for (const scope of [
      'api',
      'read_api',
      'write_repository',
      'read_repository api',
      'create_runner',
      'self_rotate',
    ]) {
      const res = await exchange({ scope });
      assert.equal(res.status, 400, scope);
      assert.deepEqual(
        [res.json.error, res.json.error_description],
        ['invalid_scope', 'scope not granted'],
        scope,
      );
      const reason =
        auditOf(s, res.json.request_id ?? res.headers.get('x-request-id') ?? undefined)?.reason ?? '';
      assert.match(reason, /scopes not granted for a project deploy token/, scope);
    }
    // Naming the policy does not change it.
    const named = await exchange({ scope: 'read_api', policy: 'pull' });
    assert.equal(named.json.error, 'invalid_scope');
    assert.equal(await gitlabApiCalls(s), before, 'GitLab never called');
    const deploy = (await (await fetch(`${s.gitlab.url}/_emulator/deploy_tokens`)).json()) as unknown[];
    assert.equal(deploy.length, 0);
  });

  it('151: the deploy token against the GitLab API (read, mint more, rotate): 401 everywhere', async () => {
    const { token } = await minted();
    const attempts: Array<[string, string, unknown?]> = [
      ['GET', '/user'],
      ['GET', `/projects/${PROJECT_ID}`],
      ['GET', `/projects/${PROJECT_ID}/repository/files/README.md/raw?ref=HEAD`],
      ['POST', `/projects/${PROJECT_ID}/access_tokens`, { name: 'x', scopes: ['api'], access_level: 40 }],
      ['POST', `/projects/${PROJECT_ID}/deploy_tokens`, { name: 'x', scopes: ['read_repository'] }],
      ['GET', `/projects/${PROJECT_ID}/deploy_tokens`],
      ['POST', '/personal_access_tokens/self/rotate'],
    ];
    for (const [method, path, json] of attempts) {
      const r = await api(method, path, token, json);
      assert.equal(r.status, 401, `${method} ${path}`);
      assert.deepEqual(r.body, { message: '401 Unauthorized' }, `${method} ${path}`);
    }
    await postForm(`${s.sts.url}/revoke`, { token });
  });

  it('152: the deploy token with another username (oauth2, another deploy token’s, a user’s, other case): 401', async () => {
    const mine = await minted();
    const other = await minted();
    assert.notEqual(mine.username, other.username);
    assert.equal(await git(PROJECT, basic(mine.username, mine.token)), 200, 'its own username works');
    for (const username of [
      'oauth2',
      other.username,
      'root',
      'alice',
      mine.username.toUpperCase(),
      `${mine.username} `,
    ]) {
      assert.equal(await git(PROJECT, basic(username, mine.token)), 401, username);
    }
    for (const t of [mine, other]) await postForm(`${s.sts.url}/revoke`, { token: t.token });
  });

  it('153: the deploy token on another project, or pushing: refused', async () => {
    const { token, username } = await minted();
    assert.equal(await git(OTHER, basic(username, token)), 401, 'another project: no credential found');
    assert.equal(
      await git(PROJECT, basic(username, token), 'git-receive-pack'),
      403,
      'no deploy-token scope pushes',
    );
    await postForm(`${s.sts.url}/revoke`, { token });
  });

  it('155: with the STS down past the TTL, GitLab itself ends the deploy token a minute after it (to the second)', async () => {
    const res = await exchange({ expires_in: '60' });
    assert.equal(res.status, 200, res.text);
    const { access_token: token, gitlab_username: username } = res.json;
    // No reaper runs; GitLab's clock moves past the TTL plus the 60 s margin.
    assert.equal(await git(PROJECT, basic(username, token)), 200);
    await fetch(`${s.gitlab.url}/_emulator/clock`, {
      method: 'POST',
      body: JSON.stringify({ offsetSeconds: 115 }),
    });
    assert.equal(await git(PROJECT, basic(username, token)), 200, 'still within TTL + margin');
    await fetch(`${s.gitlab.url}/_emulator/clock`, {
      method: 'POST',
      body: JSON.stringify({ offsetSeconds: 125 }),
    });
    assert.equal(await git(PROJECT, basic(username, token)), 401, 'dead at its expires_at');
    await fetch(`${s.gitlab.url}/_emulator/clock`, { method: 'POST', body: '{"offsetSeconds":0}' });
    await postForm(`${s.sts.url}/revoke`, { token });
  });

  it('no token in the audit stream', () => {
    assertAuditClean(s);
  });
});
