/**
 * Project and group access tokens (`lib/api/resource_access_tokens.rb`,
 * `app/services/resource_access_tokens/create_service.rb`,
 * `revoke_service.rb`, `doc/api/project_access_tokens.md`,
 * `doc/api/group_access_tokens.md`). Checks run in GitLab's order: Grape
 * parameter validation, the resource (404), the caller's permission, the
 * role, then the token model's validations.
 */
import type { Caller } from './auth.ts';
import { resourceTokenEntity } from './entities.ts';
import { apiErrors } from './errors.ts';
import { addDays, checkExpiry, parseDate } from './expiry.ts';
import { INVALID, type Params } from './http.ts';
import { pageRequest, paginate } from './pagination.ts';
import type { Resource } from './resources.ts';
import { RESOURCE_BOT_SCOPES, RESOURCE_TOKEN_ACCESS_LEVELS } from './roles.ts';
import { type GitlabStore, generateTokenValue, type TokenFormat, type TokenRecord } from './store.ts';

export interface TokenResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface TokenSettings {
  maxTokenLifetimeDays: number;
  requireTokenExpiry: boolean;
  /** How new token values look (`settings.tokenFormat`). */
  tokenFormat: TokenFormat;
}

const LIST_SORTS = [
  'created_asc',
  'created_desc',
  'expires_asc',
  'expires_desc',
  'last_used_asc',
  'last_used_desc',
  'name_asc',
  'name_desc',
];

/** `find_token`: a token of this resource's bots, by numeric id. */
function findToken(store: GitlabStore, resource: Resource, tokenId: string): TokenRecord | undefined {
  if (!/^\d+$/.test(tokenId)) return undefined;
  const t = store.tokens.get(Number(tokenId));
  return t && t.kind === resource.type && t.resourceId === resource.id ? t : undefined;
}

function tokenNotFound(resource: Resource) {
  // not_found!("#{source_type} Access Token") — the source type is lower case.
  return apiErrors.notFound(`${resource.type} Access Token`);
}

export function listResourceTokens(
  store: GitlabStore,
  caller: Caller,
  resource: Resource,
  params: Params,
  requestUrl: URL,
): TokenResult {
  const filters = listFilters(params);
  const pageReq = pageRequest(params);
  // `next unauthorized! unless current_user.can?(:read_resource_access_tokens, resource)`
  if (resource.roleOf(caller.user) < resource.manageLevel) throw apiErrors.unauthorized();
  const tokens = store.resourceTokens(resource.type, resource.id).filter((t) => filters.match(t, store));
  if (filters.sort) tokens.sort(filters.sort);
  const { page, headers } = paginate(tokens, pageReq, requestUrl);
  return { status: 200, body: page.map((t) => resourceTokenEntity(store, t)), headers };
}

export function getResourceToken(
  store: GitlabStore,
  caller: Caller,
  resource: Resource,
  tokenId: string,
): TokenResult {
  if (resource.roleOf(caller.user) < resource.manageLevel) throw apiErrors.unauthorized();
  const t = findToken(store, resource, tokenId);
  if (!t) throw tokenNotFound(resource);
  return { status: 200, body: resourceTokenEntity(store, t) };
}

export function createResourceToken(
  store: GitlabStore,
  settings: TokenSettings,
  caller: Caller,
  resourceOf: () => Resource,
  params: Params,
): TokenResult {
  // Grape validation, in the order the parameters are declared.
  const problems: string[] = [];
  const name = params.string('name');
  if (name === undefined) problems.push('name is missing');
  else if (name === INVALID) problems.push('name is invalid');
  const description = params.string('description');
  if (description === INVALID) problems.push('description is invalid');
  const expiresRaw = params.string('expires_at');
  const expiresAt = typeof expiresRaw === 'string' && expiresRaw !== '' ? parseDate(expiresRaw) : undefined;
  if (expiresRaw === INVALID || (typeof expiresRaw === 'string' && expiresRaw !== '' && !expiresAt)) {
    problems.push('expires_at is invalid');
  }
  const scopes = params.array('scopes');
  if (scopes === undefined) problems.push('scopes is missing');
  else if (scopes === INVALID) problems.push('scopes is invalid');
  else if (!scopes.every((s) => RESOURCE_BOT_SCOPES.includes(s)))
    problems.push('scopes does not have a valid value');
  const levelRaw = params.string('access_level');
  let accessLevel = 40;
  if (levelRaw !== undefined) {
    accessLevel = levelRaw !== INVALID && /^\d+$/.test(levelRaw) ? Number(levelRaw) : Number.NaN;
    if (Number.isNaN(accessLevel)) problems.push('access_level is invalid');
    else if (!RESOURCE_TOKEN_ACCESS_LEVELS.includes(accessLevel))
      problems.push('access_level does not have a valid value');
  }
  if (problems.length > 0) throw apiErrors.invalidParams(problems);

  const resource = resourceOf();
  const callerRole = resource.roleOf(caller.user);
  // CreateService#has_permission_to_create?: `create_resource_access_tokens` needs
  // Maintainer (project) / Owner (group), and is never granted to bot users, so a
  // project or group access token cannot create tokens.
  if (caller.user.bot !== null || callerRole < resource.manageLevel) {
    throw apiErrors.badRequest(`User does not have permission to create ${resource.type} access token`);
  }
  // CreateService#validate_access_level: no role above the creator's.
  if (accessLevel > callerRole) {
    throw apiErrors.badRequest(
      'Access level of the token contains permissions not held by the creating user',
    );
  }
  // PersonalAccessToken model validations.
  const tokenName = name as string;
  const tokenScopes = scopes as string[];
  if (tokenName.trim() === '') throw apiErrors.badRequest("Name can't be blank");
  if (tokenScopes.length === 0) throw apiErrors.badRequest("Scopes can't be blank");
  const expiry = tokenExpiry(store, settings, expiresAt, settings.maxTokenLifetimeDays);

  const bot = store.createBot(resource.type, resource.id, accessLevel, tokenName);
  const value = generateTokenValue(settings.tokenFormat, bot.id);
  const token = store.addToken(value, {
    kind: resource.type,
    userId: bot.id,
    name: tokenName,
    description: typeof description === 'string' ? description : null,
    scopes: [...new Set(tokenScopes)],
    expiresAt: expiry,
    resourceId: resource.id,
    accessLevel,
    previousId: null,
    seedKey: null,
  });
  return { status: 201, body: resourceTokenEntity(store, token, value) };
}

export function revokeResourceToken(
  store: GitlabStore,
  caller: Caller,
  resource: Resource,
  tokenId: string,
): TokenResult {
  const t = findToken(store, resource, tokenId);
  // A revoked token's bot is gone on GitLab (RevokeService deletes it), so it is not found again.
  if (!t || t.revoked) throw tokenNotFound(resource);
  if (resource.roleOf(caller.user) < resource.manageLevel) {
    const bot = store.users.get(t.userId);
    throw apiErrors.badRequest(`${caller.user.name} cannot delete ${bot?.name ?? 'the bot user'}`);
  }
  store.revoke(t);
  return { status: 204 };
}

export function rotateResourceToken(
  store: GitlabStore,
  settings: TokenSettings,
  caller: Caller,
  resource: Resource,
  tokenId: string,
  params: Params,
): TokenResult {
  const expiresRaw = params.string('expires_at');
  const expiresAt = typeof expiresRaw === 'string' && expiresRaw !== '' ? parseDate(expiresRaw) : undefined;
  if (expiresRaw === INVALID || (typeof expiresRaw === 'string' && expiresRaw !== '' && !expiresAt)) {
    throw apiErrors.invalidParams(['expires_at is invalid']);
  }
  const callerRole = resource.roleOf(caller.user);
  let token: TokenRecord | undefined;
  if (tokenId === 'self') {
    // A project/group access token may rotate itself.
    token =
      caller.token.kind === resource.type && caller.token.resourceId === resource.id
        ? caller.token
        : undefined;
  } else if (callerRole >= resource.manageLevel && caller.user.bot === null) {
    token = findToken(store, resource, tokenId);
  }
  // "Only admins should be informed if the token doesn't exist"
  if (!token) throw caller.user.admin ? apiErrors.notFound() : apiErrors.unauthorized();

  if (token.revoked) {
    // Reuse of a revoked token: the whole token family is revoked.
    for (const f of store.family(token)) store.revoke(f);
    throw apiErrors.badRequest('token already revoked');
  }
  if (tokenId !== 'self' && !caller.user.admin && (token.accessLevel ?? 0) > callerRole) {
    throw apiErrors.badRequest('Not eligible to rotate token with access level higher than the user');
  }
  const value = rotate(store, settings, token, expiresAt);
  return { status: 200, body: resourceTokenEntity(store, value.record, value.value) };
}

/**
 * A new token with the same owner, name, scopes and role; the old one is
 * revoked at once. Without `expires_at` the new token expires after one week
 * when expiry is required (GitLab's RotateService), else never.
 */
export function rotate(
  store: GitlabStore,
  settings: TokenSettings,
  old: TokenRecord,
  expiresAt: string | undefined,
): { record: TokenRecord; value: string } {
  // A rotation without `expires_at` defaults to a week (RotateService::EXPIRATION_PERIOD).
  const expiry = tokenExpiry(store, settings, expiresAt, 7);
  const value = generateTokenValue(settings.tokenFormat, old.userId);
  const record = store.addToken(value, {
    kind: old.kind,
    userId: old.userId,
    name: old.name,
    description: old.description,
    scopes: [...old.scopes],
    expiresAt: expiry,
    resourceId: old.resourceId,
    accessLevel: old.accessLevel,
    previousId: old.id,
    familyId: old.familyId,
    seedKey: old.seedKey,
  });
  store.revoke(old);
  if (old.seedKey) store.onSeedTokenRotated(old.seedKey, value);
  return { record, value };
}

// ------------------------------------------------------------------ list filters

interface ListFilters {
  match(t: TokenRecord, store: GitlabStore): boolean;
  sort?: (a: TokenRecord, b: TokenRecord) => number;
}

function listFilters(params: Params): ListFilters {
  const problems: string[] = [];
  const str = (n: string) => {
    const v = params.string(n);
    if (v === INVALID) {
      problems.push(`${n} is invalid`);
      return undefined;
    }
    return v === '' ? undefined : v;
  };
  const time = (n: string) => {
    const v = str(n);
    if (v === undefined) return undefined;
    const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
    if (Number.isNaN(ms)) problems.push(`${n} is invalid`);
    return ms;
  };
  const state = str('state');
  if (state !== undefined && state !== 'active' && state !== 'inactive')
    problems.push('state does not have a valid value');
  const revokedRaw = str('revoked');
  if (revokedRaw !== undefined && revokedRaw !== 'true' && revokedRaw !== 'false')
    problems.push('revoked is invalid');
  const search = str('search')?.toLowerCase();
  const createdAfter = time('created_after');
  const createdBefore = time('created_before');
  const expiresAfter = time('expires_after');
  const expiresBefore = time('expires_before');
  const lastUsedAfter = time('last_used_after');
  const lastUsedBefore = time('last_used_before');
  const sortKey = str('sort');
  if (sortKey !== undefined && !LIST_SORTS.includes(sortKey))
    problems.push('sort does not have a valid value');
  if (problems.length > 0) throw apiErrors.invalidParams(problems);

  const expiresMs = (t: TokenRecord) =>
    t.expiresAt === null ? null : Date.parse(`${t.expiresAt}T00:00:00Z`);
  return {
    // Cheapest tests first, and dates parsed only when a date filter asks: a project with tens of
    // thousands of tokens (the bench) is listed by name for every revocation.
    match(t, store) {
      if (search !== undefined && !matchesSearch(t, search)) return false;
      if (revokedRaw !== undefined && t.revoked !== (revokedRaw === 'true')) return false;
      if (state === 'active' && !store.isActive(t)) return false;
      if (state === 'inactive' && store.isActive(t)) return false;
      if (createdAfter !== undefined || createdBefore !== undefined) {
        const created = Date.parse(t.createdAt);
        if (createdAfter !== undefined && created < createdAfter) return false;
        if (createdBefore !== undefined && created > createdBefore) return false;
      }
      if (expiresAfter !== undefined || expiresBefore !== undefined) {
        const exp = expiresMs(t);
        if (expiresAfter !== undefined && (exp === null || exp < expiresAfter)) return false;
        if (expiresBefore !== undefined && (exp === null || exp >= expiresBefore)) return false;
      }
      if (lastUsedAfter !== undefined || lastUsedBefore !== undefined) {
        const used = t.lastUsedAt === null ? null : Date.parse(t.lastUsedAt);
        if (lastUsedAfter !== undefined && (used === null || used < lastUsedAfter)) return false;
        if (lastUsedBefore !== undefined && (used === null || used > lastUsedBefore)) return false;
      }
      return true;
    },
    sort: sortKey === undefined ? undefined : sorter(sortKey),
  };
}

/**
 * `PersonalAccessToken.search` is `fuzzy_search(query, [:name])`
 * (`lib/gitlab/sql/pattern.rb`): a case-insensitive substring match from 3
 * characters on, an exact (case-insensitive) match for shorter queries.
 */
function matchesSearch(t: TokenRecord, query: string): boolean {
  // A name shorter than the query cannot contain it: no lower-casing needed.
  if (t.name.length < query.length) return false;
  const n = lowerName(t);
  return query.length >= 3 ? n.includes(query) : n === query;
}

/** Token names never change: lower-case each once, not on every listing (the STS lists by name for every revocation). */
const lowerNames = new WeakMap<TokenRecord, string>();
function lowerName(t: TokenRecord): string {
  let n = lowerNames.get(t);
  if (n === undefined) {
    n = t.name.toLowerCase();
    lowerNames.set(t, n);
  }
  return n;
}

function sorter(key: string): (a: TokenRecord, b: TokenRecord) => number {
  const desc = key.endsWith('_desc');
  const field = key.replace(/_(asc|desc)$/, '');
  const fieldOf = (t: TokenRecord): string =>
    field === 'created'
      ? t.createdAt
      : field === 'expires'
        ? (t.expiresAt ?? '')
        : field === 'last_used'
          ? (t.lastUsedAt ?? '')
          : t.name;
  return (a, b) => {
    const x = fieldOf(a);
    const y = fieldOf(b);
    const c = x < y ? -1 : x > y ? 1 : a.id - b.id;
    return desc ? -c : c;
  };
}

/** The `expires_at` a new or rotated token gets: the one asked for (checked), or the default when expiry is required. */
function tokenExpiry(
  store: GitlabStore,
  settings: TokenSettings,
  expiresAt: string | undefined,
  defaultDays: number,
): string | null {
  const today = store.today();
  if (expiresAt) {
    checkExpiry(expiresAt, today, settings.maxTokenLifetimeDays);
    return expiresAt;
  }
  return settings.requireTokenExpiry ? addDays(today, defaultDays) : null;
}
