/**
 * The policy engine: which GitLab token, if any, a validated caller may get.
 * Pure functions over plain data; no I/O. See README.md and docs/policies.md.
 */
export { type CompiledPolicy, compilePolicies, type PolicySet } from './compile.ts';
export {
  callerMatchesAnyPolicy,
  decide,
  defaultTarget,
  GROUP_ONLY_SCOPES,
  targetRefusal,
} from './decide.ts';
export { compileDenyList, type DenyList, deniedBy } from './deny.ts';
export { DenyListError, PolicyCompileError } from './errors.ts';
export { type Explanation, explain, explainData, type PolicyReport } from './explain.ts';
export {
  DEPLOY_TOKEN_SCOPES,
  GRANT_SCOPES,
  type GrantScope,
  MIN_TTL_SECONDS,
  RESOURCE_SCOPES,
  type ResourceScope,
  ROLE_LEVELS,
  type RoleName,
} from './grants.ts';
export { IdentityFromClaimsError, identityFromClaims } from './identity-from-claims.ts';
export { displayTarget, isTargetError, parseTarget } from './target.ts';
export type {
  ClaimMatcher,
  ClaimValue,
  DecideRequest,
  Decision,
  DecisionTarget,
  DenyRule,
  PolicyConfig,
  PolicyMismatch,
  TargetError,
  TargetRef,
  TargetRequest,
} from './types.ts';
