import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openSealedToken, sealToken } from './seal.ts';

const NEW = 'glpat-the-new-token-value-0000001';
const OLD = 'glpat-the-old-token-value-0000001';

describe('sealToken / openSealedToken', () => {
  it('opens with the old token and the rotation id, and with nothing else', () => {
    const s = sealToken(NEW, OLD, 'rot-1');
    assert.match(s, /^v1\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    assert.equal(openSealedToken(s, OLD, 'rot-1'), NEW);
    assert.equal(openSealedToken(s, `${OLD}x`, 'rot-1'), undefined, 'another key');
    assert.equal(openSealedToken(s, OLD, 'rot-2'), undefined, 'moved to another record');
    assert.equal(s.includes(NEW) || s.includes(OLD), false);
  });

  it('a fresh salt and IV each time; any flipped byte is refused', () => {
    const a = sealToken(NEW, OLD, 'r');
    const b = sealToken(NEW, OLD, 'r');
    assert.notEqual(a, b);
    const parts = a.split('.');
    for (let i = 1; i < parts.length; i++) {
      const bytes = Buffer.from(parts[i] as string, 'base64url');
      bytes[0] = (bytes[0] as number) ^ 1;
      const tampered = [...parts.slice(0, i), bytes.toString('base64url'), ...parts.slice(i + 1)].join('.');
      assert.equal(openSealedToken(tampered, OLD, 'r'), undefined, `part ${i}`);
    }
    for (const bad of ['', 'v1', 'v2.a.b.c.d', 'v1.a.b.c', 'v1.!!.b.c.d']) {
      assert.equal(openSealedToken(bad, OLD, 'r'), undefined, bad);
    }
  });
});
