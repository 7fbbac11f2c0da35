/**
 * The emulator's in-memory GitLab: users, groups, projects, memberships and
 * tokens. Tokens are found by the SHA-256 of their value (one Map lookup) and
 * listed per resource from an index, so no request scans every token.
 * Token values are never stored: only their hash.
 */
import { createHash, randomBytes } from 'node:crypto';
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
  path: string;
  name: string;
  description: string;
  parentId: number | null;
  /** user id → access level (direct membership). */
  members: Map<number, number>;
  createdAt: string;
}

export interface Project {
  id: number;
  path: string;
  name: string;
  description: string;
  namespaceId: number;
  members: Map<number, number>;
  hasRepository: boolean;
  createdAt: string;
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

export interface StateSnapshot {
  version: 1;
  nextUserId: number;
  nextTokenId: number;
  bots: User[];
  tokens: TokenRecord[];
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** `glpat-` and 20 random URL-safe characters, like GitLab's tokens. */
export function generateTokenValue(): string {
  return `glpat-${randomBytes(15).toString('base64url')}`;
}

/** The first bot user id: far above seed ids. */
const FIRST_BOT_USER_ID = 10_000;

export class GitlabStore {
  readonly users = new Map<number, User>();
  readonly usersByName = new Map<string, User>();
  readonly groups = new Map<number, Group>();
  readonly groupsByPath = new Map<string, Group>();
  readonly projects = new Map<number, Project>();
  readonly projectsByPath = new Map<string, Project>();
  readonly tokens = new Map<number, TokenRecord>();
  private readonly tokensByHash = new Map<string, TokenRecord>();
  /** `project:1000` → token ids in creation order. */
  private readonly tokensByResource = new Map<string, number[]>();
  private readonly families = new Map<number, number[]>();
  private nextUserId = FIRST_BOT_USER_ID;
  private nextTokenId = 1;
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
      };
      this.projects.set(project.id, project);
      this.projectsByPath.set(project.path.toLowerCase(), project);
    }
    for (const u of this.users.values()) this.nextUserId = Math.max(this.nextUserId, u.id + 1);
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

  /** `:id` of the REST API: a numeric id or a (decoded) full path. */
  findProject(ref: string): Project | undefined {
    return /^\d+$/.test(ref) ? this.projects.get(Number(ref)) : this.projectsByPath.get(ref.toLowerCase());
  }

  findGroup(ref: string): Group | undefined {
    return /^\d+$/.test(ref) ? this.groups.get(Number(ref)) : this.groupsByPath.get(ref.toLowerCase());
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

  touch(t: TokenRecord): void {
    t.lastUsedAt = this.nowIso();
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

  // ------------------------------------------------------------------ persistence

  snapshot(): StateSnapshot {
    return {
      version: 1,
      nextUserId: this.nextUserId,
      nextTokenId: this.nextTokenId,
      bots: [...this.users.values()].filter((u) => u.bot !== null),
      tokens: [...this.tokens.values()],
    };
  }

  /**
   * Loads bots and tokens saved by an earlier run on top of the seed. A seed
   * token is replaced by its saved record only when the value is unchanged
   * (same hash), so a changed seed wins.
   */
  restore(s: StateSnapshot): void {
    for (const bot of s.bots) {
      if (!bot.bot || this.users.has(bot.id)) continue;
      this.addUser(bot);
      if (bot.bot.accessLevel !== null)
        this.resourceMembers(bot.bot.resourceType, bot.bot.resourceId)?.set(bot.id, bot.bot.accessLevel);
    }
    const seedByKey = new Map<string, TokenRecord>();
    for (const t of this.tokens.values()) if (t.seedKey) seedByKey.set(t.seedKey, t);
    for (const t of s.tokens) {
      if (!this.users.has(t.userId)) continue;
      const seedToken = t.seedKey ? seedByKey.get(t.seedKey) : undefined;
      if (seedToken) {
        if (seedToken.sha256 !== t.sha256) continue;
        // Same token: keep the saved state (revoked, last used) under the seed's id.
        seedToken.revoked = t.revoked;
        seedToken.lastUsedAt = t.lastUsedAt;
        seedToken.createdAt = t.createdAt;
        continue;
      }
      if (this.tokens.has(t.id) || this.tokensByHash.has(t.sha256)) continue;
      this.indexToken({ ...t, scopes: [...t.scopes] });
    }
    this.nextUserId = Math.max(this.nextUserId, s.nextUserId);
    this.nextTokenId = Math.max(this.nextTokenId, s.nextTokenId);
  }
}
