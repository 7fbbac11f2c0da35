/**
 * Token expiry dates. GitLab takes `expires_at` as a date (`YYYY-MM-DD`); the
 * token stops working at 00:00 UTC that day. A date later than today + the
 * maximum lifetime fails the model validation "Expires at must be before
 * <date>" (`app/models/personal_access_token.rb`,
 * `expires_at_before_instance_max_expiry_date`).
 */
import { apiErrors } from './errors.ts';

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A valid calendar date `YYYY-MM-DD`, else undefined. */
export function parseDate(value: string): string | undefined {
  const m = DATE.exec(value);
  if (!m) return undefined;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === value ? value : undefined;
}

export function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * Checks an `expires_at` against today (the emulator's clock). Today is
 * accepted, as GitLab 17.11–19.1 do: the token is created (201) already
 * inactive (`"active": false`), since it stops working at 00:00 UTC that day
 * (recordings of `ilijamt/vault-plugin-secrets-gitlab`,
 * `tests/integration/testdata/paths/{17.11.7,18.11.5,19.0.2}/TestGitlabClient_CreateAccessToken_And_Revoke.yaml`).
 * An earlier date is refused with the emulator's own message (GitLab documents
 * no minimum).
 */
export function checkExpiry(expiresAt: string, today: string, maxDays: number): void {
  const max = addDays(today, maxDays);
  if (expiresAt > max) throw apiErrors.badRequest(`Expires at must be before ${max}`);
  if (expiresAt < today) throw apiErrors.badRequest('Expires at cannot be in the past');
}
