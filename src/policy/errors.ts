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

/** An unusable `server.deny` entry (an invalid pattern, no claim). Thrown at start-up and on reload. */
export class DenyListError extends Error {
  readonly code = 'ERR_DENY_COMPILE';
  constructor(
    /** The entry's key, `server.deny[2]`. */
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'DenyListError';
  }
}
