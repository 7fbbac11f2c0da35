import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseStrictJson, StrictJsonError } from './strict-json.ts';

describe('parseStrictJson', () => {
  it('parses what JSON.parse parses, for ordinary documents', () => {
    for (const text of [
      '{"a":1,"b":[true,false,null,"x",-1.5e3],"c":{"d":"\\u00e9\\n"}}',
      ' [ ] ',
      '"s"',
      '0',
      '{"__proto__":{"x":1}}',
    ]) {
      assert.deepEqual(parseStrictJson(text), JSON.parse(text), text);
    }
  });

  it('keeps __proto__ as an own member, without touching the prototype', () => {
    const v = parseStrictJson('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    assert.ok(Object.hasOwn(v, '__proto__'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
  });

  const duplicates = [
    '{"alg":"none","alg":"RS256"}',
    '{"alg":"RS256","\\u0061lg":"none"}',
    '{"a":{"sub":"x","sub":"y"}}',
    '[{"aud":1,"aud":2}]',
  ];
  for (const text of duplicates) {
    it(`rejects the duplicate member in ${text}`, () => {
      assert.throws(
        () => parseStrictJson(text),
        (e) => e instanceof StrictJsonError && e.duplicate && /duplicate/.test(e.message),
      );
    });
  }

  const invalid: Array<[string, string]> = [
    ['trailing comma', '{"a":1,}'],
    ['trailing data', '{"a":1}x'],
    ['two values', '{} {}'],
    ['single quotes', "{'a':1}"],
    ['unquoted name', '{a:1}'],
    ['leading zero', '01'],
    ['NaN', 'NaN'],
    ['raw control character', '"a\tb"'],
    ['bad escape', '"\\x41"'],
    ['short \\u escape', '"\\u12"'],
    ['NUL escape', '{"sub":"a\\u0000b"}'],
    ['lone high surrogate', '{"x":"\\ud800"}'],
    ['lone low surrogate in a name', '{"\\udc00":1}'],
    ['raw lone surrogate', '{"x":"a\ud800b"}'],
    ['unterminated', '{"a":"b'],
    ['empty', ''],
    ['too deep', `${'['.repeat(20)}${']'.repeat(20)}`],
    ['very deep', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`],
  ];
  for (const [label, text] of invalid) {
    it(`rejects ${label}`, () => {
      assert.throws(
        () => parseStrictJson(text),
        (e) => e instanceof StrictJsonError && !e.duplicate,
      );
    });
  }

  it('accepts a well-formed surrogate pair and nesting up to the limit', () => {
    assert.equal(parseStrictJson('"\\ud83d\\ude00"'), '😀');
    assert.deepEqual(parseStrictJson('[[[1]]]', 3), [[[1]]]);
    assert.throws(() => parseStrictJson('[[[[1]]]]', 3), StrictJsonError);
  });
});

describe('parseStrictJson against JSON.parse (property)', () => {
  it('gives JSON.parse’s value for every JSON document without duplicate members', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        const text = JSON.stringify(v);
        assert.deepEqual(parseStrictJson(text, 64), JSON.parse(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('never accepts what JSON.parse refuses, and agrees with it on what both accept', () => {
    const jsonish = fc.string({
      unit: fc.constantFrom(...'{}[]:,"\\ u0a1eE+-.tfnrl0123456789\t\n'.split('')),
      maxLength: 24,
    });
    fc.assert(
      fc.property(fc.oneof(jsonish, fc.string({ maxLength: 24 })), (text) => {
        let strict: unknown;
        try {
          strict = parseStrictJson(text);
        } catch (e) {
          assert.ok(e instanceof StrictJsonError, String(e));
          return;
        }
        assert.deepEqual(strict, JSON.parse(text));
      }),
      { numRuns: 20000 },
    );
  });
});

describe('parseStrictJson depth bound', () => {
  it('refuses a depth bound that would not bound the recursion', () => {
    for (const d of [Number.NaN, Number.POSITIVE_INFINITY, -1, 1.5, 100_000]) {
      assert.throws(() => parseStrictJson('['.repeat(20_000), d), RangeError, String(d));
    }
  });
});
