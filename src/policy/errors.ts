/** Errors of the policy engine. Each has a stable `code` for logs and tests. */

/** A policy that cannot be compiled (an invalid regex, an unusable target). Thrown at start-up only. */
export class PolicyCompileError extends Error {
  readonly code = 'ERR_POLICY_COMPILE';
  constructor(
    readonly policy: string,
    message: string,
  ) {
    super(`policy "${policy}": ${message}`);
    this.name = 'PolicyCompileError';
  }
}
