/**
 * `tanuki-sts policy test` run as a separate process, as an operator runs it:
 * a temporary config (whose GitLab token variable is unset) and claims files.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliRun, runCli } from '../../../test/helpers/run-cli.ts';

const CONFIG = `
server: { publicUrl: https://sts.example.com }
gitlab:
  url: https://gitlab.example.com
  token: { env: TANUKI_TEST_UNSET_GITLAB_TOKEN }
issuers:
  contoso:
    entra: { tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47 }
    audiences: [api://72f988bf-86f1-41af-91ab-2d7cd011db47/tanuki-sts]
  gitlab-ci:
    oidc: { issuer: https://gitlab.example.com }
    audiences: [https://sts.example.com]
policies:
  - name: ci-protected
    issuer: gitlab-ci
    match: { project_id: "42", ref_protected: "true" }
    grant: { groups: [platform], scopes: [read_repository], role: reporter }
  - name: image-build
    issuer: contoso
    match:
      appid: 11111111-2222-3333-4444-555555555555
      roles: { contains: GitLab.Read }
    grant:
      projects: [platform/internal-lib]
      scopes: [read_repository, read_api]
      role: reporter
      ttl: { default: 15m, max: 1h }
`;

const ENTRA_V2 = {
  iss: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
  tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  ver: '2.0',
  azp: '11111111-2222-3333-4444-555555555555',
  oid: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
  sub: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
  roles: ['GitLab.Read'],
};
const GITLAB_CI = {
  iss: 'https://gitlab.example.com',
  project_id: '42',
  ref_protected: true,
  sub: 'project_path:platform/app:ref_type:branch:ref:main',
};

type Run = CliRun;

function cli(args: string[]): Promise<Run> {
  const env = { ...process.env };
  delete env.TANUKI_TEST_UNSET_GITLAB_TOKEN;
  return runCli(['policy', 'test', ...args], env);
}

describe('tanuki-sts policy test (e2e)', { concurrency: true }, () => {
  let dir: string;
  let config: string;
  let entra: string;
  let ci: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-policy-'));
    config = join(dir, 'config.yaml');
    entra = join(dir, 'entra.json');
    ci = join(dir, 'ci.json');
    writeFileSync(config, CONFIG);
    writeFileSync(entra, JSON.stringify(ENTRA_V2));
    writeFileSync(ci, JSON.stringify(GITLAB_CI));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('granted: exit 0, the policy, target, scopes, role and clamped TTL (v2 token, policy on appid)', async () => {
    const r = await cli([
      '--config',
      config,
      '--claims',
      entra,
      '--resource',
      'https://gitlab.example.com/Platform/internal-lib.git',
      '--ttl',
      '2h',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^x ci-protected: caller not accepted$/m);
    assert.match(
      r.stdout,
      /GRANTED by policy image-build: project platform\/internal-lib, scopes read_repository read_api, role reporter \(20\), ttl 3600s/,
    );
  });

  it('--client: a policy with `client` grants only with it; server.deny refuses before any policy', async () => {
    const withClient = join(dir, 'client.yaml');
    writeFileSync(
      withClient,
      CONFIG.replace(
        'policies:',
        'clients:\n  runner: { secret: { env: TANUKI_TEST_UNSET_CLIENT_SECRET } }\npolicies:',
      ).replace('    issuer: contoso\n', '    issuer: contoso\n    client: runner\n'),
    );
    const base = ['--config', withClient, '--claims', entra, '--audience', 'platform/internal-lib'];
    const without = await cli(base);
    assert.equal(without.code, 3, without.stderr);
    assert.match(
      without.stdout,
      /client: policy requires client "runner", the request authenticated as no client/,
    );
    const granted = await cli([...base, '--client', 'runner']);
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, /GRANTED by policy image-build/);
    const unknown = await cli([...base, '--client', 'nobody']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--client nobody is not a configured client/);

    const denied = join(dir, 'deny.yaml');
    writeFileSync(
      denied,
      CONFIG.replace(
        'server: { publicUrl: https://sts.example.com }',
        'server:\n  publicUrl: https://sts.example.com\n  deny: [{ match: { azp: 11111111-2222-3333-4444-555555555555 } }]',
      ),
    );
    const r = await cli(['--config', denied, '--claims', entra, '--audience', 'platform/internal-lib']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(
      r.stdout,
      'denied by server.deny[0]: refused before any policy\n\nDENIED: invalid_request\n',
    );
  });

  it('denied: exit 3 and why, here a boolean where the policy wants the string "true"', async () => {
    const r = await cli(['--config', config, '--claims', ci, '--audience', 'platform/app']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /claim ref_protected: expected a string, token has a boolean/);
    assert.match(r.stdout, /DENIED: invalid_request\n$/);
  });

  it('--json: the decision and per-policy report, invalid_scope for a scope beyond the grant', async () => {
    const r = await cli([
      '--config',
      config,
      '--claims',
      entra,
      '--audience',
      'platform/internal-lib',
      '--scope',
      'read_api write_repository',
      '--json',
    ]);
    assert.equal(r.code, 3, r.stderr);
    const body = JSON.parse(r.stdout);
    assert.equal(body.granted, false);
    assert.equal(body.decision.error, 'invalid_scope');
    assert.deepEqual(
      body.policies.map((p: { policy: string; outcome: string }) => [p.policy, p.outcome]),
      [
        ['ci-protected', 'caller'],
        ['image-build', 'scope'],
      ],
    );
  });

  it('a target on another GitLab: invalid_target for an accepted caller, invalid_request otherwise', async () => {
    const foreign = ['--resource', 'https://gitlab.attacker.example/platform/internal-lib'];
    const [accepted, refused] = await Promise.all([
      cli(['--config', config, '--claims', entra, ...foreign]),
      cli(['--config', config, '--claims', ci, ...foreign]),
    ]);
    assert.equal(accepted.code, 3);
    assert.match(accepted.stdout, /DENIED: invalid_target/);
    assert.equal(refused.code, 3);
    assert.match(refused.stdout, /DENIED: invalid_request/);
  });

  it('--ttl below the minimum TTL (60 s) is refused, as the STS refuses such an expires_in', async () => {
    const short = await cli([
      '--config',
      config,
      '--claims',
      entra,
      '--audience',
      'platform/internal-lib',
      '--ttl',
      '1s',
    ]);
    assert.equal(short.code, 2, short.stderr);
    assert.match(short.stderr, /--ttl.*at least 60s: the minimum TTL the STS grants/);
    assert.equal(short.stdout, '');
    const minute = await cli([
      '--config',
      config,
      '--claims',
      entra,
      '--audience',
      'platform/internal-lib',
      '--ttl',
      '1m',
    ]);
    assert.equal(minute.code, 0, minute.stderr);
    assert.match(minute.stdout, /ttl 60s/);
  });

  it('a typo in --scope is reported as an unknown GitLab scope, not as more than the policy allows', async () => {
    const r = await cli([
      '--config',
      config,
      '--claims',
      entra,
      '--audience',
      'platform/internal-lib',
      '--scope',
      'read_repositry',
    ]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /unknown GitLab scope: read_repositry/);
    assert.doesNotMatch(r.stdout, /not granted/);
  });

  it('unusable input: exit 2 with a message (missing claims file, no target, unknown issuer)', async () => {
    const runs = await Promise.all([
      cli(['--config', config, '--claims', join(dir, 'missing.json'), '--audience', 'a/b']),
      cli(['--config', config, '--claims', entra]),
      cli(['--config', config, '--claims', entra, '--audience', 'a/b', '--issuer', 'nope']),
    ]);
    assert.deepEqual(
      runs.map((r) => r.code),
      [2, 2, 2],
    );
    assert.match(runs[0]?.stderr ?? '', /cannot read claims file/);
    assert.match(runs[1]?.stderr ?? '', /--resource/);
    assert.match(runs[2]?.stderr ?? '', /issuer "nope" is not configured/);
  });
});
