/**
 * The policy engine: which GitLab token, if any, a validated caller may get.
 * Pure functions over plain data; no I/O. See README.md and docs/policies.md.
 */
export { type CompiledPolicy, compilePolicies, type PolicySet } from './compile.ts';
export { callerMatchesAnyPolicy, decide, GROUP_ONLY_SCOPES, targetRefusal } from './decide.ts';
export { PolicyCompileError } from './errors.ts';
export { type Explanation, explain, explainData, type PolicyReport } from './explain.ts';
export { RESOURCE_SCOPES, type ResourceScope, ROLE_LEVELS, type RoleName } from './grants.ts';
export { IdentityFromClaimsError, identityFromClaims } from './identity-from-claims.ts';
export { displayTarget, isTargetError, parseTarget } from './target.ts';
export type {
  ClaimMatcher,
  ClaimValue,
  DecideRequest,
  Decision,
  DecisionTarget,
  PolicyConfig,
  PolicyMismatch,
  TargetError,
  TargetRef,
  TargetRequest,
} from './types.ts';
