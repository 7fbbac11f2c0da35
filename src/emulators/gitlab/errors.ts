/**
 * Errors as GitLab's REST API returns them. Grape and `api_guard.rb` use
 * three body shapes, and the emulator keeps each one exactly:
 * - `{"message":"401 Unauthorized"}`, `{"message":"400 Bad request - <reason>"}`,
 *   `{"message":"404 Project Not Found"}` (`lib/api/helpers.rb`: `render_api_error!`);
 * - `{"error":"name is missing"}` for Grape parameter validation;
 * - `{"error":"invalid_token"|"insufficient_scope", "error_description": …}` from
 *   `lib/api/api_guard.rb` (Rack::OAuth2 bearer errors).
 */

export class GitlabApiError extends Error {
  static readonly code: string = 'ERR_GITLAB_EMULATOR_API';
  readonly code: string = GitlabApiError.code;
  override name = 'GitlabApiError';
  constructor(
    readonly status: number,
    /** The exact JSON body GitLab sends. */
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.message === 'string' ? body.message : String(body.error ?? status));
  }
}

/**
 * A moved project asked for by its old full path with GET: `301` with a
 * `Location` that names the project by id (`lib/api/helpers.rb`
 * `find_project!` → `redirect!`, answered by `lib/api/api.rb` with the text
 * `This resource has been moved permanently to <url>`).
 */
export class GitlabRedirect extends GitlabApiError {
  static override readonly code = 'ERR_GITLAB_EMULATOR_MOVED';
  override readonly code = GitlabRedirect.code;
  override name = 'GitlabRedirect';
  constructor(readonly location: string) {
    super(301, { message: `This resource has been moved permanently to ${location}` }, { location });
  }
}

/** A request body that is not valid JSON or form data, or is too large. */
export class MalformedRequestError extends GitlabApiError {
  static override readonly code = 'ERR_GITLAB_EMULATOR_MALFORMED_REQUEST';
  override readonly code = MalformedRequestError.code;
  override name = 'MalformedRequestError';
}

/** A seed config that does not validate; the message names the key. */
export class GitlabSeedError extends Error {
  static readonly code = 'ERR_GITLAB_EMULATOR_SEED';
  readonly code = GitlabSeedError.code;
  override name = 'GitlabSeedError';
}

/** `git` failed while the emulator prepared or read a repository. */
export class GitCommandError extends Error {
  static readonly code = 'ERR_GITLAB_EMULATOR_GIT';
  readonly code = GitCommandError.code;
  override name = 'GitCommandError';
}

/**
 * `api_guard.rb` answers an expired or revoked token as Rack::OAuth2's bearer
 * `invalid_token` error: the body and a `WWW-Authenticate` challenge carrying the
 * same description (recordings: `e2e/17.11.7/TestWithAdminUser_PAT_AdminUser_VaultRevokesToken.yaml`,
 * gitlab.com `saas/TestWithGitlabUser_RotateToken.yaml`).
 */
function invalidToken(description: string): GitlabApiError {
  return new GitlabApiError(
    401,
    { error: 'invalid_token', error_description: description },
    {
      'www-authenticate': `Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="${description}"`,
    },
  );
}

export const apiErrors = {
  unauthorized: () => new GitlabApiError(401, { message: '401 Unauthorized' }),
  forbidden: (reason?: string) =>
    new GitlabApiError(403, { message: reason ? `403 Forbidden - ${reason}` : '403 Forbidden' }),
  notFound: (what?: string) =>
    new GitlabApiError(404, { message: what ? `404 ${what} Not Found` : '404 Not found' }),
  badRequest: (reason: string) => new GitlabApiError(400, { message: `400 Bad request - ${reason}` }),
  /** Grape parameter validation: `{"error":"name is missing, scopes is missing"}`. */
  invalidParams: (problems: string[]) => new GitlabApiError(400, { error: problems.join(', ') }),
  methodNotAllowed: () => new GitlabApiError(405, { message: '405 Method Not Allowed' }),
  /** `find_project!` with a moved project's old path and a method other than GET. */
  movedProjectNotGet: () =>
    new GitlabApiError(405, { message: 'Non GET methods are not allowed for moved projects' }),
  /** `render_validation_error!`: `{"message":{"path":["has already been taken"]}}`. */
  validation: (errors: Record<string, string[]>) => new GitlabApiError(400, { message: errors }),
  /** `render_api_error!(message, 400)`: the message alone, without the `400 Bad request - ` prefix. */
  plain: (status: number, message: string) => new GitlabApiError(status, { message }),
  // api_guard.rb: RevokedError / ExpiredError → 401 invalid_token with these descriptions.
  revoked: () => invalidToken('Token was revoked. You have to re-authorize from the user.'),
  expired: () => invalidToken('Token is expired. You can either do re-authorization or token refresh.'),
  /** api_guard.rb: InsufficientScopeError; `scope` lists the scopes that would have been enough. */
  insufficientScope: (scopes: string[]) =>
    new GitlabApiError(403, {
      error: 'insufficient_scope',
      error_description: 'The request requires higher privileges than provided by the access token.',
      scope: scopes.join(' '),
    }),
};
