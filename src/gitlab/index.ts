/** The STS's GitLab client: project/group access tokens. See README.md. */
export { backoffDelay, createGitlabClient } from './client.ts';
export {
  DEFAULT_RETRY_AFTER_SECONDS,
  GitlabError,
  GitlabMovedError,
  GitlabNotFoundError,
  GitlabRejectedError,
  GitlabUnavailableError,
} from './errors.ts';
export { gitlabExpiryDate } from './expiry.ts';
export { createTargetResolver, type TargetResolver, type TargetResolverOptions } from './target-resolver.ts';
export type {
  AccessTokenInfo,
  CreatedToken,
  CreateTokenInput,
  GitlabClient,
  GitlabClientOptions,
  GitlabRateLimit,
  GitlabRequestInfo,
  ListTokensOptions,
  ResolvedTarget,
} from './types.ts';
