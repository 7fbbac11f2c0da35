import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTarget } from './target.ts';
import type { TargetError, TargetRequest } from './types.ts';

const G = 'https://gitlab.example.com';
const project = (ref: string): TargetRequest => ({ ref, byId: false, explicitGroup: false });
const group = (ref: string): TargetRequest => ({ ref, byId: false, explicitGroup: true });
const id = (ref: string): TargetRequest => ({ ref, byId: true, explicitGroup: false });

function errorOf(t: TargetRequest | TargetError): string | undefined {
  return 'error' in t ? t.error : undefined;
}

describe('parseTarget: resource URLs', () => {
  const ok: [string, TargetRequest][] = [
    [`${G}/platform/app`, project('platform/app')],
    [`${G}/platform/app/`, project('platform/app')],
    [`${G}/platform/app.git`, project('platform/app')],
    [`${G}/platform/app.git/`, project('platform/app')],
    [`${G}/Platform/App`, project('platform/app')],
    [`${G}/a/b/c/d`, project('a/b/c/d')],
    [`${G}/groups/platform`, group('platform')],
    [`${G}/groups/platform/sub`, group('platform/sub')],
    [`${G}/groups`, project('groups')],
    ['HTTPS://GITLAB.example.com:443/platform/app', project('platform/app')],
    [`${G}/4242`, id('4242')],
  ];
  for (const [resource, expected] of ok) {
    it(`accepts ${resource}`, () => assert.deepEqual(parseTarget({ resource: [resource] }, G), expected));
  }

  const refused: [string, string, 'invalid_request' | 'invalid_target'][] = [
    ['another host', 'https://gitlab.attacker.example/platform/app', 'invalid_target'],
    ['a look-alike host', 'https://gitlab.example.com.attacker.example/platform/app', 'invalid_target'],
    ['http instead of https', 'http://gitlab.example.com/platform/app', 'invalid_target'],
    ['another port', 'https://gitlab.example.com:8443/platform/app', 'invalid_target'],
    ['a query string', `${G}/platform/app?x=1`, 'invalid_request'],
    ['an empty query', `${G}/platform/app?`, 'invalid_request'],
    ['a fragment', `${G}/platform/app#x`, 'invalid_request'],
    ['credentials', 'https://user:pw@gitlab.example.com/platform/app', 'invalid_request'],
    ['a .. segment', `${G}/platform/../secret/app`, 'invalid_request'],
    ['a trailing ..', `${G}/secret/app/..`, 'invalid_request'],
    ['a . segment', `${G}/platform/./app`, 'invalid_request'],
    ['an encoded slash', `${G}/platform%2Fapp`, 'invalid_request'],
    ['an encoded dot-dot', `${G}/platform/%2e%2e/app`, 'invalid_request'],
    ['a backslash', `${G}/platform\\app`, 'invalid_request'],
    ['an empty segment', `${G}/platform//app`, 'invalid_request'],
    ['no path', G, 'invalid_request'],
    ['only a slash', `${G}/`, 'invalid_request'],
    ['a UI route', `${G}/platform/app/-/tree/main`, 'invalid_request'],
    ['a space', `${G}/platform/my app`, 'invalid_request'],
    ['non-ASCII', `${G}/platform/äpp`, 'invalid_request'],
    ['no //', 'https:gitlab.example.com/platform/app', 'invalid_request'],
    ['a leading-zero ID', `${G}/0042`, 'invalid_request'],
    ['ID zero', `${G}/0`, 'invalid_request'],
  ];
  for (const [name, resource, error] of refused) {
    it(`refuses ${name} (${error})`, () =>
      assert.equal(errorOf(parseTarget({ resource: [resource] }, G)), error));
  }

  it('respects a GitLab base path', () => {
    const base = 'https://example.com/gitlab';
    assert.deepEqual(
      parseTarget({ resource: ['https://example.com/gitlab/platform/app'] }, base),
      project('platform/app'),
    );
    assert.deepEqual(parseTarget({ resource: ['https://example.com/gitlab/groups/g'] }, base), group('g'));
    assert.equal(
      errorOf(parseTarget({ resource: ['https://example.com/platform/app'] }, base)),
      'invalid_target',
    );
    assert.equal(
      errorOf(parseTarget({ resource: ['https://example.com/gitlabx/app'] }, base)),
      'invalid_target',
    );
  });
});

describe('parseTarget: audience, and exactly one target', () => {
  it('takes a path, a groups/ path, a numeric ID or a URL', () => {
    assert.deepEqual(parseTarget({ audience: ['Platform/App'] }, G), project('platform/app'));
    assert.deepEqual(parseTarget({ audience: ['groups/platform'] }, G), group('platform'));
    assert.deepEqual(parseTarget({ audience: ['4242'] }, G), id('4242'));
    assert.deepEqual(parseTarget({ audience: [`${G}/platform/app`] }, G), project('platform/app'));
  });

  it('refuses malformed audiences', () => {
    for (const a of [
      '',
      '/platform/app',
      'platform//app',
      '../app',
      'platform/%2e%2e',
      'a b',
      '007',
      'platform:app',
    ]) {
      assert.equal(errorOf(parseTarget({ audience: [a] }, G)), 'invalid_request', a);
    }
  });

  it('needs exactly one target', () => {
    assert.equal(errorOf(parseTarget({}, G)), 'invalid_request');
    assert.equal(errorOf(parseTarget({ resource: [], audience: [] }, G)), 'invalid_request');
    assert.equal(errorOf(parseTarget({ resource: [`${G}/a/b`, `${G}/a/c`] }, G)), 'invalid_request');
    assert.equal(errorOf(parseTarget({ resource: [`${G}/a/b`, `${G}/a/b`] }, G)), 'invalid_request');
    assert.equal(errorOf(parseTarget({ audience: ['a/b', 'a/c'] }, G)), 'invalid_request');
  });

  it('accepts resource and audience naming the same target, refuses different ones', () => {
    assert.deepEqual(parseTarget({ resource: [`${G}/A/b.git`], audience: ['a/B'] }, G), project('a/b'));
    assert.deepEqual(parseTarget({ resource: [`${G}/groups/a`], audience: ['a'] }, G), group('a'));
    assert.equal(errorOf(parseTarget({ resource: [`${G}/a/b`], audience: ['a/c'] }, G)), 'invalid_request');
    // A path and an ID may be the same project, but only GitLab knows: refused.
    assert.equal(errorOf(parseTarget({ resource: [`${G}/a/b`], audience: ['42'] }, G)), 'invalid_request');
  });

  it('a malformed target wins over a foreign one, so the request is refused before any token work', () => {
    const t = parseTarget({ resource: ['https://other.example/a/b'], audience: ['a//b'] }, G);
    assert.equal(errorOf(t), 'invalid_request');
  });
});
