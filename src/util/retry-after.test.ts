import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryAfterSeconds } from './retry-after.ts';

describe('retryAfterSeconds', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it('reads delta seconds and HTTP dates', () => {
    assert.equal(retryAfterSeconds('30', now), 30);
    assert.equal(retryAfterSeconds(' 12 ', now), 12);
    assert.equal(retryAfterSeconds('Tue, 01 Jan 2030 00:00:10 GMT', now), 10);
    assert.equal(retryAfterSeconds('Mon, 31 Dec 2029 23:00:00 GMT', now), 0, 'a date in the past');
    const soon = new Date(Date.now() + 10_000).toUTCString();
    assert.ok((retryAfterSeconds(soon) ?? 0) >= 8, 'now defaults to the clock');
  });

  it('takes the first of repeated headers (node:http) and a missing one (fetch: null)', () => {
    assert.equal(retryAfterSeconds(['7', '9'], now), 7);
    assert.equal(retryAfterSeconds(null, now), undefined);
    assert.equal(retryAfterSeconds(undefined, now), undefined);
    assert.equal(retryAfterSeconds('', now), undefined);
  });

  it('refuses garbage and caps at one hour', () => {
    assert.equal(retryAfterSeconds('soon', now), undefined);
    assert.equal(retryAfterSeconds('999999', now), 3600);
    assert.equal(retryAfterSeconds('9'.repeat(400), now), 3600);
    assert.equal(retryAfterSeconds('Fri, 01 Jan 2100 00:00:00 GMT', now), 3600);
  });
});
