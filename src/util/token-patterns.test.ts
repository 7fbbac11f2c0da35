import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  findToken,
  GITLAB_TOKEN_PATTERN,
  GITLAB_TOKEN_PREFIXES,
  JWT_PATTERN,
  TOKEN_PATTERN,
} from './token-patterns.ts';

/** 18.x: `glpat-` + payload + `.01.` + 9 characters (gitlab.com, GitLab 18.11). */
const CURRENT = 'glpat-Ab3dEfGhIjKlMnOpQrStUvWxYz0123456.01.a1b2c3d4e';
const LEGACY = 'glpat-AbCdEfGhIjKlMnOpQrSt';
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';

const all = (re: RegExp, text: string) => [...text.matchAll(re)].map((m) => m[0]);

describe('token patterns', () => {
  it('match a current-format GitLab token whole: `.01.` and the suffix are part of it', () => {
    assert.ok(CURRENT.length >= 51 && CURRENT.length <= 54);
    const text = `token ${CURRENT}. next`;
    assert.deepEqual(all(GITLAB_TOKEN_PATTERN, text), [CURRENT], 'the final full stop is not');
    assert.deepEqual(all(TOKEN_PATTERN, text), [CURRENT]);
    assert.equal(findToken(text), CURRENT);
    assert.equal(findToken(text.toUpperCase()), CURRENT.toUpperCase(), 'in any case');
  });

  it('match legacy tokens and every known prefix, also behind an instance prefix', () => {
    assert.equal(findToken(`x ${LEGACY} y`), LEGACY);
    for (const p of GITLAB_TOKEN_PREFIXES)
      assert.equal(findToken(`(${p}-0123456789abcdef)`), `${p}-0123456789abcdef`);
    assert.equal(findToken('acme-glpat-0123456789abcdef'), 'glpat-0123456789abcdef');
  });

  it('match JWTs, and a header with or without payload', () => {
    assert.deepEqual(all(JWT_PATTERN, `Bearer ${JWT}, then`), [JWT]);
    assert.equal(findToken(`"${JWT.toLowerCase()}"`), JWT.toLowerCase());
    assert.equal(findToken('eyJhbGciOiJSUzI1NiJ9.eyJzdWIi'), 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIi');
    assert.equal(findToken('eyJhbGciOiJSUzI1NiJ9.'), 'eyJhbGciOiJSUzI1NiJ9.');
  });

  it('leave ordinary text alone', () => {
    for (const text of [
      'policy image-build: appid 2b8e5f4a-1c3d-4e5f-9a6b-7c8d9e0f1a2b is not 11111111-2222',
      'global-settings-of-the-project',
      'glpat-short',
      'glpat-abc$(id)',
      'eyJhbGciOiJSUzI1NiJ9 without a dot',
    ])
      assert.equal(findToken(text), undefined, text);
  });

  it('findToken is stateless: the global patterns keep no lastIndex between calls', () => {
    assert.equal(findToken(LEGACY), LEGACY);
    assert.equal(findToken(LEGACY), LEGACY);
  });
});
