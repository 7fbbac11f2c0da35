/** The examples in docs/policies.md are valid policies that compile, and say what the doc says they do. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseConfig } from '../config/index.ts';
import { compilePolicies } from './compile.ts';
import { decide } from './decide.ts';
import { compileDenyList, deniedBy } from './deny.ts';
import { identity } from './fixtures.testutil.ts';

const doc = readFileSync(new URL('../../docs/policies.md', import.meta.url), 'utf8');
const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1] ?? ''));
const examples = blocks.flatMap((b) => (Array.isArray(b) ? b : (b?.policies ?? [])));
// The `client` and `server.deny` examples: their clients and deny entries, as written.
const clients = Object.assign({}, ...blocks.map((b) => (Array.isArray(b) ? {} : (b?.clients ?? {}))));
const deny = blocks.flatMap((b) => (Array.isArray(b) ? [] : (b?.server?.deny ?? [])));

const config = parseConfig(
  {
    server: { publicUrl: 'https://sts.example.com', deny },
    clients,
    gitlab: { url: 'https://gitlab.example.com', token: 'x' },
    issuers: {
      contoso: {
        entra: { tenant: '72f988bf-86f1-41af-91ab-2d7cd011db47' },
        audiences: ['api://72f988bf-86f1-41af-91ab-2d7cd011db47/tanuki-sts'],
      },
      'gitlab-ci': { oidc: { issuer: 'https://gitlab.example.com' }, audiences: ['https://sts.example.com'] },
      github: {
        oidc: { issuer: 'https://token.actions.githubusercontent.com' },
        audiences: ['https://sts.example.com'],
      },
    },
    policies: examples.filter((p, i, all) => all.findIndex((q) => q.name === p.name) === i),
  },
  { env: { TANUKI_RELEASE_RUNNER_SECRET: 'release-runner-secret-0123' } },
);
const set = compilePolicies(config.policies, { gitlabUrl: config.gitlab.url });
const target = (ref: string) => ({ target: { ref, byId: false, explicitGroup: false } });

describe('docs/policies.md examples', () => {
  it('`client`: the release policy grants only to a request authenticated as release-runner', () => {
    const caller = identity({ appid: '55555555-6666-4777-8888-999999999999' });
    assert.equal(decide(set, caller, { ...target('platform/releases'), client: 'release-runner' }).ok, true);
    assert.equal(decide(set, caller, target('platform/releases')).ok, false);
  });

  it('`server.deny`: both entries compile and hold for what the doc says', () => {
    const list = compileDenyList(config.server.deny);
    assert.equal(list.rules.length, 2);
    assert.equal(deniedBy(list, identity({ appid: '11111111-2222-3333-4444-555555555555' })), 0);
    assert.equal(
      deniedBy(list, identity({ sub: 'project_path:legacy/app:ref_type:branch:ref:main' }, 'gitlab-ci')),
      1,
    );
    assert.equal(
      deniedBy(list, identity({ sub: 'project_path:platform/app:ref_type:branch:ref:main' }, 'gitlab-ci')),
      undefined,
    );
  });

  it('are all valid and compile', () => {
    assert.ok(config.policies.length >= 5, `found ${config.policies.length} examples`);
  });

  it('GitLab CI: string claims match, a boolean ref_protected does not', () => {
    const claims = {
      project_id: '1234',
      ref_protected: 'true',
      ref_type: 'branch',
      sub: 'project_path:platform/app:ref_type:branch:ref:release-12',
    };
    const ok = decide(set, identity(claims, 'gitlab-ci'), target('platform/app'));
    assert.ok(ok.ok && ok.policy === 'ci-release');
    const bad = decide(
      set,
      identity({ ...claims, ref_protected: true }, 'gitlab-ci'),
      target('platform/app'),
    );
    assert.equal(bad.ok, false);
  });

  it('GitHub: the sub pattern takes main or the production environment, nothing else', () => {
    const base = { repository_id: '123456789', repository_owner_id: '98765432' };
    const ask = (sub: string) =>
      decide(set, identity({ ...base, sub }, 'github'), target('mirrors/acme-tool')).ok;
    assert.equal(ask('repo:acme/mirror-tool:ref:refs/heads/main'), true);
    assert.equal(ask('repo:acme/mirror-tool:environment:production'), true);
    assert.equal(ask('repo:acme/mirror-tool:ref:refs/heads/main-evil'), false);
    assert.equal(ask('repo:acme/mirror-tool:pull_request'), false);
  });

  it('managed identity by xms_mirid: the whole resource ID must match', () => {
    const mirid =
      '/subscriptions/0b3c2d1e-1111-4222-8333-444455556666/resourcegroups/prod-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/deployer';
    const azp = '0b3c2d1e-aaaa-4bbb-8ccc-ddddeeeeffff';
    const ask = (x: string) =>
      decide(set, identity({ azp, xms_mirid: x }), target('platform/deploy-config')).ok;
    assert.equal(ask(mirid), true);
    assert.equal(ask(`${mirid}-old`), false);
  });
});
