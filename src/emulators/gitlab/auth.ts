/**
 * Who is calling. The API takes a token from `PRIVATE-TOKEN`,
 * `Authorization: Bearer` or `?private_token=` (`doc/api/rest/authentication.md`);
 * git takes HTTP Basic with any non-empty username and the token as password.
 * Checks follow `AccessTokenValidationService#validate` as `lib/api/api_guard.rb`
 * calls it: unknown → 401, expired → 401 invalid_token, revoked → 401
 * invalid_token, then the token's scopes → 403 insufficient_scope.
 */
import type { IncomingMessage } from 'node:http';
import { apiErrors } from './errors.ts';
import type { GitlabStore, TokenRecord, User } from './store.ts';

export interface Caller {
  token: TokenRecord;
  user: User;
}

export function apiTokenOf(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const header = req.headers['private-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  return query.get('private_token') ?? query.get('access_token') ?? undefined;
}

/** The username and password of an HTTP Basic header, both non-empty. */
export function basicCredentialsOf(req: IncomingMessage): { username: string; password: string } | undefined {
  const auth = req.headers.authorization;
  const m = auth ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(auth) : null;
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  const password = decoded.slice(colon + 1);
  return password === '' ? undefined : { username: decoded.slice(0, colon), password };
}

/** The caller's address as GitLab records it in `last_used_ips` (IPv4-mapped IPv6 as IPv4). */
export function clientIp(req: IncomingMessage): string | undefined {
  const a = req.socket.remoteAddress;
  return a?.startsWith('::ffff:') ? a.slice('::ffff:'.length) : a;
}

export type TokenProblem = 'unknown' | 'expired' | 'revoked' | 'no_user';

/** The token's record and user, or why it cannot be used. */
export function resolveToken(store: GitlabStore, value: string | undefined): Caller | TokenProblem {
  if (!value) return 'unknown';
  const token = store.findTokenByValue(value);
  if (!token) return 'unknown';
  if (store.isExpired(token)) return 'expired';
  if (token.revoked) return 'revoked';
  const user = store.users.get(token.userId);
  if (!user) return 'no_user';
  return { token, user };
}

/**
 * The paths of GitLab's rotate endpoints, as `Gitlab::Auth::AuthFinders#access_token_rotation_request?`
 * matches them (`%r{access_tokens/(\d+|self)/rotate$}`, `lib/gitlab/auth/auth_finders.rb`):
 * personal (`/personal_access_tokens/:id|self/rotate`), project and group tokens alike.
 */
export const ROTATION_REQUEST_PATH = /access_tokens\/(\d+|self)\/rotate$/;

/**
 * The caller of an API request. A revoked token on a rotate request is reuse
 * (`validate_and_save_access_token!` → `revoke_token_family`, GitLab 16.3+,
 * `doc/api/personal_access_tokens.md` "Automatic reuse detection"): every active
 * token rotated from it is revoked before the `401`. Any other use of a revoked
 * token is a plain `401`.
 */
export function authenticateApi(
  store: GitlabStore,
  value: string | undefined,
  ip?: string,
  o: { rotationRequest?: boolean } = {},
): Caller {
  const r = resolveToken(store, value);
  if (r === 'expired') throw apiErrors.expired();
  if (r === 'revoked') {
    if (o.rotationRequest && value) {
      const token = store.findTokenByValue(value);
      if (token) store.revokeSuccessors(token);
    }
    throw apiErrors.revoked();
  }
  if (typeof r === 'string') throw apiErrors.unauthorized();
  store.touch(r.token, ip);
  return r;
}

/**
 * API scopes: `api` allows everything, `read_api` only GET/HEAD
 * (`doc/security/tokens/access_token_scopes.md`); `also` adds endpoint-specific
 * scopes (`self_rotate` for rotating oneself).
 */
export function requireApiScope(caller: Caller, method: string, also: string[] = []): void {
  const enough = method === 'GET' || method === 'HEAD' ? ['api', 'read_api', ...also] : ['api', ...also];
  if (!caller.token.scopes.some((s) => enough.includes(s))) throw apiErrors.insufficientScope(enough);
}
