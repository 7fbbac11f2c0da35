/**
 * End to end: `tanuki-sts token` against the dev stack (Entra ID emulator,
 * GitLab emulator, STS), run as a pipeline would run it. Every Azure auth
 * mode that can run on a laptop, every output format, and the documented
 * exit codes for the failures a pipeline engineer meets.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  activeCount,
  baseEnv,
  closedPort,
  emulatorIdToken,
  gitlabTokens,
  leaks,
  run,
  type Stack,
  startStack,
} from '../helpers/client-dev-stack.ts';

const CI_SUB = 'project_path:platform/internal-lib:ref_type:branch:ref:main';

describe('tanuki-sts token (e2e)', { concurrency: 1 }, () => {
  let stack: Stack;
  let secretEnv: Record<string, string>;
  let idToken: string;

  before(async () => {
    stack = await startStack();
    secretEnv = baseEnv(stack, {
      AZURE_CLIENT_SECRET: stack.dev.entra.clientSecret,
      TANUKI_RESOURCE: stack.dev.gitlab.project,
    });
    idToken = await emulatorIdToken(stack, { sub: CI_SUB });
  });
  after(async () => {
    await stack?.stop();
  });

  it('auto picks the client secret, says so in one line, prints only the token', async () => {
    const r = await run(['token'], { env: secretEnv, tokenOnStdout: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\S+\n$/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /Azure sign-in \(auto\): using client secret/);
    const tokens = await gitlabTokens(stack);
    assert.ok(activeCount(tokens) >= 1);
  });

  it('json is the STS response as received; env, netrc and git-credentials carry the token', async () => {
    const json = await run(['token', '--format', 'json', '--scope', 'read_repository'], {
      env: secretEnv,
      tokenOnStdout: true,
    });
    assert.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
    assert.equal(body.scope, 'read_repository');
    assert.ok(body.expires_in > 0);

    const host = new URL(stack.dev.gitlab.url);
    for (const [format, pattern] of [
      ['env', /^GITLAB_TOKEN='[A-Za-z0-9_.-]+'\nGITLAB_USERNAME='oauth2'\n$/],
      ['netrc', new RegExp(`^machine ${host.hostname} login oauth2 password \\S+\\n$`)],
      ['git-credentials', new RegExp(`^http://oauth2:\\S+@${host.host}\\n$`)],
    ] as const) {
      const r = await run(['token', '--format', format, '--ttl', '5m'], {
        env: secretEnv,
        tokenOnStdout: true,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, pattern);
    }
  });

  it('docker-config refuses a grant without read_registry: exit 4, nothing on stdout, token revoked', async () => {
    const before = activeCount(await gitlabTokens(stack));
    const r = await run(['token', '--format', 'docker-config', '--registry', 'registry.example.com'], {
      env: secretEnv,
    });
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /read_registry/);
    assert.equal(activeCount(await gitlabTokens(stack)), before);
  });

  it('token --format X | revoke: the GitLab token is revoked for every format; notatoken is refused (exit 2)', async () => {
    for (const format of ['raw', 'env', 'netrc', 'git-credentials', 'json']) {
      const before = activeCount(await gitlabTokens(stack));
      const t = await run(['token', '--format', format], { env: secretEnv, tokenOnStdout: true });
      assert.equal(t.code, 0, t.stderr);
      assert.equal(activeCount(await gitlabTokens(stack)), before + 1, format);
      const r = await run(['revoke'], { env: secretEnv, input: t.stdout });
      assert.equal(r.code, 0, `${format}: ${r.stderr}`);
      assert.equal(activeCount(await gitlabTokens(stack)), before, `${format}: revoked at GitLab`);
    }
    const bad = await run(['revoke'], { env: secretEnv, input: 'notatoken\n' });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /revoke needs one GitLab token/);
  });

  it('certificate mode', async () => {
    assert.ok(stack.dev.entra.certificatePath, 'dev.json has entra.certificatePath');
    const env = baseEnv(stack, {
      AZURE_CLIENT_CERTIFICATE_PATH: stack.dev.entra.certificatePath,
      TANUKI_RESOURCE: stack.dev.gitlab.project,
    });
    const r = await run(['token', '--azure-auth', 'certificate'], { env, tokenOnStdout: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\S+\n$/);
  });

  it('workload-identity mode with a federated token file', async () => {
    const file = join(stack.dir, 'federated-token');
    writeFileSync(file, idToken, { mode: 0o600 });
    const env = baseEnv(stack, {
      AZURE_FEDERATED_TOKEN_FILE: file,
      TANUKI_RESOURCE: stack.dev.gitlab.project,
    });
    const r = await run(['token'], { env, tokenOnStdout: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /auto\): using workload identity/);
  });

  it('gitlab-oidc mode: the CI id_token as client assertion', async () => {
    const env = baseEnv(stack, { TANUKI_ID_TOKEN: idToken, TANUKI_RESOURCE: stack.dev.gitlab.project });
    const r = await run(['token', '--azure-auth', 'gitlab-oidc'], { env, tokenOnStdout: true });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });

  it('managed-identity mode through AZURE_POD_IDENTITY_AUTHORITY_HOST', async () => {
    const env = baseEnv(stack, {
      AZURE_POD_IDENTITY_AUTHORITY_HOST: stack.dev.entra.imdsUrl,
      AZURE_CLIENT_ID: undefined,
      AZURE_TENANT_ID: undefined,
      TANUKI_RESOURCE: stack.dev.gitlab.project,
    });
    const args = ['token', '--azure-auth', 'managed-identity'];
    if (stack.dev.entra.managedIdentityClientId)
      args.push('--client-id', stack.dev.entra.managedIdentityClientId);
    const r = await run(args, { env, tokenOnStdout: true });
    assert.equal(r.code, 0, r.stderr);
  });

  it('direct OIDC: a token the STS trusts itself, no Azure', async () => {
    const direct = await emulatorIdToken(stack, { sub: CI_SUB, aud: stack.dev.sts.url });
    const env = baseEnv(stack, { CI_JWT: direct, TANUKI_RESOURCE: stack.dev.gitlab.project });
    const r = await run(['token', '--subject-token-var', 'CI_JWT'], { env, tokenOnStdout: true });
    assert.equal(r.code, 0, r.stderr);
  });

  it('a wrong client secret: exit 3 with the AADSTS code and advice, no secret shown', async () => {
    const env = { ...secretEnv, AZURE_CLIENT_SECRET: 'not-the-right-secret-value' };
    const r = await run(['token'], { env });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /AADSTS7000215/);
    assert.match(r.stderr, /Value, not its Secret ID/);
    assert.doesNotMatch(r.stderr, /not-the-right-secret-value/);
    assert.equal(r.stdout, '');
  });

  it('an STS denial (no policy for this subject): exit 4', async () => {
    const other = await emulatorIdToken(stack, {
      sub: 'project_path:evil/fork:ref_type:branch:ref:main',
      aud: stack.dev.sts.url,
    });
    const env = baseEnv(stack, { CI_JWT: other, TANUKI_RESOURCE: stack.dev.gitlab.project });
    const r = await run(['token', '--subject-token-var', 'CI_JWT'], { env });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /the STS refused the exchange: invalid_request/);
    assert.match(r.stderr, /policy/);
  });

  it('an unknown resource: exit 4 invalid_target naming the resource', async () => {
    const r = await run(['token', '--resource', 'platform/does-not-exist'], { env: secretEnv });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /invalid_target/);
    assert.match(r.stderr, /platform\/does-not-exist/);
  });

  it('an unreachable STS: exit 5 naming the cause', async () => {
    const env = { ...secretEnv, TANUKI_STS_URL: `http://127.0.0.1:${await closedPort()}` };
    const r = await run(['token'], { env });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /ECONNREFUSED/);
  });

  it('usage errors: exit 2', async () => {
    const r = await run(['token'], { env: { ...secretEnv, TANUKI_STS_URL: '' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /TANUKI_STS_URL/);
  });

  it('no output of any run shows a token or secret outside the requested stdout', () => {
    assert.deepEqual(leaks([stack.dev.entra.clientSecret, idToken, stack.dev.gitlab.adminToken]), []);
  });
});
