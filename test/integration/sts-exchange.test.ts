/**
 * The STS end to end through real clients: @azure/identity gets an Entra
 * token from the emulator, the STS exchanges it, real git clones with the
 * result, and POST /revoke makes the next clone fail.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gitClone } from '../helpers/git.ts';
import {
  assertNoSecrets,
  EXCHANGE,
  gitlabTokens,
  PROJECT,
  pipelineToken,
  postForm,
  type Stack,
  startStack,
} from '../helpers/stack.ts';

describe('STS exchange end to end', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    // No token in anything the STS wrote to its audit stream during these tests.
    assertNoSecrets(
      s.audit.events.map((e) => JSON.stringify(e)),
      'audit stream',
    );
    await s.close();
  });

  const entraToken = () => pipelineToken(s);

  it('advertises its endpoints and the Azure scope to request', async () => {
    const res = await fetch(`${s.sts.url}/.well-known/oauth-authorization-server`);
    const meta = (await res.json()) as Record<string, unknown>;
    assert.equal(meta.issuer, 'http://127.0.0.1:8600');
    assert.equal(meta.token_endpoint, 'http://127.0.0.1:8600/token');
    assert.deepEqual(meta.grant_types_supported, ['urn:ietf:params:oauth:grant-type:token-exchange']);
    assert.deepEqual(meta.response_types_supported, []);
    assert.equal(meta.azure_scope, `${s.seed.resourceUri}/.default`);
  });

  it('exchanges an @azure/identity token, git clones with it, and revocation stops it', async () => {
    const subject = await entraToken();
    const res = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      resource: `${s.gitlab.url}/${PROJECT}`,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('pragma'), 'no-cache');
    assert.equal(res.json.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
    assert.equal(res.json.token_type, 'Bearer');
    assert.equal(res.json.scope, 'read_repository read_api');
    assert.equal(res.json.expires_in, 900);
    assert.match(res.json.access_token, /^glpat-/);

    // Exactly what was asked of GitLab: the policy's scopes and role, a name that identifies the grant.
    const minted = (await gitlabTokens(s.gitlab.url)).filter((t) =>
      String(t.name).startsWith('tanuki-sts/test/'),
    );
    assert.equal(minted.length, 1);
    assert.match(String(minted[0]?.name), /^tanuki-sts\/test\/image-build\/[0-9a-f-]{36}$/);
    assert.deepEqual([...((minted[0]?.scopes ?? []) as string[])].sort(), ['read_api', 'read_repository']);
    assert.equal(minted[0]?.access_level, 20);

    assert.equal((await gitClone(`${s.gitlab.url}/${PROJECT}.git`, res.json.access_token)).ok, true);
    const revoke = await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token });
    assert.equal(revoke.status, 200);
    assert.equal((await gitClone(`${s.gitlab.url}/${PROJECT}.git`, res.json.access_token)).ok, false);
    const event = s.audit.events.find((e) => e.event === 'revoke' && e.outcome === 'revoked');
    assert.ok(event, 'revocation audited');
  });

  it('accepts the same subject token again (pipelines retry) and audits its uti', async () => {
    const subject = await entraToken();
    for (let i = 0; i < 2; i++) {
      const res = await postForm(`${s.sts.url}/token`, {
        ...EXCHANGE,
        subject_token: subject,
        audience: PROJECT,
      });
      assert.equal(res.status, 200, res.text);
      await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token });
    }
    const granted = s.audit.events.filter((e) => e.event === 'exchange' && e.outcome === 'granted');
    assert.ok(granted.length >= 2);
    assert.ok(granted.every((e) => typeof e.subjectTokenId === 'string' && e.subjectTokenId.length > 0));
  });
});
