/**
 * `Retry-After` (RFC 9110 §10.2.3): delta seconds or an HTTP date, as whole
 * seconds from `nowMs`; undefined when absent or unreadable. Capped at one
 * hour: a server asking for more is not waited for anyway, and a bogus value
 * must not park a caller for days. Read by the STS's GitLab client and by the
 * pipeline client.
 */
const MAX_RETRY_AFTER_SECONDS = 3600;

export function retryAfterSeconds(
  value: string | readonly string[] | null | undefined,
  nowMs = Date.now(),
): number | undefined {
  const s = (typeof value === 'string' ? value : value?.[0])?.trim();
  if (!s) return undefined;
  if (/^[0-9]+$/.test(s)) return Math.min(MAX_RETRY_AFTER_SECONDS, Number(s));
  const at = Date.parse(s);
  if (Number.isNaN(at)) return undefined;
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(0, Math.ceil((at - nowMs) / 1000)));
}
