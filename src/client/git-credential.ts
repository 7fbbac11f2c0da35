/**
 * `tanuki-sts git-credential <get|store|erase>`: a git credential helper
 * (gitcredentials(7), git-credential(1)). Git writes `key=value` lines on
 * stdin; for `get` we answer `username=<the STS's gitlab_username, else oauth2>` / `password=<token>` for the
 * repository git names in `path` (sent only with credential.useHttpPath).
 * Tokens are cached per host+path (cache.ts) and revoked on `erase`, which
 * git calls when the server rejected a credential.
 */
import { TokenCache } from './cache.ts';
import { UsageError } from './errors.ts';
import { BASIC_USERNAME, usernameOf } from './formats.ts';
import { type MintDeps, mint } from './mint.ts';
import type { ClientSettings, Env } from './settings.ts';
import { cleanPath, isRepositoryPath, resolveTarget, targetForPath } from './target.ts';
import { isTokenShaped, isUsernameShaped } from './trust.ts';

export type CredentialInput = Map<string, string>;

/** Parses git's `key=value` lines up to a blank line or the end. Multi-valued keys (`wwwauth[]`) keep the last. */
export function parseCredentialInput(text: string): CredentialInput {
  const out: CredentialInput = new Map();
  for (const line of text.split('\n')) {
    const l = line.replace(/\r$/, '');
    if (l === '') break;
    const eq = l.indexOf('=');
    if (eq <= 0) continue;
    out.set(l.slice(0, eq), l.slice(eq + 1));
  }
  return out;
}

export function formatCredentialOutput(
  token: string,
  expiresAt: number | undefined,
  /** The STS's `gitlab_username` (a deploy token works only with its own); default `oauth2`. */
  username: string = BASIC_USERNAME,
): string {
  // A newline in the token would add lines (`username=`, `quit=1`) to git's protocol: never answer one.
  if (!isTokenShaped(token))
    throw new Error('refusing to hand git a token that is not one line of token characters');
  if (!isUsernameShaped(username)) throw new Error('refusing to hand git a username that is not one');
  // password_expiry_utc (git ≥ 2.41) lets git drop the credential when it expires; older gits ignore unknown keys.
  const expiry = expiresAt !== undefined ? `password_expiry_utc=${Math.floor(expiresAt / 1000)}\n` : '';
  return `username=${username}\npassword=${token}\n${expiry}`;
}

export interface HelperRequest {
  /** GitLab base URL (`https://host[:port][/prefix]`) the request is for. */
  gitlabUrl: string;
  /** Project path relative to the GitLab base, without `.git`. */
  path: string;
}

/**
 * Maps git's input to a project on our GitLab, or undefined when the request
 * is for another host (then we stay silent and git asks its next helper).
 */
export function matchRequest(
  input: CredentialInput,
  gitlabUrl: string,
  fallbackResource?: string,
): HelperRequest | undefined {
  const protocol = input.get('protocol');
  const host = input.get('host');
  if (!protocol || !host) return undefined;
  const base = new URL(gitlabUrl);
  if (`${protocol}:` !== base.protocol || host.toLowerCase() !== base.host.toLowerCase()) return undefined;
  const prefix = base.pathname.replace(/^\/+|\/+$/g, '');
  const rawPath = input.get('path');
  if (rawPath === undefined || rawPath === '') {
    if (fallbackResource)
      return {
        gitlabUrl: gitlabUrl.replace(/\/+$/, ''),
        path: resolveTarget(fallbackResource, gitlabUrl).path,
      };
    throw new UsageError(
      `git did not send the repository path, so the helper cannot tell which project to ask for — run: git config --global credential.${base.origin}.useHttpPath true`,
    );
  }
  // A path must be a path: an absolute URL here would be parsed again and name another origin to the STS.
  const looksLikeUrl = /^[a-z][a-z0-9+.-]*:/i.test(rawPath) || rawPath.startsWith('//');
  let path = cleanPath(rawPath);
  if (looksLikeUrl || !isRepositoryPath(path)) {
    throw new UsageError(
      `git asked about "${rawPath.slice(0, 100)}", which is not a repository path on ${base.origin}: not answering`,
    );
  }
  if (prefix) {
    if (!path.startsWith(`${prefix}/`)) return undefined;
    path = path.slice(prefix.length + 1);
  }
  return { gitlabUrl: gitlabUrl.replace(/\/+$/, ''), path };
}

export interface HelperDeps extends MintDeps {
  cache: TokenCache;
  now?: () => number;
}

/** The CI job (or other session) a token belongs to: a different job is a different caller. */
export function sessionOf(env: Env): string {
  return env.CI_JOB_ID ?? env.BUILD_BUILDID ?? env.GITHUB_RUN_ID ?? env.TANUKI_CACHE_SESSION ?? '';
}

/** What identifies "the same caller" for cache reuse: never share a token between jobs or identities. */
export function cacheKeyParts(settings: ClientSettings, env: Env, req: HelperRequest): unknown[] {
  const s = settings.subject;
  const who =
    s.kind === 'azure'
      ? [s.azure.mode, s.azure.tenantId, s.azure.clientId, s.azure.scope, env[s.azure.idTokenVar] ? 'id' : '']
      : [s.kind, s.kind === 'file' ? s.path : s.name];
  const subjectVar =
    s.kind === 'var' ? env[s.name] : s.kind === 'azure' ? env[s.azure.idTokenVar] : undefined;
  // A different CI job (or CI id_token) is a different caller, even on the same runner account.
  const session = sessionOf(env);
  return [
    1,
    settings.stsUrl,
    req.gitlabUrl,
    req.path,
    settings.scopes ?? null,
    settings.ttlSeconds ?? null,
    who,
    TokenCache.keyOf([subjectVar ?? '']),
    session,
  ];
}

/** `get`: a cached token if fresh, else mint one (under the key's lock) and cache it. */
export async function helperGet(
  settings: ClientSettings,
  deps: HelperDeps,
  req: HelperRequest,
): Promise<{ token: string; expiresAt: number; cached: boolean; username: string }> {
  const now = deps.now ?? Date.now;
  const key = TokenCache.keyOf(cacheKeyParts(settings, deps.env, req));
  const hit = deps.cache.get(key);
  if (hit) {
    deps.log(`git-credential: cached token for ${req.gitlabUrl}/${req.path}`);
    return {
      token: hit.token,
      expiresAt: hit.expiresAt,
      cached: true,
      username: hit.username ?? BASIC_USERNAME,
    };
  }
  return deps.cache.withLock(key, async () => {
    const again = deps.cache.get(key);
    if (again)
      return {
        token: again.token,
        expiresAt: again.expiresAt,
        cached: true,
        username: again.username ?? BASIC_USERNAME,
      };
    const target = targetForPath(req.path, req.gitlabUrl);
    const minted = await mint(settings, deps, target);
    const issuedAt = now();
    const expiresAt = issuedAt + (minted.result.expiresIn ?? 300) * 1000;
    deps.cache.put(key, {
      token: minted.result.accessToken,
      issuedAt,
      expiresAt,
      scopes: minted.result.scopes,
      resource: target.resource ?? req.path,
      sts: settings.stsUrl,
      session: sessionOf(deps.env),
      username: usernameOf(minted.result),
    });
    return {
      token: minted.result.accessToken,
      expiresAt,
      cached: false,
      username: usernameOf(minted.result),
    };
  });
}

/** `erase`: git says the credential was rejected. Revoke our cached token (only ours) and forget it. */
export async function helperErase(
  settings: ClientSettings,
  deps: HelperDeps,
  req: HelperRequest,
  password: string | undefined,
): Promise<boolean> {
  const key = TokenCache.keyOf(cacheKeyParts(settings, deps.env, req));
  const entry = deps.cache.peek(key);
  if (!entry) return false;
  // A password we did not issue is never sent to the STS.
  if (password !== undefined && password !== entry.token) return false;
  deps.cache.delete(key);
  await deps.sts.revoke(entry.token);
  return true;
}
