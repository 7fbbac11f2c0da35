/**
 * The emulator's in-memory GitLab: users, groups, projects, memberships,
 * redirect routes and tokens. Tokens are found by the SHA-256 of their value
 * (one Map lookup) and listed per resource from an index, so no request scans
 * every token. Token values are never stored: only their hash.
 *
 * Paths work as GitLab's `routes` and `redirect_routes` tables
 * (`app/models/route.rb`, `app/models/concerns/routable.rb`): every group and
 * project has one full path, unique without regard to case; moving one (rename
 * or transfer) leaves a redirect route from each old full path (its own and its
 * descendants') to the moved resource, and a resource that later takes a path
 * drops the redirects of that path and below it (`delete_conflicting_redirects`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { ResolvedSeed } from './config.ts';
import { OWNER } from './roles.ts';

export type TokenKind = 'personal' | 'project' | 'group';
export type ResourceType = 'project' | 'group';

export interface User {
  id: number;
  username: string;
  name: string;
  email: string;
  admin: boolean;
  /** A project/group bot: its resource, and its role there (null once its token was revoked). */
  bot: { resourceType: ResourceType; resourceId: number; accessLevel: number | null } | null;
  createdAt: string;
}

export interface Group {
  id: number;
  /** Full path (`a/b`). */
  path: string;
  name: string;
  description: string;
  parentId: number | null;
  /** user id → access level (direct membership). */
  members: Map<number, number>;
  createdAt: string;
  /** The full path in the seed; null when created through the API. */
  seedPath: string | null;
}

export interface Project {
  id: number;
  /** Full path (`group/project`). */
  path: string;
  name: string;
  description: string;
  namespaceId: number;
  members: Map<number, number>;
  hasRepository: boolean;
  createdAt: string;
  /** The full path in the seed; null when created through the API. */
  seedPath: string | null;
  /** Who created it through the API (`creator_id`); seed projects: none (the first admin is shown). */
  creatorId?: number;
}

/** An old full path that still leads to a moved project or group (GitLab's `RedirectRoute`). */
export interface RedirectRoute {
  /** The old full path, as it was spelled. */
  path: string;
  type: ResourceType;
  id: number;
  createdAt: string;
}

/** A project or group found by id or path; `redirected` when only an old path (a redirect route) matched. */
export interface Found<T> {
  resource: T;
  redirected: boolean;
}

export interface TokenRecord {
  id: number;
  kind: TokenKind;
  userId: number;
  name: string;
  description: string | null;
  scopes: string[];
  /** ISO timestamp with milliseconds, as GitLab shows it. */
  createdAt: string;
  /** `YYYY-MM-DD`: the token stops working at 00:00 UTC that day. */
  expiresAt: string | null;
  revoked: boolean;
  lastUsedAt: string | null;
  /** The addresses it was last used from, oldest first, at most 5 (`last_used_ips`); absent in older state files. */
  lastUsedIps?: string[];
  sha256: string;
  /** The project/group of a resource access token. */
  resourceId: number | null;
  /** The role of a resource access token's bot, as created. */
  accessLevel: number | null;
  /** The id of the first token of a rotation chain. */
  familyId: number;
  previousId: number | null;
  /** For seed tokens: `username/name`. */
  seedKey: string | null;
}

/**
 * A project or group deploy token (`app/models/deploy_token.rb`): no user behind it, a username
 * of its own, deploy-token scopes only, an expiry that is a time (not a date). Only its SHA-256 is kept.
 */
export interface DeployTokenRecord {
  id: number;
  /** `deploy_token_type`: a project or a group token. */
  kind: ResourceType;
  resourceId: number;
  name: string;
  /** The username given at creation; null: `gitlab+deploy-token-<id>` (`DeployToken#username`). */
  username: string | null;
  /** In GitLab's order (`DeployToken::AVAILABLE_SCOPES`). */
  scopes: string[];
  /** ISO 8601 UTC with milliseconds, as GitLab shows it; null: never expires. */
  expiresAt: string | null;
  /** Revoked in the UI (the API has no revoke, only DELETE). */
  revoked: boolean;
  createdAt: string;
  /** The user who created it (`creator_id`). */
  creatorId: number;
  sha256: string;
  lastUsedAt: string | null;
  /** GitLab destroys the row on DELETE; the emulator keeps it for `/_emulator/deploy_tokens` only. */
  deletedAt: string | null;
}

export interface SavedGroup {
  id: number;
  path: string;
  name: string;
  description: string;
  parentId: number | null;
  createdAt: string;
  seedPath: string | null;
  /** `[userId, accessLevel]`, humans only (bots come back with their tokens). */
  members: Array<[number, number]>;
}

export interface SavedProject {
  id: number;
  path: string;
  name: string;
  description: string;
  namespaceId: number;
  createdAt: string;
  seedPath: string | null;
  hasRepository: boolean;
  creatorId?: number;
  members: Array<[number, number]>;
}

/**
 * `gitlab-state.json`. Version 1 held bots and tokens; version 2 adds every
 * group and project (paths after moves, those created through the API) and
 * the redirect routes. A version 1 file still loads (bots and tokens only).
 */
export interface StateSnapshot {
  version: 1 | 2;
  nextUserId: number;
  nextTokenId: number;
  bots: User[];
  tokens: TokenRecord[];
  groups?: SavedGroup[];
  projects?: SavedProject[];
  redirects?: RedirectRoute[];
  /** Deploy tokens (absent in files written before the emulator had them). */
  deployTokens?: DeployTokenRecord[];
  nextDeployTokenId?: number;
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/**
 * How new token values look (seed `settings.tokenFormat`): `routable`, as GitLab
 * 18.x and gitlab.com issue them, or `legacy`, `glpat-` + 20 characters (GitLab ≤ 17.x).
 */
export type TokenFormat = 'routable' | 'legacy';

const BASE36_LENGTH = 2;
const BASE36_CRC = 7;

/**
 * A new token value. `routable` (GitLab's `Authn::TokenField::Generator::RoutableToken`,
 * decoded from the public recordings of 18.11.2 and gitlab.com,
 * `ilijamt/vault-plugin-secrets-gitlab` `tests/integration/testdata/tokens.18.11.2.json`
 * at commit 4cb03d8 and `saas/TestWithGitlabUser_RotateToken.yaml`): `glpat-`, then base64url of 16 random
 * bytes + `o:<organization id>\nu:<user id>` (base 36) + that text's length as one
 * byte, then `.01.`, the base64url part's length in 2 base-36 digits and the CRC-32 of
 * everything before them in 7: 51 characters for a user id below 36, 54 up to 46655.
 * `legacy`: `glpat-` and 20 random URL-safe characters.
 */
export function generateTokenValue(format: TokenFormat = 'routable', userId = 1): string {
  if (format === 'legacy') return `glpat-${randomBytes(15).toString('base64url')}`;
  const routing = Buffer.from(`o:1\nu:${userId.toString(36)}`, 'latin1');
  const payload = Buffer.concat([randomBytes(16), routing, Buffer.from([routing.length])]).toString(
    'base64url',
  );
  const head = `glpat-${payload}.01.${payload.length.toString(36).padStart(BASE36_LENGTH, '0')}`;
  return `${head}${crc32(head).toString(36).padStart(BASE36_CRC, '0')}`;
}

/**
 * A new deploy token value: `gldt-` (`DeployToken::DEPLOY_TOKEN_PREFIX`) and 20 URL-safe characters
 * (Devise's friendly token). Deploy tokens are not routable tokens: the same form on 17.x to 19.x.
 */
export function generateDeployTokenValue(): string {
  return `gldt-${randomBytes(15).toString('base64url')}`;
}

/** The first bot user id: far above seed ids. */
const FIRST_BOT_USER_ID = 10_000;

/** The last segment of a full path. */
export function leafOf(fullPath: string): string {
  return fullPath.slice(fullPath.lastIndexOf('/') + 1);
}

/** `path` itself or a path below it, without regard to case (`matching_path_and_descendants`). */
function isSameOrBelow(path: string, ancestor: string): boolean {
  const p = path.toLowerCase();
  const a = ancestor.toLowerCase();
  return p === a || p.startsWith(`${a}/`);
}

export class GitlabStore {
  readonly users = new Map<number, User>();
  readonly usersByName = new Map<string, User>();
  readonly groups = new Map<number, Group>();
  readonly groupsByPath = new Map<string, Group>();
  readonly projects = new Map<number, Project>();
  readonly projectsByPath = new Map<string, Project>();
  /** Lower-cased old full path → redirect route. */
  readonly redirects = new Map<string, RedirectRoute>();
  readonly tokens = new Map<number, TokenRecord>();
  private readonly tokensByHash = new Map<string, TokenRecord>();
  /** `project:1000` → token ids in creation order. */
  private readonly tokensByResource = new Map<string, number[]>();
  private readonly families = new Map<number, number[]>();
  /** Deploy tokens by id (deleted ones too, for `/_emulator/deploy_tokens`), by SHA-256 and per resource. */
  readonly deployTokens = new Map<number, DeployTokenRecord>();
  private readonly deployTokensByHash = new Map<string, DeployTokenRecord>();
  private readonly deployTokensByResource = new Map<string, number[]>();
  private nextDeployTokenId = 1;
  private nextUserId = FIRST_BOT_USER_ID;
  private nextTokenId = 1;
  private nextGroupId = 100;
  private nextProjectId = 1000;
  /** Seconds added to the real clock (`POST /_emulator/clock`). */
  clockOffsetSeconds = 0;
  /** Called after every change that should be persisted. */
  onChange: () => void = () => {};
  /** Called when a seed token was rotated, so its new value is kept for the next start. */
  onSeedTokenRotated: (seedKey: string, value: string) => void = () => {};

  constructor(readonly seed: ResolvedSeed) {
    const created = new Date().toISOString();
    for (const u of seed.users) {
      this.addUser({
        id: u.id,
        username: u.username,
        name: u.name,
        email: u.email,
        admin: u.admin,
        bot: null,
        createdAt: created,
      });
    }
    for (const g of seed.groups) {
      const parent = g.parentPath === null ? undefined : this.groupsByPath.get(g.parentPath.toLowerCase());
      const group: Group = {
        id: g.id,
        path: g.path,
        name: g.name,
        description: g.description,
        parentId: parent?.id ?? null,
        members: new Map(g.members.map((m) => [m.userId, m.accessLevel])),
        createdAt: created,
        seedPath: g.path,
      };
      this.groups.set(group.id, group);
      this.groupsByPath.set(group.path.toLowerCase(), group);
    }
    for (const p of seed.projects) {
      const ns = this.groupsByPath.get(p.namespacePath.toLowerCase());
      if (!ns) throw new Error(`namespace ${p.namespacePath} missing`);
      const project: Project = {
        id: p.id,
        path: p.path,
        name: p.name,
        description: p.description,
        namespaceId: ns.id,
        members: new Map(p.members.map((m) => [m.userId, m.accessLevel])),
        hasRepository: p.repositoryFiles !== null,
        createdAt: created,
        seedPath: p.path,
      };
      this.projects.set(project.id, project);
      this.projectsByPath.set(project.path.toLowerCase(), project);
    }
    for (const u of this.users.values()) this.nextUserId = Math.max(this.nextUserId, u.id + 1);
    this.bumpIds();
  }

  private bumpIds(): void {
    for (const g of this.groups.values()) this.nextGroupId = Math.max(this.nextGroupId, g.id + 1);
    for (const p of this.projects.values()) this.nextProjectId = Math.max(this.nextProjectId, p.id + 1);
  }

  now(): number {
    return Date.now() + this.clockOffsetSeconds * 1000;
  }

  nowIso(): string {
    return new Date(this.now()).toISOString();
  }

  /** Today in UTC as `YYYY-MM-DD`, by the emulator's clock. */
  today(): string {
    return this.nowIso().slice(0, 10);
  }

  private addUser(u: User): void {
    this.users.set(u.id, u);
    this.usersByName.set(u.username.toLowerCase(), u);
  }

  // ------------------------------------------------------------------ lookups

  /** `:id` of the REST API: a numeric id or a (decoded) current full path; no redirects. */
  findProject(ref: string): Project | undefined {
    return /^\d+$/.test(ref) ? this.projects.get(Number(ref)) : this.projectsByPath.get(ref.toLowerCase());
  }

  findGroup(ref: string): Group | undefined {
    return /^\d+$/.test(ref) ? this.groups.get(Number(ref)) : this.groupsByPath.get(ref.toLowerCase());
  }

  /**
   * A project by id or full path, following redirect routes as GitLab's
   * `Project.find_by_full_path(path, follow_redirects: true)`: the current
   * path first, then an old one. Case never matters.
   */
  resolveProject(ref: string): Found<Project> | undefined {
    const live = this.findProject(ref);
    if (live) return { resource: live, redirected: false };
    const r = this.redirects.get(ref.toLowerCase());
    const moved = r?.type === 'project' ? this.projects.get(r.id) : undefined;
    return moved && { resource: moved, redirected: true };
  }

  /** A group by id or full path, following redirect routes (the REST API itself does not: see resources.ts). */
  resolveGroup(ref: string): Found<Group> | undefined {
    const live = this.findGroup(ref);
    if (live) return { resource: live, redirected: false };
    const r = this.redirects.get(ref.toLowerCase());
    const moved = r?.type === 'group' ? this.groups.get(r.id) : undefined;
    return moved && { resource: moved, redirected: true };
  }

  /**
   * A full path already used by a group or project (routes are unique without
   * regard to case); a top-level path also by a user's namespace.
   */
  pathTaken(fullPath: string): boolean {
    const key = fullPath.toLowerCase();
    if (this.groupsByPath.has(key) || this.projectsByPath.has(key)) return true;
    return !key.includes('/') && this.usersByName.has(key);
  }

  /** `group` itself or one of its subgroups, at any depth. */
  isSelfOrDescendant(group: Group, candidate: Group): boolean {
    for (
      let g: Group | undefined = candidate;
      g;
      g = g.parentId === null ? undefined : this.groups.get(g.parentId)
    ) {
      if (g.id === group.id) return true;
    }
    return false;
  }

  findTokenByValue(value: string): TokenRecord | undefined {
    return this.tokensByHash.get(sha256Hex(value));
  }

  resourceTokens(type: ResourceType, resourceId: number): TokenRecord[] {
    const ids = this.tokensByResource.get(`${type}:${resourceId}`) ?? [];
    const out: TokenRecord[] = [];
    for (const id of ids) {
      const t = this.tokens.get(id);
      if (t) out.push(t);
    }
    return out;
  }

  /** Direct membership in a group or any of its ancestors gives the highest of those roles. */
  groupRole(user: User, group: Group): number {
    if (user.admin) return OWNER;
    let level = 0;
    for (
      let g: Group | undefined = group;
      g;
      g = g.parentId === null ? undefined : this.groups.get(g.parentId)
    ) {
      level = Math.max(level, g.members.get(user.id) ?? 0);
    }
    return level;
  }

  projectRole(user: User, project: Project): number {
    if (user.admin) return OWNER;
    const ns = this.groups.get(project.namespaceId);
    const inherited = ns ? this.groupRole(user, ns) : 0;
    return Math.max(inherited, project.members.get(user.id) ?? 0);
  }

  /**
   * The highest membership of `user` in `group` or an ancestor, ignoring the
   * admin override (GitLab's `highest_group_member`: an administrator who is
   * not a member has none). 0: none.
   */
  groupMembership(user: User, group: Group): number {
    let level = 0;
    for (
      let g: Group | undefined = group;
      g;
      g = g.parentId === null ? undefined : this.groups.get(g.parentId)
    ) {
      level = Math.max(level, g.members.get(user.id) ?? 0);
    }
    return level;
  }

  /** The first administrator among the seed users (shown as `creator_id` of seed projects). */
  firstAdminId(): number {
    for (const u of this.seed.users) if (u.admin) return u.id;
    return this.seed.users[0]?.id ?? 1;
  }

  /** Whether the project's first commit had a `README.md` (seed files; API-created projects get one). */
  hasReadme(project: Project): boolean {
    if (!project.hasRepository) return false;
    const seeded = this.seed.projects.find((p) => p.id === project.id && p.path === project.seedPath);
    return seeded?.repositoryFiles ? 'README.md' in seeded.repositoryFiles : true;
  }

  groupPath(groupId: number): string {
    return this.groups.get(groupId)?.path ?? '';
  }

  // ------------------------------------------------------------------ token state

  /** Expired from 00:00 UTC on `expires_at` (GitLab's `Expirable#expired?`). */
  isExpired(t: TokenRecord): boolean {
    return t.expiresAt !== null && this.now() >= Date.parse(`${t.expiresAt}T00:00:00Z`);
  }

  isActive(t: TokenRecord): boolean {
    return !t.revoked && !this.isExpired(t);
  }

  /** Records a use: `last_used_at`, and the caller's address in `last_used_ips` (the last 5, distinct). */
  touch(t: TokenRecord, ip?: string): void {
    t.lastUsedAt = this.nowIso();
    if (ip) t.lastUsedIps = [...(t.lastUsedIps ?? []).filter((x) => x !== ip), ip].slice(-5);
  }

  // ------------------------------------------------------------------ deploy tokens

  /** The username a deploy token authenticates with (`DeployToken#username`). */
  deployTokenUsername(t: DeployTokenRecord): string {
    return t.username ?? `gitlab+deploy-token-${t.id}`;
  }

  /**
   * Whether a deploy token authenticates: `DeployToken.active` (`revoked = false AND
   * expires_at >= NOW()`), the scope `Gitlab::Auth#deploy_token_check` looks tokens up in,
   * so its expiry is a time, to the second and below, not a date.
   */
  isDeployTokenActive(t: DeployTokenRecord): boolean {
    if (t.revoked || t.deletedAt !== null) return false;
    return t.expiresAt === null || Date.parse(t.expiresAt) >= this.now();
  }

  /**
   * The `expired` of GitLab's answers (`DeployToken#expired?`: `expires_at < Date.today`): day-granular,
   * so it stays false for the rest of the day a token stopped working (see isDeployTokenActive).
   */
  deployTokenExpiredFlag(t: DeployTokenRecord): boolean {
    return t.expiresAt !== null && Date.parse(t.expiresAt) < Date.parse(`${this.today()}T00:00:00Z`);
  }

  /** A deploy token by value, unless deleted (revoked or expired ones too: the caller checks). */
  findDeployTokenByValue(value: string): DeployTokenRecord | undefined {
    const t = this.deployTokensByHash.get(sha256Hex(value));
    return t && t.deletedAt === null ? t : undefined;
  }

  /** The deploy tokens of a project or group, oldest first, without deleted ones. */
  resourceDeployTokens(type: ResourceType, resourceId: number): DeployTokenRecord[] {
    const out: DeployTokenRecord[] = [];
    for (const id of this.deployTokensByResource.get(`${type}:${resourceId}`) ?? []) {
      const t = this.deployTokens.get(id);
      if (t && t.deletedAt === null) out.push(t);
    }
    return out;
  }

  /** Every deploy token of the instance, oldest first, without deleted ones (`GET /deploy_tokens`). */
  allDeployTokens(): DeployTokenRecord[] {
    return [...this.deployTokens.values()].filter((t) => t.deletedAt === null);
  }

  /** A new deploy token whose value the caller knows. */
  addDeployToken(
    value: string,
    fields: Pick<
      DeployTokenRecord,
      'kind' | 'resourceId' | 'name' | 'username' | 'scopes' | 'expiresAt' | 'creatorId'
    >,
  ): DeployTokenRecord {
    const t: DeployTokenRecord = {
      ...fields,
      id: this.nextDeployTokenId++,
      revoked: false,
      createdAt: this.nowIso(),
      sha256: sha256Hex(value),
      lastUsedAt: null,
      deletedAt: null,
    };
    this.indexDeployToken(t);
    this.onChange();
    return t;
  }

  /** `DELETE …/deploy_tokens/:id`: GitLab destroys the token; here it is only marked. */
  deleteDeployToken(t: DeployTokenRecord): void {
    if (t.deletedAt !== null) return;
    t.deletedAt = this.nowIso();
    this.onChange();
  }

  private indexDeployToken(t: DeployTokenRecord): void {
    this.deployTokens.set(t.id, t);
    this.deployTokensByHash.set(t.sha256, t);
    this.nextDeployTokenId = Math.max(this.nextDeployTokenId, t.id + 1);
    const key = `${t.kind}:${t.resourceId}`;
    const list = this.deployTokensByResource.get(key);
    if (list) list.push(t.id);
    else this.deployTokensByResource.set(key, [t.id]);
  }

  // ------------------------------------------------------------------ changes

  /** Adds a token whose value the caller knows; returns the record. */
  addToken(
    value: string,
    fields: Omit<TokenRecord, 'id' | 'sha256' | 'createdAt' | 'lastUsedAt' | 'revoked' | 'familyId'> & {
      familyId?: number;
    },
  ): TokenRecord {
    const id = this.nextTokenId++;
    const record: TokenRecord = {
      ...fields,
      id,
      sha256: sha256Hex(value),
      createdAt: this.nowIso(),
      lastUsedAt: null,
      revoked: false,
      familyId: fields.familyId ?? id,
    };
    this.indexToken(record);
    this.onChange();
    return record;
  }

  private unindexToken(t: TokenRecord): void {
    this.tokens.delete(t.id);
    this.tokensByHash.delete(t.sha256);
    const family = this.families.get(t.familyId);
    if (family) {
      const rest = family.filter((id) => id !== t.id);
      if (rest.length > 0) this.families.set(t.familyId, rest);
      else this.families.delete(t.familyId);
    }
    if (t.resourceId !== null && t.kind !== 'personal') {
      const key = `${t.kind}:${t.resourceId}`;
      const list = this.tokensByResource.get(key)?.filter((id) => id !== t.id);
      if (list) this.tokensByResource.set(key, list);
    }
  }

  private indexToken(t: TokenRecord): void {
    this.tokens.set(t.id, t);
    this.tokensByHash.set(t.sha256, t);
    this.nextTokenId = Math.max(this.nextTokenId, t.id + 1);
    if (t.resourceId !== null && t.kind !== 'personal') {
      const key = `${t.kind}:${t.resourceId}`;
      const list = this.tokensByResource.get(key);
      if (list) list.push(t.id);
      else this.tokensByResource.set(key, [t.id]);
    }
    const family = this.families.get(t.familyId);
    if (family) family.push(t.id);
    else this.families.set(t.familyId, [t.id]);
  }

  // ------------------------------------------------------------------ groups, projects, redirects

  /** A new group (`POST /groups`); its path drops the redirects at and below it. */
  addGroup(fields: { path: string; name: string; description: string; parentId: number | null }): Group {
    const group: Group = {
      ...fields,
      id: this.nextGroupId++,
      members: new Map(),
      createdAt: this.nowIso(),
      seedPath: null,
    };
    this.groups.set(group.id, group);
    this.groupsByPath.set(group.path.toLowerCase(), group);
    this.dropRedirects(group.path);
    this.onChange();
    return group;
  }

  /** A new project (`POST /projects`); its path drops the redirects at and below it. */
  addProject(fields: {
    path: string;
    name: string;
    description: string;
    namespaceId: number;
    hasRepository: boolean;
    creatorId?: number;
  }): Project {
    const project: Project = {
      ...fields,
      id: this.nextProjectId++,
      members: new Map(),
      createdAt: this.nowIso(),
      seedPath: null,
    };
    this.projects.set(project.id, project);
    this.projectsByPath.set(project.path.toLowerCase(), project);
    this.dropRedirects(project.path);
    this.onChange();
    return project;
  }

  /**
   * Renames and/or transfers a project: its new full path is
   * `<namespace>/<leaf>`. The old path becomes a redirect route to it
   * (`Route#create_redirect_for_old_path`); redirects at or below the new
   * path are dropped first (`Route#delete_conflicting_redirects`).
   */
  moveProject(project: Project, namespace: Group, leaf: string): void {
    const oldPath = project.path;
    const newPath = `${namespace.path}/${leaf}`;
    this.projectsByPath.delete(oldPath.toLowerCase());
    project.path = newPath;
    project.namespaceId = namespace.id;
    this.projectsByPath.set(newPath.toLowerCase(), project);
    if (oldPath !== newPath) {
      this.dropRedirects(newPath);
      if (oldPath.toLowerCase() !== newPath.toLowerCase()) this.addRedirect(oldPath, 'project', project.id);
    }
    this.onChange();
  }

  /**
   * Renames and/or transfers a group (`parent` null: top level). Every
   * descendant group and project follows, and each old full path becomes a
   * redirect route to its resource (`Route#rename_descendants`).
   */
  moveGroup(group: Group, parent: Group | null, leaf: string): void {
    const oldPath = group.path;
    const newPath = parent ? `${parent.path}/${leaf}` : leaf;
    const below = `${oldPath.toLowerCase()}/`;
    const moved: Array<{ oldPath: string; type: ResourceType; item: Group | Project }> = [];
    for (const g of this.groups.values()) {
      if (g === group || g.path.toLowerCase().startsWith(below))
        moved.push({ oldPath: g.path, type: 'group', item: g });
    }
    for (const p of this.projects.values()) {
      if (p.path.toLowerCase().startsWith(below)) moved.push({ oldPath: p.path, type: 'project', item: p });
    }
    for (const m of moved) {
      (m.type === 'group' ? this.groupsByPath : this.projectsByPath).delete(m.oldPath.toLowerCase());
    }
    group.parentId = parent?.id ?? null;
    for (const m of moved) {
      m.item.path = newPath + m.oldPath.slice(oldPath.length);
      if (m.type === 'group') this.groupsByPath.set(m.item.path.toLowerCase(), m.item as Group);
      else this.projectsByPath.set(m.item.path.toLowerCase(), m.item as Project);
    }
    if (oldPath !== newPath) {
      this.dropRedirects(newPath);
      if (oldPath.toLowerCase() !== newPath.toLowerCase()) {
        for (const m of moved) this.addRedirect(m.oldPath, m.type, m.item.id);
      }
    }
    this.onChange();
  }

  private addRedirect(path: string, type: ResourceType, id: number): void {
    this.redirects.set(path.toLowerCase(), { path, type, id, createdAt: this.nowIso() });
  }

  /** Drops the redirect routes at `path` and below it: a resource took that path. */
  private dropRedirects(path: string): void {
    for (const key of [...this.redirects.keys()]) if (isSameOrBelow(key, path)) this.redirects.delete(key);
  }

  /** A bot user for a new project/group access token, member of its resource with that role. */
  createBot(resourceType: ResourceType, resourceId: number, accessLevel: number, displayName: string): User {
    const id = this.nextUserId++;
    const username = `${resourceType}_${resourceId}_bot_${randomBytes(16).toString('hex')}`;
    const bot: User = {
      id,
      username,
      name: displayName,
      email: `${username}@noreply.gitlab.example.com`,
      admin: false,
      bot: { resourceType, resourceId, accessLevel },
      createdAt: this.nowIso(),
    };
    this.addUser(bot);
    this.resourceMembers(resourceType, resourceId)?.set(id, accessLevel);
    return bot;
  }

  private resourceMembers(type: ResourceType, id: number): Map<number, number> | undefined {
    return type === 'project' ? this.projects.get(id)?.members : this.groups.get(id)?.members;
  }

  /**
   * Revokes a token. A resource token's bot also loses its membership, as
   * GitLab removes the bot user (`ResourceAccessTokens::RevokeService`).
   */
  revoke(t: TokenRecord): void {
    if (t.revoked) return;
    t.revoked = true;
    const user = this.users.get(t.userId);
    if (user?.bot && t.kind !== 'personal') {
      // Only when no other active token of the bot remains (rotation keeps the bot).
      const stillUsed = (this.families.get(t.familyId) ?? []).some((id) => {
        const other = this.tokens.get(id);
        return other !== undefined && other.userId === user.id && !other.revoked;
      });
      if (!stillUsed) {
        this.resourceMembers(user.bot.resourceType, user.bot.resourceId)?.delete(user.id);
        user.bot.accessLevel = null;
      }
    }
    this.onChange();
  }

  /** Every token of the rotation chain of `t` (GitLab's token family). */
  family(t: TokenRecord): TokenRecord[] {
    return (this.families.get(t.familyId) ?? []).flatMap((id) => {
      const f = this.tokens.get(id);
      return f ? [f] : [];
    });
  }

  /**
   * The tokens rotated from `t`, directly or through later rotations: GitLab's
   * `RevokeTokenFamilyService#pat_family` (a recursive walk over
   * `previous_personal_access_token_id`, `app/services/personal_access_tokens/revoke_token_family_service.rb`).
   */
  successors(t: TokenRecord): TokenRecord[] {
    const chain = new Set([t.id]);
    const out: TokenRecord[] = [];
    for (let grew = true; grew; ) {
      grew = false;
      for (const f of this.family(t)) {
        if (chain.has(f.id) || f.previousId === null || !chain.has(f.previousId)) continue;
        chain.add(f.id);
        out.push(f);
        grew = true;
      }
    }
    return out;
  }

  /**
   * Reuse detection: a rotate request authenticated with the revoked token `t`
   * revokes every active token rotated from it (`RevokeTokenFamilyService`:
   * `pat_family.active.update_all(revoked: true)`; in practice the newest one).
   * Returns the tokens it revoked.
   */
  revokeSuccessors(t: TokenRecord): TokenRecord[] {
    const active = this.successors(t).filter((f) => this.isActive(f));
    for (const f of active) this.revoke(f);
    return active;
  }

  // ------------------------------------------------------------------ persistence

  snapshot(): StateSnapshot {
    const humans = (members: Map<number, number>): Array<[number, number]> =>
      [...members].filter(([id]) => this.users.get(id)?.bot === null);
    return {
      version: 2,
      nextUserId: this.nextUserId,
      nextTokenId: this.nextTokenId,
      bots: [...this.users.values()].filter((u) => u.bot !== null),
      tokens: [...this.tokens.values()],
      groups: [...this.groups.values()].map((g) => ({
        id: g.id,
        path: g.path,
        name: g.name,
        description: g.description,
        parentId: g.parentId,
        createdAt: g.createdAt,
        seedPath: g.seedPath,
        members: humans(g.members),
      })),
      projects: [...this.projects.values()].map((p) => ({
        id: p.id,
        path: p.path,
        name: p.name,
        description: p.description,
        namespaceId: p.namespaceId,
        createdAt: p.createdAt,
        seedPath: p.seedPath,
        hasRepository: p.hasRepository,
        ...(p.creatorId === undefined ? {} : { creatorId: p.creatorId }),
        members: humans(p.members),
      })),
      redirects: [...this.redirects.values()],
      deployTokens: [...this.deployTokens.values()],
      nextDeployTokenId: this.nextDeployTokenId,
    };
  }

  /**
   * Loads what an earlier run saved on top of the seed: groups and projects
   * (moves, and those created through the API), redirect routes, bots and
   * tokens. The seed wins: a saved move applies only to a resource whose seed
   * path is unchanged, and a seed token is replaced by its saved record only
   * when the value is unchanged (same hash).
   */
  restore(s: StateSnapshot): void {
    this.restoreStructure(s);
    for (const bot of s.bots) {
      if (!bot.bot || this.users.has(bot.id)) continue;
      this.addUser(bot);
      if (bot.bot.accessLevel !== null)
        this.resourceMembers(bot.bot.resourceType, bot.bot.resourceId)?.set(bot.id, bot.bot.accessLevel);
    }
    const seedByKey = new Map<string, TokenRecord>();
    for (const t of this.tokens.values()) if (t.seedKey) seedByKey.set(t.seedKey, t);
    // A seed token whose current value is a saved record takes that record's place: its id,
    // expiry and rotation chain (previous_id, family) survive a restart, so a rotated seed
    // token (the STS's admin PAT) keeps the id GitLab gave it and reuse detection still works.
    const adopted = new Set<TokenRecord>();
    for (const t of s.tokens) {
      const seedToken = t.seedKey ? seedByKey.get(t.seedKey) : undefined;
      if (!seedToken || seedToken.sha256 !== t.sha256 || !this.users.has(t.userId)) continue;
      adopted.add(t);
      if (t.id !== seedToken.id && this.tokens.has(t.id)) {
        // The saved id is another seed token's now: keep the saved state under the seed's id.
        seedToken.revoked = t.revoked;
        seedToken.lastUsedAt = t.lastUsedAt;
        seedToken.createdAt = t.createdAt;
        continue;
      }
      this.unindexToken(seedToken);
      this.indexToken({ ...t, scopes: [...t.scopes] });
    }
    for (const t of s.tokens) {
      if (adopted.has(t) || !this.users.has(t.userId)) continue;
      // An older value of a seed token comes back only as history (revoked, e.g. rotated away):
      // a seed token whose value the seed changed is not revived.
      if (t.seedKey && seedByKey.has(t.seedKey) && !t.revoked) continue;
      if (this.tokens.has(t.id) || this.tokensByHash.has(t.sha256)) continue;
      this.indexToken({ ...t, scopes: [...t.scopes] });
    }
    this.nextUserId = Math.max(this.nextUserId, s.nextUserId);
    this.nextTokenId = Math.max(this.nextTokenId, s.nextTokenId);
    for (const t of Array.isArray(s.deployTokens) ? s.deployTokens : []) {
      const owner = t.kind === 'project' ? this.projects.get(t.resourceId) : this.groups.get(t.resourceId);
      if (!owner || this.deployTokens.has(t.id) || this.deployTokensByHash.has(t.sha256)) continue;
      this.indexDeployToken({ ...t, scopes: [...t.scopes] });
    }
    if (typeof s.nextDeployTokenId === 'number')
      this.nextDeployTokenId = Math.max(this.nextDeployTokenId, s.nextDeployTokenId);
  }

  /**
   * Saved groups and projects over the seed's. Every full path is rebuilt
   * from the parent chain and checked (parents exist, no cycle, paths unique);
   * when the saved state no longer fits the seed, none of it is applied.
   */
  private restoreStructure(s: StateSnapshot): void {
    if (s.version !== 2 || !Array.isArray(s.groups) || !Array.isArray(s.projects)) return;
    const sameSeed = (saved: string | null, current: string | null | undefined) =>
      saved !== null && current != null && saved.toLowerCase() === current.toLowerCase();
    // The seed's groups and projects, then the saved ones that still fit.
    const groups = new Map<number, SavedGroup>();
    for (const g of this.groups.values()) groups.set(g.id, { ...g, members: [...g.members] });
    for (const g of s.groups) {
      const current = this.groups.get(g.id);
      if (g.seedPath === null ? current !== undefined : !sameSeed(g.seedPath, current?.seedPath)) continue;
      groups.set(g.id, { ...g, members: current ? [...current.members] : g.members });
    }
    const projects = new Map<number, SavedProject>();
    for (const p of this.projects.values()) projects.set(p.id, { ...p, members: [...p.members] });
    for (const p of s.projects) {
      const current = this.projects.get(p.id);
      if (p.seedPath === null ? current !== undefined : !sameSeed(p.seedPath, current?.seedPath)) continue;
      projects.set(p.id, {
        ...p,
        members: current ? [...current.members] : p.members,
        hasRepository: current ? current.hasRepository : p.hasRepository,
      });
    }
    // Full paths from the leaves and the parent chain.
    const full = new Map<number, string>();
    const fullOf = (id: number, depth: number): string | undefined => {
      const known = full.get(id);
      if (known !== undefined) return known;
      const g = groups.get(id);
      if (!g || depth > groups.size) return undefined;
      const parent = g.parentId === null ? '' : fullOf(g.parentId, depth + 1);
      if (parent === undefined) return undefined;
      const path = parent === '' ? leafOf(g.path) : `${parent}/${leafOf(g.path)}`;
      full.set(id, path);
      return path;
    };
    const seen = new Set<string>();
    let fits = true;
    for (const g of groups.values()) {
      const path = fullOf(g.id, 0);
      if (path === undefined || seen.has(path.toLowerCase())) fits = false;
      else seen.add(path.toLowerCase());
      g.path = path ?? g.path;
    }
    for (const p of projects.values()) {
      const ns = full.get(p.namespaceId);
      const path = ns === undefined ? undefined : `${ns}/${leafOf(p.path)}`;
      if (path === undefined || seen.has(path.toLowerCase())) fits = false;
      else seen.add(path.toLowerCase());
      p.path = path ?? p.path;
    }
    if (!fits) {
      process.stderr.write(
        'gitlab emulator: saved groups and projects do not fit the seed; using the seed\n',
      );
      return;
    }
    const known = (members: Array<[number, number]>) =>
      new Map(members.filter(([id]) => this.users.get(id)?.bot === null));
    this.groupsByPath.clear();
    for (const g of groups.values()) {
      const current = this.groups.get(g.id);
      const group: Group = current ?? { ...g, members: known(g.members) };
      Object.assign(group, {
        path: g.path,
        name: g.name,
        description: g.description,
        parentId: g.parentId,
        createdAt: g.createdAt,
      });
      this.groups.set(group.id, group);
      this.groupsByPath.set(group.path.toLowerCase(), group);
    }
    this.projectsByPath.clear();
    for (const p of projects.values()) {
      const current = this.projects.get(p.id);
      const project: Project = current ?? { ...p, members: known(p.members) };
      Object.assign(project, {
        path: p.path,
        name: p.name,
        description: p.description,
        namespaceId: p.namespaceId,
        createdAt: p.createdAt,
        ...(p.creatorId === undefined ? {} : { creatorId: p.creatorId }),
      });
      this.projects.set(project.id, project);
      this.projectsByPath.set(project.path.toLowerCase(), project);
    }
    for (const r of s.redirects ?? []) {
      const target = r.type === 'project' ? this.projects.get(r.id) : this.groups.get(r.id);
      if (
        target &&
        !this.groupsByPath.has(r.path.toLowerCase()) &&
        !this.projectsByPath.has(r.path.toLowerCase())
      )
        this.redirects.set(r.path.toLowerCase(), { ...r });
    }
    this.bumpIds();
  }
}
