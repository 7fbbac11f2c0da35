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
export { DEPLOY_TOKEN_EXPIRY_MARGIN_MS, deployTokenExpiry, gitlabExpiryDate } from './expiry.ts';
export { createTargetResolver, type TargetResolver, type TargetResolverOptions } from './target-resolver.ts';
export type {
  AccessTokenInfo,
  CreateDeployTokenInput,
  CreatedDeployToken,
  CreatedToken,
  CreateTokenInput,
  DeployTokenInfo,
  GitlabClient,
  GitlabClientOptions,
  GitlabRateLimit,
  GitlabRequestInfo,
  ListDeployTokensOptions,
  ListTokensOptions,
  PersonalTokenInfo,
  ResolvedTarget,
  RotatedPersonalToken,
  TokenProvider,
} from './types.ts';
