/** Plain data exchanged with the policy engine. */
import type { TargetKind } from '../util/target-kind.ts';
import type { TokenKind } from '../util/token-kind.ts';
import type { GrantScope, RoleName } from './grants.ts';

/** A scalar claim value a matcher may name; compared type-strictly. */
export type ClaimValue = string | number | boolean;

/**
 * A claim matcher as written in a policy: an exact value, one of a list,
 * `contains` (the claim is an array holding the value) or an anchored `pattern`.
 */
export type ClaimMatcher = ClaimValue | ClaimValue[] | { contains: string | number } | { pattern: string };

/** A project or group in a grant: a path (`group/project`) or a numeric ID. */
export type TargetRef = string | number;

/**
 * One trust policy as configured (durations already in seconds). Its shape is
 * checked by the config schema; what it means (unique names, a usable match
 * and grant) by `compilePolicies`.
 */
export interface PolicyConfig {
  name: string;
  /** The name of a configured issuer. */
  issuer: string;
  /** Claim name → matcher; every entry must hold. */
  match: Record<string, ClaimMatcher>;
  /**
   * The name of a configured confidential client (RFC 6749 §2.3) the request must
   * authenticate as, besides presenting a subject token this policy accepts.
   */
  client?: string;
  grant: {
    projects: TargetRef[];
    groups: TargetRef[];
    /**
     * What the grant mints: a project/group access token (the default) or a deploy token.
     * Each kind has its own scopes (`RESOURCE_SCOPES`, `DEPLOY_TOKEN_SCOPES`).
     */
    via?: TokenKind;
    scopes: GrantScope[];
    /** The access token's role; required for `access-token`, refused for `deploy-token` (no user, no role). */
    role?: RoleName;
    /** Seconds: when the caller asks for none, and the most it may ask for. */
    ttl: { default: number; max: number };
  };
}

/**
 * One entry of `server.deny`: identities refused before any policy is looked
 * at. Same matchers, on the same claims, as a policy's `match`.
 */
export interface DenyRule {
  /** Only tokens of this issuer (a name under `issuers`); absent: every issuer. */
  issuer?: string;
  /** Claim name → matcher; every entry must hold, and there is at least one. */
  match: Record<string, ClaimMatcher>;
}

/**
 * The project or group a caller asked for, normalised. `ref` is either a
 * lower-case GitLab path (GitLab resolves paths case-insensitively) or a
 * decimal numeric ID (`byId`), never both: without a GitLab lookup we cannot
 * tell whether a path and an ID name the same thing.
 */
export interface TargetRequest {
  ref: string;
  byId: boolean;
  /** The caller named a group explicitly (`…/groups/<path>`). */
  explicitGroup: boolean;
}

/** `parseTarget` refused the request: malformed (`invalid_request`) or not on the configured GitLab (`invalid_target`). */
export interface TargetError {
  error: 'invalid_request' | 'invalid_target';
  reason: string;
}

/** Why one policy did not grant; for the audit log and `policy test`, never for the caller. */
export interface PolicyMismatch {
  policy: string;
  reason: string;
}

export interface DecisionTarget {
  kind: TargetKind;
  /** What GitLab's `:id` gets, unencoded: a lower-case path or a numeric ID. The GitLab client encodes it. */
  ref: string;
  /** For logs: the path, or `id:<n>`. */
  display: string;
}

export type Decision =
  | {
      ok: true;
      policy: string;
      target: DecisionTarget;
      /** What to mint: an access token or a deploy token (the policy's `grant.via`). */
      via: TokenKind;
      scopes: string[];
      /** The access token's role; absent for a deploy token. */
      role?: RoleName;
      /** The role's access level; 0 for a deploy token. */
      accessLevel: number;
      ttlSeconds: number;
    }
  | {
      ok: false;
      error: 'invalid_request' | 'invalid_target' | 'invalid_scope';
      reasons: PolicyMismatch[];
    };

export interface DecideRequest {
  target: TargetRequest;
  /** Requested scopes; undefined or empty = the grant's scopes. */
  scopes?: string[];
  /** Ask for one policy by name; only that policy is then considered. */
  policyName?: string;
  /** Requested lifetime; clamped to the policy's `ttl.max`. Undefined = `ttl.default`. */
  ttlSeconds?: number;
  /** The confidential client the request authenticated as; a policy with `client` requires exactly it. */
  client?: string;
}
