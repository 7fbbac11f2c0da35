/**
 * The YAML seed of the GitLab emulator: users (with personal access tokens),
 * groups (nested allowed), projects (members, repositories) and settings.
 * Every key is documented here; `README.md` shows an example.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { GitlabSeedError } from './errors.ts';
import { PERSONAL_SCOPES, parseAccessLevel } from './roles.ts';
import type { TokenFormat } from './store.ts';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
/**
 * A token value as GitLab accepts it: the `glpat-` prefix and at least 20 characters,
 * so both `glpat-` + 20 (GitLab ≤ 17.x) and the routable `glpat-….01.…` (18.x) fit.
 */
const TOKEN_VALUE = /^glpat-[A-Za-z0-9_.-]{20,}$/;

const tokenSeed = z.strictObject({
  /** Token name as GitLab shows it. */
  name: z.string().min(1),
  /** Personal access token scopes (`api`, `read_api`, `read_repository`, …). */
  scopes: z.array(z.enum(PERSONAL_SCOPES as [string, ...string[]])).min(1),
  /**
   * A fixed token value, kept as given whatever `settings.tokenFormat` says; omitted:
   * generated once (in `settings.tokenFormat`) and kept in `<stateDir>/seed-tokens.json`.
   */
  token: z.string().regex(TOKEN_VALUE, 'must be glpat- followed by at least 20 characters').optional(),
  /** `YYYY-MM-DD`; omitted: never expires. */
  expires_at: z.string().regex(DATE, 'must be YYYY-MM-DD').optional(),
  description: z.string().optional(),
});

const userSeed = z.strictObject({
  username: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  /** Display name; default: the username. */
  name: z.string().optional(),
  /** Fixed user id; default: 1, 2, … in order. */
  id: z.number().int().positive().optional(),
  /** An instance administrator: acts as Owner on every group and project, as on GitLab. */
  admin: z.boolean().optional(),
  email: z.string().optional(),
  tokens: z.array(tokenSeed).optional(),
});

const memberSeed = z.strictObject({
  user: z.string(),
  /** A role name (`guest`, `planner`, `reporter`, `developer`, `maintainer`, `owner`) or its number. */
  access_level: z.union([z.string(), z.number()]),
});

const pathSegments = z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'must be a/b/c path segments');

const groupSeed = z.strictObject({
  /** Full path; a nested group's parents are created when not listed. */
  path: pathSegments,
  /** Fixed id; default: 100, 101, … */
  id: z.number().int().positive().optional(),
  name: z.string().optional(),
  description: z.string().optional(),
  members: z.array(memberSeed).optional(),
});

const repositorySeed = z.union([
  z.boolean(),
  z.strictObject({
    /** Files of the first commit (path → content); default: a README.md. */
    files: z.record(z.string(), z.string()).optional(),
  }),
]);

const projectSeed = z.strictObject({
  /** `group[/subgroup…]/project`; the groups are created when not listed. */
  path: pathSegments.refine((p) => p.includes('/'), 'a project lives in a group: group/project'),
  /** Fixed id; default: 1000, 1001, … */
  id: z.number().int().positive().optional(),
  name: z.string().optional(),
  description: z.string().optional(),
  members: z.array(memberSeed).optional(),
  /** A bare git repository with a first commit (default true). */
  repository: repositorySeed.optional(),
});

const settingsSeed = z.strictObject({
  /** The authenticated API rate limit per token (`throttle_authenticated_api`); omitted: none. */
  rateLimit: z
    .strictObject({ limit: z.number().int().positive(), periodSeconds: z.number().positive() })
    .optional(),
  /** Longest token lifetime in days (GitLab: 365). */
  maxTokenLifetimeDays: z.number().int().positive().optional(),
  /**
   * `require_personal_access_token_expiry`: when true (GitLab's default), a
   * token created without `expires_at` gets the maximum lifetime.
   */
  requireTokenExpiry: z.boolean().optional(),
  /**
   * How the REST API answers a project asked for by the old full path of a
   * moved project (a redirect route). `redirect` (default, GitLab since MR
   * !128642/!137578, `lib/api/helpers.rb` `find_project!`): GET → `301` to the
   * same URL with the numeric id, any other method → `405 {"message":"Non GET
   * methods are not allowed for moved projects"}`. `not_found`: older GitLab,
   * `404 Project Not Found`. `follow`: not GitLab, a worst case for testing
   * clients: every method acts on the moved project (and old group paths
   * resolve too). Git over HTTP always follows redirects, as on GitLab.
   */
  movedProjects: z.enum(['redirect', 'not_found', 'follow']).optional(),
  /**
   * How new token values look. `routable` (default; GitLab 18.x and gitlab.com):
   * `glpat-` + payload + `.01.` + 9 characters, 51–54 in all. `legacy` (GitLab ≤ 17.x):
   * `glpat-` + 20 characters. Values already issued, and seed tokens with a fixed
   * `token`, keep their value either way.
   */
  tokenFormat: z.enum(['routable', 'legacy']).optional(),
});

export const gitlabSeedSchema = z.strictObject({
  users: z.array(userSeed).min(1),
  groups: z.array(groupSeed).optional(),
  projects: z.array(projectSeed).optional(),
  settings: settingsSeed.optional(),
});

export type GitlabSeedInput = z.input<typeof gitlabSeedSchema>;

export interface SeedToken {
  /** Stable key of the token in `seed-tokens.json`: `username/name`. */
  key: string;
  name: string;
  scopes: string[];
  value?: string;
  expiresAt: string | null;
  description: string | null;
}
export interface SeedUser {
  id: number;
  username: string;
  name: string;
  email: string;
  admin: boolean;
  tokens: SeedToken[];
}
export interface SeedMember {
  userId: number;
  accessLevel: number;
}
export interface SeedGroup {
  id: number;
  path: string;
  name: string;
  description: string;
  parentPath: string | null;
  members: SeedMember[];
}
export interface SeedProject {
  id: number;
  path: string;
  name: string;
  description: string;
  namespacePath: string;
  members: SeedMember[];
  /** null: no repository. */
  repositoryFiles: Record<string, string> | null;
}
export type MovedProjectsMode = 'redirect' | 'not_found' | 'follow';

export interface ResolvedSeed {
  users: SeedUser[];
  groups: SeedGroup[];
  projects: SeedProject[];
  settings: {
    rateLimit: { limit: number; periodSeconds: number } | null;
    maxTokenLifetimeDays: number;
    requireTokenExpiry: boolean;
    movedProjects: MovedProjectsMode;
    tokenFormat: TokenFormat;
  };
}

/** The built-in dev seed: `root` (admin), `alice` (developer), `platform/internal-lib`, `platform/other-service`. */
export function defaultGitlabSeed(): GitlabSeedInput {
  return {
    users: [
      {
        username: 'root',
        name: 'Administrator',
        id: 1,
        admin: true,
        tokens: [{ name: 'tanuki-sts-admin', scopes: ['api'] }],
      },
      {
        username: 'alice',
        name: 'Alice Developer',
        id: 2,
        tokens: [{ name: 'alice-pat', scopes: ['api', 'read_repository', 'write_repository'] }],
      },
    ],
    groups: [{ path: 'platform', id: 100, name: 'Platform' }],
    projects: [
      {
        path: 'platform/internal-lib',
        id: 1000,
        name: 'internal-lib',
        members: [{ user: 'alice', access_level: 'developer' }],
        repository: true,
      },
      { path: 'platform/other-service', id: 1001, name: 'other-service', repository: true },
    ],
  };
}

export function loadSeedFile(file: string): unknown {
  try {
    return parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GitlabSeedError(`cannot read GitLab seed ${file}: ${(err as Error).message}`);
  }
}

function readme(projectPath: string): Record<string, string> {
  return { 'README.md': `# ${projectPath}\n\nSeeded by the tanuki-sts GitLab emulator.\n` };
}

/** Validates a parsed seed and fills in ids, parents and numeric roles. */
export function resolveSeed(raw: unknown): ResolvedSeed {
  const parsed = gitlabSeedSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || '(root)';
    throw new GitlabSeedError(`invalid GitLab seed at ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const seed = parsed.data;

  const usedUserIds = new Set(seed.users.flatMap((u) => (u.id ? [u.id] : [])));
  let nextUserId = 1;
  const users: SeedUser[] = [];
  const userIds = new Map<string, number>();
  for (const u of seed.users) {
    if (userIds.has(u.username)) throw new GitlabSeedError(`duplicate user ${u.username}`);
    let id = u.id;
    if (id === undefined) {
      while (usedUserIds.has(nextUserId)) nextUserId++;
      id = nextUserId++;
      usedUserIds.add(id);
    }
    userIds.set(u.username, id);
    const names = new Set<string>();
    users.push({
      id,
      username: u.username,
      name: u.name ?? u.username,
      email: u.email ?? `${u.username}@example.com`,
      admin: u.admin ?? false,
      tokens: (u.tokens ?? []).map((t) => {
        if (names.has(t.name))
          throw new GitlabSeedError(`duplicate token name ${t.name} of user ${u.username}`);
        names.add(t.name);
        return {
          key: `${u.username}/${t.name}`,
          name: t.name,
          scopes: t.scopes,
          value: t.token,
          expiresAt: t.expires_at ?? null,
          description: t.description ?? null,
        };
      }),
    });
  }

  const members = (list: Array<{ user: string; access_level: string | number }> | undefined, where: string) =>
    (list ?? []).map((m) => {
      const userId = userIds.get(m.user);
      if (userId === undefined) throw new GitlabSeedError(`${where}: unknown user ${m.user}`);
      const accessLevel = parseAccessLevel(m.access_level);
      if (accessLevel === undefined)
        throw new GitlabSeedError(`${where}: unknown access_level ${m.access_level}`);
      return { userId, accessLevel };
    });

  // Groups: listed ones first (so their ids are kept), then missing parents.
  const groupSpecs = new Map<string, (typeof seed.groups & object)[number]>();
  for (const g of seed.groups ?? []) {
    if (groupSpecs.has(g.path)) throw new GitlabSeedError(`duplicate group ${g.path}`);
    groupSpecs.set(g.path, g);
  }
  const neededGroups = new Set<string>();
  const addWithParents = (path: string) => {
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) neededGroups.add(parts.slice(0, i).join('/'));
  };
  for (const g of seed.groups ?? []) addWithParents(g.path);
  for (const p of seed.projects ?? []) addWithParents(p.path.split('/').slice(0, -1).join('/'));

  const usedGroupIds = new Set((seed.groups ?? []).flatMap((g) => (g.id ? [g.id] : [])));
  let nextGroupId = 100;
  const groups: SeedGroup[] = [...neededGroups]
    .sort((a, b) => a.split('/').length - b.split('/').length)
    .map((path) => {
      const spec = groupSpecs.get(path);
      let id = spec?.id;
      if (id === undefined) {
        while (usedGroupIds.has(nextGroupId)) nextGroupId++;
        id = nextGroupId++;
        usedGroupIds.add(id);
      }
      const slash = path.lastIndexOf('/');
      const leaf = path.slice(slash + 1);
      return {
        id,
        path,
        name: spec?.name ?? leaf,
        description: spec?.description ?? '',
        parentPath: slash < 0 ? null : path.slice(0, slash),
        members: members(spec?.members, `group ${path}`),
      };
    });

  const usedProjectIds = new Set((seed.projects ?? []).flatMap((p) => (p.id ? [p.id] : [])));
  let nextProjectId = 1000;
  const projectPaths = new Set<string>();
  const projects: SeedProject[] = (seed.projects ?? []).map((p) => {
    if (projectPaths.has(p.path) || neededGroups.has(p.path))
      throw new GitlabSeedError(`duplicate path ${p.path}`);
    projectPaths.add(p.path);
    let id = p.id;
    if (id === undefined) {
      while (usedProjectIds.has(nextProjectId)) nextProjectId++;
      id = nextProjectId++;
      usedProjectIds.add(id);
    }
    const slash = p.path.lastIndexOf('/');
    const repo = p.repository ?? true;
    return {
      id,
      path: p.path,
      name: p.name ?? p.path.slice(slash + 1),
      description: p.description ?? '',
      namespacePath: p.path.slice(0, slash),
      members: members(p.members, `project ${p.path}`),
      repositoryFiles: repo === false ? null : repo === true || !repo.files ? readme(p.path) : repo.files,
    };
  });

  return {
    users,
    groups,
    projects,
    settings: {
      rateLimit: seed.settings?.rateLimit ?? null,
      maxTokenLifetimeDays: seed.settings?.maxTokenLifetimeDays ?? 365,
      requireTokenExpiry: seed.settings?.requireTokenExpiry ?? true,
      movedProjects: seed.settings?.movedProjects ?? 'redirect',
      tokenFormat: seed.settings?.tokenFormat ?? 'routable',
    },
  };
}
