/**
 * The policy engine: which GitLab token, if any, a validated caller may get.
 * Pure functions over plain data; no I/O. See README.md and docs/policies.md.
 */
export { type CompiledPolicy, compilePolicies, type PolicySet } from './compile.ts';
export { callerMatchesAnyPolicy, decide, GROUP_ONLY_SCOPES } from './decide.ts';
export { PolicyCompileError } from './errors.ts';
export { type Explanation, explain, explainData, type PolicyReport } from './explain.ts';
export { IdentityFromClaimsError, identityFromClaims } from './identity-from-claims.ts';
export { displayTarget, isTargetError, parseTarget } from './target.ts';
export type {
  DecideRequest,
  Decision,
  DecisionTarget,
  PolicyMismatch,
  TargetError,
  TargetKind,
  TargetRequest,
} from './types.ts';
