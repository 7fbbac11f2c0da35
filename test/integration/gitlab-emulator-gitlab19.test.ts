/**
 * The GitLab emulator answers as GitLab 19.x does, fact by fact, each test citing
 * the documentation page or the public recording it follows. The recordings are
 * the go-vcr cassettes of `ilijamt/vault-plugin-secrets-gitlab`
 * (`tests/integration/testdata/`, recorded against 17.11.7-ee, 18.11.5-ee,
 * 19.0.2-ee, 19.1.1-ee and gitlab.com); paths below are relative to that folder.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import { Redactor } from '../../src/client/redact.ts';
import { isTokenShaped } from '../../src/client/trust.ts';
import type { GitlabSeedInput } from '../../src/emulators/gitlab/config.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { redactTokens } from '../../src/service/audit.ts';
import { findToken } from '../../src/util/token-patterns.ts';
import { dayUtc, http, type Json } from '../helpers/gitlab-http.ts';
import { assertNoSecrets } from '../helpers/stack.ts';

/** Seed tokens with fixed values: one in each format, kept as given. */
const ALICE = 'glpat-aliceAliceAlice000000';
const BOB = 'glpat-BobBobBobBobBobBobBobBobBobBobBobBo.01.0w0000000';
const CAROL = 'glpat-carolCarolCarol000000';
const DAVE = 'glpat-daveDaveDaveDave000000';
/** Rotated by the tests (their old values die). */
const ERIN = 'glpat-erinErinErinErin000000';
const FRANK = 'glpat-frankFrankFrank000000';

/**
 * root (admin, generated token), alice (Developer of the group: inherited),
 * bob (Maintainer of acme/app: direct), carol (Owner of the group), dave (a PAT
 * with the `mcp` scope), erin and frank (PATs the tests rotate); acme/app with a
 * repository, acme/empty without one.
 */
function seed(extra: Partial<GitlabSeedInput> = {}): GitlabSeedInput {
  return {
    users: [
      { username: 'root', id: 1, admin: true, tokens: [{ name: 'admin', scopes: ['api'] }] },
      { username: 'alice', id: 2, tokens: [{ name: 'a', scopes: ['api'], token: ALICE }] },
      { username: 'bob', id: 3, tokens: [{ name: 'b', scopes: ['api'], token: BOB }] },
      { username: 'carol', id: 4, tokens: [{ name: 'c', scopes: ['api'], token: CAROL }] },
      { username: 'dave', id: 5, tokens: [{ name: 'd', scopes: ['mcp', 'read_api'], token: DAVE }] },
      { username: 'erin', id: 6, tokens: [{ name: 'e', scopes: ['api'], token: ERIN }] },
      { username: 'frank', id: 7, tokens: [{ name: 'f', scopes: ['self_rotate'], token: FRANK }] },
    ],
    groups: [
      {
        path: 'acme',
        id: 100,
        name: 'Acme',
        members: [
          { user: 'alice', access_level: 'developer' },
          { user: 'carol', access_level: 'owner' },
        ],
      },
      { path: 'acme/team', id: 101, name: 'Team' },
    ],
    projects: [
      {
        path: 'acme/app',
        id: 1000,
        description: 'The app',
        members: [{ user: 'bob', access_level: 'maintainer' }],
      },
      { path: 'acme/empty', id: 1001, repository: false },
    ],
    ...extra,
  };
}

/**
 * Checks a value against GitLab's routable token format, independently of the
 * emulator's code: `glpat-` + base64url(16 random bytes + `o:<org>\nu:<user id in
 * base 36>` + that text's length as a byte) + `.01.` + the base64url part's
 * length (2 base-36 digits) + CRC-32 of all before (7 base-36 digits). Decoded
 * from the values in `tokens.18.11.2.json` (commit 4cb03d8) and gitlab.com's
 * `saas/TestWithGitlabUser_RotateToken.yaml` (commit e33b5bc).
 */
function routingOf(token: string): string {
  const m = /^glpat-([A-Za-z0-9_-]+)\.01\.([0-9a-z]{2})([0-9a-z]{7})$/.exec(token);
  assert.ok(m, `${token} is glpat- + payload + .01. + 9`);
  assert.ok(token.length >= 51 && token.length <= 54, `${token.length} characters`);
  assert.equal(Number.parseInt(m[2]!, 36), m[1]!.length, 'the length field');
  assert.equal(crc32(`glpat-${m[1]}.01.${m[2]}`).toString(36).padStart(7, '0'), m[3], 'the CRC-32 checksum');
  const payload = Buffer.from(m[1]!, 'base64url');
  const routing = payload.subarray(16, payload.length - 1);
  assert.equal(payload.at(-1), routing.length, 'the routing text length byte');
  return routing.toString('latin1');
}

const LEGACY = /^glpat-[A-Za-z0-9_-]{20}$/;
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

// Keys in GitLab 19.1.1's order. Project: serviceaccount/19.1.1/TestWithServiceAccountProject.yaml
// (an administrator: 119 keys with `repository_storage`); e2e/19.1.1/TestWithProjectDeployToken.yaml
// (a group Owner: 118, without it).
const PROJECT_KEYS_19_1 = [
  'id',
  'description',
  'name',
  'name_with_namespace',
  'path',
  'path_with_namespace',
  'created_at',
  'default_branch',
  'tag_list',
  'topics',
  'ssh_url_to_repo',
  'http_url_to_repo',
  'web_url',
  'readme_url',
  'forks_count',
  'avatar_url',
  'star_count',
  'last_activity_at',
  'visibility',
  'namespace',
  'repository_storage',
  '_links',
  'marked_for_deletion_at',
  'marked_for_deletion_on',
  'packages_enabled',
  'empty_repo',
  'archived',
  'resolve_outdated_diff_discussions',
  'container_expiration_policy',
  'repository_object_format',
  'issues_enabled',
  'merge_requests_enabled',
  'wiki_enabled',
  'jobs_enabled',
  'snippets_enabled',
  'container_registry_enabled',
  'service_desk_enabled',
  'service_desk_address',
  'can_create_merge_request_in',
  'issues_access_level',
  'repository_access_level',
  'merge_requests_access_level',
  'forking_access_level',
  'wiki_access_level',
  'builds_access_level',
  'snippets_access_level',
  'pages_access_level',
  'analytics_access_level',
  'container_registry_access_level',
  'security_and_compliance_access_level',
  'releases_access_level',
  'environments_access_level',
  'feature_flags_access_level',
  'infrastructure_access_level',
  'monitor_access_level',
  'model_experiments_access_level',
  'model_registry_access_level',
  'package_registry_access_level',
  'emails_disabled',
  'emails_enabled',
  'show_diff_preview_in_email',
  'shared_runners_enabled',
  'lfs_enabled',
  'creator_id',
  'import_url',
  'import_type',
  'import_status',
  'import_error',
  'open_issues_count',
  'description_html',
  'updated_at',
  'ci_default_git_depth',
  'ci_delete_pipelines_in_seconds',
  'ci_forward_deployment_enabled',
  'ci_forward_deployment_rollback_allowed',
  'ci_job_token_scope_enabled',
  'ci_separated_caches',
  'ci_allow_fork_pipelines_to_run_in_parent_project',
  'ci_id_token_sub_claim_components',
  'build_git_strategy',
  'keep_latest_artifact',
  'restrict_user_defined_variables',
  'ci_pipeline_variables_minimum_override_role',
  'runner_token_expiration_interval',
  'group_runners_enabled',
  'resource_group_default_process_mode',
  'auto_cancel_pending_pipelines',
  'build_timeout',
  'auto_devops_enabled',
  'auto_devops_deploy_strategy',
  'ci_push_repository_for_job_token_allowed',
  'protect_merge_request_pipelines',
  'ci_display_pipeline_variables',
  'runners_token',
  'ci_config_path',
  'public_jobs',
  'shared_with_groups',
  'only_allow_merge_if_pipeline_succeeds',
  'allow_merge_on_skipped_pipeline',
  'request_access_enabled',
  'only_allow_merge_if_all_discussions_are_resolved',
  'remove_source_branch_after_merge',
  'printing_merge_request_link_enabled',
  'merge_method',
  'squash_option',
  'enforce_auth_checks_on_uploads',
  'suggestion_commit_message',
  'merge_commit_template',
  'squash_commit_template',
  'mr_default_title_template',
  'issue_branch_template',
  'warn_about_potentially_unwanted_characters',
  'autoclose_referenced_issues',
  'max_artifacts_size',
  'requirements_enabled',
  'requirements_access_level',
  'security_and_compliance_enabled',
  'compliance_frameworks',
  'permissions',
];

// Group: paths/19.1.1/TestGitlabClient_GetGroupIdByPath.yaml (`GET /groups/test`: 48 keys;
// the subgroup `level-1/level-2`: 44, without the four top-level-only keys).
const GROUP_KEYS_19_1 = [
  'id',
  'web_url',
  'name',
  'path',
  'description',
  'visibility',
  'share_with_group_lock',
  'require_two_factor_authentication',
  'two_factor_grace_period',
  'project_creation_level',
  'auto_devops_enabled',
  'subgroup_creation_level',
  'emails_disabled',
  'emails_enabled',
  'show_diff_preview_in_email',
  'mentions_disabled',
  'lfs_enabled',
  'archived',
  'math_rendering_limits_enabled',
  'lock_math_rendering_limits_enabled',
  'default_branch',
  'default_branch_protection',
  'default_branch_protection_defaults',
  'avatar_url',
  'request_access_enabled',
  'full_name',
  'full_path',
  'created_at',
  'parent_id',
  'organization_id',
  'shared_runners_setting',
  'max_artifacts_size',
  'marked_for_deletion_on',
  'ldap_cn',
  'ldap_access',
  'wiki_access_level',
  'duo_namespace_access_rules',
  'shared_with_groups',
  'runners_token',
  'enabled_git_access_protocol',
  'prevent_sharing_groups_outside_hierarchy',
  'projects',
  'shared_projects',
  'shared_runners_minutes_limit',
  'extra_shared_runners_minutes_limit',
  'prevent_forking_outside_group',
  'service_access_tokens_expiration_enforced',
  'membership_lock',
];
const TOP_LEVEL_GROUP_ONLY = [
  'duo_namespace_access_rules',
  'enabled_git_access_protocol',
  'prevent_sharing_groups_outside_hierarchy',
  'service_access_tokens_expiration_enforced',
];

// Token answers (18.11+ add `granular`): e2e/19.1.1/TestWithNormalUser_ProjectAT.yaml (create),
// paths/19.1.1/TestGitlabClient_RotateCurrentToken.yaml (rotate),
// paths/19.1.1/TestGitlabClient_CurrentTokenInfo.yaml (`GET /personal_access_tokens/self`).
const PAT_KEYS = [
  'id',
  'name',
  'revoked',
  'created_at',
  'description',
  'scopes',
  'user_id',
  'last_used_at',
  'active',
  'granular',
  'expires_at',
];
const RESOURCE_TOKEN_KEYS = [...PAT_KEYS, 'access_level', 'resource_type', 'resource_id', 'token'];

describe('GitLab emulator as GitLab 19.x', () => {
  let emu: GitlabEmulatorHandle;
  let dir: string;
  const call = (path: string, o: Parameters<typeof http>[2] = {}) => http(emu.url, `/api/v4${path}`, o);
  const mint = async (kind: 'projects' | 'groups', id: number | string, body: Record<string, unknown>) => {
    const r = await call(`/${kind}/${encodeURIComponent(String(id))}/access_tokens`, {
      token: emu.adminToken,
      json: { name: 't', scopes: ['api'], expires_at: dayUtc(3), ...body },
    });
    assert.equal(r.status, 201, r.text);
    return r.json;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gitlab-emu-19-'));
    emu = await startGitlabEmulator({ stateDir: join(dir, 'state'), config: seed() });
  });
  after(async () => {
    await emu?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('1. token format', () => {
    test('project, group, rotated and self-rotated tokens are routable: glpat- + payload + .01. + 9, 51–54 characters (tokens.18.11.2.json, saas/TestWithGitlabUser_RotateToken.yaml)', async () => {
      const project = await mint('projects', 1000, {});
      const group = await mint('groups', 100, { access_level: 30 });
      const rotated = (
        await call(`/projects/1000/access_tokens/${project.id}/rotate`, {
          method: 'POST',
          token: emu.adminToken,
        })
      ).json;
      const self = await call('/personal_access_tokens/self/rotate', { method: 'POST', token: ERIN });
      assert.equal(self.status, 200, self.text);
      for (const t of [project, group, rotated, self.json]) {
        // The payload routes to the organization and the token's user (a bot: 54 characters).
        assert.equal(routingOf(t.token), `o:1\nu:${t.user_id.toString(36)}`);
        const me = await call('/personal_access_tokens/self', { token: t.token });
        assert.equal(me.status, t === project ? 401 : 200, `${t.token} authenticates unless rotated`);
      }
      assert.equal(self.json.user_id, 6);
      assert.equal(
        self.json.token.length,
        51,
        "a user id below 36: 51 characters, as the 18.11 recordings' users",
      );
      assert.equal(project.token.length, 54, 'a bot user id of 10000 and more: 54 characters');
      // The old value of a rotated seed token is dead.
      assert.equal((await call('/user', { token: ERIN })).status, 401);
    });

    test('seed tokens keep the value given in the seed, in either format; generated ones follow settings.tokenFormat', async () => {
      for (const [token, username] of [
        [ALICE, 'alice'],
        [BOB, 'bob'],
      ] as const) {
        const me = await call('/user', { token });
        assert.deepEqual([me.status, me.json.username], [200, username]);
      }
      assert.equal(routingOf(emu.adminToken), 'o:1\nu:1', "root's generated token");

      const legacyDir = join(dir, 'legacy');
      const legacy = await startGitlabEmulator({
        stateDir: legacyDir,
        config: seed({ settings: { tokenFormat: 'legacy' } }),
      });
      try {
        assert.match(legacy.adminToken, LEGACY);
        const t = await http(legacy.url, '/api/v4/projects/1000/access_tokens', {
          token: legacy.adminToken,
          json: { name: 'x', scopes: ['api'], expires_at: dayUtc(2) },
        });
        assert.equal(t.status, 201, t.text);
        assert.match(t.json.token, LEGACY);
        assert.equal((await http(legacy.url, '/api/v4/user', { token: BOB })).json.username, 'bob');
      } finally {
        await legacy.close();
      }
      // A value generated by an earlier start is reused, whatever the format setting says now.
      const again = await startGitlabEmulator({ stateDir: legacyDir, config: seed() });
      try {
        assert.match(again.adminToken, LEGACY);
        assert.equal((await http(again.url, '/api/v4/user', { token: again.adminToken })).status, 200);
      } finally {
        await again.close();
      }
    });

    test('every place that recognises a token knows an issued current-format one, whole', async () => {
      const { token } = await mint('projects', 1000, { name: 'recognised' });
      routingOf(token);
      const text = `refused: project acme/app/${token}. Try again`;
      // The audit trail's redaction (src/service/audit.ts).
      const audited = redactTokens(text);
      assert.match(audited, /^refused: project acme\/app\/\[redacted sha256:[0-9a-f]{16}\]\. Try again$/);
      // The client's stderr scrubbing (src/client/redact.ts).
      assert.equal(new Redactor().redact(text), 'refused: project acme/app/[redacted-token]. Try again');
      // The tests' leak scan (test/helpers/stack.ts assertNoSecrets), also lowercased.
      assert.throws(() => assertNoSecrets([text]), /contains a token/);
      assert.throws(() => assertNoSecrets([text.toLowerCase()]), /contains a token/);
      assert.equal(findToken(text), token);
      // The git credential helper's token-shape check (src/client/trust.ts isTokenShaped).
      assert.equal(isTokenShaped(token), true);
      assert.equal(isTokenShaped(`${token}\nusername=x`), false);
    });
  });

  describe('2. expires_at = today', () => {
    test('a project or group token expiring today is created inactive (paths/{17.11.7,18.11.5,19.0.2}/TestGitlabClient_CreateAccessToken_And_Revoke.yaml)', async () => {
      const today = dayUtc(0);
      for (const [kind, id] of [
        ['projects', 1000],
        ['groups', 100],
      ] as const) {
        const t = await mint(kind, id, { name: `today-${kind}`, expires_at: today, access_level: 10 });
        assert.deepEqual([t.expires_at, t.active, t.revoked], [today, false, false]);
        const used = await call('/user', { token: t.token });
        assert.deepEqual([used.status, used.json.error], [401, 'invalid_token']);
        const inactive = await call(`/${kind}/${id}/access_tokens?state=inactive&search=today-${kind}`, {
          token: emu.adminToken,
        });
        assert.deepEqual(
          inactive.json.map((x: Json) => x.id),
          [t.id],
        );
      }
      // Yesterday is still refused (the emulator's own rule: GitLab documents no minimum).
      const past = await call('/projects/1000/access_tokens', {
        token: emu.adminToken,
        json: { name: 'past', scopes: ['api'], expires_at: dayUtc(-1) },
      });
      assert.deepEqual(
        [past.status, past.json],
        [400, { message: '400 Bad request - Expires at cannot be in the past' }],
      );
    });
  });

  describe('3. fields', () => {
    test('token answers carry granular; GET /personal_access_tokens/self also last_used_ips (19.1.1 recordings)', async () => {
      const created = await mint('projects', 1000, { name: 'fields' });
      assert.deepEqual(Object.keys(created), RESOURCE_TOKEN_KEYS);
      assert.equal(created.granular, false);
      const rotated = await call(`/projects/1000/access_tokens/${created.id}/rotate`, {
        method: 'POST',
        token: emu.adminToken,
      });
      assert.deepEqual(Object.keys(rotated.json), RESOURCE_TOKEN_KEYS);
      const listed = await call(`/projects/1000/access_tokens/${rotated.json.id}`, { token: emu.adminToken });
      assert.deepEqual(
        Object.keys(listed.json),
        RESOURCE_TOKEN_KEYS.filter((k) => k !== 'token'),
      );

      const self = await call('/personal_access_tokens/self', { token: DAVE });
      assert.deepEqual(Object.keys(self.json), [...PAT_KEYS, 'last_used_ips']);
      assert.deepEqual(self.json.last_used_ips, ['127.0.0.1']);
      assert.equal(self.json.granular, false);
      const pat = await call('/personal_access_tokens/self/rotate', { method: 'POST', token: FRANK });
      assert.equal(pat.status, 200, pat.text);
      assert.deepEqual(Object.keys(pat.json), [...PAT_KEYS, 'token']);
    });

    test('GET /projects/:id has the keys of GitLab 19.1.1, in its order; paths and ids are unchanged', async () => {
      const asAdmin = await call('/projects/acme%2Fapp', { token: emu.adminToken });
      assert.deepEqual(Object.keys(asAdmin.json), PROJECT_KEYS_19_1);
      assert.equal(Object.keys(asAdmin.json).length, 119);
      const asMaintainer = await call('/projects/1000', { token: BOB });
      assert.deepEqual(
        Object.keys(asMaintainer.json),
        PROJECT_KEYS_19_1.filter((k) => k !== 'repository_storage'),
      );
      assert.deepEqual(
        [asMaintainer.json.id, asMaintainer.json.path_with_namespace, asMaintainer.json.namespace.full_path],
        [1000, 'acme/app', 'acme'],
      );
      assert.equal(asMaintainer.json.name_with_namespace, 'Acme / app');
      assert.equal(asMaintainer.json.description_html, '<p data-sourcepos="1:1-1:7" dir="auto">The app</p>');
      assert.equal(asMaintainer.json._links.self, `${emu.url}/api/v4/projects/1000`);
      assert.match(asMaintainer.json.runners_token, /^GR1348941[A-Za-z0-9_-]{20}$/);
      // lib/api/entities/project.rb: CI/CD settings, runners_token and import_* need admin_project.
      const asDeveloper = (await call('/projects/1000', { token: ALICE })).json;
      for (const hidden of [
        'runners_token',
        'ci_default_git_depth',
        'build_git_strategy',
        'import_url',
        'import_error',
      ])
        assert.ok(!(hidden in asDeveloper), hidden);
      for (const shown of ['ci_config_path', 'service_desk_address', 'open_issues_count', 'permissions'])
        assert.ok(shown in asDeveloper, shown);
      assert.equal(asDeveloper.can_create_merge_request_in, true);
    });

    test('GET /groups/:id has the keys of GitLab 19.1.1: 48 for a top-level group, 44 for a subgroup', async () => {
      const top = await call('/groups/acme', { token: CAROL });
      assert.deepEqual(Object.keys(top.json), GROUP_KEYS_19_1);
      assert.deepEqual([top.json.id, top.json.full_path, top.json.parent_id], [100, 'acme', null]);
      // Its projects as Entities::Project (no permissions), those the caller can see.
      assert.deepEqual(
        top.json.projects.map((p: Json) => p.path_with_namespace),
        ['acme/app', 'acme/empty'],
      );
      assert.deepEqual(
        Object.keys(top.json.projects[0]),
        PROJECT_KEYS_19_1.filter((k) => !['repository_storage', 'import_error', 'permissions'].includes(k)),
      );
      const sub = await call('/groups/acme%2Fteam', { token: emu.adminToken });
      assert.deepEqual(
        Object.keys(sub.json),
        GROUP_KEYS_19_1.filter((k) => !TOP_LEVEL_GROUP_ONLY.includes(k)),
      );
      assert.deepEqual(
        [sub.json.full_path, sub.json.full_name, sub.json.parent_id],
        ['acme/team', 'Acme / Team', 100],
      );
      // runners_token only for Owners (admin_group).
      const asDeveloper = await call('/groups/100', { token: ALICE });
      assert.ok(!('runners_token' in asDeveloper.json));
      assert.equal(Object.keys(asDeveloper.json).length, 47);
    });
  });

  describe('4. permissions and empty repositories', () => {
    test('a role from the group is group_access, a project membership project_access, an administrator who is no member sees both null', async () => {
      const access = async (token: string) => (await call('/projects/1000', { token })).json.permissions;
      // e2e/19.1.1/TestWithProjectDeployToken.yaml: a group Owner.
      assert.deepEqual(await access(CAROL), {
        project_access: null,
        group_access: { access_level: 50, notification_level: 3 },
      });
      assert.deepEqual(await access(ALICE), {
        project_access: null,
        group_access: { access_level: 30, notification_level: 3 },
      });
      assert.deepEqual(await access(BOB), {
        project_access: { access_level: 40, notification_level: 3 },
        group_access: null,
      });
      // serviceaccount/19.1.1/TestWithServiceAccountProject.yaml: an administrator.
      assert.deepEqual(await access(emu.adminToken), { project_access: null, group_access: null });
      // A project access token's bot is a direct member.
      const bot = await mint('projects', 1000, { name: 'bot', access_level: 20, scopes: ['read_api'] });
      assert.deepEqual(await access(bot.token), {
        project_access: { access_level: 20, notification_level: 3 },
        group_access: null,
      });
    });

    test('an empty repository: default_branch "main", empty_repo true (serviceaccount/19.1.1/TestWithServiceAccountProject.yaml)', async () => {
      const empty = (await call('/projects/acme%2Fempty', { token: emu.adminToken })).json;
      assert.deepEqual([empty.default_branch, empty.empty_repo, empty.readme_url], ['main', true, null]);
      const app = (await call('/projects/acme%2Fapp', { token: emu.adminToken })).json;
      assert.deepEqual(
        [app.default_branch, app.empty_repo, app.readme_url],
        ['main', false, `${emu.url}/acme/app/-/blob/main/README.md`],
      );
    });
  });

  describe('5. headers', () => {
    test('every API answer carries Cache-Control and X-Request-Id (with X-Gitlab-Meta); successes an ETag (19.1.1 recordings)', async () => {
      const t = await mint('projects', 1000, { name: 'headers' });
      const answers = [
        await call('/user', { token: BOB }),
        await call('/projects/1000/access_tokens', {
          token: emu.adminToken,
          json: { name: 'h', scopes: ['api'], expires_at: dayUtc(2) },
        }),
        await call(`/projects/1000/access_tokens/${t.id}`, { method: 'DELETE', token: emu.adminToken }),
        await call('/projects/9999', { token: BOB }),
        await call('/user', { token: 'glpat-nobodyNobodyNobody0000' }),
        await call('/nope', { token: BOB }),
      ];
      assert.deepEqual(
        answers.map((r) => r.status),
        [200, 201, 204, 404, 401, 404],
      );
      const ids = new Set<string>();
      for (const r of answers) {
        const id = r.headers.get('x-request-id') ?? '';
        assert.match(id, ULID);
        ids.add(id);
        assert.deepEqual(JSON.parse(r.headers.get('x-gitlab-meta') ?? '{}'), {
          correlation_id: id,
          version: '1',
        });
        const ok = r.status === 200 || r.status === 201;
        assert.equal(r.headers.get('cache-control'), ok ? 'max-age=0, private, must-revalidate' : 'no-cache');
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
        if (ok) assert.match(r.headers.get('etag') ?? '', /^W\/"[0-9a-f]{32}"$/);
      }
      assert.equal(ids.size, answers.length, 'one id per request');
    });

    test('a revoked token gets 401 with WWW-Authenticate naming invalid_token and why (e2e/17.11.7/TestWithAdminUser_PAT_AdminUser_VaultRevokesToken.yaml, saas/TestWithGitlabUser_RotateToken.yaml)', async () => {
      const t = await mint('projects', 1000, { name: 'revoked' });
      await call(`/projects/1000/access_tokens/${t.id}`, { method: 'DELETE', token: emu.adminToken });
      const r = await call('/personal_access_tokens/self', { token: t.token });
      assert.deepEqual(r.json, {
        error: 'invalid_token',
        error_description: 'Token was revoked. You have to re-authorize from the user.',
      });
      assert.equal(
        r.headers.get('www-authenticate'),
        'Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="Token was revoked. You have to re-authorize from the user."',
      );
      assert.equal(r.headers.get('cache-control'), 'no-cache');
    });

    test('rate limits: a revoked token counts as unauthenticated, throttle_unauthenticated_api (saas/TestWithGitlabUser_RotateToken.yaml)', async () => {
      const t = await mint('projects', 1000, { name: 'limited' });
      await call(`/projects/1000/access_tokens/${t.id}`, { method: 'DELETE', token: emu.adminToken });
      await http(emu.url, '/_emulator/faults', { json: { rateLimit: { limit: 500, periodSeconds: 60 } } });
      try {
        const revoked = await call('/personal_access_tokens/self', { token: t.token });
        assert.equal(revoked.status, 401);
        assert.equal(revoked.headers.get('ratelimit-name'), 'throttle_unauthenticated_api');
        assert.equal(revoked.headers.get('ratelimit-limit'), '500');
        const valid = await call('/personal_access_tokens/self', { token: BOB });
        assert.equal(valid.headers.get('ratelimit-name'), 'throttle_authenticated_api');
      } finally {
        await http(emu.url, '/_emulator/faults', { method: 'DELETE' });
      }
    });
  });

  describe('6. scopes', () => {
    test('the mcp scope (GitLab 18.5+, gitlab-org/gitlab#554826) is accepted for project, group and personal tokens; an unknown one is not', async () => {
      const p = await mint('projects', 1000, { name: 'mcp', scopes: ['mcp'] });
      assert.deepEqual(p.scopes, ['mcp']);
      const g = await mint('groups', 100, { name: 'mcp', scopes: ['mcp', 'read_api'], access_level: 10 });
      assert.deepEqual(g.scopes, ['mcp', 'read_api']);
      assert.deepEqual((await call('/personal_access_tokens/self', { token: DAVE })).json.scopes, [
        'mcp',
        'read_api',
      ]);
      // mcp alone is no REST API scope.
      const rest = await call('/projects/1000', { token: p.token });
      assert.deepEqual([rest.status, rest.json.error], [403, 'insufficient_scope']);
      const bad = await call('/projects/1000/access_tokens', {
        token: emu.adminToken,
        json: { name: 'x', scopes: ['ai_workflows'], expires_at: dayUtc(2) },
      });
      assert.deepEqual([bad.status, bad.json], [400, { error: 'scopes does not have a valid value' }]);
    });
  });

  test('GET /version and GET /metadata name a 19.x version (doc/api/metadata.md)', async () => {
    for (const path of ['/version', '/metadata']) {
      const r = await call(path, { token: BOB });
      assert.equal(r.status, 200);
      assert.match(r.json.version, /^19\.\d+\.\d+-/);
      assert.equal(typeof r.json.revision, 'string');
      assert.equal(r.json.kas.enabled, false);
    }
  });
});
