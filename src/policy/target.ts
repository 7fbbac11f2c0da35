/**
 * The RFC 8693 `resource` / `audience` parameters → one normalised target.
 *
 * - `resource`: an absolute URL on the configured GitLab (same scheme, host and
 *   port; under its base path). `…/groups/<path>` names a group explicitly.
 * - `audience`: a path (`group/project`, `groups/<path>`), a numeric ID, or
 *   the same absolute URL a `resource` would be.
 *
 * A trailing `/` and `.git` are dropped. Anything a browser or proxy could
 * reinterpret is refused rather than repaired: query, fragment, credentials,
 * percent-encoding (an encoded `/` would otherwise split differently here and
 * in GitLab), backslashes, `.`/`..` and empty segments. Paths are lower-cased
 * because GitLab resolves paths case-insensitively; an all-digit ref is a
 * numeric ID, as in GitLab's own API (`:id` = ID or path).
 */
import type { TargetError, TargetRequest } from './types.ts';

const MAX_CHARS = 1024;
const SEGMENT = /^[A-Za-z0-9_.-]+$/;
const DIGITS = /^[0-9]+$/;
/** Printable ASCII except the characters that change how a URL or path is read. */
const SAFE_CHARS = /^[\x21-\x7e]+$/;
const UNSAFE = /[\\%?#@]/;

const bad = (reason: string): TargetError => ({ error: 'invalid_request', reason });

/** Path segments (no base path, no origin) → target. */
function fromPath(raw: string): TargetRequest | TargetError {
  const path = raw.replace(/\/+$/, '').replace(/\.git$/i, '');
  if (path === '') return bad('names no project or group');
  let segments = path.split('/');
  for (const s of segments) {
    if (s === '') return bad('empty path segment');
    if (s === '.' || s === '..') return bad('dot segment in path');
    if (!SEGMENT.test(s)) return bad('invalid character in path');
    // `/-/` starts a GitLab UI route (`/-/tree/main`): not part of a project path.
    if (s === '-') return bad('GitLab UI route in path');
  }
  // `groups` is a reserved top-level name in GitLab, so `groups/<path>` is unambiguous.
  const explicitGroup = segments.length > 1 && segments[0]?.toLowerCase() === 'groups';
  if (explicitGroup) segments = segments.slice(1);
  const ref = segments.join('/');
  if (DIGITS.test(ref)) {
    const id = Number(ref);
    if (!Number.isSafeInteger(id) || id <= 0 || String(id) !== ref) return bad('invalid numeric ID');
    return { ref, byId: true, explicitGroup };
  }
  return { ref: ref.toLowerCase(), byId: false, explicitGroup };
}

function fromUrl(raw: string, gitlabUrl: string): TargetRequest | TargetError {
  if (UNSAFE.test(raw)) return bad('URL has a query, fragment, credentials, percent-encoding or backslash');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return bad('not an absolute URL');
  }
  // `scheme://authority` literally: the parser would also take `https:host/path`.
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/.exec(raw);
  if (!authority) return bad('not an absolute URL');
  // The URL parser silently resolves `.` and `..`: compare with the raw path to refuse them.
  const rawPath = raw.slice(authority[0].length);
  if (rawPath !== '' && rawPath !== u.pathname) return bad('dot segment or unusual character in path');

  const base = new URL(gitlabUrl);
  if (u.origin !== base.origin) return { error: 'invalid_target', reason: 'not on the configured GitLab' };
  const basePath = base.pathname.replace(/\/+$/, '');
  if (!u.pathname.startsWith(`${basePath}/`)) {
    return { error: 'invalid_target', reason: 'not under the configured GitLab base path' };
  }
  return fromPath(u.pathname.slice(basePath.length + 1));
}

function parseOne(raw: string, gitlabUrl: string): TargetRequest | TargetError {
  if (raw.length > MAX_CHARS) return bad('too long');
  if (!SAFE_CHARS.test(raw)) return bad('empty, or has spaces or non-ASCII characters');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(raw)) return fromUrl(raw, gitlabUrl);
  if (UNSAFE.test(raw)) return bad('invalid character in path');
  return fromPath(raw);
}

const sameTarget = (a: TargetRequest, b: TargetRequest) => a.ref === b.ref && a.byId === b.byId;

/**
 * Exactly one target: one `resource`, one `audience`, or both naming the
 * same target (a numeric ID and a path never count as the same: no lookup).
 */
export function parseTarget(
  req: { resource?: string[]; audience?: string[] },
  gitlabUrl: string,
): TargetRequest | TargetError {
  const resource = req.resource ?? [];
  const audience = req.audience ?? [];
  if (resource.length > 1 || audience.length > 1) return bad('more than one resource or audience');
  const parsed = [...resource, ...audience].map((r) => parseOne(r, gitlabUrl));
  if (parsed.length === 0) return bad('no resource or audience');
  const errors = parsed.filter((p): p is TargetError => 'error' in p);
  const malformed = errors.find((e) => e.error === 'invalid_request');
  if (malformed) return malformed;
  if (errors[0]) return errors[0];
  const [first, second] = parsed as TargetRequest[];
  if (!first) return bad('no resource or audience');
  if (!second) return first;
  if (!sameTarget(first, second)) return bad('resource and audience name different targets');
  return { ...first, explicitGroup: first.explicitGroup || second.explicitGroup };
}

export function isTargetError(t: TargetRequest | TargetError): t is TargetError {
  return 'error' in t;
}

/** `platform/app` or `id:42`, for logs. */
export function displayTarget(t: TargetRequest): string {
  return t.byId ? `id:${t.ref}` : t.ref;
}
