/**
 * The errors that now say more leak nothing more (docs/security.md rows
 * 105–109):
 *
 * - `invalid_scope` tells a scope GitLab does not know from one no policy
 *   grants. The first depends on GitLab's public scope list only, is answered
 *   before the subject token is looked at, and echoes nothing but a
 *   `[a-z0-9_]{1,40}` name; the second is one fixed text whatever the policy.
 * - A lifetime under the minimum TTL (60 s) is refused before any GitLab call;
 *   a policy granting less does not load.
 * - Configuration errors name keys and what was expected, never the value
 *   given (it may be a secret pasted into the wrong key); `check-config
 *   --no-secrets` and `policy test` do not open secret files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GITLAB_SCOPES, RESOURCE_SCOPES } from '../../src/util/gitlab-scopes.ts';
import { runCli } from '../helpers/run-cli.ts';
import { postForm, type Stack, startStack } from '../helpers/stack.ts';
import {
  assertAuditClean,
  closeEntraAgent,
  exchange,
  GENERIC,
  gitlabApiCalls,
  jwksFetches,
  mintEntra,
  type Response,
  watchOutbound,
} from './helpers/attack.ts';

const MALFORMED = 'scope must be GitLab scope names separated by spaces, each once';
const NOT_GRANTED = 'scope not granted';
const GLPAT = 'glpat-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789.01.a1b2c3d4e';

describe('invalid_scope and expires_in: refusals that say more, and leak nothing more', () => {
  let s: Stack;
  let subject: string;
  before(async () => {
    s = await startStack();
    subject = await mintEntra(s);
  });
  after(async () => {
    assertAuditClean(s, [subject, GLPAT]);
    await closeEntraAgent(s);
    await s.close();
  });

  /** The answer, with what the STS did for it: GitLab calls, JWKS fetches, outbound requests. */
  async function attempt(token: string, extra: Record<string, string>) {
    const gitlab = await gitlabApiCalls(s);
    const jwks = jwksFetches(s);
    const watch = watchOutbound();
    let res: Response;
    try {
      res = await exchange(s, token, extra);
    } finally {
      watch.stop();
    }
    const sts = `:${new URL(s.sts.url).port}`;
    return {
      res,
      gitlabCalls: (await gitlabApiCalls(s)) - gitlab,
      jwksFetches: jwksFetches(s) - jwks,
      outbound: watch.requests.filter((r) => !r.includes(sts)),
    };
  }

  it('105: a scope parameter is echoed only as a [a-z0-9_] name: tokens, markup and controls get the fixed text', async () => {
    const reflected = [
      GLPAT,
      subject,
      '<script>alert(1)</script>',
      'read_api\u0000',
      'read_api\u202e',
      'READ_API',
      'réad_api',
      `read_api ${'a'.repeat(41)}`,
      'read_api%0aSet-Cookie:x',
    ];
    for (const scope of reflected) {
      const { res, gitlabCalls, jwksFetches, outbound } = await attempt('not-a-token', { scope });
      assert.equal(res.status, 400, res.text);
      assert.deepEqual([res.json.error, res.json.error_description], ['invalid_scope', MALFORMED], scope);
      assert.ok(!res.text.includes(scope), `the answer echoes ${JSON.stringify(scope)}`);
      assert.deepEqual([gitlabCalls, jwksFetches, outbound], [0, 0, []], scope);
    }
    // A well-formed name GitLab does not know is named (with the nearest known one): nothing else.
    const typo = await attempt('not-a-token', { scope: 'read_api write_repositry' });
    assert.equal(
      typo.res.json.error_description,
      'unknown scope: write_repositry (did you mean write_repository?)',
    );
    assert.deepEqual([typo.gitlabCalls, typo.jwksFetches, typo.outbound], [0, 0, []]);
  });

  it('106: "unknown" depends on GitLab\'s public scope list only; "not granted" is one text whatever the policy', async () => {
    // An unknown scope: the same answer for a garbage token and for a caller a policy accepts.
    for (const scope of ['read_repositry', 'admin', 'write_everything']) {
      const garbage = await attempt('not-a-token', { scope });
      const valid = await attempt(subject, { scope });
      assert.equal(garbage.res.json.error_description, valid.res.json.error_description, scope);
      assert.match(valid.res.json.error_description, new RegExp(`^unknown scope: ${scope}( |$)`));
      assert.equal(valid.gitlabCalls, 0);
    }
    // Every scope GitLab knows: a caller no policy accepts learns nothing (the generic
    // invalid_request), and an accepted caller gets "scope not granted" for each one its policy
    // (read_repository read_api) does not grant, the same text for all of them.
    const granted = new Set(['read_repository', 'read_api']);
    for (const scope of GITLAB_SCOPES) {
      const garbage = await attempt('not-a-token', { scope });
      assert.deepEqual(
        [garbage.res.json.error, garbage.res.json.error_description],
        ['invalid_request', GENERIC],
      );
      if (granted.has(scope)) continue;
      const valid = await attempt(subject, { scope });
      assert.deepEqual(
        [valid.res.status, valid.res.json.error, valid.res.json.error_description],
        [400, 'invalid_scope', NOT_GRANTED],
        scope,
      );
      assert.ok(!valid.res.text.includes(scope), `the answer names ${scope}`);
      for (const other of RESOURCE_SCOPES) assert.ok(!valid.res.text.includes(other), `it names ${other}`);
      assert.equal(valid.gitlabCalls, 0, scope);
    }
  });

  it('107: an expires_in below the minimum TTL is refused, nothing minted; 60 s is granted', async () => {
    for (const expires of ['1', '30', '59']) {
      const { res, gitlabCalls } = await attempt(subject, { expires_in: expires });
      assert.deepEqual(
        [res.status, res.json.error, res.json.error_description],
        [400, 'invalid_request', 'expires_in must be at least 60 seconds (the minimum TTL)'],
      );
      assert.equal(gitlabCalls, 0, expires);
    }
    const minute = await attempt(subject, { expires_in: '60' });
    assert.equal(minute.res.status, 200, minute.res.text);
    assert.equal(minute.res.json.expires_in, 60);
    const revoked = await postForm(`${s.sts.url}/revoke`, { token: minute.res.json.access_token });
    assert.equal(revoked.status, 200);
  });
});

describe('configuration errors and --no-secrets', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-error-detail-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { PATH: process.env.PATH, TANUKI_TEST: '1', TANUKI_RUN_FROM: 'src' };
  const POLICY = (ttl = '{ default: 15m, max: 1h }') => `policies:
  - name: p
    issuer: ci
    match: { project_id: "42" }
    grant: { projects: [platform/app], scopes: [read_repository], role: reporter, ttl: ${ttl} }
`;

  it('107: a policy whose ttl.default or ttl.max is below 60 s does not load', async () => {
    for (const ttl of ['{ default: 30s, max: 1h }', '{ default: 1m, max: 59s }']) {
      const file = join(dir, 'short-ttl.yaml');
      writeFileSync(
        file,
        `server: { publicUrl: https://sts.example.com }
gitlab: { url: https://gitlab.example.com, token: glpat-placeholder }
issuers: { ci: { oidc: { issuer: https://gitlab.example.com }, audiences: [x] } }
${POLICY(ttl)}`,
      );
      const r = await runCli(['check-config', '--config', file], env);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /policy "p": ttl\.(default|max) is (30|59)s: below the minimum TTL of 60s/);
    }
  });

  it('108: a secret pasted into the wrong key is never printed, whatever the key', async () => {
    const file = join(dir, 'misplaced.yaml');
    writeFileSync(
      file,
      `server:
  publicUrl: "${GLPAT}"
  id: "${GLPAT}"
  listen: "${GLPAT}"
  requestTimeout: "${GLPAT}"
  metricsListen: "${GLPAT}"
gitlab: { url: "${GLPAT}", token: { env: "${GLPAT}" }, timeout: "${GLPAT}" }
issuers:
  ci: { oidc: { issuer: "${GLPAT}" }, audiences: "${GLPAT}" }
  contoso: { entra: { tenant: "${GLPAT}" }, audiences: [x] }
policies:
  - name: "${GLPAT}"
    issuer: ci
    match: { project_id: { pattern: 42, contains: "${GLPAT}" } }
    grant: { projects: ["${GLPAT}"], scopes: ["${GLPAT}"], role: "${GLPAT}" }
`,
    );
    const r = await runCli(['check-config', '--config', file], env);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.split('\n').length > 12, r.stderr);
    // Not the token, nor any 12 characters of it.
    for (let i = 0; i + 12 <= GLPAT.length; i++) {
      assert.ok(
        !r.stderr.includes(GLPAT.slice(i, i + 12)),
        `stderr holds ${GLPAT.slice(i, i + 12)}:\n${r.stderr}`,
      );
    }
    assert.match(r.stderr, /- server\.publicUrl: /);
    assert.match(r.stderr, /- policies\[0\]\.grant\.role: expected one of `guest`/);
  });

  it('109: check-config --no-secrets and policy test open no secret file and expand no secret variable', async () => {
    // Opening a FIFO nobody writes to would block: the command finishing proves it was not read.
    const fifo = join(dir, 'token.fifo');
    execFileSync('mkfifo', [fifo]);
    const file = join(dir, 'fifo.yaml');
    writeFileSync(
      file,
      `server: { publicUrl: https://sts.example.com }
gitlab: { url: https://gitlab.example.com, token: { file: ${fifo} } }
issuers: { ci: { oidc: { issuer: https://gitlab.example.com }, audiences: [x] } }
${POLICY()}`,
    );
    const claims = join(dir, 'claims.json');
    writeFileSync(claims, JSON.stringify({ iss: 'https://gitlab.example.com', sub: 's', project_id: '42' }));
    const [check, policyTest] = await Promise.all([
      runCli(['check-config', '--no-secrets', '--config', file], env),
      runCli(['policy', 'test', '--config', file, '--claims', claims, '--audience', 'platform/app'], env),
    ]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /\(secrets not read\)\n$/);
    assert.equal(policyTest.code, 0, policyTest.stderr);
    assert.match(policyTest.stdout, /GRANTED by policy p/);
  });
});
