/**
 * Errors of the GitLab client, one class per way a call can end badly. Each
 * has a stable `code`. Messages never contain a token: GitLab's own message is
 * kept (trimmed, with our token redacted defensively) for the audit log only.
 */

/** Base class: every error the client throws is one of these. */
export class GitlabError extends Error {
  static readonly code: string = 'ERR_GITLAB';
  readonly code: string = GitlabError.code;
}

/**
 * GitLab could not answer: 5xx, 429, timeout, refused or reset connection, or
 * a malformed success answer. Worth retrying later; `retryAfterSeconds` comes
 * from GitLab's `Retry-After` header (429, sometimes 503) or a default.
 */
export class GitlabUnavailableError extends GitlabError {
  static override readonly code = 'ERR_GITLAB_UNAVAILABLE';
  override readonly code = GitlabUnavailableError.code;
  /** HTTP status, or undefined for a timeout or network error. */
  readonly status: number | undefined;
  readonly retryAfterSeconds: number;
  /** True when `retryAfterSeconds` came from GitLab's `Retry-After` header. */
  readonly retryAfterFromServer: boolean;
  constructor(
    message: string,
    opts: { status?: number; retryAfterSeconds?: number; retryAfterFromServer?: boolean } = {},
  ) {
    super(message);
    this.name = 'GitlabUnavailableError';
    this.status = opts.status;
    this.retryAfterSeconds = opts.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
    this.retryAfterFromServer = opts.retryAfterFromServer ?? false;
  }
}

/** GitLab refused the request (a 4xx other than 429; 404 on create is GitlabNotFoundError). Not retryable as is. */
export class GitlabRejectedError extends GitlabError {
  static override readonly code: string = 'ERR_GITLAB_REJECTED';
  override readonly code: string = GitlabRejectedError.code;
  readonly status: number;
  /** GitLab's `message`/`error` text, for the audit log. */
  readonly gitlabMessage: string;
  constructor(status: number, gitlabMessage: string, what: string) {
    super(`GitLab refused ${what}: HTTP ${status}${gitlabMessage ? ` ${gitlabMessage}` : ''}`);
    this.name = 'GitlabRejectedError';
    this.status = status;
    this.gitlabMessage = gitlabMessage;
  }
}

/** 404 on create: the project or group does not exist, or the STS's GitLab user cannot see it. */
export class GitlabNotFoundError extends GitlabRejectedError {
  static override readonly code = 'ERR_GITLAB_NOT_FOUND';
  override readonly code = GitlabNotFoundError.code;
  constructor(gitlabMessage: string, what: string) {
    super(404, gitlabMessage, what);
    this.name = 'GitlabNotFoundError';
  }
}

export const DEFAULT_RETRY_AFTER_SECONDS = 5;

/**
 * GitLab answered a path lookup with a redirect (3xx): the project was renamed
 * or moved, and the path now names it only through a redirect route
 * (lib/api/helpers.rb `find_project!`: GET through an old path answers 301 to
 * `/projects/:id`). The client never follows it.
 */
export class GitlabMovedError extends GitlabRejectedError {
  static override readonly code = 'ERR_GITLAB_MOVED';
  override readonly code = GitlabMovedError.code;
  constructor(status: number, what: string) {
    super(status, 'moved (redirect route), not followed', what);
    this.name = 'GitlabMovedError';
  }
}
