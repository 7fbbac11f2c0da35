/**
 * What a grant may give: a GitLab role (as an access level) and resource
 * scopes. The config schema accepts exactly these; the compiler maps the role
 * to its level.
 */

/** GitLab access levels by role name. */
export const ROLE_LEVELS = {
  guest: 10,
  planner: 15,
  reporter: 20,
  developer: 30,
  maintainer: 40,
  owner: 50,
} as const;
export type RoleName = keyof typeof ROLE_LEVELS;

/**
 * The shortest lifetime a grant may have, in seconds: a policy's `ttl.default` and
 * `ttl.max` below it do not compile, and an exchange asking for less
 * (`expires_in`) is refused (`invalid_request`) rather than given more than it
 * asked for. A shorter token could expire between the answer and its first use
 * (pipeline start-up, a slow clone); and the reaper's promise ("revoked within
 * 30 s of the TTL", docs/operations.md) would be looser than the TTL itself.
 */
export const MIN_TTL_SECONDS = 60;

/**
 * The scopes a grant may give: GitLab's project/group access token scopes less `self_rotate`
 * (never granted). The list lives in src/util/gitlab-scopes.ts because the pipeline client
 * checks `--scope` against GitLab's scopes too, and may import only src/util.
 */
export {
  DEPLOY_TOKEN_SCOPES,
  type DeployTokenScope,
  GRANT_SCOPES,
  type GrantScope,
  RESOURCE_SCOPES,
  type ResourceScope,
} from '../util/gitlab-scopes.ts';
