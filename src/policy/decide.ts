/**
 * The decision: which policy, if any, grants this caller this target with
 * these scopes. First match in file order wins; when none does, the error
 * says what the caller should fix, in this order of precedence:
 *
 *   invalid_request  no policy accepts the caller (issuer and `match`)
 *   invalid_target   some policy accepts the caller, none covers the target
 *   invalid_scope    some policy covers the target, none the requested scopes
 *
 * Everything is decided from the policies alone, before any GitLab call.
 */
import type { Identity } from '../identity/types.ts';
import { isGitlabScope } from '../util/gitlab-scopes.ts';
import { sha256Hex } from '../util/hash.ts';
import type { TargetKind } from '../util/target-kind.ts';
import type { CompiledGrant, CompiledPolicy, PolicySet } from './compile.ts';
import { type CompiledMatcher, checkMatcher, describeMatcher, scalarKey } from './match.ts';
import { displayTarget } from './target.ts';
import type { DecideRequest, Decision, PolicyMismatch, TargetError, TargetRequest } from './types.ts';

/**
 * GitLab offers these to group access tokens only (a project token request with them would fail at
 * GitLab), and to group deploy tokens only in its UI (the dependency proxy is a group feature).
 */
export const GROUP_ONLY_SCOPES: ReadonlySet<string> = new Set([
  'read_virtual_registry',
  'write_virtual_registry',
]);

/** At most this many per-policy reasons in a decision (the audit line stays readable). */
const MAX_REASONS = 20;

/** How far one policy got: the caller, the target, the scopes, or all three. */
export type Stage = 'caller' | 'target' | 'scope' | 'ok';
const STAGE_RANK: Record<Stage, number> = { caller: 0, target: 1, scope: 2, ok: 3 };

export interface Evaluation {
  stage: Stage;
  reasons: string[];
  kind?: TargetKind;
  scopes?: string[];
}

/**
 * Policies that can possibly accept the caller, ascending: the index hits
 * for the caller's claim values plus the policies without a selective key.
 */
export function candidates(set: PolicySet, identity: Identity): number[] {
  const out: number[] = [];
  const byClaim = set.index.get(identity.issuer);
  if (byClaim) {
    for (const [claim, byValue] of byClaim) {
      if (!Object.hasOwn(identity.claims, claim)) continue;
      const key = scalarKey(identity.claims[claim]);
      const hits = key === undefined ? undefined : byValue.get(key);
      if (hits) for (const i of hits) out.push(i);
    }
  }
  const rest = set.unindexed.get(identity.issuer);
  if (rest) for (const i of rest) out.push(i);
  // Each policy sits under one claim, and a claim has one value: no duplicates, only order to restore.
  return out.sort((a, b) => a - b);
}

/** Group if named so (`/groups/…`), or listed in the policy's groups and not its projects; else project. */
export function targetKind(grant: CompiledGrant, t: TargetRequest): TargetKind {
  if (t.explicitGroup) return 'group';
  const groups = t.byId ? grant.groupIds : grant.groupPaths;
  const projects = t.byId ? grant.projectIds : grant.projectPaths;
  return groups.has(t.ref) && !projects.has(t.ref) ? 'group' : 'project';
}

/**
 * A group covers itself and, for project tokens, every project below it (any
 * depth), but not a group token for its subgroups. IDs only match IDs: no
 * lookup tells us which path an ID has.
 */
export function covers(grant: CompiledGrant, kind: TargetKind, t: TargetRequest): boolean {
  if (kind === 'group') return (t.byId ? grant.groupIds : grant.groupPaths).has(t.ref);
  if (t.byId) return grant.projectIds.has(t.ref);
  if (grant.projectPaths.has(t.ref)) return true;
  for (let i = t.ref.indexOf('/'); i !== -1; i = t.ref.indexOf('/', i + 1)) {
    if (grant.groupPaths.has(t.ref.slice(0, i))) return true;
  }
  return false;
}

function detail(m: CompiledMatcher, identity: Identity): string {
  const v = Object.hasOwn(identity.claims, m.claim) ? JSON.stringify(identity.claims[m.claim]) : undefined;
  const shown = v === undefined ? 'absent' : v.length > 80 ? `${v.slice(0, 77)}...` : v;
  return ` (policy: ${describeMatcher(m)}; token: ${shown})`;
}

/**
 * One policy against one request. `verbose` collects every mismatching
 * matcher with expected and actual values (for `policy test`); otherwise the
 * first mismatch ends the evaluation and no expected value is named.
 */
export function evaluate(
  p: CompiledPolicy,
  identity: Identity,
  req: DecideRequest,
  verbose = false,
): Evaluation {
  const reasons: string[] = [];
  if (p.issuer !== identity.issuer) {
    return {
      stage: 'caller',
      reasons: [`issuer: policy is for "${p.issuer}", caller is from "${identity.issuer}"`],
    };
  }
  // A policy's `client` is a second factor beside the token: cheap, so checked before the claims.
  if (p.client !== undefined && req.client !== p.client) {
    const why = verbose
      ? `client: policy requires client "${p.client}", the request ${req.client === undefined ? 'authenticated as no client' : `authenticated as "${req.client}"`}`
      : 'client: the request did not authenticate as the client this policy requires';
    if (!verbose) return { stage: 'caller', reasons: [why] };
    reasons.push(why);
  }
  for (const m of verbose ? p.matchers : p.fastMatchers) {
    const why = checkMatcher(m, identity.claims);
    if (why === undefined) continue;
    if (!verbose) return { stage: 'caller', reasons: [why] };
    reasons.push(why + detail(m, identity));
  }
  if (reasons.length) return { stage: 'caller', reasons };

  const kind = targetKind(p.grant, req.target);
  if (!covers(p.grant, kind, req.target)) {
    return { stage: 'target', kind, reasons: [`${kind} ${displayTarget(req.target)}: not in this grant`] };
  }

  // Explicitly empty = not given: `scope=` carries no request.
  const requested = req.scopes?.length ? req.scopes : undefined;
  // The virtual-registry scopes are for groups, whatever the kind of token: the dependency proxy is a
  // group feature (GitLab's UI offers them to group deploy tokens only, gitlab-org/gitlab#538931).
  const deploy = p.grant.via === 'deploy-token';
  const usable = p.grant.scopes.filter((s) => kind === 'group' || !GROUP_ONLY_SCOPES.has(s));
  const token = `${kind} ${deploy ? 'deploy token' : 'token'}`;
  if (requested) {
    const missing = requested.filter((s) => !usable.includes(s));
    if (missing.length) {
      // The STS refuses unknown scopes before any policy is looked at (src/service/exchange.ts);
      // `policy test` gets here with them, and says so.
      const unknown = missing.filter((s) => !isGitlabScope(s));
      const reasons = unknown.length ? [`unknown GitLab scope: ${unknown.join(' ')}`] : [];
      const notGranted = missing.filter((s) => isGitlabScope(s));
      if (notGranted.length) reasons.push(`scopes not granted for a ${token}: ${notGranted.join(' ')}`);
      return { stage: 'scope', kind, reasons };
    }
    return { stage: 'ok', kind, reasons, scopes: usable.filter((s) => requested.includes(s)) };
  }
  if (usable.length === 0)
    return { stage: 'scope', kind, reasons: ['no scope of this grant is valid for a project token'] };
  return { stage: 'ok', kind, reasons, scopes: usable };
}

/** The lifetime granted: the request clamped to `ttl.max`, or `ttl.default`. */
export function grantedTtl(grant: CompiledGrant, requested: number | undefined): number {
  // Non-positive values are refused upstream; anything unusable falls back to the default rather than to NaN.
  if (requested === undefined || !(requested >= 1)) return grant.ttl.default;
  return Math.min(Math.floor(requested), grant.ttl.max);
}

function granted(p: CompiledPolicy, e: Evaluation, req: DecideRequest): Decision {
  return {
    ok: true,
    policy: p.name,
    target: { kind: e.kind ?? 'project', ref: req.target.ref, display: displayTarget(req.target) },
    via: p.grant.via,
    scopes: e.scopes ?? [],
    ...(p.grant.role !== undefined ? { role: p.grant.role } : {}),
    accessLevel: p.grant.accessLevel,
    ttlSeconds: grantedTtl(p.grant, req.ttlSeconds),
  };
}

export function errorFor(stage: Stage | undefined): 'invalid_request' | 'invalid_target' | 'invalid_scope' {
  if (stage === 'scope') return 'invalid_scope';
  if (stage === 'target') return 'invalid_target';
  return 'invalid_request';
}

/**
 * Decide one exchange. `reasons` in a refusal are for the audit log only:
 * the caller gets the generic description of the error.
 */
export function decide(set: PolicySet, identity: Identity, req: DecideRequest): Decision {
  let list: readonly number[];
  const reasons: PolicyMismatch[] = [];
  if (req.policyName !== undefined) {
    const named = set.byName.get(req.policyName);
    // An unknown name and a name that does not accept the caller look the same to the caller.
    // The name is caller input (it could be a pasted token), so the audit gets its hash only.
    if (!named)
      return {
        ok: false,
        error: 'invalid_request',
        reasons: [{ policy: '?', reason: `no such policy (name sha256:${sha256Hex(req.policyName)})` }],
      };
    list = [named.index];
  } else {
    list = candidates(set, identity);
  }

  let best: Stage | undefined;
  for (const i of list) {
    const p = set.policies[i];
    if (!p) continue;
    const e = evaluate(p, identity, req);
    if (e.stage === 'ok') return granted(p, e, req);
    if (best === undefined || STAGE_RANK[e.stage] > STAGE_RANK[best]) best = e.stage;
    if (reasons.length < MAX_REASONS) reasons.push({ policy: p.name, reason: e.reasons.join('; ') });
  }
  if (list.length > MAX_REASONS) {
    reasons.push({ policy: '*', reason: `${list.length - MAX_REASONS} more candidate policies refused` });
  }
  const skipped = req.policyName === undefined ? set.policies.length - list.length : 0;
  if (skipped > 0) {
    const what = skipped === 1 ? 'policy' : 'policies';
    reasons.push({
      policy: '*',
      reason: `${skipped} other ${what}: issuer or indexed claim (${indexedClaims(set, identity)}) differs`,
    });
  }
  return { ok: false, error: errorFor(best), reasons };
}

function indexedClaims(set: PolicySet, identity: Identity): string {
  const claims = set.index.get(identity.issuer);
  return claims ? [...claims.keys()].join(', ') || 'none' : 'none';
}

/**
 * The error a refused target earns this caller (the STS's order of errors): a
 * target outside the configured GitLab is `invalid_target` only for a caller
 * some policy accepts, so that a caller no policy knows learns nothing about
 * targets; a malformed one is always `invalid_request`.
 */
export function targetRefusal(
  set: PolicySet,
  identity: Identity,
  target: TargetError,
  client?: string,
): 'invalid_request' | 'invalid_target' {
  return target.error === 'invalid_target' && !callerMatchesAnyPolicy(set, identity, client)
    ? 'invalid_request'
    : target.error;
}

/** Whether `p` accepts the caller: issuer, `client` (the authenticated client, if any) and `match`. */
function accepts(p: CompiledPolicy | undefined, identity: Identity, client: string | undefined): boolean {
  if (!p || p.issuer !== identity.issuer) return false;
  if (p.client !== undefined && p.client !== client) return false;
  return p.fastMatchers.every((m) => checkMatcher(m, identity.claims) === undefined);
}

/** Whether any policy accepts the caller (issuer, `client` and `match`), whatever the target. */
export function callerMatchesAnyPolicy(set: PolicySet, identity: Identity, client?: string): boolean {
  return candidates(set, identity).some((i) => accepts(set.policies[i], identity, client));
}

/**
 * The target of a request that names none (no `resource`, no `audience`, as in the request people
 * write for GitLab's own `/oauth/token`): the one target of the one policy that accepts the caller.
 * `none`: no policy accepts the caller (refused as any such caller is); `ambiguous`: more than one
 * policy accepts it, or the one that does grants more than one target, so the caller must name
 * one. With `policyName`, only that policy counts. Decided from the policies alone.
 */
export function defaultTarget(
  set: PolicySet,
  identity: Identity,
  opts: { client?: string; policyName?: string } = {},
): TargetRequest | 'none' | 'ambiguous' {
  let list: readonly number[];
  if (opts.policyName !== undefined) {
    const named = set.byName.get(opts.policyName);
    list = named ? [named.index] : [];
  } else {
    list = candidates(set, identity);
  }
  let only: CompiledPolicy | undefined;
  for (const i of list) {
    const p = set.policies[i];
    if (!accepts(p, identity, opts.client)) continue;
    if (only) return 'ambiguous';
    only = p;
  }
  if (!only) return 'none';
  const g = only.grant;
  const all: TargetRequest[] = [
    ...[...g.projectPaths].map((ref) => ({ ref, byId: false, explicitGroup: false })),
    ...[...g.projectIds].map((ref) => ({ ref, byId: true, explicitGroup: false })),
    ...[...g.groupPaths].map((ref) => ({ ref, byId: false, explicitGroup: true })),
    ...[...g.groupIds].map((ref) => ({ ref, byId: true, explicitGroup: true })),
  ];
  return all.length === 1 ? (all[0] as TargetRequest) : 'ambiguous';
}
