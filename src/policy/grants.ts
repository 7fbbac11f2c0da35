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
 * GitLab scopes a project/group access token may carry (`resource_bot_scopes`), less
 * `self_rotate`: the STS never grants it. A token that may rotate itself chooses its own new
 * expiry (up to a year) and id. `api` includes self-rotation too (doc/api/project_access_tokens.md,
 * "Rotate a project access token"): the reaper revokes a grant's rotated copies by name
 * (src/ledger/revoke-grant.ts), but grant `api` only where it is needed.
 */
export const RESOURCE_SCOPES = [
  'api',
  'read_api',
  'read_repository',
  'write_repository',
  'read_registry',
  'write_registry',
  'read_virtual_registry',
  'write_virtual_registry',
  'create_runner',
  'manage_runner',
  'ai_features',
  'k8s_proxy',
] as const;
export type ResourceScope = (typeof RESOURCE_SCOPES)[number];
