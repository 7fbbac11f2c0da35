import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  InvalidRequestError,
  InvalidScopeError,
  InvalidTargetError,
  RateLimitedError,
  ServerError,
  StsError,
  subjectTokenRefused,
  UnavailableError,
  UnsupportedGrantTypeError,
} from './errors.ts';

describe('wire errors: one class per error, each with a stable code', () => {
  const table: Array<[StsError, Record<string, unknown>]> = [
    [
      new InvalidRequestError('d', 'r'),
      { code: 'ERR_INVALID_REQUEST', status: 400, error: 'invalid_request', description: 'd', reason: 'r' },
    ],
    [
      subjectTokenRefused('ERR_CLAIM_EXP: expired'),
      {
        code: 'ERR_INVALID_REQUEST',
        status: 400,
        error: 'invalid_request',
        description: 'the subject token is invalid or not accepted',
        reason: 'ERR_CLAIM_EXP: expired',
      },
    ],
    [
      new InvalidTargetError('r'),
      {
        code: 'ERR_INVALID_TARGET',
        status: 400,
        error: 'invalid_target',
        description: 'the requested resource is unknown or not granted to this caller',
        reason: 'r',
      },
    ],
    [
      new InvalidScopeError('r'),
      {
        code: 'ERR_INVALID_SCOPE',
        status: 400,
        error: 'invalid_scope',
        description: 'scope not granted',
        reason: 'r',
      },
    ],
    [
      new UnsupportedGrantTypeError(),
      {
        code: 'ERR_UNSUPPORTED_GRANT_TYPE',
        status: 400,
        error: 'unsupported_grant_type',
        description: 'grant_type must be urn:ietf:params:oauth:grant-type:token-exchange',
        reason: 'unsupported grant_type',
      },
    ],
    [
      new RateLimitedError('d', 'r', 7),
      {
        code: 'ERR_RATE_LIMITED',
        status: 429,
        error: 'temporarily_unavailable',
        description: 'd',
        reason: 'r',
        retryAfterSeconds: 7,
      },
    ],
    [
      new UnavailableError('r'),
      {
        code: 'ERR_UNAVAILABLE',
        status: 503,
        error: 'temporarily_unavailable',
        description: 'the service is temporarily unavailable; retry later',
        reason: 'r',
        retryAfterSeconds: 5,
      },
    ],
    [
      new ServerError('r'),
      {
        code: 'ERR_SERVER',
        status: 500,
        error: 'server_error',
        description: 'the request could not be completed',
        reason: 'r',
      },
    ],
    [
      new StsError(413, 'invalid_request', 'too large'),
      {
        code: 'ERR_STS',
        status: 413,
        error: 'invalid_request',
        description: 'too large',
        reason: 'too large',
      },
    ],
  ];
  for (const [err, expected] of table) {
    it(`${expected.code} (${err.constructor.name})`, () => {
      assert.ok(err instanceof StsError);
      assert.deepEqual(
        {
          code: err.code,
          status: err.status,
          error: err.error,
          description: err.description,
          reason: err.reason,
          ...(err.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: err.retryAfterSeconds }),
        },
        expected,
      );
      assert.equal(err.message, err.description, 'the message is the generic description');
    });
  }

  it('codes are unique per class', () => {
    const byCode = new Map<string, string>();
    for (const [err] of table) {
      const seen = byCode.get(err.code);
      assert.ok(
        seen === undefined || seen === err.constructor.name,
        `${err.code}: ${seen} and ${err.constructor.name}`,
      );
      byCode.set(err.code, err.constructor.name);
    }
  });
});
