import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAllowedUrl } from './url.ts';

describe('isAllowedUrl', () => {
  it('allows http only for loopback hosts, never credentials', () => {
    assert.equal(isAllowedUrl('http://127.0.0.1:8080'), true);
    assert.equal(isAllowedUrl('http://localhost:1'), true);
    assert.equal(isAllowedUrl('http://[::1]:1'), true);
    assert.equal(isAllowedUrl('http://10.0.0.1'), false);
    assert.equal(isAllowedUrl('http://localhost.attacker.example'), false);
    assert.equal(isAllowedUrl('https://user:pw@gitlab.example.com'), false);
  });
});
