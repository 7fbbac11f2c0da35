/** The STS's GitLab client: project/group access tokens. See README.md. */
export { backoffDelay, createGitlabClient, retryAfterSeconds } from './client.ts';
export {
  DEFAULT_RETRY_AFTER_SECONDS,
  GitlabError,
  GitlabNotFoundError,
  GitlabRejectedError,
  GitlabUnavailableError,
} from './errors.ts';
export { gitlabExpiryDate } from './expiry.ts';
export type {
  AccessTokenInfo,
  CreatedToken,
  CreateTokenInput,
  GitlabClient,
  GitlabClientOptions,
  GitlabRateLimit,
  GitlabRequestInfo,
  ListTokensOptions,
  TargetKind,
} from './types.ts';
