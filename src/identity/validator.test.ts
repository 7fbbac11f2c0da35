/**
 * The validator end to end against a loopback fake Entra tenant and OIDC
 * issuer (fake-issuers.testutil.ts), clock frozen at T0. Each refusal asserts
 * the code, the generic message and that it is not retryable; fetch counts are
 * asserted wherever the attack must cost no request.
 */
import assert from 'node:assert/strict';
import {
  createHmac,
  createPublicKey,
  sign as cryptoSign,
  generateKeyPairSync,
  randomUUID,
} from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  SubjectTokenCodes as C,
  GENERIC_MESSAGE,
  type SubjectTokenCode,
  SubjectTokenError,
} from './errors.ts';
import {
  APP_ID_URI,
  b64u,
  CLIENT_ID,
  compact,
  entraClaims,
  type FakeIssuers,
  makeKey,
  OBJECT_ID,
  OIDC_AUD,
  oidcClaims,
  RESOURCE_CLIENT_ID,
  sign,
  startFakeIssuers,
  T0,
  T0S,
  TENANT,
  type TestKey,
  V1_ISS,
  V2_ISS,
} from './fake-issuers.testutil.ts';
import { createTokenValidator, type TokenValidatorHandle, type ValidatorOptions } from './index.ts';

const CONSUMER_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
const OTHER_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const COOLDOWN = 5 * 60_000;

let fake: FakeIssuers;
let entra1: TestKey;
let entra2: TestKey;
let oidcRsa: TestKey;
let oidcEc: TestKey;
let attacker: TestKey;
let psKey: TestKey;
let clock = T0;
let v: TokenValidatorHandle;
const made: TokenValidatorHandle[] = [];
let savedDocs: Map<string, unknown>;

function makeValidator(extra: Partial<ValidatorOptions> = {}): TokenValidatorHandle {
  const validator = createTokenValidator({
    issuers: { entra: fake.entraConfig(), ci: fake.oidcConfig() },
    clockSkewSeconds: 300,
    now: () => clock,
    backgroundRefreshMs: 0,
    ...extra,
  });
  made.push(validator);
  return validator;
}

const entraToken = (version: 1 | 2, extra: Record<string, unknown> = {}, key = entra1, header = {}) =>
  sign(
    { alg: 'RS256', typ: 'JWT', kid: key.kid, ...(version === 1 ? { x5t: key.kid } : {}), ...header },
    entraClaims(version, extra),
    key.privateKey,
  );
const oidcToken = (extra: Record<string, unknown> = {}, key = oidcRsa, header = {}) =>
  sign(
    { alg: key.alg, typ: 'JWT', kid: key.kid, ...header },
    oidcClaims(fake.oidcIssuer, extra),
    key.privateKey,
  );

async function refused(
  token: string | Promise<string>,
  code: SubjectTokenCode,
  validator: TokenValidatorHandle = v,
): Promise<SubjectTokenError> {
  const t = await token;
  let caught: unknown;
  try {
    await validator.validate(t);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SubjectTokenError, `expected a SubjectTokenError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.reason);
  assert.equal(caught.message, GENERIC_MESSAGE);
  assert.equal(caught.retryable, false);
  assert.ok(caught.reason.length > 0);
  assert.ok(!caught.reason.includes(t), 'the reason never holds the token');
  return caught;
}

async function retryable(token: string, validator: TokenValidatorHandle): Promise<SubjectTokenError> {
  const err = await validator.validate(token).then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SubjectTokenError);
  assert.equal(err.code, C.KEYS_UNAVAILABLE, err.reason);
  assert.equal(err.retryable, true);
  assert.equal(err.message, GENERIC_MESSAGE);
  assert.ok(typeof err.retryAfterSeconds === 'number' && err.retryAfterSeconds >= 1);
  return err;
}

/** Runs `fn` and asserts the fake issuers received no request meanwhile. */
async function noFetch(fn: () => Promise<unknown>): Promise<void> {
  const before = fake.total();
  await fn();
  assert.equal(fake.total(), before, 'no outbound request');
}

before(async () => {
  [entra1, entra2, oidcRsa, oidcEc, attacker, psKey] = await Promise.all([
    makeKey('entra-key-1', 'RS256'),
    makeKey('entra-key-2', 'RS256'),
    makeKey('oidc-rsa', 'RS256'),
    makeKey('oidc-ec', 'ES256'),
    makeKey('entra-key-1', 'RS256'), // the attacker reuses the real kid
    makeKey('ps', 'PS256'),
  ]);
  fake = await startFakeIssuers({ entra: [entra1], oidc: [oidcRsa, oidcEc] });
  savedDocs = new Map(fake.docs);
  v = makeValidator();
  await v.init();
});

beforeEach(() => {
  clock = T0;
  fake.failing.clear();
  fake.docs.clear();
  for (const [k, d] of savedDocs) fake.docs.set(k, d);
});

after(async () => {
  for (const x of made) x.close();
  await fake.close();
});

describe('valid tokens', () => {
  it('init loads v1 + v2 discovery and JWKS for Entra and discovery + JWKS for OIDC', () => {
    assert.equal(v.ready(), true);
    assert.deepEqual(v.stats().jwksFetches, { entra: 2, ci: 1 });
  });

  it('Entra v1 token → Identity with appid and azp both the client ID', async () => {
    await noFetch(async () => {
      const id = await v.validate(await entraToken(1));
      assert.equal(id.issuer, 'entra');
      assert.equal(id.kind, 'entra');
      assert.equal(id.tenant, TENANT);
      assert.equal(id.clientId, CLIENT_ID);
      assert.equal(id.objectId, OBJECT_ID);
      assert.equal(id.subject, OBJECT_ID);
      assert.equal(id.version, '1.0');
      assert.deepEqual(id.roles, ['GitLab.Read']);
      assert.equal(id.tokenId, 'uti-1');
      assert.equal(id.expiresAt, T0S + 3599);
      assert.equal(id.claims.appid, CLIENT_ID);
      assert.equal(id.claims.azp, CLIENT_ID);
      assert.equal(id.claims.iss, V1_ISS);
      assert.equal(id.claims.aud, APP_ID_URI);
    });
  });

  it('Entra v2 token → Identity with azp and appid both the client ID', async () => {
    const id = await v.validate(await entraToken(2, { roles: undefined }));
    assert.equal(id.version, '2.0');
    assert.equal(id.clientId, CLIENT_ID);
    assert.equal(id.claims.appid, CLIENT_ID);
    assert.equal(id.claims.azp, CLIENT_ID);
    assert.equal(id.claims.aud, RESOURCE_CLIENT_ID);
    assert.deepEqual(id.roles, []);
    assert.equal(Object.hasOwn(id.claims, 'roles'), false, 'claims are as issued (no roles added)');
  });

  it('idtyp "app", and iat/nbf within the clock skew, are accepted', async () => {
    await v.validate(await entraToken(2, { idtyp: 'app' }));
    await v.validate(await entraToken(2, { iat: T0S + 299, nbf: T0S + 299, exp: T0S + 3000 }));
    await v.validate(await entraToken(2, { exp: T0S - 299 }));
  });

  it('generic OIDC: RS256 and ES256 tokens; aud as an array holding ours', async () => {
    await noFetch(async () => {
      const id = await v.validate(await oidcToken());
      assert.equal(id.kind, 'oidc');
      assert.equal(id.issuer, 'ci');
      assert.equal(id.subject, 'project_path:platform/app:ref_type:branch:ref:main');
      assert.equal(id.tenant, undefined);
      assert.equal(id.tokenId, 'jti-1');
      assert.deepEqual(id.roles, []);
      const ec = await v.validate(await oidcToken({}, oidcEc));
      assert.equal(ec.subject, id.subject);
      await v.validate(await oidcToken({ aud: ['https://other.example', OIDC_AUD] }));
    });
  });

  it('OIDC with a configured jwksUri: PS256 (JWK without alg), and a kid-less token with exactly one fitting key', async () => {
    const ps = await makeKey('ps-key', 'PS256');
    const solo = await makeKey('solo', 'ES256');
    const validator = makeValidator({
      issuers: { ci: fake.oidcConfig({ jwksUri: `${fake.url}/ps/jwks` }) },
    });
    fake.docs.set('/ps/jwks', { keys: [ps.publicJwk, { ...solo.publicJwk, kid: undefined }] });
    const discoveryBefore = fake.hits.get(fake.paths.oidcDiscovery) ?? 0;
    await validator.init();
    await validator.validate(await oidcToken({}, ps));
    const kidless = await sign({ alg: 'ES256' }, oidcClaims(fake.oidcIssuer), solo.privateKey);
    await validator.validate(kidless);
    assert.equal(
      fake.hits.get(fake.paths.oidcDiscovery) ?? 0,
      discoveryBefore,
      'jwksUri configured: no discovery',
    );
  });
});

describe('size and structure (before any key)', () => {
  it('refuses oversized tokens', async () => {
    await refused('A'.repeat(16 * 1024 + 1), C.TOO_LARGE);
    const big = await entraToken(2, { pad: 'x'.repeat(20_000) });
    await refused(big, C.TOO_LARGE);
    await refused('.'.repeat(100_000), C.TOO_LARGE);
  });

  it('refuses wrong part counts, empty and damaged segments', async () => {
    const t = await entraToken(2);
    const [h, p, s] = t.split('.') as [string, string, string];
    const cases: Array<[string, string]> = [
      ['two parts', `${h}.${p}`],
      ['four parts', `${t}.${s}`],
      ['trailing dot', `${t}.`],
      ['five parts (JWE shape)', `${h}..${s}.${s}.${s}`],
      ['empty signature', `${h}.${p}.`],
      ['empty header', `.${p}.${s}`],
      ['padding', `${h}.${p}.${s}==`],
      ['leading space', ` ${t}`],
      ['space inside', `${h}.${p} .${s}`],
      ['standard base64 characters', `${h}.${p}.${s.slice(0, 10)}+/${s.slice(12)}`],
      ['non-canonical base64url', `${h}.${p}.AB`],
      ['JSON serialisation', JSON.stringify({ protected: h, payload: p, signature: s })],
      ['random text', 'not-a-token'],
    ];
    await noFetch(async () => {
      for (const [label, token] of cases) {
        const err = await refused(token, C.MALFORMED).catch((e: Error) => {
          throw new Error(`${label}: ${e.message}`);
        });
        assert.ok(err.reason, label);
      }
    });
  });

  it('refuses header/payload that are not strict JSON objects, invalid UTF-8, NUL, lone surrogates, deep nesting', async () => {
    const t = await entraToken(2);
    const [h, p, s] = t.split('.') as [string, string, string];
    const header = { alg: 'RS256', kid: entra1.kid };
    const cases: Array<[string, string]> = [
      ['header array', `${b64u('[1]')}.${p}.${s}`],
      ['header string', `${b64u('"RS256"')}.${p}.${s}`],
      ['payload null', `${h}.${b64u('null')}.${s}`],
      ['payload not JSON', `${h}.${b64u('{sub:1}')}.${s}`],
      [
        'overlong UTF-8 (C0 AF)',
        `${h}.${b64u(Buffer.concat([Buffer.from('{"sub":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]))}.${s}`,
      ],
      [
        'UTF-8 BOM',
        `${b64u(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(header))]))}.${p}.${s}`,
      ],
      ['lone surrogate in the header', compact('{"alg":"RS256","x":"\\ud800"}', entraClaims(2), s)],
      ['NUL in sub', compact(header, { ...entraClaims(2), sub: `${OBJECT_ID}\u0000admin` }, s)],
      ['deep payload', compact(header, `{"sub":${'['.repeat(5000)}${']'.repeat(5000)}}`, s)],
      ['deep header', compact(`${'{"a":'.repeat(200)}1${'}'.repeat(200)}`, entraClaims(2), s)],
    ];
    for (const [label, token] of cases) {
      await refused(token, C.MALFORMED).catch((e: Error) => {
        throw new Error(`${label}: ${e.message}`);
      });
    }
  });

  it('refuses duplicated members in header and payload, also behind escapes', async () => {
    const t = await entraToken(2);
    const s = t.split('.')[2]!;
    const rawHeader = JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: entra1.kid }).slice(1, -1);
    const rawPayload = JSON.stringify(entraClaims(2)).slice(1, -1);
    const cases = [
      compact(`{"alg":"none",${rawHeader}}`, entraClaims(2), s),
      compact(`{${rawHeader},"alg":"none"}`, entraClaims(2), ''),
      compact(`{${rawHeader},"\\u0061lg":"none"}`, entraClaims(2), s),
      compact(`{${rawHeader}}`, `{${rawPayload},"sub":"${randomUUID()}"}`, s),
      compact(`{${rawHeader}}`, `{"aud":"api://another-app",${rawPayload}}`, s),
      compact(`{${rawHeader}}`, `{${rawPayload},"x":{"y":1,"y":2}}`, s),
    ];
    // Even a validly signed token with a duplicated claim is refused.
    cases.push(await sign({ alg: 'RS256', kid: entra1.kid }, `{${rawPayload},"sub":"x"}`, entra1.privateKey));
    await noFetch(async () => {
      for (const token of cases) {
        if (token.endsWith('.')) {
          // Empty signature: the structure check catches it first.
          await refused(token, C.MALFORMED);
          continue;
        }
        const err = await refused(token, C.DUPLICATE_MEMBER);
        assert.match(err.reason, /duplicate/i);
      }
    });
  });
});

describe('header allow-list', () => {
  it('alg none in every case, missing, null, an array: refused with or without the real signature', async () => {
    const t = await entraToken(2);
    const s = t.split('.')[2]!;
    const claims = entraClaims(2);
    await noFetch(async () => {
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        await refused(compact({ alg, kid: entra1.kid }, claims, s), C.HEADER_ALG);
        await refused(`${b64u({ alg })}.${b64u(claims)}.`, C.MALFORMED);
      }
      await refused(compact({ kid: entra1.kid }, claims, s), C.HEADER_ALG);
      await refused(compact({ alg: null, kid: entra1.kid }, claims, s), C.HEADER_ALG);
      await refused(compact({ alg: ['RS256'], kid: entra1.kid }, claims, s), C.HEADER_ALG);
      await refused(compact({ alg: 'rs256', kid: entra1.kid }, claims, s), C.HEADER_ALG);
      await refused(
        compact({ alg: 'ES256K', kid: oidcEc.kid }, oidcClaims(fake.oidcIssuer), s),
        C.HEADER_ALG,
      );
    });
  });

  it('HS256/384/512 keyed with the issuer’s public key (PEM, DER, JWK JSON) or a weak secret', async () => {
    const pub = createPublicKey({ key: entra1.publicJwk as never, format: 'jwk' });
    const secrets: Array<string | Buffer> = [
      pub.export({ type: 'spki', format: 'pem' }) as string,
      (pub.export({ type: 'spki', format: 'pem' }) as string).trim(),
      pub.export({ type: 'pkcs1', format: 'der' }),
      JSON.stringify(entra1.publicJwk),
      '',
      'secret',
    ];
    await noFetch(async () => {
      for (const secret of secrets) {
        for (const bits of [256, 384, 512]) {
          const input = `${b64u({ alg: `HS${bits}`, typ: 'JWT', kid: entra1.kid })}.${b64u(entraClaims(2))}`;
          const mac = createHmac(`sha${bits}`, secret).update(input).digest('base64url');
          await refused(`${input}.${mac}`, C.HEADER_ALG);
        }
      }
    });
  });

  it('jwk, jku, x5u, x5c, crit, b64, zip, enc, cty, nonce: refused even when really signed, with no fetch', async () => {
    const forbidden: Array<Record<string, unknown>> = [
      { jwk: attacker.publicJwk },
      { jku: `${fake.url}/${TENANT}/discovery/v2.0/keys` },
      { x5u: `${fake.url}/cert.pem` },
      { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] },
      { crit: ['urn:example:unknown'], 'urn:example:unknown': true },
      { crit: ['exp'] },
      { crit: [] },
      { b64: false },
      { zip: 'DEF' },
      { enc: 'A256GCM' },
      { cty: 'JWT' },
      { cty: 'json' },
      { nonce: randomUUID() },
    ];
    await noFetch(async () => {
      for (const extra of forbidden) {
        const t = compact({ alg: 'RS256', typ: 'JWT', kid: entra1.kid, ...extra }, entraClaims(2), 'c2ln');
        await refused(t, C.HEADER_FORBIDDEN);
      }
      // Signed for real by the issuer's own key: still refused.
      await refused(await entraToken(2, {}, entra1, { jku: `${fake.url}/x` }), C.HEADER_FORBIDDEN);
      await refused(await oidcToken({}, oidcRsa, { jwk: oidcRsa.publicJwk }), C.HEADER_FORBIDDEN);
    });
  });

  it('typ other than a JWT type (JWE, numbers) is refused; JWT in any case and at+jwt are fine', async () => {
    await refused(await oidcToken({}, oidcRsa, { typ: 'JWE' }), C.HEADER_TYP);
    await refused(await oidcToken({}, oidcRsa, { typ: 1 }), C.HEADER_TYP);
    await v.validate(await oidcToken({}, oidcRsa, { typ: 'jwt' }));
    await v.validate(await oidcToken({}, oidcRsa, { typ: 'at+jwt' }));
    await v.validate(await oidcToken({}, oidcRsa, { typ: undefined }));
  });

  it('kid injection strings are refused before any lookup', async () => {
    // A NUL anywhere in the header is refused even earlier, by the strict JSON check.
    for (const kid of ['../../dev/null\u0000', 'kid\u0000null']) {
      await refused(compact({ alg: 'RS256', kid }, entraClaims(2), 'c2ln'), C.MALFORMED);
    }
    // So is a header over 1 KiB.
    await refused(compact({ alg: 'RS256', kid: 'a'.repeat(5000) }, entraClaims(2), 'c2ln'), C.MALFORMED);
    const kids: unknown[] = [
      "' UNION SELECT 'secret' --",
      "x' OR '1'='1",
      '|sleep 5',
      '$(sleep 5)',
      '`sleep 5`',
      'kid null',
      'k\nid',
      'a'.repeat(129),
      '',
      42,
      null,
      ['entra-key-1'],
    ];
    await noFetch(async () => {
      for (const kid of kids) {
        await refused(compact({ alg: 'RS256', kid }, entraClaims(2), 'c2ln'), C.HEADER_KID);
      }
    });
  });

  it('Entra: RS256 only, kid required', async () => {
    await noFetch(async () => {
      await refused(sign({ alg: 'ES256', kid: oidcEc.kid }, entraClaims(2), oidcEc.privateKey), C.HEADER_ALG);
      await refused(sign({ alg: 'PS256', kid: entra1.kid }, entraClaims(2), psKey.privateKey), C.HEADER_ALG);
      await refused(sign({ alg: 'RS256' }, entraClaims(2), entra1.privateKey), C.HEADER_KID);
    });
  });
});

describe('issuer lookup: a fixed table, never a URL from the token', () => {
  it('unconfigured, look-alike, metadata-IP and variant issuers: ERR_ISSUER_UNKNOWN, zero requests', async () => {
    const issuers: unknown[] = [
      'https://unconfigured.example.com/',
      `${fake.url}/`,
      `${fake.url}/${TENANT}/v2.0`, // the host we fetch metadata from is not the issuer
      `${fake.url}/${TENANT}/`,
      `http://localhost:${fake.port}/${TENANT}/v2.0`,
      'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x',
      `https://login.microsoftonline.com.attacker.example/${TENANT}/v2.0`,
      `https://login.microsoftonline.com/${TENANT}/v2.0/`,
      `https://login.microsoftonline.com/${TENANT}`,
      `https://LOGIN.microsoftonline.com/${TENANT}/v2.0`,
      `https://sts.windows.net/${TENANT}`,
      `https://login.microsoftonline.com/${TENANT.toUpperCase()}/v2.0`,
      `https://login.microsoftonline.com/${CONSUMER_TENANT}/v2.0`,
      `${fake.oidcIssuer}/`,
      fake.oidcIssuer.toUpperCase(),
      `${fake.url}/oidc/../oidc`,
      '',
      42,
      null,
      [V2_ISS],
    ];
    await noFetch(async () => {
      for (const iss of issuers) {
        await refused(entraToken(2, { iss }), C.ISSUER_UNKNOWN);
        await refused(
          sign({ alg: 'RS256', kid: attacker.kid }, { ...entraClaims(2), iss }, attacker.privateKey),
          C.ISSUER_UNKNOWN,
        );
      }
      await refused(entraToken(2, { iss: undefined }), C.ISSUER_UNKNOWN);
    });
  });

  it('another tenant’s token, the consumer tenant, tid swapped alone, tid in upper case', async () => {
    await noFetch(async () => {
      for (const t of [OTHER_TENANT, CONSUMER_TENANT]) {
        await refused(entraToken(2, { tid: t, iss: V2_ISS.replace(TENANT, t) }), C.ISSUER_UNKNOWN);
        await refused(entraToken(1, { tid: t, iss: V1_ISS.replace(TENANT, t) }), C.ISSUER_UNKNOWN);
        await refused(entraToken(2, { tid: t }), C.CLAIM_TID);
        await refused(entraToken(2, { iss: V2_ISS.replace(TENANT, t) }), C.ISSUER_UNKNOWN);
      }
      await refused(entraToken(2, { tid: TENANT.toUpperCase() }), C.CLAIM_TID);
      await refused(entraToken(2, { tid: undefined }), C.CLAIM_TID);
    });
  });
});

describe('keys and signature', () => {
  it('a forged payload beside a real signature, an attacker’s key under the real kid, a flipped bit', async () => {
    const t = await entraToken(2);
    const [h, , s] = t.split('.') as [string, string, string];
    const forged = b64u(entraClaims(2, { roles: ['GitLab.Admin'] }));
    const raw = Buffer.from(s, 'base64url');
    raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
    await noFetch(async () => {
      await refused(`${h}.${forged}.${s}`, C.SIGNATURE);
      await refused(entraToken(2, {}, attacker), C.SIGNATURE);
      await refused(`${t.slice(0, t.lastIndexOf('.'))}.${raw.toString('base64url')}`, C.SIGNATURE);
      await refused(`${h}.${t.split('.')[1]}.${s.slice(0, -10)}`, C.SIGNATURE);
    });
  });

  it('an RSA key under 2048 bits in the JWKS is never used (RFC 7518 §3.3)', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...weak.publicKey.export({ format: 'jwk' }), kid: 'weak-1024', use: 'sig', alg: 'RS256' };
    const original = fake.docs.get('/oidc/jwks') as { keys: unknown[] };
    fake.docs.set('/oidc/jwks', { keys: [...original.keys, jwk] });
    const v2 = makeValidator();
    try {
      await v2.init();
      // jose refuses to sign with such a key, so node:crypto signs it.
      const input = `${b64u({ alg: 'RS256', kid: 'weak-1024' })}.${b64u(oidcClaims(fake.oidcIssuer))}`;
      const token = `${input}.${cryptoSign('sha256', Buffer.from(input), weak.privateKey).toString('base64url')}`;
      const err = await refused(token, C.KEY_MISMATCH, v2);
      assert.match(err.reason, /1024 bits/);
    } finally {
      fake.docs.set('/oidc/jwks', original);
      v2.close();
    }
  });

  it('signature is checked before claims: an expired, wrongly signed token fails on the signature', async () => {
    await refused(entraToken(2, { exp: T0S - 3600 }, attacker), C.SIGNATURE);
    await refused(entraToken(2, { exp: T0S - 3600 }), C.CLAIM_EXP);
  });

  it('psychic ECDSA signatures (r = s = 0, r = s = n) and a DER-encoded signature', async () => {
    const N = Buffer.from('FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551', 'hex');
    const real = await oidcToken({}, oidcEc);
    const [h, p, s] = real.split('.') as [string, string, string];
    const rs = Buffer.from(s, 'base64url');
    const int = (b: Buffer) => {
      let x = b;
      while (x.length > 1 && x[0] === 0 && (x[1] ?? 0) < 0x80) x = x.subarray(1);
      if ((x[0] ?? 0) >= 0x80) x = Buffer.concat([Buffer.from([0]), x]);
      return Buffer.concat([Buffer.from([0x02, x.length]), x]);
    };
    const body = Buffer.concat([int(rs.subarray(0, 32)), int(rs.subarray(32))]);
    const der = Buffer.concat([Buffer.from([0x30, body.length]), body]);
    await noFetch(async () => {
      await refused(`${h}.${p}.${'A'.repeat(86)}`, C.SIGNATURE);
      await refused(`${h}.${p}.${b64u(Buffer.concat([N, N]))}`, C.SIGNATURE);
      await refused(`${h}.${p}.${b64u(Buffer.concat([Buffer.alloc(32), N]))}`, C.SIGNATURE);
      await refused(`${h}.${p}.${b64u(der)}`, C.SIGNATURE);
    });
  });

  it('an RSA kid with an ES256 header, and an EC kid with RS256/ES384: key mismatch, no fetch', async () => {
    const claims = oidcClaims(fake.oidcIssuer);
    await noFetch(async () => {
      await refused(compact({ alg: 'ES256', kid: oidcRsa.kid }, claims, 'A'.repeat(86)), C.KEY_MISMATCH);
      await refused(sign({ alg: 'ES256', kid: oidcRsa.kid }, claims, oidcEc.privateKey), C.KEY_MISMATCH);
      await refused(sign({ alg: 'RS256', kid: oidcEc.kid }, claims, oidcRsa.privateKey), C.KEY_MISMATCH);
      await refused(compact({ alg: 'ES384', kid: oidcEc.kid }, claims, 'A'.repeat(128)), C.KEY_MISMATCH);
      // The JWK says alg RS256: PS256 under the same kid does not fit it.
      await refused(sign({ alg: 'PS256', kid: oidcRsa.kid }, claims, psKey.privateKey), C.KEY_MISMATCH);
    });
  });
});

describe('Entra claims (validly signed tokens)', () => {
  const cases: Array<[string, 1 | 2, Record<string, unknown>, SubjectTokenCode]> = [
    ['v1 iss with ver 2.0', 1, { ver: '2.0' }, C.CLAIM_VER],
    ['v2 iss with ver 1.0', 2, { ver: '1.0' }, C.CLAIM_VER],
    ['v2 claims with the v1 iss', 2, { iss: V1_ISS }, C.CLAIM_VER],
    ['v1 claims with the v2 iss', 1, { iss: V2_ISS }, C.CLAIM_VER],
    ['ver missing', 2, { ver: undefined }, C.CLAIM_VER],
    ['ver a number', 2, { ver: 2 }, C.CLAIM_VER],
    ['aud of another app', 2, { aud: 'api://another-app' }, C.CLAIM_AUD],
    ['aud Microsoft Graph', 2, { aud: '00000003-0000-0000-c000-000000000000' }, C.CLAIM_AUD],
    ['aud case variant', 1, { aud: APP_ID_URI.toUpperCase() }, C.CLAIM_AUD],
    ['aud trailing slash', 1, { aud: `${APP_ID_URI}/` }, C.CLAIM_AUD],
    ['aud leading space', 1, { aud: ` ${APP_ID_URI}` }, C.CLAIM_AUD],
    ['aud empty string', 2, { aud: '' }, C.CLAIM_AUD],
    ['aud []', 2, { aud: [] }, C.CLAIM_AUD],
    ['aud array (Entra sends a string)', 2, { aud: [RESOURCE_CLIENT_ID] }, C.CLAIM_AUD],
    ['aud missing', 2, { aud: undefined }, C.CLAIM_AUD],
    ['exp missing', 2, { exp: undefined }, C.CLAIM_EXP],
    ['exp a string', 2, { exp: String(T0S + 600) }, C.CLAIM_EXP],
    ['exp null', 2, { exp: null }, C.CLAIM_EXP],
    ['exp true', 2, { exp: true }, C.CLAIM_EXP],
    ['exp an hour ago', 2, { exp: T0S - 3600 }, C.CLAIM_EXP],
    ['exp just past the skew', 2, { exp: T0S - 300 }, C.CLAIM_EXP],
    ['exp 1e20 (lifetime)', 2, { exp: 1e20 }, C.CLAIM_LIFETIME],
    ['nbf an hour ahead', 2, { nbf: T0S + 3600 }, C.CLAIM_NBF],
    ['nbf a string', 2, { nbf: String(T0S - 60) }, C.CLAIM_NBF],
    ['iat an hour ahead', 2, { iat: T0S + 3600, nbf: T0S - 60 }, C.CLAIM_IAT],
    ['iat missing', 2, { iat: undefined }, C.CLAIM_IAT],
    ['iat a string', 2, { iat: String(T0S) }, C.CLAIM_IAT],
    [
      'lifetime over 24 h + skew',
      2,
      { iat: T0S - 60, nbf: T0S - 60, exp: T0S + 2 * 86_400 },
      C.CLAIM_LIFETIME,
    ],
    ['exp before iat', 2, { iat: T0S, exp: T0S - 1 }, C.CLAIM_LIFETIME],
    ['delegated token (scp)', 2, { scp: 'user_impersonation', name: 'Alice' }, C.CLAIM_DELEGATED],
    ['scp empty', 2, { scp: '' }, C.CLAIM_DELEGATED],
    ['idtyp user', 2, { idtyp: 'user' }, C.CLAIM_IDTYP],
    ['idtyp a number', 2, { idtyp: 1 }, C.CLAIM_IDTYP],
    ['v1 appid missing', 1, { appid: undefined }, C.CLAIM_CLIENT],
    ['v2 azp missing', 2, { azp: undefined }, C.CLAIM_CLIENT],
    ['v2 with only appid', 2, { azp: undefined, appid: CLIENT_ID }, C.CLAIM_CLIENT],
    ['appid an array', 1, { appid: [CLIENT_ID] }, C.CLAIM_CLIENT],
    ['appid a number', 1, { appid: 123 }, C.CLAIM_CLIENT],
    ['azp not a GUID', 2, { azp: 'pipeline' }, C.CLAIM_CLIENT],
    ['v1 with a different azp', 1, { azp: RESOURCE_CLIENT_ID }, C.CLAIM_CLIENT],
    ['oid missing', 2, { oid: undefined }, C.CLAIM_OID],
    ['oid not a GUID', 2, { oid: 'x' }, C.CLAIM_OID],
    ['sub a number', 2, { sub: 42 }, C.CLAIM_SUB],
    ['sub missing', 2, { sub: undefined }, C.CLAIM_SUB],
    ['roles a string', 2, { roles: 'GitLab.Read' }, C.CLAIM_ROLES],
    ['roles nested', 2, { roles: [['GitLab.Read']] }, C.CLAIM_ROLES],
  ];
  for (const [label, version, extra, code] of cases) {
    it(label, async () => {
      await noFetch(() => refused(entraToken(version, extra), code));
    });
  }

  it('allowDelegated accepts scp and idtyp user', async () => {
    const delegated = makeValidator({ issuers: { entra: fake.entraConfig({ allowDelegated: true }) } });
    await delegated.init();
    const id = await delegated.validate(await entraToken(2, { scp: 'user_impersonation', idtyp: 'user' }));
    assert.equal(id.claims.scp, 'user_impersonation');
  });

  it('the lifetime limit is per issuer', async () => {
    const strict = makeValidator({ issuers: { entra: fake.entraConfig({ maxTokenLifetime: 3600 }) } });
    await strict.init();
    await refused(entraToken(2), C.CLAIM_LIFETIME, strict); // 3899 s
    await strict.validate(await entraToken(2, { iat: T0S - 1, exp: T0S + 3599 }));
  });
});

describe('OIDC claims', () => {
  const cases: Array<[string, Record<string, unknown>, SubjectTokenCode]> = [
    ['aud array without ours', { aud: ['https://a.example', 'https://b.example'] }, C.CLAIM_AUD],
    ['aud []', { aud: [] }, C.CLAIM_AUD],
    ['aud array with a non-string', { aud: [OIDC_AUD, 1] }, C.CLAIM_AUD],
    ['aud trailing slash', { aud: `${OIDC_AUD}/` }, C.CLAIM_AUD],
    ['aud a number', { aud: 1 }, C.CLAIM_AUD],
    ['sub missing', { sub: undefined }, C.CLAIM_SUB],
    ['sub empty', { sub: '' }, C.CLAIM_SUB],
    ['exp past', { exp: T0S - 400 }, C.CLAIM_EXP],
    ['iat missing', { iat: undefined }, C.CLAIM_IAT],
    ['lifetime over the issuer limit', { iat: T0S - 10, exp: T0S + 4000 }, C.CLAIM_LIFETIME],
  ];
  for (const [label, extra, code] of cases) {
    it(label, async () => {
      await refused(oidcToken(extra), code);
    });
  }
});

describe('JWKS refetch, outage and refresh', () => {
  it('unknown kid flood: 200 concurrent validations cause exactly one refetch, then none in the cooldown', async () => {
    const validator = makeValidator();
    await validator.init();
    const fetched = () => validator.stats().jwksFetches.entra ?? 0;
    const start = fetched();
    const v2KeysBefore = fake.hits.get(fake.paths.v2Keys) ?? 0;
    const claims = entraClaims(2, { exp: T0S + 3599 + (2 * COOLDOWN) / 1000 });
    const flood = () =>
      Promise.all(
        Array.from({ length: 200 }, () =>
          refused(compact({ alg: 'RS256', kid: randomUUID() }, claims, 'c2ln'), C.KID_UNKNOWN, validator),
        ),
      );
    await flood();
    assert.equal(fetched() - start, 1);
    assert.equal((fake.hits.get(fake.paths.v2Keys) ?? 0) - v2KeysBefore, 1);
    clock += COOLDOWN - 1;
    await flood();
    assert.equal(fetched() - start, 1, 'no refetch within the cooldown');
    clock += 1;
    await flood();
    assert.equal(fetched() - start, 2, 'one more once the cooldown is over');
    // Known keys are unaffected.
    await validator.validate(await entraToken(2, { exp: T0S + 3599 + COOLDOWN / 500 }));
  });

  it('key rotation: a kid published after start-up is found by one refetch; the next one waits for the cooldown', async () => {
    const validator = makeValidator();
    await validator.init();
    fake.docs.set(fake.paths.v2Keys, { keys: [entra1.publicJwk, entra2.publicJwk] });
    const before = validator.stats().jwksFetches.entra ?? 0;
    const id = await validator.validate(await entraToken(2, {}, entra2));
    assert.equal(id.clientId, CLIENT_ID);
    assert.equal((validator.stats().jwksFetches.entra ?? 0) - before, 1);
    // Another new key within the cooldown of that refetch: refused, no fetch.
    const entra3 = await makeKey('entra-key-3', 'RS256');
    fake.docs.set(fake.paths.v2Keys, { keys: [entra1.publicJwk, entra2.publicJwk, entra3.publicJwk] });
    await noFetch(() => refused(entraToken(2, {}, entra3), C.KID_UNKNOWN, validator));
    clock += COOLDOWN;
    await validator.validate(await entraToken(2, { exp: T0S + 3599 + 600 }, entra3));
    assert.equal((validator.stats().jwksFetches.entra ?? 0) - before, 2);
  });

  it('a refetch that fails is retryable with Retry-After; cached keys keep working', async () => {
    const validator = makeValidator();
    await validator.init();
    fake.failing.add(fake.paths.v2Keys);
    const claims = entraClaims(2);
    const unknown = compact({ alg: 'RS256', kid: 'rotated-key' }, claims, 'c2ln');
    const hitsBefore = fake.hits.get(fake.paths.v2Keys) ?? 0;
    const results = await Promise.all(Array.from({ length: 20 }, () => retryable(unknown, validator)));
    assert.equal((fake.hits.get(fake.paths.v2Keys) ?? 0) - hitsBefore, 1, 'one refetch for all');
    assert.equal(results[0]?.retryAfterSeconds, COOLDOWN / 1000);
    assert.match(results[0]?.reason ?? '', /HTTP 500/);
    // Cooling down after the failure: still retryable, shorter Retry-After, no fetch.
    clock += 100_000;
    await noFetch(async () => {
      const err = await retryable(unknown, validator);
      assert.equal(err.retryAfterSeconds, COOLDOWN / 1000 - 100);
    });
    // Tokens signed with known keys are still accepted during the outage.
    const known = await entraToken(2, { exp: T0S + 3599 + 600 });
    await noFetch(() => validator.validate(known));
    assert.equal(validator.ready(), true);
  });

  it('JWKS down at start-up: not ready, retryable, then recovers after the cooldown', async () => {
    fake.failing.add(fake.paths.v1Keys);
    fake.failing.add(fake.paths.v2Keys);
    const validator = makeValidator();
    await validator.init();
    assert.equal(validator.ready(), false);
    const token = await entraToken(2);
    await noFetch(() => retryable(token, validator));
    fake.failing.clear();
    clock += COOLDOWN;
    const validLater = await entraToken(2, { exp: T0S + 3599 + 600 });
    await validator.validate(validLater);
    assert.equal(validator.ready(), false, 'v1 keys not loaded yet');
    await validator.refreshNow();
    assert.equal(validator.ready(), true);
  });

  it('Entra discovery down at start-up: v2 tokens retryable (tenant configured), foreign tenants cost nothing', async () => {
    fake.failing.add(fake.paths.v2Discovery);
    const validator = makeValidator();
    await validator.init();
    assert.equal(validator.ready(), false);
    await validator.validate(await entraToken(1));
    const v2 = await entraToken(2);
    await noFetch(async () => {
      const err = await retryable(v2, validator);
      assert.match(err.reason, /metadata unavailable/);
    });
    await noFetch(() =>
      refused(
        entraToken(2, { tid: OTHER_TENANT, iss: 'https://evil.example/' }),
        C.ISSUER_UNKNOWN,
        validator,
      ),
    );
    fake.failing.clear();
    clock += COOLDOWN;
    const discoveryBefore = fake.hits.get(fake.paths.v2Discovery) ?? 0;
    await validator.validate(await entraToken(2, { exp: T0S + 3599 + 600 }));
    assert.equal((fake.hits.get(fake.paths.v2Discovery) ?? 0) - discoveryBefore, 1);
    assert.equal(validator.ready(), true);
    // A garbage iss with our tid, discovery loaded: unknown, no fetch.
    await noFetch(() =>
      refused(
        entraToken(2, { iss: 'https://evil.example/', exp: T0S + 3599 + 600 }),
        C.ISSUER_UNKNOWN,
        validator,
      ),
    );
  });

  it('OIDC discovery naming another issuer (or an http jwks_uri) is refused: not ready', async () => {
    for (const doc of [
      { issuer: `${fake.oidcIssuer}/`, jwks_uri: `${fake.url}${fake.paths.oidcKeys}` },
      { issuer: fake.oidcIssuer, jwks_uri: 'http://example.com/jwks' },
      { issuer: fake.oidcIssuer },
      [],
    ]) {
      fake.docs.set(fake.paths.oidcDiscovery, doc);
      const validator = makeValidator({ issuers: { ci: fake.oidcConfig() } });
      await validator.init();
      assert.equal(validator.ready(), false, JSON.stringify(doc));
      assert.equal(validator.stats().jwksFetches.ci, 0);
      await retryable(await oidcToken(), validator);
    }
  });

  it('background refresh: an outage keeps the keys; a rotation is picked up; a removed key stops working', async () => {
    const validator = makeValidator({ backgroundRefreshMs: 3_600_000 });
    await validator.init();
    const before = validator.stats().jwksFetches.entra ?? 0;
    await validator.refreshNow();
    assert.equal(validator.stats().jwksFetches.entra, before, 'fresh keys are not refetched');

    fake.failing.add(fake.paths.v1Keys);
    fake.failing.add(fake.paths.v2Keys);
    clock += 3_600_000;
    await validator.refreshNow();
    assert.equal((validator.stats().jwksFetches.entra ?? 0) - before, 2);
    const later = { iat: T0S + 3300, nbf: T0S + 3300, exp: T0S + 7000 };
    await validator.validate(await entraToken(2, later));
    assert.equal(validator.ready(), true);

    fake.failing.clear();
    const rotated = { keys: [entra2.publicJwk] };
    fake.docs.set(fake.paths.v1Keys, rotated);
    fake.docs.set(fake.paths.v2Keys, rotated);
    clock += COOLDOWN;
    await validator.refreshNow();
    const laterStill = { iat: T0S + 3600, nbf: T0S + 3600, exp: T0S + 7200 };
    await validator.validate(await entraToken(1, laterStill, entra2));
    await refused(entraToken(2, laterStill, entra1), C.KID_UNKNOWN, validator);
  });

  it('the background timer refreshes on its own and close() stops it', async () => {
    const validator = makeValidator({ backgroundRefreshMs: 5, jwksRefetchCooldownMs: 5 });
    await validator.init();
    const before = validator.stats().jwksFetches.ci ?? 0;
    clock += 10;
    const deadline = Date.now() + 2000;
    while ((validator.stats().jwksFetches.ci ?? 0) === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok((validator.stats().jwksFetches.ci ?? 0) > before, 'the timer refreshed');
    validator.close();
    await new Promise((r) => setTimeout(r, 20)); // let an in-flight pass end
    const stopped = validator.stats().jwksFetches.ci;
    clock += 10;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(validator.stats().jwksFetches.ci, stopped);
  });

  it('two issuers claiming one iss, or one Entra tenant twice, are a start-up error', () => {
    assert.throws(
      () =>
        createTokenValidator({
          issuers: { a: fake.oidcConfig(), b: fake.oidcConfig() },
          clockSkewSeconds: 300,
        }),
      /claimed by both/,
    );
    assert.throws(
      () =>
        createTokenValidator({
          issuers: { a: fake.entraConfig(), b: fake.entraConfig() },
          clockSkewSeconds: 300,
        }),
      /same Entra tenant/,
    );
  });
});
