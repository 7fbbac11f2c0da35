/**
 * Errors about the STS's own GitLab credential. Messages are written for
 * operators: they name the source (vault and secret, file, variable) and the
 * cause (an Azure error code, a missing permission), never a token value and
 * never a stack trace.
 */

export class CredentialError extends Error {
  static readonly code: string = 'ERR_CREDENTIAL';
  readonly code: string = CredentialError.code;
}

/** The credential's source could not be read or written. */
export class CredentialSourceError extends CredentialError {
  static override readonly code = 'ERR_CREDENTIAL_SOURCE';
  override readonly code = CredentialSourceError.code;
  /** Worth trying again later (a 5xx, a timeout, a network error); false for 403, 404, a bad file. */
  readonly transient: boolean;
  constructor(message: string, transient = false) {
    super(message);
    this.name = 'CredentialSourceError';
    this.transient = transient;
  }
}

/** A rotation could not be done (nothing changed), or could not be completed yet. */
export class RotationError extends CredentialError {
  static override readonly code = 'ERR_CREDENTIAL_ROTATION';
  override readonly code = RotationError.code;
  constructor(message: string) {
    super(message);
    this.name = 'RotationError';
  }
}
