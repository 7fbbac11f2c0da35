/**
 * `tanuki-sts check-config` run as a separate process: an Entra issuer whose
 * `audiences` hold an App ID URI outside Entra's secure patterns is a warning
 * on stderr, not a failure; the secure default gives no warning.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CliRun, runCli } from '../../../test/helpers/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'check-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = '3f0c7a59-0000-4000-8000-000000000000';

function configWith(audience: string): string {
  const file = join(dir, `${Buffer.from(audience).toString('hex')}.yaml`);
  writeFileSync(
    file,
    `server: { publicUrl: https://sts.example.com }
gitlab:
  url: https://gitlab.example.com
  token: glpat-placeholder
issuers:
  contoso:
    entra: { tenant: ${TENANT} }
    audiences: ["${audience}", ${APP}]
policies:
  - name: image-build
    issuer: contoso
    match: { appid: 11111111-2222-3333-4444-555555555555 }
    grant: { projects: [platform/internal-lib], scopes: [read_repository], role: reporter }
`,
  );
  return file;
}

function checkConfig(file: string): Promise<CliRun> {
  return runCli(['check-config', '--config', file]);
}

describe('tanuki-sts check-config: Application ID URIs', () => {
  it('warns (exit 0) about an api:// audience that matches no secure pattern, naming the rule', async () => {
    const r = await checkConfig(configWith('api://my-sts'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^configuration OK: 1 issuer\(s\), 1 policy/);
    assert.match(
      r.stderr,
      /^warning: issuers\.contoso\.audiences: api:\/\/my-sts matches none of Entra ID's secure/,
    );
    assert.match(r.stderr, /identifierUriRestriction/);
    assert.match(
      r.stderr,
      /learn\.microsoft\.com\/en-us\/entra\/identity-platform\/identifier-uri-restrictions/,
    );
  });

  it(`is silent for Entra's default api://<client ID> and for api://<tenant ID>/<string>`, async () => {
    for (const audience of [`api://${APP}`, `api://${TENANT}/tanuki-sts`]) {
      const r = await checkConfig(configWith(audience));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '', audience);
    }
  });
});

describe('tanuki-sts check-config: every problem, named, in one pass', () => {
  function file(name: string, text: string): string {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, text);
    return path;
  }
  const POLICY = `policies:
  - name: image-build
    issuer: contoso
    match: { appid: 11111111-2222-3333-4444-555555555555, roles: { contain: GitLab.Read } }
    grant: { projects: [platform/internal-lib], scopes: [read_repository], role: reporter }
`;
  const env = { PATH: process.env.PATH, TANUKI_TEST: '1', TANUKI_RUN_FROM: 'src' };

  it('names the typo, the missing key, the union shapes and the unset variable together (exit 1)', async () => {
    const typos = file(
      'typos',
      `server: { publicUrl: https://sts.example.com }
gitlab: { url: https://gitlab.example.com, token: { env: TANUKI_UNSET_TOKEN } }
issuers:
  contoso: { entra: { tennant: ${TENANT} }, audiences: [api://${APP}] }
  ci: { oidc: { issuer: https://gitlab.example.com } }
${POLICY}`,
    );
    const r = await runCli(['check-config', '--config', typos], env);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    for (const line of [
      '  - issuers.contoso.entra.tenant: required (the tenant ID, a GUID)\n',
      '  - issuers.contoso.entra: unknown key `tennant` (did you mean `tenant`?); allowed: `tenant`, `authorityHost`, `allowDelegated`\n',
      '  - issuers.ci.audiences: required (a list of accepted `aud` values, at least one: the App ID URI and/or the client ID)\n',
      '  - policies[0].match.roles: expected a string, a number, `true` or `false`, a list of values (the claim equals one of them), `{ contains: … }` or `{ pattern: … }`; unknown key `contain` (did you mean `contains`?); allowed: `contains`, `pattern`\n',
      '  - gitlab.token: environment variable TANUKI_UNSET_TOKEN is not set\n',
    ]) {
      assert.ok(r.stderr.includes(line), `${line}in:\n${r.stderr}`);
    }
    assert.doesNotMatch(r.stderr, /Invalid input|\n\s+at /);
  });

  it('refuses a file with no issuers or no policies', async () => {
    const empty = file(
      'empty',
      `server: { publicUrl: https://sts.example.com }
gitlab: { url: https://gitlab.example.com, token: glpat-placeholder }
issuers: {}
policies: []
`,
    );
    const r = await runCli(['check-config', '--config', empty], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /- issuers: at least one issuer is required/);
    assert.match(r.stderr, /- policies: at least one policy is required/);
  });

  it('--no-secrets checks the file without reading the GitLab token', async () => {
    const good = file(
      'secret-elsewhere',
      `server: { publicUrl: https://sts.example.com }
gitlab: { url: https://gitlab.example.com, token: { file: /run/secrets/not-here } }
issuers:
  contoso: { entra: { tenant: ${TENANT} }, audiences: [api://${APP}] }
${POLICY.replace('roles: { contain: GitLab.Read } ', '')}`,
    );
    const read = await runCli(['check-config', '--config', good], env);
    assert.equal(read.code, 1);
    assert.match(read.stderr, /- gitlab\.token: cannot read file \/run\/secrets\/not-here\n/);
    const notRead = await runCli(['check-config', '--no-secrets', '--config', good], env);
    assert.equal(notRead.code, 0, notRead.stderr);
    assert.match(
      notRead.stdout,
      /^configuration OK: 1 issuer\(s\), 1 policy, server id [0-9a-f]{10} \(secrets not read\)\n$/,
    );
  });
});
