/**
 * Response objects shaped as GitLab's Grape entities
 * (`lib/api/entities/personal_access_token.rb`, `resource_access_token.rb`,
 * `user_basic.rb`, `project.rb`, `group.rb`), restricted to the fields the
 * emulator has.
 */
import type { GitlabStore, Group, Project, TokenRecord, User } from './store.ts';

export function personalTokenEntity(store: GitlabStore, t: TokenRecord, value?: string) {
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
    expires_at: t.expiresAt,
    ...(value === undefined ? {} : { token: value }),
  };
}

export function resourceTokenEntity(store: GitlabStore, t: TokenRecord, value?: string) {
  return {
    scopes: [...t.scopes],
    active: store.isActive(t),
    name: t.name,
    revoked: t.revoked,
    created_at: t.createdAt,
    description: t.description,
    user_id: t.userId,
    id: t.id,
    expires_at: t.expiresAt,
    ...(value === undefined ? {} : { token: value }),
    access_level: t.accessLevel,
    last_used_at: t.lastUsedAt,
    resource_type: t.kind,
    resource_id: t.resourceId,
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

export function groupEntity(store: GitlabStore, baseUrl: string, g: Group) {
  const fullName = g.path
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
  return {
    id: g.id,
    web_url: `${baseUrl}/groups/${g.path}`,
    name: g.name,
    path: g.path.slice(g.path.lastIndexOf('/') + 1),
    description: g.description,
    visibility: 'private',
    full_name: fullName,
    full_path: g.path,
    parent_id: g.parentId,
    created_at: g.createdAt,
  };
}

export function projectEntity(store: GitlabStore, baseUrl: string, p: Project, role: number) {
  const ns = store.groups.get(p.namespaceId);
  const nsEntity = ns ? groupEntity(store, baseUrl, ns) : undefined;
  return {
    id: p.id,
    description: p.description,
    name: p.name,
    name_with_namespace: nsEntity ? `${nsEntity.full_name} / ${p.name}` : p.name,
    path: p.path.slice(p.path.lastIndexOf('/') + 1),
    path_with_namespace: p.path,
    created_at: p.createdAt,
    default_branch: p.hasRepository ? 'main' : null,
    visibility: 'private',
    archived: false,
    empty_repo: !p.hasRepository,
    web_url: `${baseUrl}/${p.path}`,
    http_url_to_repo: `${baseUrl}/${p.path}.git`,
    namespace: ns
      ? {
          id: ns.id,
          name: ns.name,
          path: nsEntity?.path,
          kind: 'group',
          full_path: ns.path,
          parent_id: ns.parentId,
          web_url: nsEntity?.web_url,
        }
      : null,
    permissions: {
      project_access: role > 0 ? { access_level: role, notification_level: 3 } : null,
      group_access: null,
    },
  };
}
