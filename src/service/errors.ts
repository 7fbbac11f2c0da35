/**
 * Wire errors of the STS (RFC 6749 §5.2, RFC 8693 §2.2.2). One class per
 * `error` value; the description a caller sees is always generic, and the
 * detail (`reason`) goes to the audit log only.
 */
import { GRANT_TYPE_TOKEN_EXCHANGE } from '../util/oauth-urns.ts';

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
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
    /** What `tanuki_sts_refusals_total{reason}` counts it as (a fixed word; see `refusalReason`). */
    readonly refusal?: RefusalReason,
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
  constructor(description: string, reason?: string, refusal?: RefusalReason) {
    super(400, 'invalid_request', description, reason ?? description, undefined, refusal);
  }
}

export class InvalidTargetError extends StsError {
  override readonly code = 'ERR_INVALID_TARGET';
  constructor(
    reason: string,
    description = 'the requested resource is unknown or not granted to this caller',
  ) {
    super(400, 'invalid_target', description, reason);
  }
}

/** The description when a request names no target and the STS cannot choose one for the caller. */
export const NAME_THE_TARGET =
  'name the GitLab project or group: resource=<its URL on GitLab> (or audience=<its path>)';

/**
 * `401 invalid_client` (RFC 6749 §5.2): a `client_secret` for a client that is not configured, a
 * wrong secret, a malformed `Authorization` header, or two authentication methods at once. The
 * answer carries `WWW-Authenticate: Basic` (app.ts); the description never says which it was.
 */
export class InvalidClientError extends StsError {
  override readonly code = 'ERR_INVALID_CLIENT';
  constructor(reason: string) {
    super(401, 'invalid_client', 'client authentication failed', reason);
  }
}

/** The realm of the `WWW-Authenticate: Basic` challenge sent with `invalid_client`. */
export const CLIENT_AUTH_REALM = 'tanuki-sts';

/**
 * `invalid_scope`. The default description, for a scope no policy grants this caller, names
 * neither the policy nor what it grants; the exchange passes its own for a malformed scope
 * parameter and for a scope GitLab does not know (a typo: GitLab's scope list is public).
 */
export class InvalidScopeError extends StsError {
  override readonly code = 'ERR_INVALID_SCOPE';
  constructor(reason: string, description = 'scope not granted') {
    super(400, 'invalid_scope', description, reason);
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

/** The description of every refused subject token: invalid, no policy accepts it, or denied. */
export const SUBJECT_TOKEN_REFUSED = 'the subject token is invalid or not accepted';

/**
 * The subject token was refused: invalid, or no policy accepts it, or `server.deny` names its
 * identity (RFC 8693 §2.2.2: invalid_request). The caller sees one answer for all three; the
 * metrics tell them apart (`refusal`).
 */
export function subjectTokenRefused(
  reason: string,
  refusal: 'subject_token' | 'no_policy' | 'denied' = 'subject_token',
): InvalidRequestError {
  return new InvalidRequestError(SUBJECT_TOKEN_REFUSED, reason, refusal);
}

/**
 * The bounded set of words `tanuki_sts_refusals_total{reason}` uses: the OAuth error code, made
 * finer where one code covers refusals an operator must tell apart (a bad token, no policy, the
 * deny list; a rate limit, an outage). Never caller text.
 */
export type RefusalReason =
  | OAuthErrorCode
  | 'subject_token'
  | 'no_policy'
  | 'denied'
  | 'rate_limited'
  | 'unavailable';

export const REFUSAL_REASONS: readonly RefusalReason[] = [
  'invalid_request',
  'invalid_client',
  'invalid_target',
  'invalid_scope',
  'unsupported_grant_type',
  'subject_token',
  'no_policy',
  'denied',
  'rate_limited',
  'unavailable',
  'server_error',
];

export function refusalReason(e: StsError): RefusalReason {
  if (e.refusal) return e.refusal;
  if (e.status === 429) return 'rate_limited';
  if (e.error === 'temporarily_unavailable') return 'unavailable';
  return e.error;
}
