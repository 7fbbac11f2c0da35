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
import { readRepositoryFile } from './repos.ts';
import { resourceOf } from './resources.ts';
import { REPORTER } from './roles.ts';
import type { GitlabStore, ResourceType } from './store.ts';

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
  ...tokenRoutes('project'),
  ...tokenRoutes('group'),
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

function rotateSelf(c: ApiCall): TokenResult {
  const raw = c.params.string('expires_at');
  const expiresAt = typeof raw === 'string' && raw !== '' ? parseDate(raw) : undefined;
  if (raw === INVALID || (typeof raw === 'string' && raw !== '' && !expiresAt)) {
    throw apiErrors.invalidParams(['expires_at is invalid']);
  }
  const { record, value } = rotate(c.ctx.store, c.ctx.settings, c.caller.token, expiresAt);
  return { status: 200, body: personalTokenEntity(c.ctx.store, record, { value }) };
}
