/**
 * GitLab access tokens expire by date: `expires_at` is `YYYY-MM-DD` and the
 * token stops working at 00:00 UTC on that date (doc/api/project_access_tokens.md,
 * "expires_at"; PersonalAccessToken#expired? compares with the current time).
 * The STS's own TTL is shorter and enforced by the reaper; GitLab's expiry is
 * the backstop, so it must never end a token before its TTL does.
 *
 * GitLab 17.11–19.1 accept `expires_at` = today and create the token already
 * inactive (201, `"active": false`: recordings of ilijamt/vault-plugin-secrets-gitlab,
 * tests/integration/testdata/paths/{17.11.7,18.11.5,19.0.2}/TestGitlabClient_CreateAccessToken_And_Revoke.yaml),
 * so a date that is today on GitLab's clock when the request arrives would
 * mint a dead token. The date is therefore computed for `ttlEnd` plus
 * `GITLAB_CLOCK_MARGIN_MS`, which covers request latency and a GitLab clock
 * running ahead of ours by up to that much.
 */
import { utcDate } from '../util/utc-date.ts';

const DAY_MS = 86_400_000;

/** How far GitLab's clock (plus the request's latency) may run ahead of ours near midnight. */
export const GITLAB_CLOCK_MARGIN_MS = 5 * 60_000;

/**
 * The smallest date D such that D at 00:00 UTC is strictly after
 * `ttlEndMs + GITLAB_CLOCK_MARGIN_MS`: an `expires_at` that lets the token live
 * its whole TTL, and is never today on GitLab's clock when the mint arrives
 * (`ttlEnd` is never before now), so the token is never born inactive.
 *
 * - TTL ending 2025-01-01T10:15Z → `2025-01-02`
 * - TTL ending exactly 2025-01-02T00:00:00.000Z → `2025-01-03` (a token that
 *   dies at midnight must not be cut short by GitLab at that same instant).
 * - TTL ending 2025-01-01T23:58Z → `2025-01-03` (within the margin of midnight).
 */
export function gitlabExpiryDate(ttlEndMs: number): string {
  if (!Number.isFinite(ttlEndMs)) throw new RangeError('ttlEndMs must be a finite number');
  const dayStart = Math.floor((ttlEndMs + GITLAB_CLOCK_MARGIN_MS) / DAY_MS) * DAY_MS;
  return utcDate(dayStart + DAY_MS);
}

/**
 * How far past the TTL a deploy token's own expiry is set: GitLab's clock may run a little ahead
 * of ours, and the reaper needs a moment to revoke it at the TTL.
 */
export const DEPLOY_TOKEN_EXPIRY_MARGIN_MS = 60_000;

/**
 * A deploy token's `expires_at`: unlike access tokens' dates, GitLab takes an ISO 8601 date-time
 * (doc/api/deploy_tokens.md, `expires_at` "datetime") and enforces it to the second: the token
 * authenticates while `expires_at >= NOW()` (app/models/deploy_token.rb `DeployToken.active`, the
 * scope lib/gitlab/auth.rb `deploy_token_check` looks tokens up in); GitLab answers it with
 * milliseconds (`2026-06-30T00:00:00.000Z`, recordings e2e/{17.11.7…19.1.1}/TestWithProjectDeployToken.yaml
 * of ilijamt/vault-plugin-secrets-gitlab). So the backstop is tight: the TTL end plus
 * `DEPLOY_TOKEN_EXPIRY_MARGIN_MS`, rounded up to the whole second (`2025-01-01T10:16:01Z`). (GitLab's
 * `expired` flag is day-granular, `expires_at < Date.today`: it says nothing about whether the
 * token still works.)
 */
export function deployTokenExpiry(ttlEndMs: number): string {
  if (!Number.isFinite(ttlEndMs)) throw new RangeError('ttlEndMs must be a finite number');
  const seconds = Math.ceil((ttlEndMs + DEPLOY_TOKEN_EXPIRY_MARGIN_MS) / 1000);
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}
