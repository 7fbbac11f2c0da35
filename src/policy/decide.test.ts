import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicies } from './compile.ts';
import { callerMatchesAnyPolicy, decide } from './decide.ts';
import { APP, GITLAB, identity, OTHER_APP, type PolicyInput, policies } from './fixtures.testutil.ts';
import { parseTarget } from './target.ts';
import type { DecideRequest, Decision, TargetRequest } from './types.ts';

const set = (list: PolicyInput[]) => compilePolicies(policies(list), { gitlabUrl: GITLAB });
function target(audience: string): TargetRequest {
  const t = parseTarget({ audience: [audience] }, GITLAB);
  assert.ok(!('error' in t), `bad test target ${audience}`);
  return t;
}
function req(audience: string, extra: Omit<DecideRequest, 'target'> = {}): DecideRequest {
  return { target: target(audience), ...extra };
}
function granted(d: Decision) {
  assert.ok(d.ok, `expected a grant, got ${JSON.stringify(d)}`);
  return d;
}
const errorOf = (d: Decision) => (d.ok ? 'ok' : d.error);

describe('decide: choosing the policy', () => {
  const ps = set([
    { name: 'v1-appid', match: { appid: APP, roles: { contains: 'GitLab.Read' } } },
    { name: 'v2-azp', match: { azp: OTHER_APP } },
    {
      name: 'ci',
      issuer: 'ci',
      match: { project_id: '42', ref_protected: 'true' },
      grant: { groups: ['platform'], projects: [] },
    },
  ]);

  it('grants with the policy, target, scopes, role, access level and default TTL', () => {
    const d = granted(decide(ps, identity({ appid: APP, roles: ['GitLab.Read'] }), req('platform/app')));
    assert.deepEqual(d, {
      ok: true,
      policy: 'v1-appid',
      target: { kind: 'project', ref: 'platform/app', display: 'platform/app' },
      via: 'access-token',
      scopes: ['read_repository', 'read_api'],
      role: 'reporter',
      accessLevel: 20,
      ttlSeconds: 900,
    });
  });

  it('v1/v2 normalisation: a policy on appid matches a v2 token (azp), and the other way round', () => {
    assert.equal(
      granted(decide(ps, identity({ azp: APP, roles: ['GitLab.Read'] }), req('platform/app'))).policy,
      'v1-appid',
    );
    assert.equal(granted(decide(ps, identity({ appid: OTHER_APP }), req('platform/app'))).policy, 'v2-azp');
  });

  it('a claim missing from the token refuses the caller (invalid_request)', () => {
    const d = decide(ps, identity({ appid: APP }), req('platform/app'));
    assert.equal(errorOf(d), 'invalid_request');
    assert.ok(!d.ok && d.reasons.some((r) => r.policy === 'v1-appid' && r.reason === 'claim roles: missing'));
  });

  it('the issuer must match: the same claims from another issuer do not', () => {
    assert.equal(
      errorOf(decide(ps, identity({ appid: APP, roles: ['GitLab.Read'] }, 'ci'), req('platform/app'))),
      'invalid_request',
    );
    assert.equal(
      errorOf(decide(ps, identity({ project_id: '42', ref_protected: 'true' }), req('platform/app'))),
      'invalid_request',
    );
  });

  it('type-strict: GitLab CI string claims do not match numbers or booleans, and vice versa', () => {
    const ci = (c: Record<string, unknown>) => decide(ps, identity(c, 'ci'), req('platform/app'));
    assert.equal(errorOf(ci({ project_id: '42', ref_protected: 'true' })), 'ok');
    assert.equal(errorOf(ci({ project_id: 42, ref_protected: 'true' })), 'invalid_request');
    assert.equal(errorOf(ci({ project_id: '42', ref_protected: true })), 'invalid_request');
  });

  it('the first matching policy in file order wins', () => {
    const two = set([
      { name: 'first', match: { appid: APP }, grant: { role: 'guest' } },
      { name: 'second', match: { appid: APP }, grant: { role: 'maintainer' } },
    ]);
    const d = granted(decide(two, identity({ appid: APP }), req('platform/app')));
    assert.equal(d.policy, 'first');
    assert.equal(d.accessLevel, 10);
  });

  it('skips a matching policy that does not cover the target or scopes, for a later one that does', () => {
    const two = set([
      { name: 'narrow', match: { appid: APP }, grant: { projects: ['platform/other'] } },
      { name: 'read-only', match: { appid: APP }, grant: { scopes: ['read_repository'] } },
      { name: 'writer', match: { appid: APP }, grant: { scopes: ['read_repository', 'write_repository'] } },
    ]);
    const id = identity({ appid: APP });
    assert.equal(granted(decide(two, id, req('platform/app'))).policy, 'read-only');
    assert.equal(
      granted(decide(two, id, req('platform/app', { scopes: ['write_repository'] }))).policy,
      'writer',
    );
  });

  it('policyName selects one policy; an unknown or non-matching name is invalid_request', () => {
    const two = set([
      { name: 'first', match: { appid: APP } },
      { name: 'second', match: { appid: APP }, grant: { role: 'developer' } },
      { name: 'someone-else', match: { appid: OTHER_APP } },
    ]);
    const id = identity({ appid: APP });
    assert.equal(granted(decide(two, id, req('platform/app', { policyName: 'second' }))).policy, 'second');
    const unknown = decide(two, id, req('platform/app', { policyName: 'nope' }));
    const foreign = decide(two, id, req('platform/app', { policyName: 'someone-else' }));
    assert.equal(errorOf(unknown), 'invalid_request');
    assert.equal(errorOf(foreign), 'invalid_request');
  });

  it('callerMatchesAnyPolicy ignores targets and scopes', () => {
    assert.equal(callerMatchesAnyPolicy(ps, identity({ appid: OTHER_APP })), true);
    assert.equal(callerMatchesAnyPolicy(ps, identity({ appid: 'nobody' })), false);
    assert.equal(
      callerMatchesAnyPolicy(ps, identity({ project_id: '42', ref_protected: 'false' }, 'ci')),
      false,
    );
  });
});

describe('decide: error precedence', () => {
  const ps = set([
    {
      name: 'reader',
      match: { appid: APP },
      grant: { projects: ['platform/app'], scopes: ['read_repository'] },
    },
    {
      name: 'group-reader',
      match: { appid: APP },
      grant: { projects: [], groups: ['tools'], scopes: ['read_api'] },
    },
  ]);
  const cases: [string, Record<string, unknown>, string, string[] | undefined, string][] = [
    ['caller unknown, bad target and scope', { appid: 'x' }, 'nowhere/else', ['api'], 'invalid_request'],
    [
      'caller ok, target not covered (scopes also wrong)',
      { appid: APP },
      'nowhere/else',
      ['api'],
      'invalid_target',
    ],
    ['caller and target ok, scope not covered', { appid: APP }, 'platform/app', ['api'], 'invalid_scope'],
    [
      'scope covered by another policy than the target',
      { appid: APP },
      'platform/app',
      ['read_api'],
      'invalid_scope',
    ],
    ['all ok', { appid: APP }, 'platform/app', ['read_repository'], 'ok'],
  ];
  for (const [name, claims, aud, scopes, expected] of cases) {
    it(name, () => assert.equal(errorOf(decide(ps, identity(claims), req(aud, { scopes }))), expected));
  }

  it('reasons are per policy and name no expected claim value', () => {
    const d = decide(ps, identity({ appid: OTHER_APP }), req('platform/app'));
    assert.ok(!d.ok);
    const text = JSON.stringify(d.reasons);
    assert.ok(!text.includes(APP), text);
    assert.match(text, /issuer or indexed claim/);
  });
});

describe('decide: scopes and TTL', () => {
  const ps = set([
    {
      name: 'p',
      match: { appid: APP },
      grant: { scopes: ['read_repository', 'read_api', 'read_registry'], ttl: { default: '10m', max: '1h' } },
    },
  ]);
  const id = identity({ appid: APP });
  const d = (extra: Omit<DecideRequest, 'target'>) => decide(ps, id, req('platform/app', extra));

  it('a subset of the grant is granted, in the grant order', () => {
    assert.deepEqual(granted(d({ scopes: ['read_registry', 'read_repository'] })).scopes, [
      'read_repository',
      'read_registry',
    ]);
  });
  it('no scopes, or an empty list, means the grant scopes', () => {
    assert.deepEqual(granted(d({})).scopes, ['read_repository', 'read_api', 'read_registry']);
    assert.deepEqual(granted(d({ scopes: [] })).scopes, ['read_repository', 'read_api', 'read_registry']);
  });
  it('one scope beyond the grant refuses the whole request', () => {
    assert.equal(errorOf(d({ scopes: ['read_repository', 'write_repository'] })), 'invalid_scope');
  });
  it('the reason tells a scope GitLab does not know (a typo) from one the grant lacks', () => {
    const typo = d({ scopes: ['read_repositry', 'write_repository'] });
    assert.deepEqual(typo.ok ? [] : typo.reasons, [
      {
        policy: 'p',
        reason:
          'unknown GitLab scope: read_repositry; scopes not granted for a project token: write_repository',
      },
    ]);
    const lacking = d({ scopes: ['sudo'] });
    assert.deepEqual(lacking.ok ? [] : lacking.reasons, [
      { policy: 'p', reason: 'scopes not granted for a project token: sudo' },
    ]);
  });
  it('TTL: default when not asked, as asked below max, clamped to max', () => {
    assert.equal(granted(d({})).ttlSeconds, 600);
    assert.equal(granted(d({ ttlSeconds: 60 })).ttlSeconds, 60);
    assert.equal(granted(d({ ttlSeconds: 3600 })).ttlSeconds, 3600);
    assert.equal(granted(d({ ttlSeconds: 86400 })).ttlSeconds, 3600);
  });
  it('group-only scopes: dropped from the default for a project token, refused when asked', () => {
    const vr = set([
      {
        name: 'vr',
        match: { appid: APP },
        grant: { groups: ['tools'], scopes: ['read_api', 'read_virtual_registry'] },
      },
    ]);
    assert.deepEqual(granted(decide(vr, id, req('tools'))).scopes, ['read_api', 'read_virtual_registry']);
    assert.deepEqual(granted(decide(vr, id, req('tools/app'))).scopes, ['read_api']);
    const asked = decide(vr, id, req('tools/app', { scopes: ['read_virtual_registry'] }));
    assert.equal(errorOf(asked), 'invalid_scope');
  });
});

describe('decide: targets', () => {
  const ps = set([
    {
      name: 'p',
      match: { appid: APP },
      grant: {
        projects: ['Platform/App', 4242, 'shared/both'],
        groups: ['tools', 77, 'shared/both', 'Infra/Sub'],
      },
    },
  ]);
  const id = identity({ appid: APP });
  const t = (audience: string) => {
    const d = decide(ps, id, req(audience));
    return d.ok ? `${d.target.kind} ${d.target.ref}` : d.error;
  };
  const cases: [string, string][] = [
    ['platform/app', 'project platform/app'],
    ['PLATFORM/APP', 'project platform/app'],
    ['tools', 'group tools'],
    ['groups/tools', 'group tools'],
    ['tools/app', 'project tools/app'],
    ['tools/deep/er/app', 'project tools/deep/er/app'],
    ['groups/tools/sub', 'invalid_target'], // a group grant does not cover subgroup tokens
    ['toolsx/app', 'invalid_target'], // prefix of a name is not a parent group
    ['infra/sub', 'group infra/sub'],
    ['infra/sub/app', 'project infra/sub/app'],
    ['infra/app', 'invalid_target'],
    ['shared/both', 'project shared/both'], // listed as both: a project
    ['groups/shared/both', 'group shared/both'],
    ['4242', 'project 4242'],
    ['77', 'group 77'],
    ['groups/4242', 'invalid_target'],
    ['4243', 'invalid_target'],
    ['platform', 'invalid_target'], // the parent of a granted project is not granted
  ];
  for (const [aud, expected] of cases) it(`${aud} → ${expected}`, () => assert.equal(t(aud), expected));

  it('a path is not covered by a numeric-ID grant, nor an ID by a path grant', () => {
    const byId = set([{ name: 'id', match: { appid: APP }, grant: { projects: [4242] } }]);
    assert.equal(errorOf(decide(byId, id, req('platform/app'))), 'invalid_target');
    assert.equal(errorOf(decide(ps, id, req('4243'))), 'invalid_target');
  });

  it('display names the ID form explicitly', () => {
    assert.deepEqual(granted(decide(ps, id, req('4242'))).target, {
      kind: 'project',
      ref: '4242',
      display: 'id:4242',
    });
  });
});

describe('decide: deploy-token grants (via: deploy-token)', () => {
  const ps = set([
    {
      name: 'pull',
      match: { appid: APP },
      grant: {
        via: 'deploy-token',
        role: undefined,
        projects: ['platform/app'],
        groups: ['platform'],
        scopes: ['read_repository', 'read_registry', 'read_virtual_registry'],
      },
    },
  ]);
  const caller = identity({ appid: APP });

  it('grants a deploy token: no role, access level 0, the grant scopes (virtual registry for a group only)', () => {
    const d = granted(decide(ps, caller, req('platform/app')));
    assert.deepEqual(d, {
      ok: true,
      policy: 'pull',
      target: { kind: 'project', ref: 'platform/app', display: 'platform/app' },
      via: 'deploy-token',
      scopes: ['read_repository', 'read_registry'],
      accessLevel: 0,
      ttlSeconds: 900,
    });
    assert.equal(
      granted(decide(ps, caller, req('platform/app', { scopes: ['read_registry'] }))).via,
      'deploy-token',
    );
    const group = granted(decide(ps, caller, req('groups/platform')));
    assert.equal(group.target.kind, 'group');
    assert.deepEqual(group.scopes, ['read_repository', 'read_registry', 'read_virtual_registry']);
    assert.equal(
      errorOf(decide(ps, caller, req('platform/app', { scopes: ['read_virtual_registry'] }))),
      'invalid_scope',
    );
  });

  it('a request for an API scope (or any scope the grant lacks) is invalid_scope', () => {
    for (const scopes of [
      ['api'],
      ['read_api'],
      ['write_repository'],
      ['read_repository', 'api'],
      ['write_registry'],
    ]) {
      const d = decide(ps, caller, req('platform/app', { scopes }));
      assert.equal(errorOf(d), 'invalid_scope', scopes.join(' '));
      assert.ok(
        !d.ok && /scopes not granted for a project deploy token/.test(d.reasons[0]!.reason),
        JSON.stringify(d),
      );
    }
  });
});
