/**
 * Every error the STS can answer, with RFC 6749 §5.2 / RFC 8693 §2.2.2 shape
 * and status, and none that reveals a policy detail.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  EXCHANGE,
  gitlabTokens,
  PROJECT,
  pipelineToken,
  postForm,
  type Stack,
  startStack,
} from '../helpers/stack.ts';

function assertOAuthError(
  res: { status: number; json: any; text: string },
  status: number,
  error: string,
  secrets: string[],
) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json?.error, error, res.text);
  assert.equal(typeof res.json.error_description, 'string');
  // RFC 6749 §5.2: description characters limited to %x20-21 / %x23-5B / %x5D-7E.
  assert.match(res.json.error_description, /^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/);
  assert.match(res.json.request_id, /^[0-9a-f-]{36}$/);
  for (const s of secrets) assert.ok(!res.text.includes(s), `response leaks "${s}": ${res.text}`);
}

describe('STS errors', () => {
  let s: Stack;
  let subject: string;
  let secrets: string[];
  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        raw.policies.push({
          name: 'second-policy',
          issuer: 'contoso',
          match: { appid: '00000000-0000-4000-8000-000000000001' },
          grant: { projects: ['platform/secret-project'], scopes: ['api'], role: 'maintainer' },
        });
      },
    });
    subject = await pipelineToken(s);
    secrets = [
      'image-build',
      'second-policy',
      'secret-project',
      'GitLab.Read',
      s.seed.pipelineClientId,
      'glpat-',
    ];
  });
  after(() => s.close());
  const token = (form: Record<string, string>) => postForm(`${s.sts.url}/token`, form);

  it('unsupported_grant_type', async () => {
    assertOAuthError(
      await token({ grant_type: 'client_credentials' }),
      400,
      'unsupported_grant_type',
      secrets,
    );
  });

  it('invalid_request: missing, duplicated and refused parameters, wrong content type', async () => {
    const base = { ...EXCHANGE, subject_token: subject, audience: PROJECT };
    for (const form of [
      { grant_type: EXCHANGE.grant_type },
      { ...base, subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' },
      { ...base, requested_token_type: 'urn:ietf:params:oauth:token-type:jwt' },
      { ...base, actor_token: subject, actor_token_type: EXCHANGE.subject_token_type },
    ]) {
      assertOAuthError(await token(form), 400, 'invalid_request', secrets);
    }
    // No resource or audience is no longer malformed: this caller's only target is used
    // (docs/policies.md#no-resource-the-callers-only-target).
    const only = await token({ ...EXCHANGE, subject_token: subject });
    assert.equal(only.status, 200, only.text);
    await postForm(`${s.sts.url}/revoke`, { token: only.json.access_token });
    const dup = `${new URLSearchParams(base).toString()}&audience=${encodeURIComponent(PROJECT)}`;
    assertOAuthError(await postForm(`${s.sts.url}/token`, dup), 400, 'invalid_request', secrets);
    const json = await postForm(`${s.sts.url}/token`, JSON.stringify(base), {
      'content-type': 'application/json',
    });
    assertOAuthError(json, 400, 'invalid_request', secrets);
    // Refused before the handler (content type, duplicates), and still audited once each.
    for (const [res, reason] of [
      [json, /content type application\/json/],
      [await postForm(`${s.sts.url}/token`, dup), /duplicate parameter audience/],
    ] as const) {
      const events = s.audit.events.filter((e) => e.requestId === res.json.request_id);
      assert.equal(events.length, 1, `one audit event for ${res.json.request_id}`);
      assert.equal(events[0]?.outcome, 'invalid_request');
      assert.match(events[0]?.reason ?? '', reason);
    }
  });

  it('invalid_request for an invalid subject token, generic whatever the reason', async () => {
    const [h, p] = subject.split('.');
    const descriptions = new Set<string>();
    for (const bad of ['not-a-jwt', `${h}.${p}.`, `${h}.${p}.${'A'.repeat(342)}`]) {
      const res = await token({ ...EXCHANGE, subject_token: bad, audience: PROJECT });
      assertOAuthError(res, 400, 'invalid_request', secrets);
      descriptions.add(res.json.error_description);
    }
    assert.equal(descriptions.size, 1, 'the description does not say why');
  });

  it('invalid_target for a project no policy grants, or another GitLab', async () => {
    const targets: Record<string, string>[] = [
      { audience: 'platform/other-service' },
      { audience: 'platform/secret-project' },
      { resource: 'https://gitlab.attacker.example/platform/internal-lib' },
    ];
    for (const target of targets) {
      assertOAuthError(
        await token({ ...EXCHANGE, subject_token: subject, ...target }),
        400,
        'invalid_target',
        secrets,
      );
    }
  });

  it('invalid_scope for scopes beyond the grant', async () => {
    const res = await token({
      ...EXCHANGE,
      subject_token: subject,
      audience: PROJECT,
      scope: 'read_repository write_repository',
    });
    assertOAuthError(res, 400, 'invalid_scope', secrets);
  });

  it('413 for a body over the limit, before anything else', async () => {
    const res = await postForm(`${s.sts.url}/token`, `subject_token=${'a'.repeat(70_000)}`);
    assertOAuthError(res, 413, 'invalid_request', secrets);
  });

  it('405 for other methods, 404 JSON for unknown paths', async () => {
    const get = await fetch(`${s.sts.url}/token`);
    assert.equal(get.status, 405);
    const nf = await fetch(`${s.sts.url}/nope`);
    assert.equal(nf.status, 404);
    assert.equal(((await nf.json()) as { error: string }).error, 'not_found');
  });

  it('503 temporarily_unavailable with Retry-After when GitLab fails, and nothing left active', async () => {
    const before = (await gitlabTokens(s.gitlab.url)).length;
    await fetch(`${s.gitlab.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errorRate: 1, errorStatuses: [502] }),
    });
    try {
      const res = await token({ ...EXCHANGE, subject_token: subject, audience: PROJECT });
      assertOAuthError(res, 503, 'temporarily_unavailable', secrets);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
    } finally {
      await fetch(`${s.gitlab.url}/_emulator/faults`, { method: 'DELETE' });
    }
    assert.equal((await gitlabTokens(s.gitlab.url)).length, before);
  });

  it('revocation answers 200 for unknown tokens and 400 without a token', async () => {
    assert.equal((await postForm(`${s.sts.url}/revoke`, { token: 'glpat-unknown0000000000' })).status, 200);
    assertOAuthError(await postForm(`${s.sts.url}/revoke`, {}), 400, 'invalid_request', secrets);
  });
});

describe('STS limits', () => {
  let s: Stack;
  let subject: string;
  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        raw.server.rateLimit = { perIdentity: 3, perIp: 0 };
        raw.server.maxActiveGrantsPerIdentity = 2;
      },
    });
    subject = await pipelineToken(s);
  });
  after(() => s.close());

  it('caps active grants per identity, then rate-limits the identity, both with 429 and Retry-After', async () => {
    const form = { ...EXCHANGE, subject_token: subject, audience: PROJECT };
    const first = await postForm(`${s.sts.url}/token`, form);
    const second = await postForm(`${s.sts.url}/token`, form);
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    const capped = await postForm(`${s.sts.url}/token`, form);
    assert.equal(capped.status, 429, capped.text);
    assert.equal(capped.json.error, 'temporarily_unavailable');
    assert.match(capped.json.error_description, /active tokens/);
    assert.ok(Number(capped.headers.get('retry-after')) >= 1);
    const limited = await postForm(`${s.sts.url}/token`, form);
    assert.equal(limited.status, 429);
    assert.match(limited.json.error_description, /too many exchanges/);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });
});
