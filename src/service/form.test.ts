import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError } from './errors.ts';
import { parseForm } from './form.ts';

const entries = (body: string) => [...parseForm(body)];

/** The exact refusal: class, stable code, status, wire error and description, audit reason. */
function refused(body: string, description: string, reason: string): void {
  assert.throws(
    () => parseForm(body),
    (err: unknown) => {
      assert.ok(err instanceof InvalidRequestError, String(err));
      assert.deepEqual(
        {
          code: err.code,
          status: err.status,
          error: err.error,
          description: err.description,
          reason: err.reason,
        },
        { code: 'ERR_INVALID_REQUEST', status: 400, error: 'invalid_request', description, reason },
      );
      return true;
    },
  );
}

const NOT_ASCII = ['the request body must be form-urlencoded ASCII', 'non-ASCII byte in form body'] as const;
const BAD_PERCENT = ['the request body is not valid form-urlencoded UTF-8', 'bad percent-encoding'] as const;
const DUPLICATE = 'a parameter was given more than once';

describe('parseForm', () => {
  const accepted: Array<[string, string, Array<[string, string]>]> = [
    ['an empty body', '', []],
    ['one pair', 'a=1', [['a', '1']]],
    [
      'pairs in order',
      'b=2&a=1',
      [
        ['b', '2'],
        ['a', '1'],
      ],
    ],
    ['an empty value', 'a=', [['a', '']]],
    ['a name without "="', 'a', [['a', '']]],
    ['an empty name', '=x', [['', 'x']]],
    [
      'empty pairs are skipped',
      '&a=1&&b=2&',
      [
        ['a', '1'],
        ['b', '2'],
      ],
    ],
    ['"+" is a space', 'scope=read_api+read_repository', [['scope', 'read_api read_repository']]],
    ['"%2B" is a plus', 'a=1%2B1', [['a', '1+1']]],
    ['"%20" and "+" together', 'a=x%20y+z', [['a', 'x y z']]],
    ['names are decoded too', 'subject%5Ftoken=t', [['subject_token', 't']]],
    ['only the first "=" splits', 'a=b=c', [['a', 'b=c']]],
    ['percent-encoded UTF-8', 'a=%C3%A9', [['a', 'é']]],
    [
      'names are case-sensitive',
      'a=1&A=2',
      [
        ['a', '1'],
        ['A', '2'],
      ],
    ],
    ['a JWT is taken as is', 'subject_token=eyJh.eyJz.c2ln', [['subject_token', 'eyJh.eyJz.c2ln']]],
    // Decoded control characters are the parameters' own checks' business (a NUL is no JWT).
    ['a decoded NUL is kept', 'a=%00', [['a', '\0']]],
    [
      '32 parameters',
      Array.from({ length: 32 }, (_, i) => `p${i}=v`).join('&'),
      Array.from({ length: 32 }, (_, i): [string, string] => [`p${i}`, 'v']),
    ],
  ];
  for (const [name, body, expected] of accepted) {
    it(`accepts ${name}`, () => assert.deepEqual(entries(body), expected));
  }

  const refusals: Array<[string, string, string, string]> = [
    ['a non-ASCII character', 'a=é', ...NOT_ASCII],
    ['a tab', 'a=1\tb', ...NOT_ASCII],
    ['a newline', 'a=1\n', ...NOT_ASCII],
    ['a DEL', 'a=\x7f', ...NOT_ASCII],
    ['a lone "%"', 'a=%', ...BAD_PERCENT],
    ['"%" and one hex digit', 'a=%4', ...BAD_PERCENT],
    ['"%" and no hex digits', 'a=%zz', ...BAD_PERCENT],
    ['percent-encoded invalid UTF-8', 'a=%E9', ...BAD_PERCENT],
    ['a percent-encoded surrogate', 'a=%ED%A0%80', ...BAD_PERCENT],
    ['a bad "%" in a name', '%=1', ...BAD_PERCENT],
    ['a duplicate', 'a=1&a=2', DUPLICATE, 'duplicate parameter a'],
    ['a duplicate with the same value', 'a=1&a=1', DUPLICATE, 'duplicate parameter a'],
    ['a duplicate with empty values', 'a=&a=', DUPLICATE, 'duplicate parameter a'],
    ['a duplicate without "="', 'a&a=1', DUPLICATE, 'duplicate parameter a'],
    ['a duplicate spelled encoded', 'audience=x&%61udience=y', DUPLICATE, 'duplicate parameter audience'],
    ['a duplicate empty name', '=1&=2', DUPLICATE, 'duplicate parameter '],
    [
      'a duplicate odd name, trimmed for the audit',
      'a+b%2F=1&a%20b/=2',
      DUPLICATE,
      'duplicate parameter a?b?',
    ],
    [
      '33 parameters',
      Array.from({ length: 33 }, (_, i) => `p${i}=v`).join('&'),
      'too many parameters',
      'form has 33 parameters',
    ],
    [
      '33 parameters counting empty ones',
      `a=1${'&'.repeat(32)}`,
      'too many parameters',
      'form has 33 parameters',
    ],
  ];
  for (const [name, body, description, reason] of refusals) {
    it(`refuses ${name}`, () => refused(body, description, reason));
  }

  it('refuses a long duplicate name with a reason of at most 40 characters', () => {
    const name = 'n'.repeat(100);
    refused(`${name}=1&${name}=2`, DUPLICATE, `duplicate parameter ${'n'.repeat(40)}`);
  });

  it('returns a Map: "__proto__" and "constructor" are plain names', () => {
    const p = parseForm('__proto__=x&constructor=y');
    assert.equal(p.get('__proto__'), 'x');
    assert.equal(p.get('constructor'), 'y');
    assert.equal(Object.getPrototypeOf(p), Map.prototype);
  });
});
