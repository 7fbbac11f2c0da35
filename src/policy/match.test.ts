import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PolicyCompileError } from './errors.ts';
import { checkMatcher, compileMatcher, scalarKey } from './match.ts';
import type { ClaimMatcher } from './types.ts';

const holds = (m: ClaimMatcher, claims: Record<string, unknown>, claim = 'c') =>
  checkMatcher(compileMatcher('p', claim, m), claims) === undefined;

describe('claim matchers', () => {
  const table: [string, ClaimMatcher, unknown, boolean][] = [
    // exact, type-strict
    ['exact string', 'abc', 'abc', true],
    ['exact string differs', 'abc', 'abd', false],
    ['exact is case-sensitive', 'abc', 'ABC', false],
    ['string "true" vs boolean true', 'true', true, false],
    ['boolean true vs string "true"', true, 'true', false],
    ['boolean true', true, true, true],
    ['boolean false vs true', false, true, false],
    ['number 42 vs string "42"', 42, '42', false],
    ['string "42" vs number 42', '42', 42, false],
    ['number 42', 42, 42, true],
    ['exact vs array containing it', 'abc', ['abc'], false],
    ['exact vs null', 'abc', null, false],
    // list = one of, type-strict, not for array claims
    ['list hit', ['a', 'b'], 'b', true],
    ['list miss', ['a', 'b'], 'c', false],
    ['list number vs string', [1, 2], '1', false],
    ['list mixed types', ['1', 2, true], true, true],
    ['list vs array claim', ['a', 'b'], ['a'], false],
    // contains: array claims only
    ['contains hit', { contains: 'GitLab.Read' }, ['x', 'GitLab.Read'], true],
    ['contains miss', { contains: 'GitLab.Read' }, ['GitLab.Write'], false],
    ['contains vs plain string', { contains: 'GitLab.Read' }, 'GitLab.Read', false],
    ['contains vs substring', { contains: 'Read' }, ['GitLab.Read'], false],
    ['contains number vs string element', { contains: 7 }, ['7'], false],
    ['contains number', { contains: 7 }, [1, 7], true],
    // pattern: anchored, strings only
    [
      'pattern full match',
      { pattern: 'project_path:platform/[^:]+:ref_type:branch:ref:main' },
      'project_path:platform/app:ref_type:branch:ref:main',
      true,
    ],
    ['pattern must not pass on a suffix', { pattern: 'ref:main' }, 'project_path:x:ref:main', false],
    ['pattern must not pass on a prefix', { pattern: 'ref:main' }, 'ref:main-evil', false],
    ['pattern alternation stays anchored', { pattern: 'a|b' }, 'xa', false],
    ['pattern alternation whole', { pattern: 'a|b' }, 'b', true],
    ['pattern vs number', { pattern: '[0-9]+' }, 42, false],
    ['pattern vs array', { pattern: 'a' }, ['a'], false],
    ['pattern unicode flag', { pattern: '\\p{L}+' }, 'ärger', true],
  ];
  for (const [name, m, value, expected] of table) {
    it(name, () => assert.equal(holds(m, { c: value }), expected));
  }

  it('a claim absent from the token fails, whatever the matcher', () => {
    for (const m of ['x', 1, true, ['x'], { contains: 'x' }, { pattern: '.*' }] as ClaimMatcher[]) {
      assert.equal(checkMatcher(compileMatcher('p', 'c', m), {}), 'claim c: missing');
    }
  });

  it('inherited properties are not claims', () => {
    assert.equal(holds({ pattern: '.*' }, {}, 'constructor'), false);
    assert.equal(holds({ pattern: '.*' }, {}, 'toString'), false);
    assert.equal(holds({ pattern: '.*' }, { constructor: 'x' }, 'constructor'), true);
  });

  it('reasons name the claim and the kind of mismatch, never the expected value', () => {
    const why = checkMatcher(compileMatcher('p', 'appid', 'secret-app-id'), { appid: 'other' });
    assert.equal(why, 'claim appid: value differs');
    assert.equal(
      checkMatcher(compileMatcher('p', 'ref_protected', true), { ref_protected: 'true' }),
      'claim ref_protected: expected a boolean, token has a string',
    );
  });

  it('an invalid pattern is a PolicyCompileError naming the policy and claim', () => {
    assert.throws(
      () => compileMatcher('bad', 'sub', { pattern: '(' }),
      (e: unknown) =>
        e instanceof PolicyCompileError &&
        e.code === 'ERR_POLICY_COMPILE' &&
        /"bad".*match\.sub/.test(e.message),
    );
    // Valid without the u flag, invalid with it: compiled exactly as documented.
    assert.throws(() => compileMatcher('bad', 'sub', { pattern: '\\-' }), PolicyCompileError);
  });

  it('a claim value with a control character fails every matcher, even `[^/]+` and `.*`', () => {
    const bad = ['a\nb', 'a\r', '\tb', 'a\u0000', 'a\u001fb', 'a\u007f', 'a\u0085b', 'a\u009f'];
    // Line/paragraph separators and bidi formatting (Trojan Source) too.
    bad.push('a\u2028b', 'a\u2029', 'main\u202e', '\u2066x\u2069', 'a\u200fb');
    for (const v of bad) {
      for (const m of [{ pattern: '[^/]+' }, { pattern: '.*' }, { pattern: '[\\s\\S]*' }] as ClaimMatcher[]) {
        assert.equal(
          checkMatcher(compileMatcher('p', 'sub', m), { sub: v }),
          'claim sub: holds a control character',
          JSON.stringify(v),
        );
      }
      assert.equal(holds({ contains: 'GitLab.Read' }, { c: ['GitLab.Read', v] }), false, JSON.stringify(v));
    }
    // Printable non-ASCII stays usable: U+00A0 and above are not controls.
    assert.equal(holds({ pattern: '[^/]+' }, { c: 'caf\u00e9\u00a0x' }), true);
    assert.equal(holds({ pattern: 'a b' }, { c: 'a b' }), true);
    assert.equal(
      holds({ pattern: '.+' }, { c: 'x\u2010y\u2070' }),
      true,
      'neighbours of the bidi range are fine',
    );
  });

  it('a policy value with a control character is a PolicyCompileError (it could never match)', () => {
    for (const m of ['a\nb', ['x', 'a\tb'], { contains: 'a\u0085' }] as ClaimMatcher[]) {
      assert.throws(
        () => compileMatcher('bad', 'sub', m),
        /"bad": match\.sub: a value holds a control character/,
      );
    }
  });

  it('index keys keep the type', () => {
    assert.notEqual(scalarKey('42'), scalarKey(42));
    assert.notEqual(scalarKey('true'), scalarKey(true));
    assert.equal(scalarKey(['a']), undefined);
    assert.equal(scalarKey(null), undefined);
  });
});
