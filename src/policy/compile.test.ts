import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicies } from './compile.ts';
import { PolicyCompileError } from './errors.ts';
import { GITLAB } from './fixtures.testutil.ts';
import { MIN_TTL_SECONDS } from './grants.ts';
import type { PolicyConfig } from './types.ts';

const raw = (
  name: string,
  match: PolicyConfig['match'],
  grant: Partial<PolicyConfig['grant']> = {},
): PolicyConfig => ({
  name,
  issuer: 'contoso',
  match,
  grant: {
    projects: ['a/b'],
    groups: [],
    scopes: ['api'],
    role: 'guest',
    ttl: { default: 60, max: 60 },
    ...grant,
  },
});

describe('compilePolicies', () => {
  it('throws PolicyCompileError for an invalid pattern, a duplicate name or an unusable grant', () => {
    const bad: PolicyConfig[][] = [
      [raw('re', { sub: { pattern: '[' } })],
      [raw('dup', { sub: 'a' }), raw('dup', { sub: 'b' })],
      [raw('empty', {})],
      [raw('no-target', { sub: 'a' }, { projects: [] })],
      [raw('zero-id', { sub: 'a' }, { projects: ['000'] })],
      [raw('ttl', { sub: 'a' }, { ttl: { default: 120, max: 60 } })],
    ];
    for (const ps of bad) {
      assert.throws(
        () => compilePolicies(ps, { gitlabUrl: GITLAB }),
        (e: unknown) => e instanceof PolicyCompileError && e.code === 'ERR_POLICY_COMPILE',
        ps[0]?.name,
      );
    }
  });

  it('refuses a ttl.default or ttl.max below the minimum TTL (60 s), naming the key; 60 s itself compiles', () => {
    const cases: Array<[{ default: number; max: number }, string]> = [
      [{ default: 1, max: 3600 }, 'policy "short": ttl.default is 1s: below the minimum TTL of 60s'],
      [{ default: 59, max: 59 }, 'policy "short": ttl.default is 59s: below the minimum TTL of 60s'],
      [{ default: 60, max: 30 }, 'policy "short": ttl.max is 30s: below the minimum TTL of 60s'],
    ];
    for (const [ttl, message] of cases) {
      assert.throws(
        () => compilePolicies([raw('short', { sub: 'a' }, { ttl })], { gitlabUrl: GITLAB }),
        (e: unknown) => e instanceof PolicyCompileError && e.message.startsWith(message),
        JSON.stringify(ttl),
      );
    }
    assert.equal(MIN_TTL_SECONDS, 60);
    const ok = compilePolicies([raw('minute', { sub: 'a' }, { ttl: { default: 60, max: 60 } })], {
      gitlabUrl: GITLAB,
    });
    assert.deepEqual(ok.policies[0]?.grant.ttl, { default: 60, max: 60 });
  });

  it('indexes each policy under its most selective exact claim', () => {
    const set = compilePolicies(
      [
        raw('app', { roles: { contains: 'R' }, ref_protected: true, x: 'y', appid: 'A' }),
        raw('list', { ref: ['main', 'dev'] }),
        raw('bool-only', { ref_protected: true, sub: { pattern: '.*' } }),
        raw('none', { sub: { pattern: '.*' } }),
      ],
      { gitlabUrl: GITLAB },
    );
    assert.deepEqual(
      set.policies.map((p) => p.indexedBy),
      ['appid', 'ref', 'ref_protected', undefined],
    );
    assert.deepEqual(set.unindexed.get('contoso'), [3]);
    assert.deepEqual([...(set.index.get('contoso')?.get('ref')?.keys() ?? [])], ['s:main', 's:dev']);
    // The selective matcher is checked first, the regex last.
    assert.equal(set.policies[0]?.fastMatchers[0]?.claim, 'appid');
  });

  it('reads all-digit target entries as numeric IDs and lower-cases paths', () => {
    const set = compilePolicies(
      [raw('t', { sub: 'a' }, { projects: ['Team/App', 42, '0042'], groups: ['7'] })],
      {
        gitlabUrl: GITLAB,
      },
    );
    const g = set.policies[0]?.grant;
    assert.deepEqual([...(g?.projectPaths ?? [])], ['team/app']);
    assert.deepEqual([...(g?.projectIds ?? [])], ['42']);
    assert.deepEqual([...(g?.groupIds ?? [])], ['7']);
  });
});

describe('compilePolicies: what each kind of token takes (grant.via)', () => {
  const compile = (grant: Partial<PolicyConfig['grant']>) =>
    compilePolicies([raw('p', { sub: 'a' }, grant)], { gitlabUrl: GITLAB });

  it('a deploy token: no role, deploy-token scopes only; the compiled grant says so', () => {
    const set = compile({
      via: 'deploy-token',
      role: undefined,
      scopes: ['read_repository', 'read_package_registry'],
    });
    const g = set.policies[0]!.grant;
    assert.equal(g.via, 'deploy-token');
    assert.equal(g.role, undefined);
    assert.equal(g.accessLevel, 0);
    assert.deepEqual(g.scopes, ['read_repository', 'read_package_registry']);
    assert.equal(compile({}).policies[0]!.grant.via, 'access-token', 'the default');
  });

  it('refuses a role with a deploy token, an API scope in a deploy token, a deploy-only scope or no role in an access token', () => {
    const cases: Array<[Partial<PolicyConfig['grant']>, RegExp]> = [
      [
        { via: 'deploy-token', role: 'reporter', scopes: ['read_repository'] },
        /grant\.role does not apply to a deploy token/,
      ],
      [
        { via: 'deploy-token', role: undefined, scopes: ['read_repository', 'api'] },
        /api: not a deploy-token scope/,
      ],
      [
        { via: 'deploy-token', role: undefined, scopes: ['write_repository'] },
        /write_repository: not a deploy-token scope/,
      ],
      [
        { scopes: ['read_package_registry'] },
        /read_package_registry: a deploy-token scope, not an access-token one/,
      ],
      [{ role: undefined }, /grant\.role is required for an access token/],
    ];
    for (const [grant, message] of cases) {
      assert.throws(
        () => compile(grant),
        (e: unknown) => e instanceof PolicyCompileError && message.test(e.message),
        JSON.stringify(grant),
      );
    }
  });
});
