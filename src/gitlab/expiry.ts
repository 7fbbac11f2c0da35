/**
 * GitLab access tokens expire by date: `expires_at` is `YYYY-MM-DD` and the
 * token stops working at 00:00 UTC on that date (doc/api/project_access_tokens.md,
 * "expires_at"; PersonalAccessToken#expired? compares with the current time).
 * The STS's own TTL is shorter and enforced by the reaper; GitLab's expiry is
 * the backstop, so it must never end a token before its TTL does.
 */

const DAY_MS = 86_400_000;

/**
 * The smallest date D such that D at 00:00 UTC is strictly after `ttlEndMs`:
 * the earliest `expires_at` that still lets the token live its whole TTL.
 *
 * - TTL ending 2025-01-01T10:15Z → `2025-01-02`
 * - TTL ending exactly 2025-01-02T00:00:00.000Z → `2025-01-03` (a token that
 *   dies at midnight must not be cut short by GitLab at that same instant).
 */
export function gitlabExpiryDate(ttlEndMs: number): string {
  if (!Number.isFinite(ttlEndMs)) throw new RangeError('ttlEndMs must be a finite number');
  const dayStart = Math.floor(ttlEndMs / DAY_MS) * DAY_MS;
  return new Date(dayStart + DAY_MS).toISOString().slice(0, 10);
}
