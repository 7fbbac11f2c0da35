/**
 * `grant.via`: what each kind of token takes, checked by the schema with the key named
 * (check-config shows every problem at once); compilePolicies checks the same for policies
 * built in code (src/policy/compile.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from './index.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

function withGrant(grant: Record<string, unknown>): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:8600', publicUrl: 'https://sts.example.com' },
    gitlab: { url: 'https://gitlab.example.com', token: 'glpat-test' },
    issuers: { contoso: { entra: { tenant: TENANT }, audiences: [`api://${TENANT}/tanuki-sts`] } },
    policies: [
      { name: 'pull', issuer: 'contoso', match: { appid: 'x' }, grant: { projects: ['a/b'], ...grant } },
    ],
  };
}

function issuesOf(input: unknown): string[] {
  try {
    parseConfig(input, { env: {} });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues;
  }
  assert.fail('expected a ConfigError');
}

describe('config: grant.via', () => {
  it('via: deploy-token takes deploy-token scopes and no role; access-token stays the default', () => {
    const c = parseConfig(
      withGrant({
        via: 'deploy-token',
        scopes: ['read_repository', 'read_registry', 'write_package_registry'],
      }),
      { env: {} },
    );
    assert.equal(c.policies[0]?.grant.via, 'deploy-token');
    assert.equal(c.policies[0]?.grant.role, undefined);
    const a = parseConfig(withGrant({ scopes: ['read_api'], role: 'reporter' }), { env: {} });
    assert.equal(a.policies[0]?.grant.via, 'access-token');
  });

  it('refuses, naming each key: a role with a deploy token, an API scope in one, a deploy-only scope or no role in an access token', () => {
    assert.deepEqual(
      issuesOf(
        withGrant({ via: 'deploy-token', role: 'reporter', scopes: ['api', 'read_repository', 'read_api'] }),
      ),
      [
        'policies[0].grant.role: does not apply to a deploy token (`via: deploy-token`): a deploy token has no user, hence no role; remove it',
        'policies[0].grant.scopes[0]: `api` is not a deploy-token scope (`via: deploy-token`): expected one of `read_repository`, `read_registry`, `write_registry`, `read_package_registry`, `write_package_registry`, `read_virtual_registry` or `write_virtual_registry`',
        'policies[0].grant.scopes[2]: `read_api` is not a deploy-token scope (`via: deploy-token`): expected one of `read_repository`, `read_registry`, `write_registry`, `read_package_registry`, `write_package_registry`, `read_virtual_registry` or `write_virtual_registry`',
      ],
    );
    const access = issuesOf(withGrant({ scopes: ['read_package_registry'] }));
    assert.deepEqual(access, [
      'policies[0].grant.role: required for an access token: `guest`, `planner`, `reporter`, `developer`, `maintainer` or `owner`',
      'policies[0].grant.scopes[0]: `read_package_registry` is a deploy-token scope: add `via: deploy-token` to the grant, or use an access-token scope',
    ]);
    const [via] = issuesOf(withGrant({ via: 'deploy_token', scopes: ['read_repository'] }));
    assert.match(
      String(via),
      /^policies\[0\]\.grant\.via: expected one of `access-token`, `deploy-token`, got `deploy_token` \(did you mean `deploy-token`\?\)$/,
    );
  });
});
