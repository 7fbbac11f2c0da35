/**
 * The JWT attack catalogue (docs/security.md) against a running STS: every
 * crafted subject token gets 400 invalid_request with the one generic
 * description, costs no GitLab call, fetches nothing it names (attacker
 * loopback servers stay untouched), and leaves its reason in the audit log.
 *
 * Each forged token starts from a real token of the emulator's tenant whose
 * unmodified exchange succeeds (the control test), so a refusal is caused by
 * the attack and nothing else.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CompactEncrypt, importJWK } from 'jose';
import { EXCHANGE, PROJECT, postForm, type Stack, startStack } from '../helpers/stack.ts';
import {
  type Attacker,
  assertAuditClean,
  b64u,
  closeEntraAgent,
  compact,
  entraRequest,
  exchange,
  expectRefused,
  GENERIC,
  gitlabApiCalls,
  type Json,
  jwksFetches,
  mintEntra,
  mintOidc,
  parts,
  startAttacker,
  tenantJwks,
} from './helpers/attack.ts';
import { attackerRsa, hs256, publicKeyEncodings, rs256, selfSignedCert } from './helpers/keys.ts';

const CONSUMER_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
const OTHER_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

describe('JWT attacks on POST /token', () => {
  let s: Stack;
  /** A real, accepted Entra token of the pipeline app. */
  let valid: string;
  let header: Json;
  let payload: Json;
  let signature: string;
  let realJwk: Json;
  const attackers: Attacker[] = [];

  const refuse = (token: string, opts: Parameters<typeof expectRefused>[2] = {}) =>
    expectRefused(s, token, { attackers, ...opts });
  const now = () => Math.floor(s.clock.now() / 1000);

  before(async () => {
    s = await startStack();
    valid = await mintEntra(s);
    ({ header, payload, sig: signature } = parts(valid));
    const keys = await tenantJwks(s);
    realJwk =
      keys.find((k) => k.kid === header.kid) ?? assert.fail(`kid ${header.kid} not in the tenant JWKS`);
    // Listening decoys for every URL an attack names: none may ever be called.
    for (let i = 0; i < 2; i++)
      attackers.push(await startAttacker(() => ({ keys: [attackerRsa().publicJwk] })));
  });
  after(async () => {
    assertAuditClean(s);
    await closeEntraAgent(s);
    for (const a of attackers) await a.close();
    await s.close();
  });

  it('control: the unmodified token is exchanged (so every refusal below is the attack’s doing)', async () => {
    const res = await exchange(s, valid);
    assert.equal(res.status, 200, res.text);
    await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token });
  });

  describe('1. alg none', () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      it(`alg "${alg}" with an empty signature`, async () => {
        await refuse(compact({ ...header, alg }, payload, ''));
      });
      it(`alg "${alg}" keeping the original signature`, async () => {
        await refuse(compact({ ...header, alg }, payload, signature));
      });
    }
    it('alg missing, null, an array', async () => {
      const { alg: _alg, ...noAlg } = header;
      await refuse(compact(noAlg, payload, signature));
      await refuse(compact({ ...header, alg: null }, payload, signature));
      await refuse(compact({ ...header, alg: ['RS256'] }, payload, signature));
    });
  });

  describe('2-3. missing, empty, damaged signature, wrong part count', () => {
    it('empty signature H.P.', async () => {
      const [h, p] = valid.split('.');
      await refuse(`${h}.${p}.`);
    });
    it('two parts H.P', async () => {
      const [h, p] = valid.split('.');
      await refuse(`${h}.${p}`);
    });
    it('extra parts H.P.S. and H.P.S.S', async () => {
      await refuse(`${valid}.`);
      await refuse(`${valid}.${signature}`);
      await refuse(`${valid}..`);
    });
    it('truncated signature (1, 2, 10 characters, half)', async () => {
      const [h, p] = valid.split('.');
      for (const cut of [1, 2, 10, signature.length / 2])
        await refuse(`${h}.${p}.${signature.slice(0, -cut)}`);
    });
    it('signature with extra characters, padding, standard base64, flipped bit', async () => {
      const [h, p] = valid.split('.');
      await refuse(`${h}.${p}.${signature}AA`);
      await refuse(`${h}.${p}.${signature}==`);
      const std = Buffer.from(signature, 'base64url').toString('base64');
      if (std !== signature) await refuse(`${h}.${p}.${std}`);
      const raw = Buffer.from(signature, 'base64url');
      raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
      await refuse(`${h}.${p}.${b64u(raw)}`);
    });
    it('whitespace and non-base64url characters inside the token', async () => {
      const [h, p] = valid.split('.');
      await refuse(` ${valid}`);
      await refuse(`${h}.${p} .${signature}`);
      await refuse(`${h}.${p}.${signature.slice(0, 10)}+/${signature.slice(12)}`);
    });
  });

  describe('4. HS256 keyed with the issuer’s RSA public key (algorithm confusion)', () => {
    it('every encoding of the public key as the HMAC secret, HS256/384/512', async () => {
      for (const [label, key] of publicKeyEncodings(realJwk)) {
        for (const bits of [256, 384, 512] as const) {
          const h = { ...header, alg: `HS${bits}` };
          await refuse(hs256(h, payload, key, bits)).catch((err: Error) => {
            throw new Error(`${label} HS${bits}: ${err.message}`);
          });
        }
      }
    });
  });

  describe('23. HS256 with an empty or weak secret', () => {
    it('empty key and common secrets, with and without a kid', async () => {
      const secrets = [
        '',
        'secret',
        'password',
        '123456',
        'your-256-bit-secret',
        'changeme',
        'tanuki',
        'tanuki-sts',
        'key',
      ];
      const { kid: _kid, x5t: _x5t, ...noKid } = header;
      for (const secret of secrets) {
        await refuse(hs256({ ...header, alg: 'HS256' }, payload, secret));
        await refuse(hs256({ ...noKid, alg: 'HS256' }, payload, secret));
      }
    });
  });

  describe('5-6. keys the token brings itself', () => {
    it('embedded jwk, signed with the attacker’s key (new kid and the real kid)', async () => {
      const k = attackerRsa();
      await refuse(rs256({ alg: 'RS256', typ: 'JWT', kid: k.kid, jwk: k.publicJwk }, payload));
      await refuse(rs256({ ...header, jwk: k.publicJwk }, payload));
      await refuse(rs256({ alg: 'RS256', typ: 'JWT', jwk: k.publicJwk }, payload));
    });
    it('jku pointing at an attacker loopback server (zero requests)', async () => {
      const k = attackerRsa();
      const [a1, a2] = attackers as [Attacker, Attacker];
      await refuse(rs256({ alg: 'RS256', typ: 'JWT', kid: k.kid, jku: `${a1.url}/jwks.json` }, payload));
      await refuse(rs256({ ...header, jku: `${a2.url}/${s.seed.tenantId}/discovery/v2.0/keys` }, payload));
      await refuse(rs256({ alg: 'RS256', kid: k.kid, jku: `${s.entra.url}/../${a1.url}` }, payload));
    });
    it('x5u pointing at an attacker loopback server (zero requests)', async () => {
      const [a1] = attackers as [Attacker];
      const cert = await selfSignedCert();
      await refuse(rs256({ alg: 'RS256', typ: 'JWT', x5u: `${a1.url}/cert.pem` }, payload, cert.key));
      await refuse(rs256({ ...header, x5u: `${a1.url}/cert.pem` }, payload, cert.key));
    });
    it('x5c carrying a self-signed chain, signed with its key', async () => {
      const cert = await selfSignedCert();
      await refuse(rs256({ alg: 'RS256', typ: 'JWT', x5c: [cert.der] }, payload, cert.key));
      await refuse(rs256({ ...header, x5c: [cert.der] }, payload, cert.key));
      // The real certificate in x5c, the attacker's signature: the chain proves nothing.
      if (Array.isArray(realJwk.x5c)) await refuse(rs256({ ...header, x5c: realJwk.x5c }, payload, cert.key));
    });
  });

  describe('6d. real-key Entra tokens with forbidden headers (header allow-list)', () => {
    it('jku, x5u, jwk, x5c, crit, b64, cty, zip, nonce: refused although the tenant key signed them', async () => {
      const [a1] = attackers as [Attacker];
      const cert = await selfSignedCert();
      const cases: Array<[string, Record<string, unknown>]> = [
        ['jku', { jku: `${a1.url}/jwks.json` }],
        ['x5u', { x5u: `${a1.url}/cert.pem` }],
        ['jwk', { jwk: attackerRsa().publicJwk }],
        ['x5c', { x5c: [cert.der] }],
        ['crit', { crit: ['urn:example:unknown'], 'urn:example:unknown': true }],
        ['b64', { b64: false, crit: ['b64'] }],
        ['cty', { cty: 'JWT' }],
        ['zip', { zip: 'DEF' }],
        ['nonce (Graph)', { nonce: randomUUID() }],
      ];
      const skipped: string[] = [];
      for (const [label, h] of cases) {
        const res = await entraRequest(s, '/_emulator/tokens', { json: { entra: { header: h } } });
        if (res.status !== 200) {
          skipped.push(label); // jose would not sign it (unknown crit, b64): covered by the forged variants
          continue;
        }
        await refuse(res.json.token).catch((err: Error) => {
          throw new Error(`header ${label}: ${err.message}`);
        });
      }
      assert.ok(skipped.length <= 2, `the emulator signed too few: skipped ${skipped.join(', ')}`);
    });
  });

  describe('8. kid injection', () => {
    const kids = [
      '../../dev/null',
      '/dev/null',
      '../../../../../../etc/passwd',
      "' UNION SELECT 'secret' --",
      "x' OR '1'='1",
      '|sleep 5',
      '$(sleep 5)',
      '`sleep 5`',
      'kid\u0000null',
      'a'.repeat(5000),
    ];
    for (const kid of kids) {
      it(`kid ${JSON.stringify(kid.slice(0, 32))} (HS256 with an empty key, RS256 with the real signature)`, async () => {
        const started = Date.now();
        await refuse(hs256({ alg: 'HS256', typ: 'JWT', kid }, payload, ''));
        await refuse(compact({ ...header, kid }, payload, signature), { noJwksFetch: false });
        assert.ok(Date.now() - started < 3000, 'nothing was executed');
      });
    }
  });

  describe('9. unknown kid flood (CVE-2024-34079)', () => {
    it('1,000 tokens with random kids: each 400, JWKS fetched at most once, no GitLab call', async () => {
      const before = jwksFetches(s);
      const gitlabBefore = await gitlabApiCalls(s);
      const tokens = Array.from({ length: 1000 }, () =>
        compact({ ...header, kid: randomUUID() }, payload, signature),
      );
      const statuses = new Map<string, number>();
      let i = 0;
      const worker = async () => {
        while (i < tokens.length) {
          const t = tokens[i++]!;
          const res = await exchange(s, t);
          const key = `${res.status} ${res.json?.error} ${res.json?.error_description}`;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
        }
      };
      const started = Date.now();
      await Promise.all(Array.from({ length: 16 }, worker));
      const elapsed = Date.now() - started;
      assert.deepEqual([...statuses], [[`400 invalid_request ${GENERIC}`, 1000]]);
      assert.ok(jwksFetches(s) - before <= 1, `JWKS fetched ${jwksFetches(s) - before} times`);
      assert.equal(await gitlabApiCalls(s), gitlabBefore);
      assert.ok(elapsed < 30_000, `took ${elapsed} ms`);
    });
  });

  describe('7. iss drives no request (CVE-2025-52477)', () => {
    const tenant = () => s.seed.tenantId;
    const issuers = (a: Attacker) => [
      'https://unconfigured.example.com/',
      `https://unconfigured.example.com/${tenant()}/v2.0`,
      'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x',
      'http://169.254.169.254/latest/meta-data/',
      `${a.url}/`,
      `${a.url}/${tenant()}/v2.0`,
      `http://localhost:${a.port}/${tenant()}/v2.0`,
      `https://login.microsoftonline.com.attacker.example/${tenant()}/v2.0`,
      `https://login.microsoftonline.com/${tenant()}/v2.0`,
      `https://sts.windows.net/${tenant()}/`,
      `${s.entra.url}.attacker.example/${tenant()}/v2.0`,
      `${s.entra.url}@127.0.0.1:${a.port}/${tenant()}/v2.0`,
    ];
    it('unconfigured, metadata-IP, loopback-attacker and look-alike issuers: refused, zero outbound', async () => {
      const [a1] = attackers as [Attacker];
      for (const iss of issuers(a1)) {
        // With the real signature (now wrong), and signed by the attacker's key whose JWKS the attacker serves.
        await refuse(compact(header, { ...payload, iss }, signature));
        await refuse(rs256({ alg: 'RS256', typ: 'JWT', kid: attackerRsa().kid }, { ...payload, iss }));
      }
    });
  });

  describe('11-13. header extensions and other serialisations', () => {
    it('crit with an unknown extension; crit naming a registered claim', async () => {
      await refuse(
        compact(
          { ...header, crit: ['urn:example:unknown'], 'urn:example:unknown': true },
          payload,
          signature,
        ),
      );
      await refuse(compact({ ...header, crit: ['exp'] }, payload, signature));
      await refuse(compact({ ...header, crit: [] }, payload, signature));
    });
    it('b64: false (RFC 7797 unencoded payload)', async () => {
      const h = b64u({ ...header, b64: false, crit: ['b64'] });
      await refuse(`${h}.${JSON.stringify(payload)}.${signature}`);
      await refuse(`${h}..${signature}`);
      await refuse(compact({ ...header, b64: false }, payload, signature));
    });
    it('compact JWE (5 parts) encrypted to the issuer’s own public key', async () => {
      const key = await importJWK({ kty: realJwk.kty, n: realJwk.n, e: realJwk.e }, 'RSA-OAEP-256');
      const jwe = await new CompactEncrypt(Buffer.from(JSON.stringify(payload)))
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: header.kid, cty: 'JWT' })
        .encrypt(key);
      assert.equal(jwe.split('.').length, 5);
      await refuse(jwe);
      // Nested: a valid inner JWS inside the JWE (sign-then-encrypt confusion, CVE-2023-51774).
      const nested = await new CompactEncrypt(Buffer.from(valid))
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', cty: 'JWT' })
        .encrypt(key);
      await refuse(nested);
    });
    it('JWS JSON serialisation, flattened and general, of a validly signed token', async () => {
      const [h, p, sig] = valid.split('.');
      await refuse(JSON.stringify({ protected: h, payload: p, signature: sig }));
      await refuse(JSON.stringify({ payload: p, signatures: [{ protected: h, signature: sig }] }));
      await refuse(b64u({ protected: h, payload: p, signature: sig }));
    });
    it('JSON/compact mix (CVE-2022-39227): forged claims beside a valid signature', async () => {
      const [h, p, sig] = valid.split('.');
      const forged = b64u({ ...payload, appid: randomUUID(), roles: ['GitLab.Admin'] });
      await refuse(JSON.stringify({ [`${h}.${forged}.`]: '', protected: h, payload: p, signature: sig }));
      await refuse(`${h}.${forged}.${sig}`);
    });
    it('nested JWT (cty: JWT): a valid token as the payload of an unsigned or attacker-signed outer token', async () => {
      await refuse(`${b64u({ alg: 'none', cty: 'JWT' })}.${b64u(valid)}.`);
      await refuse(rs256({ alg: 'RS256', cty: 'JWT', kid: attackerRsa().kid }, valid));
      await refuse(compact({ ...header, cty: 'JWT' }, payload, signature));
    });
  });

  describe('14. duplicate JSON members (rejected by the structural check)', () => {
    const rawHeader = () => JSON.stringify(header).slice(1, -1);
    const rawPayload = () => JSON.stringify(payload).slice(1, -1);
    it('alg twice in the header (none first, RS256 last and the reverse)', async () => {
      const r1 = await refuse(compact(`{"alg":"none",${rawHeader()}}`, payload, signature));
      const r2 = await refuse(compact(`{${rawHeader()},"alg":"none"}`, payload, signature));
      for (const r of [r1, r2]) assert.match(r, /duplicate/i, `reason: ${r}`);
    });
    it('sub twice, aud twice in the payload', async () => {
      const r1 = await refuse(compact(header, `{${rawPayload()},"sub":"${randomUUID()}"}`, signature));
      const r2 = await refuse(compact(header, `{"aud":"api://another-app",${rawPayload()}}`, signature));
      const r3 = await refuse(compact(header, `{${rawPayload()},"aud":"api://another-app"}`, signature));
      for (const r of [r1, r2, r3]) assert.match(r, /duplicate/i, `reason: ${r}`);
    });
    it('duplicates hidden by escapes ("\\u0061lg")', async () => {
      const r = await refuse(compact(`{${rawHeader()},"\\u0061lg":"none"}`, payload, signature));
      assert.match(r, /duplicate/i, `reason: ${r}`);
    });
  });

  describe('15. invalid UTF-8 and NUL', () => {
    it('overlong UTF-8 (C0 AF) and lone surrogates in header and payload; NUL in sub', async () => {
      const [h, p] = valid.split('.') as [string, string];
      const bad = Buffer.concat([Buffer.from('{"sub":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]);
      await refuse(`${h}.${b64u(bad)}.${signature}`);
      const badHeader = Buffer.concat([
        Buffer.from(JSON.stringify(header).slice(0, -1)),
        Buffer.from(',"x":"\xed\xa0\x80"}', 'latin1'),
      ]);
      await refuse(`${b64u(badHeader)}.${p}.${signature}`);
      await refuse(compact(header, { ...payload, sub: `${payload.sub}\u0000admin` }, signature));
    });
  });

  describe('16-20. validly signed tokens with bad claims', () => {
    const mint = (extraClaims: Record<string, unknown>, more: Record<string, unknown> = {}) =>
      mintEntra(s, { extraClaims, ...more });

    it('exp missing, a string, null, huge, in the past', async () => {
      // The emulator removes a claim given as null; a literal `"exp": null` cannot be signed by it (forged: rule 2-3).
      await refuse(await mint({ exp: null }));
      await refuse(await mint({ exp: String(now() + 600) }));
      await refuse(await mint({ exp: true }));
      await refuse(await mint({ exp: now() - 3600 }));
      await refuse(await mint({ exp: now() - 301 - 60 }));
      await refuse(await mint({ exp: 1e20 }));
    });
    it('nbf and iat in the future beyond the clock skew', async () => {
      await refuse(await mint({ nbf: now() + 3600 }));
      await refuse(await mint({ iat: now() + 3600, nbf: now() - 60 }));
      await refuse(await mint({ nbf: String(now() - 60) }));
    });
    it('lifetime over the configured maximum (exp − iat > 24 h + skew)', async () => {
      await refuse(await mint({ iat: now() - 60, nbf: now() - 60, exp: now() + 2 * 86400 }));
    });
    it('aud of another app, [], "", a case variant, a trailing slash, an array holding ours and another', async () => {
      const ours = s.seed.resourceUri;
      for (const aud of [
        'api://another-app',
        '00000003-0000-0000-c000-000000000000',
        [],
        '',
        ours.toUpperCase(),
        `${ours}/`,
        ` ${ours}`,
        [ours.toUpperCase()],
      ]) {
        await refuse(await mint({ aud }));
      }
    });
    it('iss with a trailing slash where it has none, and without where it has one', async () => {
      const iss = String(parts(valid).payload.iss);
      const variant = iss.endsWith('/') ? iss.slice(0, -1) : `${iss}/`;
      await refuse(await mint({ iss: variant }));
      await refuse(await mint({ iss: iss.toUpperCase() }));
    });
    it('v1 iss with v2 ver, and v2 iss with v1 ver', async () => {
      const v1 = parts(await mintEntra(s, { version: 1 })).payload;
      const v2 = parts(await mintEntra(s, { version: 2 })).payload;
      await refuse(await mintEntra(s, { version: 1, extraClaims: { ver: '2.0' } }));
      await refuse(await mintEntra(s, { version: 2, extraClaims: { ver: '1.0' } }));
      await refuse(await mintEntra(s, { version: 2, extraClaims: { iss: v1.iss } }));
      await refuse(await mintEntra(s, { version: 1, extraClaims: { iss: v2.iss } }));
    });
    it('another tenant’s token signed by the same keys; tid alone swapped; the consumer tenant', async () => {
      for (const t of [OTHER_TENANT, CONSUMER_TENANT]) {
        const iss = String(payload.iss).replace(s.seed.tenantId, t);
        await refuse(await mint({ tid: t, iss }));
        await refuse(await mint({ tid: t }));
        await refuse(await mint({ iss }));
      }
      await refuse(await mint({ tid: s.seed.tenantId.toUpperCase() }), {});
    });
    it('a delegated (user) token with scp', async () => {
      await refuse(await mint({ scp: 'user_impersonation', name: 'Alice', upn: 'alice@contoso.example' }));
      await refuse(await mint({ scp: '' }));
    });
    it('an ID token: aud = the client’s own ID, nonce, user claims', async () => {
      await refuse(
        await mint(
          {
            aud: s.seed.pipelineClientId,
            nonce: randomUUID(),
            name: 'Alice',
            preferred_username: 'alice@contoso.example',
            idtyp: 'user',
          },
          { resource: s.seed.pipelineClientId },
        ),
      );
    });
    it('a Graph token (aud Microsoft Graph, nonce in the header)', async () => {
      await refuse(
        await mint({ aud: 'https://graph.microsoft.com' }, { resource: 'https://graph.microsoft.com' }),
      );
      await refuse(compact({ ...header, nonce: randomUUID() }, payload, signature));
    });
    it('claim types the policy compares type-strictly (appid array/number, roles a string)', async () => {
      const client = s.seed.pipelineClientId;
      for (const extra of [
        { appid: [client], azp: [client] },
        { appid: 123, azp: 123 },
        { appid: { toString: client }, azp: { value: client } },
        { roles: 'GitLab.Read' },
        { roles: 'GitLab.ReadWrite GitLab.Read' },
        { roles: [['GitLab.Read']] },
        { sub: 42 },
      ]) {
        await refuse(await mint(extra));
      }
    });
  });

  describe('21. size', () => {
    it('a 1 MB subject token and 100,000 dots are refused fast (413: over the body limit)', async () => {
      for (const token of ['A'.repeat(1_000_000), '.'.repeat(100_000)]) {
        const started = Date.now();
        const res = await exchange(s, token);
        assert.equal(res.status, 413, res.text);
        assert.equal(res.json.error, 'invalid_request');
        assert.ok(Date.now() - started < 2000);
      }
    });
    it('deeply nested JSON in the payload (within the size limit)', async () => {
      const depth = 5000;
      await refuse(compact(header, `{"sub":${'['.repeat(depth)}${']'.repeat(depth)}}`, signature));
      await refuse(compact(header, `${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`, signature));
      await refuse(compact(`${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`, payload, signature));
    });
    it('a 10 MB form body gets 413 fast, with bounded memory', async () => {
      const rssBefore = process.memoryUsage().rss;
      const body = `${new URLSearchParams({ ...EXCHANGE, audience: PROJECT }).toString()}&subject_token=${'A'.repeat(10 * 1024 * 1024)}`;
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        const res = await postForm(`${s.sts.url}/token`, body);
        assert.equal(res.status, 413, res.text);
        assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      }
      const growthMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
      // The client itself holds the 10 MB body (and fetch a copy); the server must not add a copy per request.
      assert.ok(growthMb < 150, `rss grew by ${growthMb.toFixed(0)} MB`);
    });
  });
});

/**
 * With the body limit raised to its 1 MiB maximum, oversized tokens reach the
 * exchange and are refused by its size check (the generic 400), not parsed.
 */
describe('size limits behind a 1 MiB body limit', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        raw.server.bodyLimit = 1_048_576;
      },
    });
  });
  after(async () => {
    assertAuditClean(s);
    await s.close();
  });

  it('a 1 MB token, 100,000 dots, a long valid-looking token: generic 400, cheap, bounded memory', async () => {
    const valid = await mintEntra(s);
    const { header, payload, sig } = parts(valid);
    const big = compact(header, { ...payload, pad: 'x'.repeat(700_000) }, sig);
    const rssBefore = process.memoryUsage().rss;
    for (const token of ['A'.repeat(1_000_000), '.'.repeat(100_000), big, `${'a.'.repeat(400_000)}a`]) {
      const started = Date.now();
      await expectRefused(s, token);
      assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
    }
    const growthMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    assert.ok(growthMb < 100, `rss grew by ${growthMb.toFixed(0)} MB`);
    await closeEntraAgent(s);
  });

  it('random bytes as a token', async () => {
    await expectRefused(s, randomBytes(3000).toString('base64url'));
    await expectRefused(
      s,
      `${randomBytes(30).toString('base64url')}.${randomBytes(300).toString('base64url')}.`,
    );
  });
});

/** Header attacks on tokens signed with the issuer's real key (the emulator's test OIDC issuer). */
describe('test OIDC issuer: real-key tokens with forbidden headers; ECDSA', () => {
  let s: Stack;
  let claims: Record<string, unknown>;
  let attacker: Attacker;
  before(async () => {
    s = await startStack();
    attacker = await startAttacker(() => ({ keys: [attackerRsa().publicJwk] }));
    claims = { aud: 'http://127.0.0.1:8600', sub: 'project_path:platform/app:ref_type:branch:ref:main' };
  });
  const refuse = (token: string) =>
    expectRefused(s, token, { attackers: [attacker], extra: { audience: 'platform' } });
  after(async () => {
    assertAuditClean(s);
    await closeEntraAgent(s);
    await attacker.close();
    await s.close();
  });

  it('control: the test issuer’s plain token is exchanged', async () => {
    const token = await mintOidc(s, { claims });
    const res = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: token,
      audience: 'platform',
    });
    assert.equal(res.status, 200, res.text);
    await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token });
  });

  const forbidden = (): Array<[string, Record<string, unknown>]> => [
    ['jku', { jku: `${attacker.url}/jwks.json` }],
    ['x5u', { x5u: `${attacker.url}/cert.pem` }],
    ['jwk', { jwk: attackerRsa().publicJwk }],
    ['x5c', { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] }],
    ['crit unknown', { crit: ['urn:example:unknown'], 'urn:example:unknown': true }],
    ['cty JWT', { cty: 'JWT' }],
    ['typ JWE', { typ: 'JWE' }],
  ];
  it('jku, x5u, jwk, x5c, crit, cty and typ headers are refused although the signature is real', async () => {
    const skipped: string[] = [];
    for (const [label, header] of forbidden()) {
      const res = await entraRequest(s, '/_emulator/tokens', {
        json: { claims: { ...claims, jti: randomUUID() }, header },
      });
      if (res.status !== 200) {
        skipped.push(label); // the emulator would not sign it (e.g. jose refuses an unknown crit)
        continue;
      }
      assert.deepEqual(parts(res.json.token).header, { ...parts(res.json.token).header, ...header });
      await refuse(res.json.token).catch((err: Error) => {
        throw new Error(`header ${label}: ${err.message}`);
      });
    }
    assert.ok(
      skipped.length <= 1,
      `the emulator signed too few of the headers: skipped ${skipped.join(', ')}`,
    );
  });

  const ciExchange = (token: string) =>
    postForm(`${s.sts.url}/token`, { ...EXCHANGE, subject_token: token, audience: 'platform' });

  it('control: an ES256 token of the test issuer (EC P-256 key) is exchanged', async () => {
    const token = await mintOidc(s, { claims, header: { alg: 'ES256' } });
    assert.equal(parts(token).header.alg, 'ES256');
    const res = await ciExchange(token);
    assert.equal(res.status, 200, res.text);
    await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token });
  });

  describe('10. ECDSA', () => {
    // P-256 group order n (SEC 2): r = s = n is as "psychic" as r = s = 0.
    const N = Buffer.from('FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551', 'hex');

    it('psychic signature r = s = 0 and r = s = n (CVE-2022-21449)', async () => {
      const real = parts(await mintOidc(s, { claims, header: { alg: 'ES256' } }));
      assert.equal('A'.repeat(86), b64u(Buffer.alloc(64)));
      await refuse(compact(real.header, real.payload, 'A'.repeat(86)));
      await refuse(compact(real.header, real.payload, b64u(Buffer.concat([N, N]))));
      await refuse(compact(real.header, real.payload, b64u(Buffer.concat([Buffer.alloc(32), N]))));
      await refuse(compact(real.header, real.payload, ''));
    });

    it('a DER-encoded ECDSA signature instead of raw R‖S', async () => {
      const token = await mintOidc(s, { claims, header: { alg: 'ES256' } });
      const [h, p, sig] = token.split('.') as [string, string, string];
      const raw = Buffer.from(sig, 'base64url');
      const int = (b: Buffer) => {
        let x = b;
        while (x.length > 1 && x[0] === 0 && (x[1] ?? 0) < 0x80) x = x.subarray(1);
        if ((x[0] ?? 0) >= 0x80) x = Buffer.concat([Buffer.from([0]), x]);
        return Buffer.concat([Buffer.from([0x02, x.length]), x]);
      };
      const body = Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))]);
      const der = Buffer.concat([Buffer.from([0x30, body.length]), body]);
      await refuse(`${h}.${p}.${b64u(der)}`);
    });

    it('alg ES256 with the RSA key’s kid, and RS256 with the EC key’s kid', async () => {
      const rsa = parts(await mintOidc(s, { claims }));
      const ec = parts(await mintOidc(s, { claims, header: { alg: 'ES256' } }));
      await refuse(compact({ ...rsa.header, alg: 'ES256' }, rsa.payload, ec.sig));
      await refuse(compact({ ...rsa.header, alg: 'ES256' }, rsa.payload, 'A'.repeat(86)));
      await refuse(compact({ ...ec.header, alg: 'RS256' }, ec.payload, rsa.sig));
      await refuse(compact({ ...ec.header, alg: 'ES384' }, ec.payload, ec.sig));
      await refuse(compact({ ...ec.header, alg: 'ES256K' }, ec.payload, ec.sig));
    });
  });
});
