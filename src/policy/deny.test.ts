/** `server.deny`: compiled once, matched like a policy's `match`, first entry that holds wins. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileDenyList, deniedBy } from './deny.ts';
import { DenyListError } from './errors.ts';
import { APP, identity, OTHER_APP } from './fixtures.testutil.ts';

describe('server.deny', () => {
  const list = compileDenyList([
    { issuer: 'contoso', match: { appid: APP } },
    { match: { sub: { pattern: 'project_path:leaked/[^:]+:.*' } } },
    { issuer: 'ci', match: { project_id: ['13', '14'], ref_protected: 'false' } },
  ]);

  it('names the first entry that matches the caller', () => {
    assert.equal(deniedBy(list, identity({ appid: APP })), 0);
    assert.equal(deniedBy(list, identity({ appid: OTHER_APP })), undefined);
    assert.equal(
      deniedBy(list, identity({ sub: 'project_path:leaked/app:ref_type:branch:ref:main' }, 'ci')),
      1,
    );
    assert.equal(deniedBy(list, identity({ project_id: '13', ref_protected: 'false' }, 'ci')), 2);
    // Every matcher of an entry must hold.
    assert.equal(deniedBy(list, identity({ project_id: '13', ref_protected: 'true' }, 'ci')), undefined);
  });

  it('an entry with an issuer holds only for that issuer; without one, for every issuer', () => {
    assert.equal(deniedBy(list, identity({ appid: APP }, 'ci')), undefined);
    assert.equal(
      deniedBy(list, identity({ appid: OTHER_APP, sub: 'project_path:leaked/x:ref_type:tag:ref:v1' })),
      1,
    );
  });

  it('matches type-strictly, own properties only, never a value holding a control character', () => {
    assert.equal(deniedBy(list, identity({ project_id: 13, ref_protected: 'false' }, 'ci')), undefined);
    const proto = compileDenyList([{ match: { constructor: 'x' } }]);
    assert.equal(deniedBy(proto, identity({})), undefined);
    assert.equal(
      deniedBy(list, identity({ sub: 'project_path:leaked/app:ref_type:branch:ref:main\nx' }, 'ci')),
      undefined,
    );
  });

  it('an empty list denies nobody', () => {
    assert.equal(deniedBy(compileDenyList([]), identity({ appid: APP })), undefined);
  });

  it('an unusable entry is an error naming it: no claim, an invalid pattern, a control character', () => {
    const cases: Array<[Parameters<typeof compileDenyList>[0], RegExp]> = [
      [[{ match: { appid: APP } }, { match: {} }], /^server\.deny\[1\]: match needs at least one claim$/],
      [[{ match: { sub: { pattern: '(' } } }], /^server\.deny\[0\]: match\.sub: invalid pattern: /],
      [
        [{ match: { sub: 'a\u202eb' } }],
        /^server\.deny\[0\]: match\.sub: a value holds a control character$/,
      ],
    ];
    for (const [rules, message] of cases) {
      assert.throws(
        () => compileDenyList(rules),
        (err: unknown) =>
          err instanceof DenyListError && err.code === 'ERR_DENY_COMPILE' && message.test(err.message),
      );
    }
  });
});
