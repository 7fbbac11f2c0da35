/** Plain data exchanged with the policy engine. */
import type { TargetKind } from '../util/target-kind.ts';
import type { ResourceScope, RoleName } from './grants.ts';

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
  grant: {
    projects: TargetRef[];
    groups: TargetRef[];
    scopes: ResourceScope[];
    role: RoleName;
    /** Seconds: when the caller asks for none, and the most it may ask for. */
    ttl: { default: number; max: number };
  };
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
      scopes: string[];
      role: RoleName;
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
}
