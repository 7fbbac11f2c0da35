import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEPLOY_TOKEN_SCOPES,
  GITLAB_SCOPES,
  GRANT_SCOPES,
  isGitlabScope,
  nearestGitlabScope,
  RESOURCE_SCOPES,
} from './gitlab-scopes.ts';

describe("GitLab's scopes", () => {
  it('the STS grants resource scopes only, never self_rotate (src/policy re-exports this list)', () => {
    for (const s of RESOURCE_SCOPES) assert.ok(isGitlabScope(s), s);
    assert.ok(!(RESOURCE_SCOPES as readonly string[]).includes('self_rotate'));
    for (const s of ['self_rotate', 'read_user', 'sudo', 'admin_mode', 'read_service_ping'])
      assert.ok(isGitlabScope(s), s);
    assert.equal(new Set(GITLAB_SCOPES).size, GITLAB_SCOPES.length);
  });

  it('deploy-token scopes are known (a request for one is never "unknown") and grantable; none opens the API', () => {
    for (const s of DEPLOY_TOKEN_SCOPES) {
      assert.ok(isGitlabScope(s), s);
      assert.ok((GRANT_SCOPES as readonly string[]).includes(s), s);
    }
    for (const s of ['api', 'read_api', 'write_repository', 'self_rotate'])
      assert.ok(!(DEPLOY_TOKEN_SCOPES as readonly string[]).includes(s), s);
    assert.equal(new Set(GRANT_SCOPES).size, GRANT_SCOPES.length);
    assert.equal(nearestGitlabScope('read_package_registy'), 'read_package_registry');
  });

  it('anything else is unknown: typos, other case, other separators', () => {
    for (const s of ['read_repositry', 'READ_API', 'read-api', 'repo', '', 'api '])
      assert.ok(!isGitlabScope(s), s);
  });

  for (const [typo, meant] of [
    ['read_repositry', 'read_repository'],
    ['readrepository', 'read_repository'],
    ['read-api', 'read_api'],
    ['READ_API', 'read_api'],
    ['write_registy', 'write_registry'],
    ['apy', 'api'],
    ['self_rotat', 'self_rotate'],
  ] as const) {
    it(`${typo} → did you mean ${meant}`, () => assert.equal(nearestGitlabScope(typo), meant));
  }

  it('no suggestion for what is not close to any scope', () => {
    for (const s of ['xyz', 'repo', 'everything', 'k8s']) assert.equal(nearestGitlabScope(s), undefined, s);
  });
});
