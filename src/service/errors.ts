/**
 * Wire errors of the STS (RFC 6749 §5.2, RFC 8693 §2.2.2). One class per
 * `error` value; the description a caller sees is always generic, and the
 * detail (`reason`) goes to the audit log only.
 */
import { GRANT_TYPE_TOKEN_EXCHANGE } from '../util/oauth-urns.ts';

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_target'
  | 'invalid_scope'
  | 'unsupported_grant_type'
  | 'temporarily_unavailable'
  | 'server_error';

export class StsError extends Error {
  readonly code: string = 'ERR_STS';
  constructor(
    readonly status: number,
    readonly error: OAuthErrorCode,
    /** Generic text for the caller: never policy contents or claim values. */
    readonly description: string,
    /** Detail for the audit log only. */
    readonly reason: string = description,
    readonly retryAfterSeconds?: number,
  ) {
    // A refusal is an answer, not a bug: its stack is never shown or logged, and
    // capturing one costs more than the rest of a garbage-token refusal (bench/).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(description);
    Error.stackTraceLimit = limit;
  }
}

export class InvalidRequestError extends StsError {
  override readonly code = 'ERR_INVALID_REQUEST';
  constructor(description: string, reason?: string) {
    super(400, 'invalid_request', description, reason);
  }
}

export class InvalidTargetError extends StsError {
  override readonly code = 'ERR_INVALID_TARGET';
  constructor(reason: string) {
    super(400, 'invalid_target', 'the requested resource is unknown or not granted to this caller', reason);
  }
}

export class InvalidScopeError extends StsError {
  override readonly code = 'ERR_INVALID_SCOPE';
  constructor(reason: string) {
    super(400, 'invalid_scope', 'the requested scope is invalid or exceeds what this caller may get', reason);
  }
}

export class UnsupportedGrantTypeError extends StsError {
  override readonly code = 'ERR_UNSUPPORTED_GRANT_TYPE';
  constructor() {
    super(
      400,
      'unsupported_grant_type',
      `grant_type must be ${GRANT_TYPE_TOKEN_EXCHANGE}`,
      'unsupported grant_type',
    );
  }
}

export class RateLimitedError extends StsError {
  override readonly code = 'ERR_RATE_LIMITED';
  constructor(description: string, reason: string, retryAfterSeconds: number) {
    super(429, 'temporarily_unavailable', description, reason, retryAfterSeconds);
  }
}

export class UnavailableError extends StsError {
  override readonly code = 'ERR_UNAVAILABLE';
  constructor(
    reason: string,
    retryAfterSeconds = 5,
    description = 'the service is temporarily unavailable; retry later',
  ) {
    super(503, 'temporarily_unavailable', description, reason, retryAfterSeconds);
  }
}

export class ServerError extends StsError {
  override readonly code = 'ERR_SERVER';
  constructor(reason: string) {
    super(500, 'server_error', 'the request could not be completed', reason);
  }
}

/** The subject token was refused: invalid, or no policy accepts it (RFC 8693 §2.2.2: invalid_request). */
export function subjectTokenRefused(reason: string): InvalidRequestError {
  return new InvalidRequestError('the subject token is invalid or not accepted', reason);
}
