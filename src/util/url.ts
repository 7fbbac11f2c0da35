/**
 * The URL rule shared by the configuration (every configured URL) and the
 * token validator (discovery and JWKS URLs): https everywhere, plain http
 * only on a loopback host (development and tests), never credentials or a
 * fragment.
 */

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** https everywhere, except loopback hosts (development and tests). */
export function isAllowedUrl(value: string): boolean {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return false;
  }
  if (u.username || u.password || u.hash) return false;
  if (u.protocol === 'https:') return true;
  return u.protocol === 'http:' && isLoopbackHost(u.hostname);
}

/** `localhost`, `127.0.0.0/8` or `::1` (bracketed or not), as `URL.hostname` gives them. */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
