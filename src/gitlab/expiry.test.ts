import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gitlabExpiryDate } from './expiry.ts';

describe('gitlabExpiryDate', () => {
  const cases: Array<[string, string, string]> = [
    ['15-minute token in the morning', '2025-03-10T09:15:00.000Z', '2025-03-11'],
    ['one millisecond before midnight', '2025-03-10T23:59:59.999Z', '2025-03-11'],
    ['exactly midnight: that day would cut it short', '2025-03-11T00:00:00.000Z', '2025-03-12'],
    ['one millisecond after midnight', '2025-03-11T00:00:00.001Z', '2025-03-12'],
    ['end of year', '2025-12-31T18:00:00.000Z', '2026-01-01'],
    ['leap day', '2028-02-28T12:00:00.000Z', '2028-02-29'],
  ];
  for (const [name, ttlEnd, want] of cases) {
    it(name, () => assert.equal(gitlabExpiryDate(Date.parse(ttlEnd)), want));
  }

  it('the date at 00:00 UTC is always strictly after the TTL end, and the day before is not', () => {
    for (
      let t = Date.parse('2025-01-01T00:00:00Z');
      t < Date.parse('2025-01-04T00:00:00Z');
      t += 7 * 60_000 + 13
    ) {
      const d = Date.parse(`${gitlabExpiryDate(t)}T00:00:00Z`);
      assert.ok(d > t, `${gitlabExpiryDate(t)} is after ${new Date(t).toISOString()}`);
      assert.ok(d - 86_400_000 <= t, 'smallest such date');
    }
  });

  it('refuses NaN', () => assert.throws(() => gitlabExpiryDate(Number.NaN), RangeError));
});
