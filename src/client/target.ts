/**
 * What the caller wants a token for. `--resource` may be a project/group URL
 * (sent as RFC 8693 `resource`) or a path such as `platform/internal-lib`
 * (turned into a URL with the STS metadata's `gitlab_url`, else sent as
 * `audience`). Pasted URLs are tidied: `.git`, trailing slashes and GitLab UI
 * suffixes (`/-/tree/main`) are dropped.
 */
import { UsageError } from './errors.ts';
import { checkTransport } from './trust.ts';

export interface Target {
  /** Sent as `resource` (absolute URL)… */
  resource?: string;
  /** …or as `audience` (path) when no GitLab URL is known. */
  audience?: string;
  /** Project or group path, e.g. `platform/internal-lib`. */
  path: string;
  /** GitLab base URL without trailing slash (may include a path prefix), when known. */
  gitlabUrl?: string;
}

export function cleanPath(path: string): string {
  let p = path.trim();
  const ui = p.indexOf('/-/');
  if (ui !== -1) p = p.slice(0, ui);
  p = p
    .replace(/^\/+|\/+$/g, '')
    .replace(/\.git$/, '')
    .replace(/\/+$/, '');
  return p;
}

export function resolveTarget(input: string | undefined, gitlabUrl: string | undefined): Target {
  if (!input) {
    throw new UsageError(
      'no resource given: pass --resource https://gitlab.example.com/group/project (or a path group/project), or set TANUKI_RESOURCE',
    );
  }
  const gitlab = gitlabUrl?.replace(/\/+$/, '');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
    let u: URL;
    try {
      u = new URL(input);
    } catch {
      throw new UsageError(`--resource "${input.slice(0, 100)}" is not a valid URL`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:')
      throw new UsageError('--resource must be an http(s) URL or a path');
    checkTransport(u, '--resource');
    if (u.username || u.password) throw new UsageError('--resource must not contain credentials');
    const full = cleanPath(u.pathname);
    if (!full) throw new UsageError(`--resource ${u.origin} names no project or group path`);
    let base = gitlab && `${u.origin}/${full}`.startsWith(`${gitlab}/`) ? gitlab : u.origin;
    const prefix = new URL(base).pathname.replace(/^\/+|\/+$/g, '');
    const path = prefix ? full.slice(prefix.length + 1) : full;
    base = base.replace(/\/+$/, '');
    return { resource: `${base}/${path}`, path, gitlabUrl: base };
  }
  const path = cleanPath(input);
  if (!isRepositoryPath(path)) {
    throw new UsageError(`--resource "${input.slice(0, 100)}" is not a GitLab project or group path`);
  }
  if (gitlab) return { resource: `${gitlab}/${path}`, path, gitlabUrl: gitlab };
  return { audience: path, path };
}

/** `group/sub/project`: letters, digits, `_ . - /`, no `..`, no scheme — never something a URL parser would read as an origin. */
export function isRepositoryPath(path: string): boolean {
  return (
    path !== '' &&
    /^[A-Za-z0-9_.][A-Za-z0-9_./-]*$/.test(path) &&
    !path.includes('..') &&
    !path.includes('//')
  );
}

/**
 * The target for a path on a known GitLab (the git helper's case). Built,
 * not parsed: a path is never read as a URL, so it cannot name another origin.
 */
export function targetForPath(path: string, gitlabUrl: string): Target {
  if (!isRepositoryPath(path)) throw new UsageError(`"${path.slice(0, 100)}" is not a repository path`);
  const gitlab = gitlabUrl.replace(/\/+$/, '');
  return { resource: `${gitlab}/${path}`, path, gitlabUrl: gitlab };
}
