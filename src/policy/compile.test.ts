import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicies } from './compile.ts';
import { PolicyCompileError } from './errors.ts';
import { GITLAB } from './fixtures.testutil.ts';
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
