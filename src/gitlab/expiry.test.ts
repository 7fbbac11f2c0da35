import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { utcDate } from '../util/utc-date.ts';
import { GITLAB_CLOCK_MARGIN_MS, gitlabExpiryDate } from './expiry.ts';

describe('gitlabExpiryDate', () => {
  const cases: Array<[string, string, string]> = [
    ['15-minute token in the morning', '2025-03-10T09:15:00.000Z', '2025-03-11'],
    ['just outside the margin before midnight', '2025-03-10T23:54:59.999Z', '2025-03-11'],
    [
      'within the margin before midnight: GitLab may already be on the next day',
      '2025-03-10T23:55:00.000Z',
      '2025-03-12',
    ],
    ['one millisecond before midnight', '2025-03-10T23:59:59.999Z', '2025-03-12'],
    ['exactly midnight: that day would cut it short', '2025-03-11T00:00:00.000Z', '2025-03-12'],
    ['one millisecond after midnight', '2025-03-11T00:00:00.001Z', '2025-03-12'],
    ['end of year', '2025-12-31T18:00:00.000Z', '2026-01-01'],
    ['leap day', '2028-02-28T12:00:00.000Z', '2028-02-29'],
  ];
  for (const [name, ttlEnd, want] of cases) {
    it(name, () => assert.equal(gitlabExpiryDate(Date.parse(ttlEnd)), want));
  }

  it('the date at 00:00 UTC is always strictly after the TTL end plus the margin, and the day before is not', () => {
    for (
      let t = Date.parse('2025-01-01T00:00:00Z');
      t < Date.parse('2025-01-04T00:00:00Z');
      t += 7 * 60_000 + 13
    ) {
      const d = Date.parse(`${gitlabExpiryDate(t)}T00:00:00Z`);
      assert.ok(
        d > t + GITLAB_CLOCK_MARGIN_MS,
        `${gitlabExpiryDate(t)} is after ${new Date(t).toISOString()}`,
      );
      assert.ok(d - 86_400_000 <= t + GITLAB_CLOCK_MARGIN_MS, 'smallest such date');
    }
  });

  // GitLab 17.11–19.1 create a token whose expires_at is today, inactive (201, "active": false):
  // recordings of ilijamt/vault-plugin-secrets-gitlab,
  // tests/integration/testdata/paths/{17.11.7,18.11.5,19.0.2}/TestGitlabClient_CreateAccessToken_And_Revoke.yaml.
  it('around UTC midnight the STS never asks for a date that is today on GitLab: the token is born active', () => {
    const midnight = Date.parse('2025-03-11T00:00:00.000Z');
    const ttls = [1, 60, 900, 3600].map((s) => s * 1000);
    for (let now = midnight - 10 * 60_000; now <= midnight + 10 * 60_000; now += 250) {
      for (const ttl of ttls) {
        const expiresAt = gitlabExpiryDate(now + ttl);
        // GitLab's clock when the mint arrives: anywhere from ours up to the margin ahead.
        for (const ahead of [0, 1, 1000, GITLAB_CLOCK_MARGIN_MS]) {
          const gitlabToday = utcDate(now + ahead);
          assert.ok(
            expiresAt > gitlabToday,
            `now ${new Date(now).toISOString()}, ttl ${ttl} ms, GitLab ${ahead} ms ahead: ${expiresAt} is today`,
          );
        }
        assert.ok(Date.parse(`${expiresAt}T00:00:00Z`) > now + ttl, 'never before the TTL ends');
      }
    }
    assert.equal(gitlabExpiryDate(midnight), '2025-03-12', 'at exactly 00:00 UTC: tomorrow');
    assert.equal(
      gitlabExpiryDate(midnight - 1 + 1000),
      '2025-03-12',
      '23:59:59.999 with a 1 s TTL: tomorrow',
    );
  });

  it('refuses NaN', () => assert.throws(() => gitlabExpiryDate(Number.NaN), RangeError));
});
