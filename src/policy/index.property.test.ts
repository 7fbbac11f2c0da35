/**
 * The indexed `decide` must give exactly what a naive linear scan gives.
 * The reference below is written from the documented rules, independently of
 * the engine (only parseTarget is shared), and run on random policy sets
 * drawn from a small value domain so that matches, near misses and every
 * error are frequent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Identity } from '../identity/types.ts';
import { compilePolicies } from './compile.ts';
import { callerMatchesAnyPolicy, candidates, decide } from './decide.ts';
import { GITLAB } from './fixtures.testutil.ts';
import { ROLE_LEVELS } from './grants.ts';
import { parseTarget } from './target.ts';
import type { ClaimMatcher, PolicyConfig, TargetRequest } from './types.ts';

const CLAIMS = ['appid', 'azp', 'sub', 'oid', 'x'] as const;
const VALUES: unknown[] = ['a', 'b', '1', 1, true, 'true', ['a', 'b'], ['1'], 'ab'];
const SCALARS = ['a', 'b', '1', 1, true, 'true'] as const;
const SCOPES = ['api', 'read_api', 'read_repository', 'read_virtual_registry'] as const;
const AUDIENCES = [
  'g/p',
  'g/q',
  'G/P',
  'h/p',
  'g',
  'h',
  'g/sub/p',
  '42',
  '7',
  'groups/g',
  'groups/42',
  'x/y',
];

const matcherArb: fc.Arbitrary<ClaimMatcher> = fc.oneof(
  fc.constantFrom(...SCALARS),
  fc.uniqueArray(fc.constantFrom(...SCALARS), { minLength: 1, maxLength: 3 }),
  fc.record({ contains: fc.constantFrom('a', 'b', '1', 1) }),
  fc.record({ pattern: fc.constantFrom('a|b', '.*', '[0-9]+', 'a', 'a.?') }),
);

const policyArb = fc.record({
  issuer: fc.constantFrom('contoso', 'ci'),
  match: fc.dictionary(fc.constantFrom(...CLAIMS), matcherArb, { minKeys: 1, maxKeys: 3 }),
  projects: fc.uniqueArray(fc.constantFrom<string | number>('g/p', 'G/Q', 'h/p', 42, '7'), { maxLength: 2 }),
  groups: fc.uniqueArray(fc.constantFrom<string | number>('g', 'H', 7, 'g/sub', 'g/p'), { maxLength: 2 }),
  scopes: fc.uniqueArray(fc.constantFrom(...SCOPES), { minLength: 1, maxLength: 3 }),
  role: fc.constantFrom(...(Object.keys(ROLE_LEVELS) as (keyof typeof ROLE_LEVELS)[])),
  ttlDefault: fc.integer({ min: 60, max: 600 }),
  ttlExtra: fc.integer({ min: 0, max: 600 }),
});

const policiesArb = fc.array(policyArb, { minLength: 1, maxLength: 12 }).map((list) =>
  list.map(
    (p, i): PolicyConfig => ({
      name: `p${i}`,
      issuer: p.issuer,
      match: p.match,
      grant: {
        projects: p.projects,
        groups: p.projects.length + p.groups.length === 0 ? ['g'] : p.groups,
        scopes: p.scopes,
        role: p.role,
        ttl: { default: p.ttlDefault, max: p.ttlDefault + p.ttlExtra },
      },
    }),
  ),
);

const identityArb = fc.record({
  issuer: fc.constantFrom('contoso', 'ci'),
  claims: fc.dictionary(fc.constantFrom(...CLAIMS), fc.constantFrom(...VALUES), { maxKeys: 5 }),
});

const requestArb = fc.record({
  audience: fc.constantFrom(...AUDIENCES),
  scopes: fc.option(fc.uniqueArray(fc.constantFrom(...SCOPES), { maxLength: 3 }), { nil: undefined }),
  ttlSeconds: fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined }),
  policy: fc.option(fc.constantFrom('p0', 'p1', 'p3', 'unknown'), { nil: undefined }),
});

// ---- the reference: a plain loop over the policies as written ----

function refMatcher(m: ClaimMatcher, claims: Record<string, unknown>, claim: string): boolean {
  if (!Object.hasOwn(claims, claim)) return false;
  const v = claims[claim];
  if (Array.isArray(m)) return !Array.isArray(v) && m.some((x) => x === v);
  if (typeof m !== 'object') return v === m;
  if ('contains' in m) return Array.isArray(v) && v.some((x) => x === m.contains);
  return typeof v === 'string' && new RegExp(`^(?:${m.pattern})$`, 'u').test(v);
}

const refKey = (r: string | number) =>
  /^[0-9]+$/.test(String(r)) ? `id:${Number(r)}` : `path:${String(r).toLowerCase()}`;

function reference(
  ps: PolicyConfig[],
  id: Identity,
  t: TargetRequest,
  r: { scopes?: string[]; ttlSeconds?: number; policy?: string },
) {
  const want = t.byId ? `id:${t.ref}` : `path:${t.ref}`;
  let stage = 0; // 0 caller refused, 1 target refused, 2 scope refused
  for (const p of ps) {
    if (r.policy !== undefined && p.name !== r.policy) continue;
    if (p.issuer !== id.issuer) continue;
    if (!Object.entries(p.match).every(([c, m]) => refMatcher(m, id.claims as Record<string, unknown>, c)))
      continue;
    stage = Math.max(stage, 1);
    const projects = p.grant.projects.map(refKey);
    const groups = p.grant.groups.map(refKey);
    const kind = t.explicitGroup || (groups.includes(want) && !projects.includes(want)) ? 'group' : 'project';
    const covered =
      kind === 'group'
        ? groups.includes(want)
        : projects.includes(want) || (!t.byId && groups.some((g) => want.startsWith(`${g}/`)));
    if (!covered) continue;
    stage = Math.max(stage, 2);
    const usable: string[] = p.grant.scopes.filter(
      (s) => kind === 'group' || !s.includes('virtual_registry'),
    );
    const asked = r.scopes?.length ? r.scopes : usable;
    if (asked.length === 0 || !asked.every((s) => usable.includes(s))) continue;
    return {
      ok: true,
      policy: p.name,
      kind,
      scopes: usable.filter((s) => asked.includes(s)),
      ttl: r.ttlSeconds === undefined ? p.grant.ttl.default : Math.min(r.ttlSeconds, p.grant.ttl.max),
      accessLevel: p.grant.role === undefined ? 0 : ROLE_LEVELS[p.grant.role],
    };
  }
  return { ok: false, error: ['invalid_request', 'invalid_target', 'invalid_scope'][stage] };
}

describe('indexed decide = linear reference', () => {
  it('on random policy sets, identities and requests', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(policiesArb, identityArb, requestArb, (ps, ident, r) => {
        const set = compilePolicies(ps, { gitlabUrl: GITLAB });
        const identity: Identity = { ...ident, kind: 'oidc', subject: 's', roles: [], expiresAt: 0 };
        const target = parseTarget({ audience: [r.audience] }, GITLAB);
        assert.ok(!('error' in target));
        const d = decide(set, identity, {
          target,
          scopes: r.scopes,
          ttlSeconds: r.ttlSeconds,
          policyName: r.policy,
        });
        const got = d.ok
          ? {
              ok: true,
              policy: d.policy,
              kind: d.target.kind,
              scopes: d.scopes,
              ttl: d.ttlSeconds,
              accessLevel: d.accessLevel,
            }
          : { ok: false, error: d.error };
        const want = reference(ps, identity, target, r);
        assert.deepEqual(got, want);
        seen.add(d.ok ? 'ok' : d.error);
        const anyCaller = ps.some(
          (p) =>
            p.issuer === identity.issuer &&
            Object.entries(p.match).every(([c, m]) =>
              refMatcher(m, identity.claims as Record<string, unknown>, c),
            ),
        );
        assert.equal(callerMatchesAnyPolicy(set, identity), anyCaller);
      }),
      { numRuns: 1500 },
    );
    // Not vacuous: every outcome was exercised.
    assert.deepEqual([...seen].sort(), ['invalid_request', 'invalid_scope', 'invalid_target', 'ok']);
  });
});

describe('index selectivity', () => {
  it('with 10,000 policies on distinct app IDs, the caller of the last one has exactly one candidate', () => {
    const ps: PolicyConfig[] = Array.from(
      { length: 10_000 },
      (_, i): PolicyConfig => ({
        name: `app-${i}`,
        issuer: 'contoso',
        match: i % 2 ? { appid: `app-${i}`, roles: { contains: 'GitLab.Read' } } : { azp: `app-${i}` },
        grant: {
          projects: [`team-${i}/app`],
          groups: [],
          scopes: ['read_repository'],
          role: 'reporter',
          ttl: { default: 900, max: 3600 },
        },
      }),
    );
    const set = compilePolicies(ps, { gitlabUrl: GITLAB });
    const claims = { appid: 'app-9999', azp: 'app-9999', roles: ['GitLab.Read'] };
    const identity: Identity = {
      issuer: 'contoso',
      kind: 'entra',
      subject: 's',
      roles: [],
      expiresAt: 0,
      claims,
    };
    assert.deepEqual(candidates(set, identity), [9999]);
    const d = decide(set, identity, { target: { ref: 'team-9999/app', byId: false, explicitGroup: false } });
    assert.ok(d.ok && d.policy === 'app-9999');
  });

  it('policies without an exact key are always candidates, in file order with the index hits', () => {
    const ps: PolicyConfig[] = [
      {
        name: 'pat',
        issuer: 'ci',
        match: { sub: { pattern: 'x.*' } },
        grant: {
          projects: ['a/b'],
          groups: [],
          scopes: ['api'],
          role: 'guest',
          ttl: { default: 60, max: 60 },
        },
      },
      {
        name: 'key',
        issuer: 'ci',
        match: { sub: 'xy' },
        grant: {
          projects: ['a/b'],
          groups: [],
          scopes: ['api'],
          role: 'guest',
          ttl: { default: 60, max: 60 },
        },
      },
      {
        name: 'roles',
        issuer: 'ci',
        match: { r: { contains: 'x' } },
        grant: {
          projects: ['a/b'],
          groups: [],
          scopes: ['api'],
          role: 'guest',
          ttl: { default: 60, max: 60 },
        },
      },
    ];
    const set = compilePolicies(ps, { gitlabUrl: GITLAB });
    const identity: Identity = {
      issuer: 'ci',
      kind: 'oidc',
      subject: 'xy',
      roles: [],
      expiresAt: 0,
      claims: { sub: 'xy' },
    };
    assert.deepEqual(candidates(set, identity), [0, 1, 2]);
    assert.deepEqual(candidates(set, { ...identity, claims: { sub: 'zz' } }), [0, 2]);
  });
});
