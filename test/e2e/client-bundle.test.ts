/**
 * End to end, the way issue 13's "Done when" reads: against `tanuki-sts dev`
 * (run from this checkout without a build, so the STS builds the client in
 * memory at start-up), download /client/tanuki-sts.mjs into an empty folder,
 * check its SHA-256 against the metadata, run it with plain node, use the
 * token it prints at the GitLab emulator, and revoke it with the same file.
 * Then every Azure sign-in mode, `exec` and `git-credential` through the
 * bundle: nothing @azure/identity loads lazily may be missing from it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { azureToken } from '../helpers/azure.ts';
import {
  activeCount,
  baseEnv,
  emulatorIdToken,
  gitlabTokens,
  leaks,
  type RunOptions,
  run,
  type Stack,
  startStack,
} from '../helpers/client-dev-stack.ts';
import { gitClone } from '../helpers/git.ts';

const CI_SUB = 'project_path:platform/internal-lib:ref_type:branch:ref:main';
const FILE = 'tanuki-sts.mjs';

describe('the client the STS serves (e2e)', { concurrency: 1 }, () => {
  let stack: Stack;
  let sts: string;
  let empty: string;
  let idToken: string;

  /** `node tanuki-sts.mjs …` in the empty folder, with the `node` on PATH (as a job runs it). */
  const client = (args: string[], opts: RunOptions) => run([FILE, ...args], { cwd: empty, ...opts }, 'node');
  /** The environment of a job, without TANUKI_STS_URL: the STS is given with --sts, as in the issue. */
  const env = (extra: Record<string, string | undefined> = {}) =>
    baseEnv(stack, { TANUKI_STS_URL: undefined, ...extra });
  const gitlabStatus = async (token: string) =>
    (
      await fetch(`${stack.dev.gitlab.url}/api/v4/personal_access_tokens/self`, {
        headers: { 'PRIVATE-TOKEN': token },
      })
    ).status;

  /** Runs `token` with these settings; the printed token works at GitLab, then `revoke` kills it. */
  async function tokenWorksThenRevoke(args: string[], extra: Record<string, string | undefined>) {
    const r = await client(['token', '--sts', sts, '--resource', stack.dev.gitlab.project, ...args], {
      env: env(extra),
      tokenOnStdout: true,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\S+\n$/);
    const token = r.stdout.trim();
    assert.equal(await gitlabStatus(token), 200, 'the printed token works at GitLab');
    const revoked = await client(['revoke', '--sts', sts], { env: env(), input: token });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout, '');
    assert.equal(await gitlabStatus(token), 401, 'revoked at GitLab');
    return r;
  }

  before(async () => {
    stack = await startStack();
    sts = stack.dev.sts.url;
    empty = mkdtempSync(join(tmpdir(), 'tanuki-empty-job-'));
    idToken = await emulatorIdToken(stack, { sub: CI_SUB });
  });
  after(async () => {
    await stack?.stop();
    if (empty) rmSync(empty, { recursive: true, force: true });
  });

  it('the metadata names the client and its digest; the download (fetch) has exactly that SHA-256', async () => {
    const meta = (await (await fetch(`${sts}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      string
    >;
    assert.equal(meta.client_uri, `${sts}/client/tanuki-sts.mjs`);
    assert.match(meta.client_sha256 ?? '', /^[0-9a-f]{64}$/);

    const res = await fetch(meta.client_uri ?? '');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
    const bytes = Buffer.from(await res.arrayBuffer());
    const sha = createHash('sha256').update(bytes).digest('hex');
    assert.equal(sha, meta.client_sha256);
    assert.equal(res.headers.get('etag'), `"${sha}"`);
    writeFileSync(join(empty, FILE), bytes);
    assert.deepEqual(readdirSync(empty), [FILE], 'the folder holds the client alone');

    const again = await fetch(meta.client_uri ?? '', { headers: { 'if-none-match': `"${sha}"` } });
    assert.equal(again.status, 304);
  });

  it('Done when: `node tanuki-sts.mjs token --sts "$STS" --resource group/project` prints a working token (clone), revoked after', async () => {
    const r = await client(['token', '--sts', sts, '--resource', stack.dev.gitlab.project], {
      env: env({ AZURE_CLIENT_SECRET: stack.dev.entra.clientSecret }),
      tokenOnStdout: true,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\S+\n$/);
    const token = r.stdout.trim();
    assert.equal(await gitlabStatus(token), 200);
    const clone = await gitClone(`${stack.dev.gitlab.url}/${stack.dev.gitlab.project}.git`, token);
    assert.ok(clone.ok, clone.stderr);

    const revoked = await client(['revoke', '--sts', sts], { env: env(), input: token });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(await gitlabStatus(token), 401);
    assert.equal(
      (await gitClone(`${stack.dev.gitlab.url}/${stack.dev.gitlab.project}.git`, token)).ok,
      false,
    );
  });

  describe('every Azure sign-in mode, bundled', () => {
    it('certificate', async () => {
      assert.ok(stack.dev.entra.certificatePath);
      await tokenWorksThenRevoke(['--azure-auth', 'certificate'], {
        AZURE_CLIENT_CERTIFICATE_PATH: stack.dev.entra.certificatePath,
      });
    });

    it('workload identity (federated token file)', async () => {
      const file = join(stack.dir, 'federated-token');
      writeFileSync(file, idToken, { mode: 0o600 });
      const r = await tokenWorksThenRevoke([], { AZURE_FEDERATED_TOKEN_FILE: file });
      assert.match(r.stderr, /auto\): using workload identity/);
    });

    it('gitlab-oidc (the CI id_token as client assertion)', async () => {
      await tokenWorksThenRevoke(['--azure-auth', 'gitlab-oidc'], { TANUKI_ID_TOKEN: idToken });
    });

    it('managed identity', async () => {
      const args = ['--azure-auth', 'managed-identity'];
      if (stack.dev.entra.managedIdentityClientId)
        args.push('--client-id', stack.dev.entra.managedIdentityClientId);
      await tokenWorksThenRevoke(args, {
        AZURE_POD_IDENTITY_AUTHORITY_HOST: stack.dev.entra.imdsUrl,
        AZURE_CLIENT_ID: undefined,
        AZURE_TENANT_ID: undefined,
      });
    });

    it('azure-pipelines (a stand-in for Azure DevOps’ OIDC endpoint, https with the emulator’s certificate)', async () => {
      const requests: string[] = [];
      const entraState = join(stack.dir, 'state', 'entra');
      const devops: Server = createServer(
        {
          cert: readFileSync(join(entraState, 'server-cert.pem')),
          key: readFileSync(join(entraState, 'server-key.pem')),
        },
        (req, res) => {
          requests.push(
            `${req.method} ${req.url} ${req.headers.authorization === 'Bearer system-access-token-value' ? 'auth ok' : 'auth wrong'}`,
          );
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ oidcToken: idToken }));
        },
      );
      await new Promise<void>((r) => devops.listen(0, '127.0.0.1', r));
      const port = (devops.address() as { port: number }).port;
      try {
        const r = await tokenWorksThenRevoke([], {
          SYSTEM_OIDCREQUESTURI: `https://localhost:${port}/oidc`,
          SYSTEM_ACCESSTOKEN: 'system-access-token-value',
          AZURESUBSCRIPTION_SERVICE_CONNECTION_ID: '11111111-2222-4333-8444-555555555555',
        });
        assert.match(r.stderr, /auto\): using Azure Pipelines service connection/);
        assert.ok(requests.length >= 1);
        for (const q of requests)
          assert.equal(
            q,
            'POST /oidc?api-version=7.1&serviceConnectionId=11111111-2222-4333-8444-555555555555 auth ok',
          );
      } finally {
        await new Promise((r) => devops.close(r));
      }
    });

    it('azure-cli (a stand-in `az` on PATH printing an emulator access token)', async () => {
      const token = await azureToken({
        caFile: stack.dev.caFile,
        authorityHost: stack.dev.entra.authorityHost,
        tenantId: stack.dev.entra.tenantId,
        clientId: stack.dev.entra.clientId,
        clientSecret: stack.dev.entra.clientSecret,
        scope: stack.dev.entra.scope,
      });
      const bin = join(stack.dir, 'az-bin');
      mkdirSync(bin);
      const answer = join(bin, 'answer.json');
      writeFileSync(
        answer,
        JSON.stringify({
          accessToken: token,
          expires_on: Math.floor(Date.now() / 1000) + 3600,
          tokenType: 'Bearer',
        }),
        { mode: 0o600 },
      );
      writeFileSync(join(bin, 'az'), `#!/bin/sh\necho "$@" >> '${bin}/args'\ncat '${answer}'\n`);
      chmodSync(join(bin, 'az'), 0o700);
      await tokenWorksThenRevoke(['--azure-auth', 'azure-cli'], {
        PATH: `${bin}:${process.env.PATH}`,
        AZURE_CLIENT_ID: undefined,
      });
      assert.match(
        readFileSync(join(bin, 'args'), 'utf8'),
        /^account get-access-token --output json --resource api:\/\//,
      );
    });

    it('direct OIDC (no Azure)', async () => {
      const direct = await emulatorIdToken(stack, { sub: CI_SUB, aud: sts });
      await tokenWorksThenRevoke(['--subject-token-var', 'CI_JWT'], { CI_JWT: direct });
    });
  });

  it('exec: the command gets a working GITLAB_TOKEN, revoked when it ends', async () => {
    const before = activeCount(await gitlabTokens(stack));
    const check = `fetch(process.env.GL + '/api/v4/personal_access_tokens/self', { headers: { 'PRIVATE-TOKEN': process.env.GITLAB_TOKEN } }).then((r) => process.exit(r.status === 200 ? 7 : 1))`;
    const r = await client(
      ['exec', '--sts', sts, '--resource', stack.dev.gitlab.project, '--', 'node', '-e', check],
      {
        env: env({ AZURE_CLIENT_SECRET: stack.dev.entra.clientSecret, GL: stack.dev.gitlab.url }),
      },
    );
    assert.equal(r.code, 7, r.stderr);
    assert.equal(activeCount(await gitlabTokens(stack)), before, 'revoked after the command');
  });

  it('git-credential get answers git; revoke-all leaves nothing active', async () => {
    const before = activeCount(await gitlabTokens(stack));
    const host = new URL(stack.dev.gitlab.url).host;
    const e = env({ AZURE_CLIENT_SECRET: stack.dev.entra.clientSecret, CI_JOB_ID: '4711' });
    const r = await client(['git-credential', '--sts', sts, 'get'], {
      env: e,
      input: `protocol=http\nhost=${host}\npath=${stack.dev.gitlab.project}.git\n\n`,
      tokenOnStdout: true,
    });
    assert.equal(r.code, 0, r.stderr);
    const password = /^password=(\S+)$/m.exec(r.stdout)?.[1] ?? '';
    assert.equal(await gitlabStatus(password), 200);
    const all = await client(['git-credential', '--sts', sts, 'revoke-all'], { env: e });
    assert.equal(all.code, 0, all.stderr);
    assert.equal(await gitlabStatus(password), 401);
    assert.equal(activeCount(await gitlabTokens(stack)), before);
  });

  it('no output of any run shows a token or secret outside the requested stdout', () => {
    assert.deepEqual(leaks([stack.dev.entra.clientSecret, idToken, stack.dev.gitlab.adminToken]), []);
  });
});
