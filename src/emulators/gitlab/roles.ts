/**
 * Roles and scopes as GitLab defines them.
 * Roles: `doc/api/members.md` (valid access levels); scopes:
 * `doc/security/tokens/access_token_scopes.md` and `Gitlab::Auth.resource_bot_scopes`
 * (every non-admin scope except `read_user`).
 */

export const ACCESS_LEVELS = {
  no_access: 0,
  minimal_access: 5,
  guest: 10,
  planner: 15,
  reporter: 20,
  developer: 30,
  maintainer: 40,
  owner: 50,
} as const;

/** `access_level` values a project/group access token may have (`ALLOWED_RESOURCE_ACCESS_LEVELS`). */
export const RESOURCE_TOKEN_ACCESS_LEVELS: readonly number[] = [10, 15, 20, 30, 40, 50];

export const REPORTER = 20;
export const DEVELOPER = 30;
export const MAINTAINER = 40;
export const OWNER = 50;

/**
 * Scopes a project or group access token may carry (`Gitlab::Auth.resource_bot_scopes`,
 * the values the token APIs validate against), as of GitLab 19.x
 * (`doc/security/tokens/access_token_scopes.md`): `manage_runner` (17.1), `self_rotate`
 * (17.9), `read_virtual_registry`/`write_virtual_registry` (18.0), `mcp` (18.5:
 * gitlab-org/gitlab#554826, !207062). GitLab's UI offers `mcp` only to OAuth applications
 * and fine-grained tokens, and its MCP endpoint refuses other token kinds (!261131); the
 * emulator accepts it at the token APIs and has no MCP endpoint.
 */
export const RESOURCE_BOT_SCOPES: readonly string[] = [
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
  'self_rotate',
  'mcp',
  'read_observability',
  'write_observability',
];

/**
 * Scopes a deploy token may carry, in GitLab's order (`DeployToken::AVAILABLE_SCOPES`,
 * `app/models/deploy_token.rb`; `doc/api/deploy_tokens.md`). Deploy tokens have no API scope:
 * they authenticate git, the registries and the package registry only.
 */
export const DEPLOY_TOKEN_SCOPES: readonly string[] = [
  'read_repository',
  'read_registry',
  'write_registry',
  'read_package_registry',
  'write_package_registry',
  'read_virtual_registry',
  'write_virtual_registry',
];

/** Every scope a personal access token may carry. */
export const PERSONAL_SCOPES: readonly string[] = [
  ...RESOURCE_BOT_SCOPES,
  'read_user',
  'sudo',
  'admin_mode',
  'read_service_ping',
];

/** An access level given by name (`developer`, `Maintainer`, `minimal access`) or number. */
export function parseAccessLevel(value: unknown): number | undefined {
  if (typeof value === 'number' && Object.values(ACCESS_LEVELS).includes(value as never)) return value;
  if (typeof value === 'string') {
    const key = value
      .trim()
      .toLowerCase()
      .replace(/[\s-]+/g, '_');
    if (/^\d+$/.test(key)) return parseAccessLevel(Number(key));
    if (key === 'minimal') return ACCESS_LEVELS.minimal_access;
    return (ACCESS_LEVELS as Record<string, number>)[key];
  }
  return undefined;
}
