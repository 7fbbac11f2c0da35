/**
 * The two requests of the question this project answers, sent with curl as
 * they are written there, against `tanuki-sts dev` (what `npm start` runs),
 * with only the host names and the values changed to those of dev.json:
 *
 *   curl -X POST https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token -d client_id=… \
 *     -d client_secret=… -d grant_type=client_credentials -d scope=api://<app>/.default
 *   curl -X POST https://gitlab.example.com/oauth/token \
 *     -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d subject_token=<entra token> \
 *     -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \
 *     -d client_id=<gitlab app id> -d client_secret=<gitlab app secret>
 *
 * The second returns a GitLab token that clones the dev project. (Here, as in
 * the question, the values are on curl's command line: these are the dev
 * stack's throwaway secrets. The walkthrough `npm start` prints sends the same
 * requests with the secrets on stdin or a pipe instead.) The emulator's CA
 * reaches curl through CURL_CA_BUNDLE, so the command line stays as written.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { type Stack, startStack } from '../helpers/client-dev-stack.ts';
import { gitClone } from '../helpers/git.ts';

function curl(args: string[], caFile: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', ...args],
      { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, CURL_CA_BUNDLE: caFile } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the request people already write (e2e, curl against tanuki-sts dev)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack?.stop());

  it('client credentials at Entra ID, then the token exchange at /oauth/token: a token that clones the project', async () => {
    const { entra, sts, gitlab, caFile } = stack.dev;
    assert.ok(sts.clientId && sts.clientSecret, 'dev.json has sts.clientId and sts.clientSecret');

    const first = await curl(
      [
        '-X',
        'POST',
        `${entra.authorityHost}/${entra.tenantId}/oauth2/v2.0/token`,
        '-d',
        `client_id=${entra.clientId}`,
        '-d',
        `client_secret=${entra.clientSecret}`,
        '-d',
        'grant_type=client_credentials',
        '-d',
        `scope=${entra.scope}`,
      ],
      caFile,
    );
    assert.equal(first.code, 0, first.stderr);
    assert.match(entra.scope, /^api:\/\/[0-9a-f-]{36}\/\.default$/, 'scope=api://<app>/.default');
    const entraToken = (JSON.parse(first.stdout) as { access_token?: string }).access_token;
    assert.ok(entraToken, first.stdout.slice(0, 200));

    const second = await curl(
      [
        '-X',
        'POST',
        `${sts.url}/oauth/token`,
        '-d',
        'grant_type=urn:ietf:params:oauth:grant-type:token-exchange',
        '-d',
        `subject_token=${entraToken}`,
        '-d',
        'subject_token_type=urn:ietf:params:oauth:token-type:access_token',
        '-d',
        `client_id=${sts.clientId}`,
        '-d',
        `client_secret=${sts.clientSecret}`,
      ],
      caFile,
    );
    assert.equal(second.code, 0, second.stderr);
    const answer = JSON.parse(second.stdout) as Record<string, unknown>;
    assert.equal(answer.token_type, 'Bearer', second.stdout.slice(0, 300));
    assert.equal(answer.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
    const token = String(answer.access_token);
    assert.match(token, /^glpat-/);

    const clone = await gitClone(`${gitlab.url}/${gitlab.project}.git`, token);
    assert.ok(clone.ok, clone.stderr);

    // A wrong client secret is 401 invalid_client with the Basic challenge, and no token.
    const wrong = await curl(
      [
        '-i',
        '-X',
        'POST',
        `${sts.url}/oauth/token`,
        '-d',
        'grant_type=urn:ietf:params:oauth:grant-type:token-exchange',
        '-d',
        `subject_token=${entraToken}`,
        '-d',
        'subject_token_type=urn:ietf:params:oauth:token-type:access_token',
        '-d',
        `client_id=${sts.clientId}`,
        '-d',
        'client_secret=not-the-secret',
      ],
      caFile,
    );
    assert.match(wrong.stdout, /^HTTP\/1\.1 401 /);
    assert.match(wrong.stdout, /^www-authenticate: Basic realm="tanuki-sts"\r$/im);
    assert.match(wrong.stdout, /"error":"invalid_client"/);
    assert.ok(!wrong.stdout.includes(sts.clientSecret));

    // The pipeline cleans up: revoked at the STS, the token no longer clones.
    const revoked = await fetch(`${sts.url}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    assert.equal(revoked.status, 200);
    assert.equal((await gitClone(`${gitlab.url}/${gitlab.project}.git`, token)).ok, false);
  });
});
