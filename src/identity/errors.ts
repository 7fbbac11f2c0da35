/**
 * The one error `validate()` throws. Its `message` is generic on purpose: the
 * caller of the STS learns nothing about why a token was refused (a probe
 * must not learn which check it failed); `reason` carries the detail for the
 * audit log only and never contains the token itself.
 */

/** Stable codes, one per refused check. */
export const SubjectTokenCodes = {
  TOO_LARGE: 'ERR_TOKEN_TOO_LARGE',
  MALFORMED: 'ERR_TOKEN_MALFORMED',
  DUPLICATE_MEMBER: 'ERR_TOKEN_DUPLICATE_MEMBER',
  HEADER_ALG: 'ERR_HEADER_ALG',
  HEADER_FORBIDDEN: 'ERR_HEADER_FORBIDDEN',
  HEADER_TYP: 'ERR_HEADER_TYP',
  HEADER_KID: 'ERR_HEADER_KID',
  ISSUER_UNKNOWN: 'ERR_ISSUER_UNKNOWN',
  KID_UNKNOWN: 'ERR_KID_UNKNOWN',
  KEY_MISMATCH: 'ERR_KEY_MISMATCH',
  KEYS_UNAVAILABLE: 'ERR_KEYS_UNAVAILABLE',
  SIGNATURE: 'ERR_SIGNATURE',
  CLAIM_ISS: 'ERR_CLAIM_ISS',
  CLAIM_VER: 'ERR_CLAIM_VER',
  CLAIM_TID: 'ERR_CLAIM_TID',
  CLAIM_AUD: 'ERR_CLAIM_AUD',
  CLAIM_EXP: 'ERR_CLAIM_EXP',
  CLAIM_NBF: 'ERR_CLAIM_NBF',
  CLAIM_IAT: 'ERR_CLAIM_IAT',
  CLAIM_LIFETIME: 'ERR_CLAIM_LIFETIME',
  CLAIM_DELEGATED: 'ERR_CLAIM_DELEGATED',
  CLAIM_IDTYP: 'ERR_CLAIM_IDTYP',
  CLAIM_CLIENT: 'ERR_CLAIM_CLIENT',
  CLAIM_OID: 'ERR_CLAIM_OID',
  CLAIM_SUB: 'ERR_CLAIM_SUB',
  CLAIM_ROLES: 'ERR_CLAIM_ROLES',
} as const;
export type SubjectTokenCode = (typeof SubjectTokenCodes)[keyof typeof SubjectTokenCodes];

export const GENERIC_MESSAGE = 'subject token is invalid';

export class SubjectTokenError extends Error {
  static readonly code = 'ERR_SUBJECT_TOKEN';
  readonly code: SubjectTokenCode;
  /** Detail for the audit log only; never shown to the caller, never the token. */
  readonly reason: string;
  /**
   * True only when the signing keys could not be fetched (unknown kid and the
   * refetch failed or is cooling down after a failure): the STS answers 503
   * with Retry-After. Everything else is an invalid token (400).
   */
  readonly retryable: boolean;
  readonly retryAfterSeconds?: number;

  constructor(code: SubjectTokenCode, reason: string, opts: { retryAfterSeconds?: number } = {}) {
    // A refused token is an answer, not a bug: no stack is captured (it was ~8 % of a
    // garbage-token refusal's CPU in the bench profile, and is never shown or logged).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(GENERIC_MESSAGE);
    Error.stackTraceLimit = limit;
    this.name = 'SubjectTokenError';
    this.code = code;
    this.reason = reason;
    this.retryable = opts.retryAfterSeconds !== undefined;
    if (opts.retryAfterSeconds !== undefined) this.retryAfterSeconds = opts.retryAfterSeconds;
  }
}

/** Shorthand for a non-retryable refusal. */
export function refuse(code: SubjectTokenCode, reason: string): SubjectTokenError {
  return new SubjectTokenError(code, reason);
}

/** The keys cannot be had right now: retryable, 503 with Retry-After. */
export function unavailable(reason: string, retryAfterSeconds: number): SubjectTokenError {
  return new SubjectTokenError(SubjectTokenCodes.KEYS_UNAVAILABLE, reason, {
    retryAfterSeconds: Math.max(1, Math.ceil(retryAfterSeconds)),
  });
}

/** A value quoted into a reason: JSON-escaped and cut short, so hostile input stays readable and bounded. */
export function quote(value: unknown, max = 80): string {
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
