/**
 * Policies are compiled once at start-up: regexes built, target lists turned
 * into sets, and an index built so that finding the caller's policies costs
 * about the same with 10 or 10,000 policies.
 *
 * The index: each policy gets at most one "selective key", an exact (or
 * one-of) matcher on a claim, preferably an immutable ID such as `appid`.
 * The policy is filed under (issuer, claim, typed value). A caller's
 * candidates are the index hits for its own claim values, plus the policies
 * that have no such key; evaluated in file order, the result is the same as a
 * linear scan, because a policy outside the candidates has a matcher that the
 * caller's token cannot satisfy.
 */
import type { TokenKind } from '../util/token-kind.ts';
import { PolicyCompileError } from './errors.ts';
import {
  DEPLOY_TOKEN_SCOPES,
  MIN_TTL_SECONDS,
  RESOURCE_SCOPES,
  ROLE_LEVELS,
  type RoleName,
} from './grants.ts';
import { type CompiledMatcher, compileMatcher, scalarKey } from './match.ts';
import type { PolicyConfig } from './types.ts';

export interface CompiledGrant {
  projectPaths: ReadonlySet<string>;
  projectIds: ReadonlySet<string>;
  groupPaths: ReadonlySet<string>;
  groupIds: ReadonlySet<string>;
  /** What the grant mints (`grant.via`, default `access-token`). */
  via: TokenKind;
  scopes: readonly string[];
  /** The access token's role; undefined for a deploy token. */
  role: RoleName | undefined;
  /** The role's access level; 0 for a deploy token. */
  accessLevel: number;
  ttl: { default: number; max: number };
}

export interface CompiledPolicy {
  /** Position in the file: lower wins. */
  index: number;
  name: string;
  issuer: string;
  /** In the order written, for `policy test`. */
  matchers: readonly CompiledMatcher[];
  /** Same matchers, cheapest and most selective first, for `decide`. */
  fastMatchers: readonly CompiledMatcher[];
  grant: CompiledGrant;
  /** The confidential client a request must authenticate as (`client`), if the policy names one. */
  client?: string;
  /** The claim the policy is indexed under, if any. */
  indexedBy?: string;
}

export interface PolicySet {
  readonly policies: readonly CompiledPolicy[];
  readonly gitlabUrl: string;
  readonly byName: ReadonlyMap<string, CompiledPolicy>;
  /** issuer → claim → typed value (see scalarKey) → policy indices, ascending. */
  readonly index: ReadonlyMap<string, ReadonlyMap<string, ReadonlyMap<string, number[]>>>;
  /** issuer → indices of policies without a selective key, ascending. */
  readonly unindexed: ReadonlyMap<string, readonly number[]>;
}

/** Claims that identify a workload and never change: the best index keys, in order. */
const PREFERRED_KEYS = [
  'appid',
  'azp',
  'oid',
  'xms_mirid',
  'sub',
  'project_id',
  'namespace_id',
  'repository_id',
];

function keyRank(m: CompiledMatcher): number {
  const preferred = PREFERRED_KEYS.indexOf(m.claim);
  const claimRank = preferred === -1 ? PREFERRED_KEYS.length : preferred;
  if (m.kind === 'exact') {
    // A boolean splits policies into two buckets at best: last resort.
    return (typeof m.value === 'boolean' ? 200 : 0) + claimRank;
  }
  if (m.kind === 'oneOf') return 100 + claimRank;
  return Number.POSITIVE_INFINITY;
}

const COST: Record<CompiledMatcher['kind'], number> = { exact: 0, oneOf: 1, contains: 2, pattern: 3 };

/** An all-digit entry is a numeric ID, as GitLab's `:id` reads it; a path is compared lower-case. */
function addTarget(policy: string, ref: string | number, paths: Set<string>, ids: Set<string>): void {
  const s = String(ref);
  if (/^[0-9]+$/.test(s)) {
    const id = Number(s);
    if (!Number.isSafeInteger(id) || id <= 0) throw new PolicyCompileError(policy, `invalid numeric ID ${s}`);
    ids.add(String(id));
  } else {
    paths.add(s.toLowerCase());
  }
}

function compileGrant(p: PolicyConfig): CompiledGrant {
  const projectPaths = new Set<string>();
  const projectIds = new Set<string>();
  const groupPaths = new Set<string>();
  const groupIds = new Set<string>();
  for (const r of p.grant.projects) addTarget(p.name, r, projectPaths, projectIds);
  for (const r of p.grant.groups) addTarget(p.name, r, groupPaths, groupIds);
  if (projectPaths.size + projectIds.size + groupPaths.size + groupIds.size === 0) {
    throw new PolicyCompileError(p.name, 'grant needs at least one project or group');
  }
  const ttl = { default: p.grant.ttl.default, max: p.grant.ttl.max };
  for (const key of ['default', 'max'] as const) {
    if (!(ttl[key] >= MIN_TTL_SECONDS)) {
      throw new PolicyCompileError(
        p.name,
        `ttl.${key} is ${ttl[key]}s: below the minimum TTL of ${MIN_TTL_SECONDS}s (docs/policies.md#ttls)`,
      );
    }
  }
  if (!(ttl.default > 0 && ttl.default <= ttl.max)) {
    throw new PolicyCompileError(p.name, 'ttl.default must be positive and not exceed ttl.max');
  }
  const via = p.grant.via ?? 'access-token';
  const role = checkKind(p, via);
  return {
    projectPaths,
    projectIds,
    groupPaths,
    groupIds,
    via,
    scopes: [...new Set(p.grant.scopes)],
    role,
    accessLevel: role === undefined ? 0 : ROLE_LEVELS[role],
    ttl,
  };
}

const DEPLOY_SCOPES: ReadonlySet<string> = new Set(DEPLOY_TOKEN_SCOPES);
const ACCESS_SCOPES: ReadonlySet<string> = new Set(RESOURCE_SCOPES);

/**
 * What each kind of token allows (docs/policies.md#via-which-kind-of-token): an access token
 * needs a role and takes access-token scopes; a deploy token has no role (GitLab creates no
 * user for it) and takes deploy-token scopes only. Returns the role.
 */
function checkKind(p: PolicyConfig, via: TokenKind): RoleName | undefined {
  const scopes = p.grant.scopes as readonly string[];
  if (via === 'deploy-token') {
    if (p.grant.role !== undefined) {
      throw new PolicyCompileError(p.name, 'grant.role does not apply to a deploy token (via: deploy-token)');
    }
    const other = scopes.filter((s) => !DEPLOY_SCOPES.has(s));
    if (other.length) {
      throw new PolicyCompileError(
        p.name,
        `${other.join(' ')}: not a deploy-token scope; a deploy token carries only ${DEPLOY_TOKEN_SCOPES.join(', ')}`,
      );
    }
    return undefined;
  }
  if (p.grant.role === undefined) {
    throw new PolicyCompileError(p.name, 'grant.role is required for an access token (via: access-token)');
  }
  const other = scopes.filter((s) => !ACCESS_SCOPES.has(s));
  if (other.length) {
    throw new PolicyCompileError(
      p.name,
      `${other.join(' ')}: a deploy-token scope, not an access-token one (use via: deploy-token)`,
    );
  }
  return p.grant.role;
}

function getOrSet<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

/**
 * Compile policies whose shape the config schema checked (see `PolicyConfig`). What a policy
 * means is checked here and nowhere else — unique names, at least one claim, valid patterns,
 * no control characters, at least one target, usable numeric IDs, 60 s ≤ ttl.default ≤ ttl.max —
 * so `serve`, `check-config`, `policy test` and the tests refuse the same policies.
 * Throws PolicyCompileError on the first unusable one.
 */
export function compilePolicies(policies: readonly PolicyConfig[], opts: { gitlabUrl: string }): PolicySet {
  const index = new Map<string, Map<string, Map<string, number[]>>>();
  const unindexed = new Map<string, number[]>();
  const byName = new Map<string, CompiledPolicy>();
  const compiled = policies.map((p, i): CompiledPolicy => {
    if (byName.has(p.name)) throw new PolicyCompileError(p.name, 'duplicate policy name');
    const matchers = Object.entries(p.match).map(([claim, m]) => compileMatcher(p.name, claim, m));
    if (matchers.length === 0) throw new PolicyCompileError(p.name, 'match needs at least one claim');

    const key = [...matchers].sort((a, b) => keyRank(a) - keyRank(b))[0];
    let indexedBy: string | undefined;
    if (key && Number.isFinite(keyRank(key))) {
      indexedBy = key.claim;
      const values = key.kind === 'exact' ? [key.value] : key.kind === 'oneOf' ? key.values : [];
      const byValue = getOrSet(
        getOrSet(index, p.issuer, () => new Map()),
        key.claim,
        () => new Map(),
      );
      for (const k of new Set(values.map(scalarKey))) {
        if (k !== undefined) getOrSet(byValue, k, (): number[] => []).push(i);
      }
    } else {
      getOrSet(unindexed, p.issuer, (): number[] => []).push(i);
    }

    const fastMatchers = [...matchers].sort((a, b) =>
      a.claim === indexedBy ? -1 : b.claim === indexedBy ? 1 : COST[a.kind] - COST[b.kind],
    );
    const policy: CompiledPolicy = {
      index: i,
      name: p.name,
      issuer: p.issuer,
      matchers,
      fastMatchers,
      grant: compileGrant(p),
      ...(p.client !== undefined ? { client: p.client } : {}),
      indexedBy,
    };
    byName.set(p.name, policy);
    return policy;
  });
  return { policies: compiled, gitlabUrl: opts.gitlabUrl, byName, index, unindexed };
}
