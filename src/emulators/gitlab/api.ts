/**
 * REST API v4 (`/api/v4/…`): a route table, authentication and scopes,
 * then the handlers. Unknown routes answer as Grape does,
 * `404 {"error":"404 Not Found"}`, before any authentication.
 */
import type { IncomingMessage } from 'node:http';
import {
  createResourceToken,
  getResourceToken,
  listResourceTokens,
  revokeResourceToken,
  rotate,
  rotateResourceToken,
  type TokenResult,
  type TokenSettings,
} from './access-tokens.ts';
import { type Caller, requireApiScope } from './auth.ts';
import type { MovedProjectsMode } from './config.ts';
import {
  createDeployToken,
  deleteDeployToken,
  getDeployToken,
  listAllDeployTokens,
  listDeployTokens,
} from './deploy-tokens.ts';
import { groupEntity, personalTokenEntity, projectEntity, userEntity } from './entities.ts';
import { apiErrors } from './errors.ts';
import { parseDate } from './expiry.ts';
import { INVALID, Params } from './http.ts';
import {
  createGroup,
  createProject,
  transferGroup,
  transferProject,
  updateGroup,
  updateProject,
} from './moves.ts';
import { pageRequest, paginate } from './pagination.ts';
import { readRepositoryFile } from './repos.ts';
import { resourceOf } from './resources.ts';
import { REPORTER } from './roles.ts';
import type { GitlabStore, ResourceType, TokenRecord } from './store.ts';

export interface ApiSettings extends TokenSettings {
  /** How a moved project's old path is answered (`settings.movedProjects`; `POST /_emulator/settings`). */
  movedProjects: MovedProjectsMode;
}

export interface ApiContext {
  store: GitlabStore;
  settings: ApiSettings;
  stateDir: string;
  /** `http://127.0.0.1:PORT`, for `web_url` fields. */
  baseUrl: string;
}

export interface ApiCall {
  ctx: ApiContext;
  req: IncomingMessage;
  caller: Caller;
  /** Decoded `:name` segments. */
  path: Record<string, string>;
  params: Params;
  /** The request URL as the client sent it (for Link headers). */
  url: URL;
}

export interface ApiResult {
  status: number;
  body?: unknown;
  /** A raw body (file downloads) instead of JSON. */
  raw?: Buffer;
  headers?: Record<string, string>;
}

export interface Route {
  method: string;
  /** e.g. `/projects/:id/access_tokens`; also the stats key. */
  template: string;
  segments: string[];
  /** Scopes accepted besides `api` (and `read_api` on GET). */
  extraScopes?: string[];
  /** Any valid token may call it (`DELETE /personal_access_tokens/self`). */
  anyScope?: boolean;
  handler(call: ApiCall): Promise<ApiResult> | ApiResult;
}

function route(
  method: string,
  template: string,
  handler: Route['handler'],
  opts: Pick<Route, 'extraScopes' | 'anyScope'> = {},
): Route {
  return { method, template, segments: template.slice(1).split('/'), handler, ...opts };
}

const tokenRoutes = (type: ResourceType): Route[] => {
  const base = `/${type}s/:id/access_tokens`;
  const resourceOfToken = (c: ApiCall) => resourceOf(c, type);
  return [
    route('GET', base, (c) => listResourceTokens(c.ctx.store, c.caller, resourceOfToken(c), c.params, c.url)),
    route('POST', base, (c) =>
      createResourceToken(c.ctx.store, c.ctx.settings, c.caller, () => resourceOfToken(c), c.params),
    ),
    route('GET', `${base}/:token_id`, (c) =>
      getResourceToken(c.ctx.store, c.caller, resourceOfToken(c), c.path.token_id!),
    ),
    route('DELETE', `${base}/:token_id`, (c) =>
      revokeResourceToken(c.ctx.store, c.caller, resourceOfToken(c), c.path.token_id!),
    ),
    route(
      'POST',
      `${base}/:token_id/rotate`,
      (c) =>
        rotateResourceToken(
          c.ctx.store,
          c.ctx.settings,
          c.caller,
          resourceOfToken(c),
          c.path.token_id!,
          c.params,
        ),
      { extraScopes: ['self_rotate'] },
    ),
  ];
};

/** `/{projects,groups}/:id/deploy_tokens[/:token_id]` (deploy-tokens.ts). */
const deployTokenRoutes = (type: ResourceType): Route[] => {
  const base = `/${type}s/:id/deploy_tokens`;
  const resourceOfToken = (c: ApiCall) => () => resourceOf(c, type);
  return [
    route('GET', base, (c) => listDeployTokens(c.ctx.store, c.caller, resourceOfToken(c), c.params, c.url)),
    route('POST', base, (c) => createDeployToken(c.ctx.store, c.caller, resourceOfToken(c), c.params)),
    route('GET', `${base}/:token_id`, (c) =>
      getDeployToken(c.ctx.store, c.caller, resourceOfToken(c), c.path.token_id!),
    ),
    route('DELETE', `${base}/:token_id`, (c) =>
      deleteDeployToken(c.ctx.store, c.caller, resourceOfToken(c), c.path.token_id!),
    ),
  ];
};

/**
 * `GET /users` (`doc/api/users.md`, "List users"): every user, bots included, oldest first,
 * paginated with `X-Total`; filters `username` (exact, case-insensitive), `without_project_bots`,
 * `humans`. Any authenticated user may list (the emulator shows everyone the same fields).
 */
function listUsers(c: ApiCall): ApiResult {
  const problems: string[] = [];
  const bool = (name: string): boolean | undefined => {
    const v = c.params.string(name);
    if (v === undefined || v === '') return undefined;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    problems.push(`${name} is invalid`);
    return undefined;
  };
  const username = c.params.string('username');
  if (username === INVALID) problems.push('username is invalid');
  const withoutBots = bool('without_project_bots');
  const humans = bool('humans');
  const pageReq = pageRequest(c.params);
  if (problems.length > 0) throw apiErrors.invalidParams(problems);
  const users = [...c.ctx.store.users.values()]
    .filter(
      (u) =>
        typeof username !== 'string' ||
        username === '' ||
        u.username.toLowerCase() === username.toLowerCase(),
    )
    .filter((u) => !((withoutBots || humans) && u.bot !== null))
    .sort((a, b) => a.id - b.id);
  const { page, headers } = paginate(users, pageReq, c.url);
  return { status: 200, body: page.map((u) => userEntity(c.ctx.baseUrl, u, false)), headers };
}

/**
 * The GitLab version the emulator follows (README.md), as `GET /version` and
 * `GET /metadata` answer it (`doc/api/metadata.md`; the recordings show
 * `{"version":"19.1.1-ee","revision":…,"kas":{…},"enterprise":true}`).
 */
export const EMULATED_VERSION = '19.1.1';

const metadata = () => ({
  status: 200,
  body: {
    version: `${EMULATED_VERSION}-emulator`,
    revision: 'emulator',
    kas: { enabled: false, externalUrl: null, externalK8sProxyUrl: null, version: null },
    enterprise: false,
  },
});

export const ROUTES: Route[] = [
  route('GET', '/version', metadata),
  route('GET', '/metadata', metadata),
  route('GET', '/user', (c) => ({ status: 200, body: userEntity(c.ctx.baseUrl, c.caller.user, true) }), {
    extraScopes: ['read_user'],
  }),
  route('GET', '/users', listUsers),
  route('GET', '/deploy_tokens', (c) => listAllDeployTokens(c.ctx.store, c.caller, c.params, c.url)),
  route('GET', '/projects/:id', (c) => {
    const r = resourceOf(c, 'project');
    return { status: 200, body: projectEntity(c.ctx.store, c.ctx.baseUrl, r.project!, c.caller.user) };
  }),
  route('POST', '/projects', createProject),
  route('PUT', '/projects/:id', updateProject),
  route('PUT', '/projects/:id/transfer', transferProject),
  route('GET', '/groups/:id', (c) => {
    const r = resourceOf(c, 'group');
    return { status: 200, body: groupEntity(c.ctx.store, c.ctx.baseUrl, r.group!, c.caller.user) };
  }),
  route('POST', '/groups', createGroup),
  route('PUT', '/groups/:id', updateGroup),
  route('POST', '/groups/:id/transfer', transferGroup),
  route('GET', '/projects/:id/repository/files/:file_path/raw', rawFile),
  route('GET', '/personal_access_tokens/self', (c) => ({
    status: 200,
    body: personalTokenEntity(c.ctx.store, c.caller.token, { lastUsedIps: true }),
  })),
  route('POST', '/personal_access_tokens/self/rotate', rotateSelf, { extraScopes: ['self_rotate'] }),
  route(
    'DELETE',
    '/personal_access_tokens/self',
    (c) => {
      c.ctx.store.revoke(c.caller.token);
      return { status: 204 };
    },
    { anyScope: true },
  ),
  // After the `self` routes: `matchRoute` takes the first match.
  route('GET', '/personal_access_tokens/:id', getPersonalToken),
  route('POST', '/personal_access_tokens/:id/rotate', rotatePersonalToken),
  ...tokenRoutes('project'),
  ...tokenRoutes('group'),
  ...deployTokenRoutes('project'),
  ...deployTokenRoutes('group'),
];

/** The route for a method and the raw (still encoded) path below `/api/v4`. */
export function matchRoute(
  method: string,
  rawPath: string,
): { route: Route; path: Record<string, string> } | { route: undefined; pathExists: boolean } {
  const parts = rawPath.replace(/^\/+/, '').replace(/\/+$/, '').split('/');
  let pathExists = false;
  for (const r of ROUTES) {
    if (r.segments.length !== parts.length) continue;
    const path: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < parts.length && ok; i++) {
      const seg = r.segments[i]!;
      const part = parts[i]!;
      if (seg.startsWith(':')) {
        if (part === '') ok = false;
        else {
          try {
            path[seg.slice(1)] = decodeURIComponent(part);
          } catch {
            ok = false;
          }
        }
      } else ok = seg === part;
    }
    if (!ok) continue;
    if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { route: r, path };
    pathExists = true;
  }
  return { route: undefined, pathExists };
}

/** Scope check, then parameters, then the handler. */
export async function runRoute(
  ctx: ApiContext,
  req: IncomingMessage,
  url: URL,
  matched: { route: Route; path: Record<string, string> },
  caller: Caller,
): Promise<ApiResult> {
  const { route: r, path } = matched;
  if (!r.anyScope) requireApiScope(caller, req.method ?? 'GET', r.extraScopes);
  const params = await Params.from(req, url.searchParams);
  return r.handler({ ctx, req, caller, path, params, url });
}

async function rawFile(c: ApiCall): Promise<ApiResult> {
  const r = resourceOf(c, 'project');
  // Private project: reading code needs Reporter (`download_code`).
  if (r.roleOf(c.caller.user) < REPORTER) throw apiErrors.forbidden();
  const ref = c.params.string('ref');
  const refName = typeof ref === 'string' && ref !== '' ? ref : 'HEAD';
  const bytes = r.project!.hasRepository
    ? await readRepositoryFile(c.ctx.stateDir, r.project!.id, refName, c.path.file_path!)
    : undefined;
  if (!bytes) throw apiErrors.notFound('File');
  return { status: 200, raw: bytes, headers: { 'content-type': 'text/plain; charset=utf-8' } };
}

/** Grape's `optional :expires_at, type: Date`: absent or empty = none; anything but a date is `400 {"error":"expires_at is invalid"}`. */
function expiresAtParam(params: Params): string | undefined {
  const raw = params.string('expires_at');
  const expiresAt = typeof raw === 'string' && raw !== '' ? parseDate(raw) : undefined;
  if (raw === INVALID || (typeof raw === 'string' && raw !== '' && !expiresAt)) {
    throw apiErrors.invalidParams(['expires_at is invalid']);
  }
  return expiresAt;
}

/**
 * `POST /personal_access_tokens/self/rotate` (`lib/api/personal_access_tokens/self_rotation.rb`,
 * GitLab 16.10+; `api` or `self_rotate` scope): the token that authenticates is rotated.
 */
function rotateSelf(c: ApiCall): TokenResult {
  const expiresAt = expiresAtParam(c.params);
  const { record, value } = rotate(c.ctx.store, c.ctx.settings, c.caller.token, expiresAt);
  return { status: 200, body: personalTokenEntity(c.ctx.store, record, { value }) };
}

/**
 * A personal access token by numeric id, if the caller may manage it: its own, or
 * any for an administrator (`Ability.allowed?(current_user, :manage_user_personal_access_token,
 * token&.user)`, `lib/api/personal_access_tokens.rb`). Otherwise "Only admins should be
 * informed if the token doesn't exist": `404 Not found` for an administrator, `401` for others.
 */
function managedPersonalToken(c: ApiCall): TokenRecord {
  const ref = c.path.id!;
  const token = /^\d+$/.test(ref) ? c.ctx.store.tokens.get(Number(ref)) : undefined;
  const me = c.caller.user;
  if (token && (me.admin || token.userId === me.id)) return token;
  throw me.admin ? apiErrors.notFound() : apiErrors.unauthorized();
}

/** `GET /personal_access_tokens/:id` (15.1+): `PersonalAccessTokenWithLastUsedIps`. */
function getPersonalToken(c: ApiCall): TokenResult {
  const token = managedPersonalToken(c);
  return { status: 200, body: personalTokenEntity(c.ctx.store, token, { lastUsedIps: true }) };
}

/**
 * `POST /personal_access_tokens/:id/rotate` (16.0+; `doc/api/personal_access_tokens.md`
 * "Rotate a personal access token"): Grape validates `expires_at` first, then the token
 * must be one the caller may manage, then `PersonalAccessTokens::RotateService` refuses a
 * revoked one (`400 Bad request - Token already revoked`; that alone revokes nothing: reuse
 * detection acts on the token that authenticates, `auth.ts`), revokes the old one and
 * returns the new one with `token` (one week without `expires_at`).
 */
function rotatePersonalToken(c: ApiCall): TokenResult {
  const expiresAt = expiresAtParam(c.params);
  const token = managedPersonalToken(c);
  if (token.revoked) throw apiErrors.badRequest('Token already revoked');
  const { record, value } = rotate(c.ctx.store, c.ctx.settings, token, expiresAt);
  return { status: 200, body: personalTokenEntity(c.ctx.store, record, { value }) };
}
