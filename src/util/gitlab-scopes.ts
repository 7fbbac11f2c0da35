/**
 * GitLab's access token scopes: the one list the STS (what a policy may grant,
 * src/policy/grants.ts) and the pipeline client (a typo'd `--scope` is refused
 * before anything is sent) share. Source: GitLab's scope tables in
 * doc/user/project/settings/project_access_tokens.md, doc/user/group/settings/group_access_tokens.md
 * and doc/user/profile/personal_access_tokens.md (gitlabhq/gitlabhq). A scope added by a newer
 * GitLab is "unknown" here until it is added: no policy could grant it anyway (the config schema
 * accepts only RESOURCE_SCOPES).
 */

/**
 * Scopes a project/group access token may carry (`resource_bot_scopes`), less
 * `self_rotate`: the STS never grants it. A token that may rotate itself chooses its own new
 * expiry (up to a year) and id. `api` includes self-rotation too (doc/api/project_access_tokens.md,
 * "Rotate a project access token"): the reaper revokes a grant's rotated copies by name
 * (src/ledger/revoke-grant.ts), but grant `api` only where it is needed.
 * `read_virtual_registry` / `write_virtual_registry` exist for group tokens only.
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

/**
 * Scopes a deploy token may carry (`DeployToken::AVAILABLE_SCOPES`, app/models/deploy_token.rb;
 * doc/api/deploy_tokens.md): git read, the container registry, the package registry and the
 * dependency proxy (virtual registry). None of them opens the REST API, and none pushes code.
 */
export const DEPLOY_TOKEN_SCOPES = [
  'read_repository',
  'read_registry',
  'write_registry',
  'read_package_registry',
  'write_package_registry',
  'read_virtual_registry',
  'write_virtual_registry',
] as const;
export type DeployTokenScope = (typeof DEPLOY_TOKEN_SCOPES)[number];

/** What a policy's grant may give, whatever kind of token it mints (each kind allows its own subset). */
export const GRANT_SCOPES = [...new Set<string>([...RESOURCE_SCOPES, ...DEPLOY_TOKEN_SCOPES])] as readonly (
  | ResourceScope
  | DeployTokenScope
)[];
export type GrantScope = ResourceScope | DeployTokenScope;

/**
 * Every scope GitLab knows for a token the STS could be asked for: the resource scopes,
 * `self_rotate`, those only a personal token carries, and the deploy-token scopes. Asking for one
 * of these that the STS does not grant is "not granted"; asking for anything else is "unknown" (a typo).
 */
export const GITLAB_SCOPES = [
  ...RESOURCE_SCOPES,
  'self_rotate',
  'read_user',
  'sudo',
  'admin_mode',
  'read_service_ping',
  'read_package_registry',
  'write_package_registry',
] as const;
export type GitlabScope = (typeof GITLAB_SCOPES)[number];

const KNOWN: ReadonlySet<string> = new Set(GITLAB_SCOPES);

export function isGitlabScope(scope: string): scope is GitlabScope {
  return KNOWN.has(scope);
}

/** Levenshtein distance, stopping early once it exceeds `max`. */
function distance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(d);
      best = Math.min(best, d);
    }
    if (best > max) return max + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/** The known scope an unknown one is most likely a typo of (`read_repositry` → `read_repository`), if any is close. */
export function nearestGitlabScope(scope: string): GitlabScope | undefined {
  const max = scope.length <= 4 ? 1 : 3;
  let found: GitlabScope | undefined;
  let bestDistance = max + 1;
  for (const known of GITLAB_SCOPES) {
    const d = distance(scope.toLowerCase(), known, max);
    if (d < bestDistance) {
      bestDistance = d;
      found = known;
    }
  }
  return found;
}
