/**
 * The STS's GitLab REST client: project/group access tokens only.
 *
 * - One keep-alive undici Agent per client (≥ 64 connections), the instance's
 *   CA when `caFile` is given, a whole-request deadline of `timeoutMs`.
 * - Authenticates with `PRIVATE-TOKEN` (doc/api/rest/authentication.md). The
 *   token never appears in an error, log line or metric label. It may come from
 *   a credential holder (src/credential) that swaps it while the STS runs: on a
 *   401 the holder is asked whether the token was rotated, and the request is
 *   sent once more with the new one (a 401 means GitLab did nothing, so even a
 *   create is safe to send again).
 * - The STS's own token: `getSelfToken` (`GET /personal_access_tokens/self`) and
 *   `rotateSelfToken` (`POST /personal_access_tokens/self/rotate`, GitLab 16.10+,
 *   doc/api/personal_access_tokens.md "Rotate a personal access token"): one
 *   request, never retried, never refreshed on a 401 — rotating an already
 *   rotated token makes GitLab revoke the whole token family ("Automatic reuse
 *   detection").
 * - `createAccessToken` is one request, never retried: POST is not idempotent
 *   and a retry after a lost answer could mint twice. The ledger marks such a
 *   grant failed and the reconciler revokes whatever GitLab made for it.
 * - Revoke, list and the health check are idempotent and retried with
 *   exponential backoff and jitter on 5xx, 429 and network errors.
 * - Remembers `RateLimit-Remaining`/`RateLimit-Reset` (doc/administration/settings/
 *   user_and_ip_rate_limits.md, "Response headers") so the reaper can slow down.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { retryAfterSeconds } from '../util/retry-after.ts';
import type { TargetKind } from '../util/target-kind.ts';
import {
  DEFAULT_RETRY_AFTER_SECONDS,
  type GitlabError,
  GitlabMovedError,
  GitlabNotFoundError,
  GitlabRejectedError,
  GitlabUnavailableError,
} from './errors.ts';
import { parseLinkNext } from './link.ts';
import type {
  AccessTokenInfo,
  CreateDeployTokenInput,
  CreatedDeployToken,
  CreatedToken,
  CreateTokenInput,
  DeployTokenInfo,
  GitlabClient,
  GitlabClientOptions,
  GitlabRateLimit,
  ListDeployTokensOptions,
  ListTokensOptions,
  PersonalTokenInfo,
  ResolvedTarget,
  RotatedPersonalToken,
} from './types.ts';

const PER_PAGE = 100; // GitLab's maximum page size (doc/api/rest/index.md, "Pagination")
const MAX_PAGES = 1000; // a guard against a server that keeps answering "next"
const MAX_MESSAGE_CHARS = 300;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

interface Call {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path below /api/v4 (already encoded), or an absolute URL from a Link header. */
  path: string;
  /** Low-cardinality route template for metrics, e.g. `/projects/:id/access_tokens`. */
  route: string;
  json?: unknown;
  /** Send this token instead of the current one (the rotation's own calls); no 401 refresh, no readiness. */
  token?: string;
}

export function createGitlabClient(o: GitlabClientOptions): GitlabClient {
  const now = o.now ?? Date.now;
  const base = new URL(o.url.replace(/\/+$/, '') + '/api/v4/');
  const maxRetries = o.maxRetries ?? 2;
  const retryBaseDelayMs = o.retryBaseDelayMs ?? 250;
  const retryMaxDelayMs = o.retryMaxDelayMs ?? 2000;
  const agent = new Agent({
    connections: Math.max(64, o.connections ?? 64),
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
    connect: { timeout: o.timeoutMs, ...(o.caFile ? { ca: readFileSync(o.caFile) } : {}) },
  });
  let status: { ok: boolean; at: number } | undefined;
  let closing: Promise<void> | undefined;
  const limit: GitlabRateLimit = {};
  const provider = typeof o.token === 'string' ? { current: () => o.token as string } : o.token;
  /** The token values this client sent lately: redacted from anything GitLab echoes back. */
  const sent = new Set<string>();

  const redact = (text: string): string => {
    let out = text;
    for (const t of [provider.current(), ...sent]) if (t) out = out.split(t).join('[redacted]');
    return out;
  };

  function noteRateLimit(headers: RawResponse['headers']): void {
    const remaining = intHeader(headers['ratelimit-remaining']);
    const reset = intHeader(headers['ratelimit-reset']);
    if (remaining !== undefined) limit.remaining = remaining;
    // RateLimit-Reset is a Unix time in seconds.
    if (reset !== undefined) limit.resetAt = reset * 1000;
    if (remaining !== undefined || reset !== undefined) limit.observedAt = now();
  }

  function observe(call: Call, code: number | 'error', started: number): void {
    try {
      o.onRequest?.({
        method: call.method,
        route: call.route,
        status: code,
        durationMs: performance.now() - started,
      });
    } catch {
      // a metrics hook must never fail a GitLab call
    }
  }

  /**
   * One HTTP exchange, and on a 401 to the current token one more with the token the
   * credential holder finds (rotated meanwhile). Throws GitlabUnavailableError for network
   * errors and timeouts only.
   */
  async function send(call: Call): Promise<RawResponse> {
    const token = call.token ?? provider.current();
    const res = await sendOnce(call, token);
    if (
      res.status === 401 &&
      call.token === undefined &&
      provider.unauthorized !== undefined &&
      (await provider.unauthorized(token))
    ) {
      return sendOnce(call, provider.current());
    }
    return res;
  }

  async function sendOnce(call: Call, token: string): Promise<RawResponse> {
    if (sent.size >= 4) sent.delete(sent.values().next().value as string);
    sent.add(token);
    const url =
      call.path.startsWith('https://') || call.path.startsWith('http://') ? call.path : base.href + call.path;
    const started = performance.now();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, o.timeoutMs);
    try {
      const res = await request(url, {
        method: call.method,
        dispatcher: agent,
        signal: controller.signal,
        headers: {
          'private-token': token,
          accept: 'application/json',
          'user-agent': 'tanuki-sts',
          ...(call.json !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: call.json !== undefined ? JSON.stringify(call.json) : undefined,
      });
      const text = await res.body.text();
      let body: unknown = text;
      if (text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          // plain text (e.g. "Retry later" on 429) stays a string
        }
      }
      noteRateLimit(res.headers);
      observe(call, res.statusCode, started);
      // Readiness: GitLab answered. A 5xx/429 or a refused STS token (401) means it is not usable.
      // A call with a token of its own (a rotation probing an old token) says nothing about it.
      if (call.token === undefined) {
        status = { ok: res.statusCode < 500 && res.statusCode !== 429 && res.statusCode !== 401, at: now() };
      }
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      o.onRequest?.({
        method: call.method,
        route: call.route,
        status: 'error',
        durationMs: performance.now() - started,
      });
      if (call.token === undefined) status = { ok: false, at: now() };
      const e = err as { code?: string; name?: string; message?: string };
      const detail = timedOut ? `timed out after ${o.timeoutMs} ms` : (e.code ?? e.name ?? 'network error');
      throw new GitlabUnavailableError(
        `GitLab ${call.method} ${call.route} failed: ${redact(String(detail))}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Turn a non-2xx answer into the matching error. */
  function failure(res: RawResponse, call: Call, what: string, notFound?: 'not-found'): GitlabError {
    const message = redact(gitlabMessage(res.body)).slice(0, MAX_MESSAGE_CHARS);
    if (res.status === 429 || res.status >= 500) {
      const ra = retryAfterSeconds(res.headers['retry-after'], now());
      if (res.status === 429 && ra !== undefined) limit.retryAfterUntil = now() + ra * 1000;
      return new GitlabUnavailableError(
        `GitLab ${call.method} ${call.route}: HTTP ${res.status}${message ? ` ${message}` : ''}`,
        {
          status: res.status,
          retryAfterSeconds: ra ?? DEFAULT_RETRY_AFTER_SECONDS,
          retryAfterFromServer: ra !== undefined,
        },
      );
    }
    if (res.status === 404 && notFound) return new GitlabNotFoundError(message, what);
    return new GitlabRejectedError(res.status, message, what);
  }

  /** Retry idempotent calls on GitlabUnavailableError, with backoff and jitter, within maxRetries. */
  async function withRetries<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof GitlabUnavailableError) || attempt >= maxRetries) throw err;
        let delay: number;
        if (err.retryAfterFromServer) {
          delay = err.retryAfterSeconds * 1000;
          // A long Retry-After is the caller's to schedule (the reaper reschedules); don't hold the request.
          if (delay > retryMaxDelayMs) throw err;
        } else {
          delay = backoffDelay(attempt, retryBaseDelayMs, retryMaxDelayMs);
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  function targetPath(kind: TargetKind, ref: string): string {
    if (!ref) throw new TypeError('target ref is required');
    // A path such as group/sub/project is one URL-encoded segment (doc/api/rest/index.md, "Namespaced paths").
    return `${kind === 'project' ? 'projects' : 'groups'}/${encodeURIComponent(ref)}`;
  }

  return {
    async createAccessToken(i: CreateTokenInput): Promise<CreatedToken> {
      const call: Call = {
        method: 'POST',
        path: `${targetPath(i.kind, i.ref)}/access_tokens`,
        route: `/${i.kind}s/:id/access_tokens`,
        // doc/api/project_access_tokens.md, "Create a project access token" (same for groups).
        json: {
          name: i.name,
          description: i.description,
          scopes: i.scopes,
          access_level: i.accessLevel,
          expires_at: i.expiresAt,
        },
      };
      const res = await send(call); // exactly one request: see the module comment
      if (res.status !== 201 && res.status !== 200)
        throw failure(res, call, `the ${i.kind} access token`, 'not-found');
      const b = res.body as Record<string, unknown> | null;
      if (
        !b ||
        typeof b !== 'object' ||
        typeof b.id !== 'number' ||
        typeof b.token !== 'string' ||
        !b.token
      ) {
        // GitLab may have minted something; the caller marks the grant failed and the reconciler cleans up.
        throw new GitlabUnavailableError(`GitLab ${call.method} ${call.route}: malformed answer`, {
          status: res.status,
        });
      }
      return {
        id: b.id,
        token: b.token,
        expiresAt: typeof b.expires_at === 'string' ? b.expires_at : i.expiresAt,
        userId: typeof b.user_id === 'number' ? b.user_id : -1,
        ...(typeof b.resource_id === 'number' ? { resourceId: b.resource_id } : {}),
        // GitLab answers 201 with `"active": false` for an `expires_at` of today: a dead token.
        ...(b.active === false ? { active: false } : {}),
      };
    },

    async resolveTarget(kind: TargetKind, ref: string): Promise<ResolvedTarget> {
      // doc/api/projects.md "Get a single project" (`path_with_namespace`); doc/api/groups.md
      // "Get a single group" (`full_path`). Both accept a numeric id or a URL-encoded path, and
      // both follow the redirect routes GitLab keeps after a rename or transfer.
      const call: Call = {
        method: 'GET',
        path: kind === 'group' ? `${targetPath(kind, ref)}?with_projects=false` : targetPath(kind, ref),
        route: `/${kind}s/:id`,
      };
      const res = await withRetries(async () => {
        const r = await send(call);
        // undici's request() never follows redirects: a 3xx here is GitLab pointing at a moved project.
        if (r.status >= 300 && r.status < 400) throw new GitlabMovedError(r.status, `the ${kind} lookup`);
        if (r.status !== 200) throw failure(r, call, `the ${kind}`, 'not-found');
        return r;
      });
      const b = res.body as Record<string, unknown> | null;
      const fullPath =
        b && typeof b === 'object' ? (kind === 'group' ? b.full_path : b.path_with_namespace) : undefined;
      if (
        !b ||
        typeof b.id !== 'number' ||
        !Number.isSafeInteger(b.id) ||
        b.id <= 0 ||
        typeof fullPath !== 'string' ||
        fullPath === ''
      ) {
        throw new GitlabUnavailableError(`GitLab GET ${call.route}: malformed answer`, {
          status: res.status,
        });
      }
      return { kind, id: b.id, fullPath };
    },

    async revokeAccessToken(kind: TargetKind, ref: string, tokenId: number): Promise<'revoked' | 'absent'> {
      if (!Number.isSafeInteger(tokenId) || tokenId <= 0)
        throw new TypeError('tokenId must be a positive integer');
      const call: Call = {
        method: 'DELETE',
        path: `${targetPath(kind, ref)}/access_tokens/${tokenId}`,
        route: `/${kind}s/:id/access_tokens/:token_id`,
      };
      return withRetries(async () => {
        const res = await send(call);
        if (res.status === 204 || res.status === 200) return 'revoked';
        // 404: the token (or its project/group) is already gone — the goal is reached.
        if (res.status === 404) return 'absent';
        throw failure(res, call, `revoking ${kind} access token ${tokenId}`);
      });
    },

    async listAccessTokens(
      kind: TargetKind,
      ref: string,
      opts: ListTokensOptions = {},
    ): Promise<AccessTokenInfo[]> {
      const query = new URLSearchParams({ per_page: String(PER_PAGE) });
      if (opts.search !== undefined) query.set('search', opts.search);
      if (opts.state !== undefined) query.set('state', opts.state);
      const first = `${targetPath(kind, ref)}/access_tokens`;
      const route = `/${kind}s/:id/access_tokens`;
      const out: AccessTokenInfo[] = [];
      let page: string | undefined = `${first}?${query}`;
      for (let n = 0; page !== undefined; n++) {
        if (n >= MAX_PAGES)
          throw new GitlabUnavailableError(`GitLab GET ${route}: more than ${MAX_PAGES} pages`);
        const call: Call = { method: 'GET', path: page, route };
        const res = await withRetries(async () => {
          const r = await send(call);
          if (r.status !== 200) throw failure(r, call, `listing ${kind} access tokens`);
          return r;
        });
        if (!Array.isArray(res.body))
          throw new GitlabUnavailableError(`GitLab GET ${route}: expected a JSON array`);
        for (const item of res.body) {
          const t = toTokenInfo(item);
          if (t) out.push(t);
        }
        page = nextPage(res.headers, first, query, base);
      }
      return out;
    },

    async createDeployToken(i: CreateDeployTokenInput): Promise<CreatedDeployToken> {
      const call: Call = {
        method: 'POST',
        path: `${targetPath(i.kind, i.ref)}/deploy_tokens`,
        route: `/${i.kind}s/:id/deploy_tokens`,
        // doc/api/deploy_tokens.md, "Create a project deploy token" (same for groups): `expires_at`
        // is an ISO 8601 date-time, enforced to the second (deployTokenExpiry).
        json: {
          name: i.name,
          scopes: i.scopes,
          expires_at: i.expiresAt,
          ...(i.username !== undefined ? { username: i.username } : {}),
        },
      };
      const res = await send(call); // exactly one request: see the module comment
      if (res.status !== 201 && res.status !== 200)
        throw failure(res, call, `the ${i.kind} deploy token`, 'not-found');
      const b = res.body as Record<string, unknown> | null;
      if (
        !b ||
        typeof b !== 'object' ||
        typeof b.id !== 'number' ||
        !Number.isSafeInteger(b.id) ||
        b.id <= 0 ||
        typeof b.token !== 'string' ||
        !b.token ||
        typeof b.username !== 'string' ||
        !DEPLOY_TOKEN_USERNAME.test(b.username)
      ) {
        // GitLab may have minted something; the caller marks the grant failed and the reconciler cleans up.
        throw new GitlabUnavailableError(`GitLab ${call.method} ${call.route}: malformed answer`, {
          status: res.status,
        });
      }
      return {
        id: b.id,
        token: b.token,
        username: b.username,
        expiresAt: typeof b.expires_at === 'string' ? b.expires_at : null,
        ...(b.revoked === true || b.expired === true ? { active: false as const } : {}),
      };
    },

    async revokeDeployToken(kind: TargetKind, ref: string, tokenId: number): Promise<'revoked' | 'absent'> {
      if (!Number.isSafeInteger(tokenId) || tokenId <= 0)
        throw new TypeError('tokenId must be a positive integer');
      const call: Call = {
        method: 'DELETE',
        path: `${targetPath(kind, ref)}/deploy_tokens/${tokenId}`,
        route: `/${kind}s/:id/deploy_tokens/:token_id`,
      };
      return withRetries(async () => {
        const res = await send(call);
        if (res.status === 204 || res.status === 200) return 'revoked';
        // 404: the token (or its project/group) is already gone — the caller's listing confirms.
        if (res.status === 404) return 'absent';
        throw failure(res, call, `deleting ${kind} deploy token ${tokenId}`);
      });
    },

    async listDeployTokens(
      kind: TargetKind,
      ref: string,
      opts: ListDeployTokensOptions = {},
    ): Promise<DeployTokenInfo[]> {
      // doc/api/deploy_tokens.md, "List project deploy tokens": no name filter, `active` only.
      const query = new URLSearchParams({ per_page: String(PER_PAGE) });
      if (opts.active) query.set('active', 'true');
      const first = `${targetPath(kind, ref)}/deploy_tokens`;
      const route = `/${kind}s/:id/deploy_tokens`;
      const out: DeployTokenInfo[] = [];
      let page: string | undefined = `${first}?${query}`;
      for (let n = 0; page !== undefined; n++) {
        if (n >= MAX_PAGES)
          throw new GitlabUnavailableError(`GitLab GET ${route}: more than ${MAX_PAGES} pages`);
        const call: Call = { method: 'GET', path: page, route };
        const res = await withRetries(async () => {
          const r = await send(call);
          if (r.status !== 200) throw failure(r, call, `listing ${kind} deploy tokens`);
          return r;
        });
        if (!Array.isArray(res.body))
          throw new GitlabUnavailableError(`GitLab GET ${route}: expected a JSON array`);
        for (const item of res.body) {
          const t = toDeployTokenInfo(item);
          if (t) out.push(t);
        }
        page = nextPage(res.headers, first, query, base);
      }
      return out;
    },

    async checkHealth(): Promise<void> {
      const call: Call = {
        method: 'GET',
        path: 'personal_access_tokens/self',
        route: '/personal_access_tokens/self',
      };
      await withRetries(async () => {
        const res = await send(call);
        if (res.status !== 200) throw failure(res, call, 'the health check');
      });
    },

    async getSelfToken(token?: string): Promise<PersonalTokenInfo> {
      // doc/api/personal_access_tokens.md, "Get single personal access token" › "Self-inform".
      const call: Call = {
        method: 'GET',
        path: 'personal_access_tokens/self',
        route: '/personal_access_tokens/self',
        ...(token !== undefined ? { token } : {}),
      };
      const res = await withRetries(async () => {
        const r = await send(call);
        if (r.status !== 200) throw failure(r, call, 'reading its own token');
        return r;
      });
      const info = toPersonalToken(res.body);
      if (!info)
        throw new GitlabUnavailableError(`GitLab GET ${call.route}: malformed answer`, { status: 200 });
      return info;
    },

    async rotateSelfToken(i: { token: string; expiresAt: string }): Promise<RotatedPersonalToken> {
      // doc/api/personal_access_tokens.md, "Rotate a personal access token" › "Self-rotate" (16.10+).
      const call: Call = {
        method: 'POST',
        path: 'personal_access_tokens/self/rotate',
        route: '/personal_access_tokens/self/rotate',
        json: { expires_at: i.expiresAt },
        token: i.token,
      };
      const res = await send(call); // exactly one request: see the module comment
      if (res.status !== 200 && res.status !== 201) throw failure(res, call, 'rotating its own token');
      const info = toPersonalToken(res.body);
      const b = res.body as Record<string, unknown>;
      if (!info || typeof b.token !== 'string' || !b.token) {
        // GitLab has rotated (the old token is revoked) but the answer cannot be used: the caller
        // treats it like a lost answer.
        throw new GitlabUnavailableError(`GitLab POST ${call.route}: malformed answer`, {
          status: res.status,
        });
      }
      sent.add(b.token);
      return { ...info, token: b.token };
    },

    lastStatus() {
      return status ? { ...status } : undefined;
    },

    rateLimit() {
      return { ...limit };
    },

    async close() {
      closing ??= agent.close();
      await closing;
    },
  };
}

/**
 * The next page: offset pagination's `X-Next-Page` (empty on the last page), or
 * else the `Link: <…>; rel="next"` URL (keyset pagination, and offset pagination
 * past 10,000 records where GitLab omits totals). A Link to another origin is
 * refused: following it would send the STS's token elsewhere.
 */
function nextPage(
  headers: RawResponse['headers'],
  first: string,
  query: URLSearchParams,
  base: URL,
): string | undefined {
  const xNext = headerValue(headers['x-next-page']);
  if (xNext !== undefined && xNext.trim() !== '') {
    if (!/^[0-9]+$/.test(xNext.trim()))
      throw new GitlabUnavailableError('GitLab: malformed X-Next-Page header');
    const q = new URLSearchParams(query);
    q.set('page', xNext.trim());
    return `${first}?${q}`;
  }
  const link = parseLinkNext(headerValue(headers.link));
  if (link === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(link, base);
  } catch {
    throw new GitlabUnavailableError('GitLab: malformed Link header');
  }
  if (u.origin !== base.origin || !u.pathname.startsWith(base.pathname)) {
    throw new GitlabUnavailableError('GitLab: Link rel="next" points outside the GitLab API; not followed');
  }
  return u.href;
}

/** What a deploy token's username may be (`DeployToken` validation): anything else is not used. */
const DEPLOY_TOKEN_USERNAME = /^[A-Za-z0-9.+_-]{1,255}$/;

function toDeployTokenInfo(item: unknown): DeployTokenInfo | undefined {
  if (!item || typeof item !== 'object') return undefined;
  const t = item as Record<string, unknown>;
  if (typeof t.id !== 'number' || typeof t.name !== 'string') return undefined;
  return {
    id: t.id,
    name: t.name,
    username: typeof t.username === 'string' ? t.username : '',
    expiresAt: typeof t.expires_at === 'string' ? t.expires_at : null,
    revoked: t.revoked === true,
    expired: t.expired === true,
  };
}

function toTokenInfo(item: unknown): AccessTokenInfo | undefined {
  if (!item || typeof item !== 'object') return undefined;
  const t = item as Record<string, unknown>;
  if (typeof t.id !== 'number' || typeof t.name !== 'string') return undefined;
  return {
    id: t.id,
    name: t.name,
    userId: typeof t.user_id === 'number' ? t.user_id : -1,
    active: t.active === true,
    revoked: t.revoked === true,
    expiresAt: typeof t.expires_at === 'string' ? t.expires_at : null,
    createdAt: typeof t.created_at === 'string' ? t.created_at : '',
  };
}

function toPersonalToken(item: unknown): PersonalTokenInfo | undefined {
  if (!item || typeof item !== 'object') return undefined;
  const t = item as Record<string, unknown>;
  if (typeof t.id !== 'number' || !Number.isSafeInteger(t.id) || t.id <= 0) return undefined;
  return {
    id: t.id,
    name: typeof t.name === 'string' ? t.name : '',
    scopes: Array.isArray(t.scopes) ? t.scopes.filter((x): x is string => typeof x === 'string') : [],
    active: t.active === true,
    revoked: t.revoked === true,
    expiresAt: typeof t.expires_at === 'string' ? t.expires_at : null,
    createdAt: typeof t.created_at === 'string' ? t.created_at : '',
    userId: typeof t.user_id === 'number' ? t.user_id : -1,
    lastUsedAt: typeof t.last_used_at === 'string' ? t.last_used_at : null,
  };
}

/** GitLab error bodies: `{"message": "…"}`, `{"message": {field: [..]}}`, `{"error": "…", "error_description": "…"}`, or text. */
function gitlabMessage(body: unknown): string {
  if (typeof body === 'string') return body.trim();
  if (!body || typeof body !== 'object') return '';
  const b = body as Record<string, unknown>;
  if (typeof b.message === 'string') return b.message;
  if (b.message !== undefined) return JSON.stringify(b.message);
  if (typeof b.error === 'string') {
    return typeof b.error_description === 'string' ? `${b.error}: ${b.error_description}` : b.error;
  }
  return '';
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function intHeader(v: string | string[] | undefined): number | undefined {
  const s = headerValue(v)?.trim();
  if (!s || !/^[0-9]{1,15}$/.test(s)) return undefined;
  return Number(s);
}

/** Exponential backoff with "equal jitter": half fixed, half random, capped. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + (random() * exp) / 2);
}
