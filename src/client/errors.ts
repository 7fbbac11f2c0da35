/**
 * Errors of the pipeline client. Each carries a stable `code` and the process
 * exit code a pipeline engineer can branch on (documented in docs/pipelines.md):
 *   2 usage, 3 Azure sign-in failed, 4 the STS refused, 5 STS/GitLab unavailable.
 * Messages are written for the person reading the job log: what failed, why,
 * what to check. They never contain a token or secret (see redact.ts).
 */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  azure: 3,
  refused: 4,
  unavailable: 5,
} as const;

export class ClientError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, exitCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Bad or missing options, files or variables: nothing was sent anywhere. */
export class UsageError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_USAGE', EXIT.usage, message, options);
  }
}

/** Getting the Entra ID token (the subject token) failed. */
export class AzureSignInError extends ClientError {
  /** AADSTS code when Entra ID returned one, e.g. 7000215. */
  readonly aadsts: number | undefined;
  constructor(message: string, aadsts?: number, options?: { cause?: unknown }) {
    super('ERR_AZURE_SIGN_IN', EXIT.azure, message, options);
    this.aadsts = aadsts;
  }
}

/** The STS answered and said no (400/401/403), or granted less than the caller needs. */
export class StsRefusedError extends ClientError {
  readonly status: number | undefined;
  readonly error: string | undefined;
  readonly requestId: string | undefined;
  constructor(message: string, details: { status?: number; error?: string; requestId?: string } = {}) {
    super('ERR_STS_REFUSED', EXIT.refused, message);
    this.status = details.status;
    this.error = details.error;
    this.requestId = details.requestId;
  }
}

/** Network failure, timeout, 429 or 5xx from the STS: try again later. */
export class StsUnavailableError extends ClientError {
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  constructor(
    message: string,
    details: { status?: number; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super('ERR_UNAVAILABLE', EXIT.unavailable, message, { cause: details.cause });
    this.status = details.status;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}
