/**
 * `diagnoseAuthority` against scripted answers: which of a wrong tenant, an
 * untrusted certificate and an unreachable host it reports, and what a
 * hostile authority cannot make it do. Against the Entra ID emulator, with the
 * real CLI: test/integration/client-authority.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diagnoseAuthority, discoveryUrl } from './authority.ts';
import { needsDiagnosis } from './azure.ts';
import type { AzurePlan } from './azure-plan.ts';
import { AzureSignInError } from './errors.ts';

describe('diagnoseAuthority', () => {
  const base = { tenantId: 'contoso.example', authorityHost: 'https://login.example.com/', timeoutMs: 5000 };
  const answer =
    (status: number, body: string): typeof fetch =>
    async (url) => {
      assert.equal(
        String(url),
        'https://login.example.com/contoso.example/v2.0/.well-known/openid-configuration',
      );
      return new Response(body, { status });
    };
  const failing =
    (code: string): typeof fetch =>
    async () => {
      throw Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('x'), { code }) });
    };

  it('asks for the v2.0 OpenID configuration of the tenant, at the public cloud by default', () => {
    assert.equal(
      discoveryUrl(undefined, 'a/b'),
      'https://login.microsoftonline.com/a%2Fb/v2.0/.well-known/openid-configuration',
    );
  });

  it('200: nothing to say (the sign-in failed for another reason)', async () => {
    assert.equal(
      await diagnoseAuthority({ ...base, extraCaCerts: undefined, fetch: answer(200, '{}') }),
      undefined,
    );
  });

  it("Entra ID's invalid_tenant, with or without error_codes", async () => {
    for (const body of [
      '{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant \'contoso.example\' not found.","error_codes":[90002]}',
      '{"error":"invalid_tenant"}',
    ]) {
      const d = await diagnoseAuthority({ ...base, extraCaCerts: undefined, fetch: answer(400, body) });
      assert.equal(d?.aadsts, 90002);
      assert.equal(
        d?.message,
        'tenant contoso.example not found at login.example.com (AADSTS90002) — check --tenant-id / --authority-host (AZURE_TENANT_ID / AZURE_AUTHORITY_HOST)',
      );
    }
  });

  it('another AADSTS code gets its advice; a non-Entra answer asks whether the authority is one', async () => {
    const malformed = await diagnoseAuthority({
      ...base,
      extraCaCerts: undefined,
      fetch: answer(400, '{"error":"invalid_request","error_codes":[900023]}'),
    });
    assert.match(
      malformed?.message ?? '',
      /refused tenant contoso\.example: AADSTS900023: the tenant ID is malformed/,
    );
    const html = await diagnoseAuthority({ ...base, extraCaCerts: undefined, fetch: answer(404, '<html>') });
    assert.match(
      html?.message ?? '',
      /answered HTTP 404 .* is --authority-host \/ AZURE_AUTHORITY_HOST an Entra ID authority/,
    );
  });

  it('TLS: untrusted (says whether NODE_EXTRA_CA_CERTS is set), wrong name, expired', async () => {
    const unset = await diagnoseAuthority({
      ...base,
      extraCaCerts: undefined,
      fetch: failing('SELF_SIGNED_CERT_IN_CHAIN'),
    });
    assert.match(
      unset?.message ?? '',
      /^TLS: certificate of login\.example\.com not trusted \(SELF_SIGNED_CERT_IN_CHAIN\) — set NODE_EXTRA_CA_CERTS/,
    );
    const set = await diagnoseAuthority({
      ...base,
      extraCaCerts: '/etc/ca.pem',
      fetch: failing('UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
    });
    assert.match(set?.message ?? '', /NODE_EXTRA_CA_CERTS is "\/etc\/ca\.pem", which does not hold the CA/);
    const name = await diagnoseAuthority({
      ...base,
      extraCaCerts: undefined,
      fetch: failing('ERR_TLS_CERT_ALTNAME_INVALID'),
    });
    assert.match(name?.message ?? '', /for another host name/);
    const expired = await diagnoseAuthority({
      ...base,
      extraCaCerts: undefined,
      fetch: failing('CERT_HAS_EXPIRED'),
    });
    assert.match(expired?.message ?? '', /has expired/);
  });

  it('unreachable: DNS, refused, timeout', async () => {
    for (const code of ['ENOTFOUND', 'ECONNREFUSED', 'EHOSTUNREACH']) {
      const d = await diagnoseAuthority({ ...base, extraCaCerts: undefined, fetch: failing(code) });
      assert.equal(
        d?.message,
        `cannot reach login.example.com (${code}) — check --authority-host / AZURE_AUTHORITY_HOST, the network and any proxy`,
      );
    }
    const timeout: typeof fetch = async () => {
      throw new DOMException('timed out', 'TimeoutError');
    };
    const d = await diagnoseAuthority({ ...base, extraCaCerts: undefined, fetch: timeout });
    assert.match(d?.message ?? '', /cannot reach login\.example\.com \(no answer within 5s\)/);
  });

  it('a hostile authority: no redirect followed, at most 16 KiB read, no text of its answer printed', async () => {
    let pulled = 0;
    const endless: typeof fetch = async (_url, init) => {
      assert.equal(init?.redirect, 'manual');
      assert.equal(new Headers(init?.headers).get('authorization'), null);
      const chunk = new TextEncoder().encode(
        `{"error_description":"glpat-leak\u001b[31m AADSTS${'x'.repeat(1000)}`,
      );
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled++;
          controller.enqueue(chunk);
        },
      });
      return new Response(body, { status: 400 });
    };
    const big = await diagnoseAuthority({ ...base, extraCaCerts: undefined, fetch: endless });
    assert.match(big?.message ?? '', /^login\.example\.com answered HTTP 400 /);
    assert.ok(pulled < 64, `read ${pulled} chunks of 1 KiB`);
    assert.doesNotMatch(big?.message ?? '', /glpat|xxxx/);
    assert.ok(!(big?.message ?? '').includes('\u001b'), 'no escape sequence');

    const redirect = await diagnoseAuthority({
      ...base,
      extraCaCerts: undefined,
      fetch: async () => new Response(null, { status: 302, headers: { location: 'https://evil.example/' } }),
    });
    assert.match(redirect?.message ?? '', /answered HTTP 302/);
    assert.doesNotMatch(redirect?.message ?? '', /evil/);
  });

  it('only when MSAL could not resolve the endpoints, or the failure looks like network or TLS', () => {
    const plan = { mode: 'secret', tenantId: 't', description: 'x', auto: false } as AzurePlan;
    const described = (code?: number) => new AzureSignInError('x', code);
    const msal = new Error(
      'endpoints_resolution_error: See https://aka.ms/msal.js.errors#endpoints_resolution_error',
    );
    assert.equal(needsDiagnosis(msal, plan, described()), true);
    assert.equal(needsDiagnosis(new Error('fetch failed ECONNREFUSED'), plan, described()), true);
    assert.equal(needsDiagnosis(new Error('The operation was aborted.'), plan, described()), true);
    assert.equal(needsDiagnosis(new Error('AADSTS90002: Tenant not found'), plan, described(90002)), true);
    assert.equal(
      needsDiagnosis(new Error('AADSTS7000215: Invalid client secret'), plan, described(7000215)),
      false,
    );
    assert.equal(
      needsDiagnosis(
        new Error('certificate file unreadable'),
        { ...plan, mode: 'managed-identity' },
        described(),
      ),
      false,
    );
    assert.equal(needsDiagnosis(msal, { ...plan, tenantId: undefined }, described()), false);
  });
});
