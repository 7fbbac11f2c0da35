/**
 * Response objects shaped as GitLab 19.x's Grape entities
 * (`lib/api/entities/personal_access_token.rb`, `resource_access_token.rb`,
 * `user_basic.rb`, `project.rb`, `project_with_access.rb`, `group_detail.rb`),
 * key for key and in GitLab's order, as the public recordings of 19.1.1 show them
 * (`ilijamt/vault-plugin-secrets-gitlab`, `tests/integration/testdata/`).
 * Fields the emulator has no model for get GitLab's defaults for a new private
 * project or group, or `null` where GitLab would have nothing.
 */
import { createHash } from 'node:crypto';
import { DEVELOPER, MAINTAINER, OWNER, REPORTER } from './roles.ts';
import type { DeployTokenRecord, GitlabStore, Group, Project, TokenRecord, User } from './store.ts';

const GUEST = 10;
const NOTIFICATION_LEVEL_GLOBAL = 3;

/**
 * A personal access token (`Entities::PersonalAccessToken`; 18.11+ adds
 * `granular`, false for every legacy token). `GET /personal_access_tokens/self`
 * adds `last_used_ips` (`PersonalAccessTokenWithLastUsedIps`); create and
 * rotate add `token`. Recordings: `paths/19.1.1/TestGitlabClient_CurrentTokenInfo.yaml`,
 * `paths/19.1.1/TestGitlabClient_RotateCurrentToken.yaml`.
 */
export function personalTokenEntity(
  store: GitlabStore,
  t: TokenRecord,
  o: { value?: string; lastUsedIps?: boolean } = {},
) {
  return {
    id: t.id,
    name: t.name,
    revoked: t.revoked,
    created_at: t.createdAt,
    description: t.description,
    scopes: [...t.scopes],
    user_id: t.userId,
    last_used_at: t.lastUsedAt,
    active: store.isActive(t),
    granular: false,
    expires_at: t.expiresAt,
    ...(o.lastUsedIps ? { last_used_ips: [...(t.lastUsedIps ?? [])] } : {}),
    ...(o.value === undefined ? {} : { token: o.value }),
  };
}

/**
 * A project or group access token (`Entities::ResourceAccessToken`): the personal
 * token's fields, then `access_level`, `resource_type`, `resource_id` (and
 * `token` on create and rotate). Recording: `e2e/19.1.1/TestWithNormalUser_ProjectAT.yaml`.
 */
export function resourceTokenEntity(store: GitlabStore, t: TokenRecord, value?: string) {
  return {
    ...personalTokenEntity(store, t),
    access_level: t.accessLevel,
    resource_type: t.kind,
    resource_id: t.resourceId,
    ...(value === undefined ? {} : { token: value }),
  };
}

/**
 * A deploy token (`Entities::DeployToken`: `id`, `name`, `username`, `expires_at`, `scopes`,
 * `revoked`, `expired`; `DeployTokenWithToken` adds `token` on create). `expires_at` is a time with
 * milliseconds, `null` for a token that never expires; `expired` is GitLab's day-granular flag.
 * Recordings: `e2e/19.1.1/TestWithProjectDeployToken.yaml`, `e2e/19.1.1/TestWithGroupDeployToken.yaml`.
 */
export function deployTokenEntity(store: GitlabStore, t: DeployTokenRecord, value?: string) {
  return {
    id: t.id,
    name: t.name,
    username: store.deployTokenUsername(t),
    expires_at: t.expiresAt,
    scopes: [...t.scopes],
    revoked: t.revoked,
    expired: store.deployTokenExpiredFlag(t),
    ...(value === undefined ? {} : { token: value }),
  };
}

export function userEntity(baseUrl: string, u: User, self: boolean) {
  return {
    id: u.id,
    username: u.username,
    name: u.name,
    state: 'active',
    locked: false,
    avatar_url: null,
    web_url: `${baseUrl}/${u.username}`,
    created_at: u.createdAt,
    bot: u.bot !== null,
    ...(self ? { email: u.email, is_admin: u.admin } : {}),
  };
}

/** `Full Name / Sub` from the names of each group on the path. */
function groupFullName(store: GitlabStore, g: Group): string {
  return g.path
    .split('/')
    .map(
      (_, i, parts) =>
        store.groupsByPath.get(
          parts
            .slice(0, i + 1)
            .join('/')
            .toLowerCase(),
        )?.name ?? '',
    )
    .join(' / ');
}

const leaf = (fullPath: string) => fullPath.slice(fullPath.lastIndexOf('/') + 1);

/** A runner registration token shaped as GitLab's (`GR1348941` + 20), stable per resource. */
function runnersToken(kind: 'project' | 'group', id: number): string {
  const digest = createHash('sha256').update(`tanuki-emulator-runners:${kind}:${id}`).digest('base64url');
  return `GR1348941${digest.slice(0, 20)}`;
}

/** A one-paragraph Markdown description rendered as GitLab's `description_html` does. */
function descriptionHtml(text: string): string {
  if (text === '') return '';
  const escaped = text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
  return `<p data-sourcepos="1:1-1:${Buffer.byteLength(text)}" dir="auto">${escaped}</p>`;
}

function addDaysIso(iso: string, days: number): string {
  return new Date(Date.parse(iso) + days * 86_400_000).toISOString();
}

/**
 * A group (`Entities::GroupDetail`, as `GET /groups/:id`, `POST /groups`,
 * `PUT /groups/:id` and the transfer answer it): 48 keys for a top-level group
 * and 44 for a subgroup as seen by an Owner (`runners_token` only for Owners,
 * `admin_group`), with the projects in it the viewer can see (`projects`,
 * `Entities::Project`). Recordings: `paths/19.1.1/TestGitlabClient_GetGroupIdByPath.yaml`
 * (`GET /groups/test`, `/groups/level-1%2Flevel-2`), `serviceaccount/19.1.1/TestWithServiceAccountGroup.yaml`.
 */
export function groupEntity(store: GitlabStore, baseUrl: string, g: Group, viewer: User) {
  const root = g.parentId === null;
  const owner = store.groupRole(viewer, g) >= OWNER;
  const projects = [...store.projects.values()]
    .filter((p) => p.namespaceId === g.id && store.projectRole(viewer, p) >= GUEST)
    .sort((a, b) => a.id - b.id)
    .map((p) => projectEntity(store, baseUrl, p, viewer, { withAccess: false }));
  return {
    id: g.id,
    web_url: `${baseUrl}/groups/${g.path}`,
    name: g.name,
    path: leaf(g.path),
    description: g.description,
    visibility: 'private',
    share_with_group_lock: false,
    require_two_factor_authentication: false,
    two_factor_grace_period: 48,
    // The emulator lets Maintainers create projects (moves.ts), so it says so.
    project_creation_level: 'maintainer',
    auto_devops_enabled: null,
    subgroup_creation_level: 'owner',
    emails_disabled: false,
    emails_enabled: true,
    show_diff_preview_in_email: true,
    mentions_disabled: null,
    lfs_enabled: true,
    archived: false,
    math_rendering_limits_enabled: true,
    lock_math_rendering_limits_enabled: false,
    default_branch: null,
    default_branch_protection: 2,
    default_branch_protection_defaults: {
      allowed_to_push: [{ access_level: MAINTAINER }],
      allow_force_push: false,
      allowed_to_merge: [{ access_level: MAINTAINER }],
      developer_can_initial_push: false,
    },
    avatar_url: null,
    request_access_enabled: true,
    full_name: groupFullName(store, g),
    full_path: g.path,
    created_at: g.createdAt,
    parent_id: g.parentId,
    organization_id: 1,
    shared_runners_setting: 'enabled',
    max_artifacts_size: null,
    marked_for_deletion_on: null,
    ldap_cn: null,
    ldap_access: null,
    wiki_access_level: 'enabled',
    ...(root ? { duo_namespace_access_rules: [] } : {}),
    shared_with_groups: [],
    ...(owner ? { runners_token: runnersToken('group', g.id) } : {}),
    ...(root ? { enabled_git_access_protocol: 'all', prevent_sharing_groups_outside_hierarchy: false } : {}),
    projects,
    shared_projects: [],
    shared_runners_minutes_limit: null,
    extra_shared_runners_minutes_limit: null,
    prevent_forking_outside_group: null,
    ...(root ? { service_access_tokens_expiration_enforced: true } : {}),
    membership_lock: false,
  };
}

/**
 * `permissions` of `GET /projects/:id` (`Entities::ProjectWithAccess`): the
 * viewer's direct membership of the project in `project_access`, the highest
 * membership of its group or an ancestor in `group_access` (GitLab's
 * `highest_group_member`); an administrator who is a member of neither sees both
 * `null`. Recordings: `e2e/19.1.1/TestWithProjectDeployToken.yaml` (a group Owner:
 * `group_access` 50), `serviceaccount/19.1.1/TestWithServiceAccountProject.yaml`
 * (an administrator: both `null`).
 */
export function projectPermissions(store: GitlabStore, p: Project, viewer: User) {
  const direct = p.members.get(viewer.id) ?? 0;
  const ns = store.groups.get(p.namespaceId);
  const inherited = ns ? store.groupMembership(viewer, ns) : 0;
  const access = (level: number) =>
    level > 0 ? { access_level: level, notification_level: NOTIFICATION_LEVEL_GLOBAL } : null;
  return { project_access: access(direct), group_access: access(inherited) };
}

/**
 * A project (`Entities::ProjectWithAccess` for `GET /projects/:id` and the
 * answers of `POST`/`PUT /projects…`; `Entities::Project` inside a group):
 * 118 keys for a Maintainer or Owner (119 with `repository_storage`, shown to
 * administrators). As in `lib/api/entities/project.rb`, the CI/CD settings,
 * `runners_token`, `import_url`, `import_type` and `import_error` need
 * `admin_project` (Maintainer), `service_desk_address` and `ci_config_path` need
 * Reporter. A project without a repository is an empty one: `default_branch`
 * `"main"`, `empty_repo: true`. Recordings: `e2e/19.1.1/TestWithProjectDeployToken.yaml`,
 * `serviceaccount/19.1.1/TestWithServiceAccountProject.yaml`.
 */
export function projectEntity(
  store: GitlabStore,
  baseUrl: string,
  p: Project,
  viewer: User,
  o: { withAccess?: boolean } = {},
) {
  const withAccess = o.withAccess ?? true;
  const role = store.projectRole(viewer, p);
  const admin = role >= MAINTAINER;
  const ns = store.groups.get(p.namespaceId);
  const webUrl = `${baseUrl}/${p.path}`;
  const api = `${baseUrl}/api/v4/projects/${p.id}`;
  const host = new URL(baseUrl || 'http://127.0.0.1').hostname;
  const created = p.createdAt;
  return {
    id: p.id,
    description: p.description,
    name: p.name,
    name_with_namespace: ns ? `${groupFullName(store, ns)} / ${p.name}` : p.name,
    path: leaf(p.path),
    path_with_namespace: p.path,
    created_at: created,
    default_branch: 'main',
    tag_list: [],
    topics: [],
    ssh_url_to_repo: `git@${host}:${p.path}.git`,
    http_url_to_repo: `${webUrl}.git`,
    web_url: webUrl,
    readme_url: store.hasReadme(p) ? `${webUrl}/-/blob/main/README.md` : null,
    forks_count: 0,
    avatar_url: null,
    star_count: 0,
    last_activity_at: created,
    visibility: 'private',
    namespace: ns
      ? {
          id: ns.id,
          name: ns.name,
          path: leaf(ns.path),
          kind: 'group',
          full_path: ns.path,
          parent_id: ns.parentId,
          avatar_url: null,
          web_url: `${baseUrl}/groups/${ns.path}`,
        }
      : null,
    ...(viewer.admin ? { repository_storage: 'default' } : {}),
    _links: {
      self: api,
      issues: `${api}/issues`,
      merge_requests: `${api}/merge_requests`,
      repo_branches: `${api}/repository/branches`,
      labels: `${api}/labels`,
      events: `${api}/events`,
      members: `${api}/members`,
      cluster_agents: `${api}/cluster_agents`,
    },
    marked_for_deletion_at: null,
    marked_for_deletion_on: null,
    packages_enabled: true,
    empty_repo: !p.hasRepository,
    archived: false,
    resolve_outdated_diff_discussions: false,
    container_expiration_policy: {
      cadence: '1d',
      enabled: false,
      keep_n: 10,
      older_than: '90d',
      name_regex: '.*',
      name_regex_keep: null,
      next_run_at: addDaysIso(created, 1),
    },
    repository_object_format: 'sha1',
    issues_enabled: true,
    merge_requests_enabled: true,
    wiki_enabled: true,
    jobs_enabled: true,
    snippets_enabled: true,
    container_registry_enabled: true,
    service_desk_enabled: false,
    ...(role >= REPORTER ? { service_desk_address: null } : {}),
    can_create_merge_request_in: role >= DEVELOPER,
    issues_access_level: 'enabled',
    repository_access_level: 'enabled',
    merge_requests_access_level: 'enabled',
    forking_access_level: 'enabled',
    wiki_access_level: 'enabled',
    builds_access_level: 'enabled',
    snippets_access_level: 'enabled',
    pages_access_level: 'private',
    analytics_access_level: 'enabled',
    container_registry_access_level: 'enabled',
    security_and_compliance_access_level: 'private',
    releases_access_level: 'enabled',
    environments_access_level: 'enabled',
    feature_flags_access_level: 'enabled',
    infrastructure_access_level: 'enabled',
    monitor_access_level: 'enabled',
    model_experiments_access_level: 'enabled',
    model_registry_access_level: 'enabled',
    package_registry_access_level: 'enabled',
    emails_disabled: false,
    emails_enabled: true,
    show_diff_preview_in_email: true,
    shared_runners_enabled: true,
    lfs_enabled: true,
    creator_id: p.creatorId ?? store.firstAdminId(),
    ...(admin ? { import_url: null, import_type: null } : {}),
    import_status: 'none',
    ...(admin && withAccess ? { import_error: null } : {}),
    open_issues_count: 0,
    description_html: descriptionHtml(p.description),
    updated_at: created,
    ...(admin
      ? {
          ci_default_git_depth: 20,
          ci_delete_pipelines_in_seconds: null,
          ci_forward_deployment_enabled: true,
          ci_forward_deployment_rollback_allowed: true,
          ci_job_token_scope_enabled: false,
          ci_separated_caches: true,
          ci_allow_fork_pipelines_to_run_in_parent_project: true,
          ci_id_token_sub_claim_components: ['project_path', 'ref_type', 'ref'],
          build_git_strategy: 'fetch',
          keep_latest_artifact: true,
          restrict_user_defined_variables: false,
          ci_pipeline_variables_minimum_override_role: 'developer',
          runner_token_expiration_interval: null,
          group_runners_enabled: true,
          resource_group_default_process_mode: 'unordered',
          auto_cancel_pending_pipelines: 'enabled',
          build_timeout: 3600,
          auto_devops_enabled: true,
          auto_devops_deploy_strategy: 'continuous',
          ci_push_repository_for_job_token_allowed: false,
          protect_merge_request_pipelines: true,
          ci_display_pipeline_variables: false,
          runners_token: runnersToken('project', p.id),
        }
      : {}),
    ...(role >= REPORTER ? { ci_config_path: null } : {}),
    public_jobs: true,
    shared_with_groups: [],
    only_allow_merge_if_pipeline_succeeds: false,
    allow_merge_on_skipped_pipeline: null,
    request_access_enabled: true,
    only_allow_merge_if_all_discussions_are_resolved: false,
    remove_source_branch_after_merge: true,
    printing_merge_request_link_enabled: true,
    merge_method: 'merge',
    squash_option: 'default_off',
    enforce_auth_checks_on_uploads: true,
    suggestion_commit_message: null,
    merge_commit_template: null,
    squash_commit_template: null,
    mr_default_title_template: null,
    issue_branch_template: null,
    warn_about_potentially_unwanted_characters: true,
    autoclose_referenced_issues: true,
    max_artifacts_size: null,
    requirements_enabled: false,
    requirements_access_level: 'enabled',
    security_and_compliance_enabled: true,
    compliance_frameworks: [],
    ...(withAccess ? { permissions: projectPermissions(store, p, viewer) } : {}),
  };
}
