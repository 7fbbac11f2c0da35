/**
 * Differential test of our JWS verification (signature.ts on node:crypto,
 * behind the validator's structure, header and key checks) against jose's
 * `compactVerify`, which it replaced for speed: the same tokens, the same
 * JWKS, the same algorithm allow-list, and the same verdict.
 *
 * "Ours" is the real validator (createTokenValidator with the JWKS served by a
 * stub fetcher, valid claims, a frozen clock); "jose" is compactVerify with
 * createLocalJWKSet over the same JWKS. Ours may be stricter than jose only by
 * a documented structure or header rule (a header member we refuse, a
 * non-canonical encoding, a duplicate JSON member); never the other way round,
 * and never at the signature or the key: where the signature decides, the
 * verdicts are equal.
 */
import assert from 'node:assert/strict';
import { constants, generateKeyPair, type KeyObject, sign } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { compactVerify, createLocalJWKSet, type JWK } from 'jose';
import { SubjectTokenCodes as C, SubjectTokenError } from './errors.ts';
import { ASYMMETRIC_ALGS } from './header.ts';
import { createTokenValidator, type TokenValidatorHandle } from './validator.ts';

const ISSUER = 'https://issuer.example.test';
const JWKS_URL = `${ISSUER}/jwks`;
const AUD = 'https://sts.example.test';
const T0 = 1_750_000_000_000;
const T0S = T0 / 1000;
const CLAIMS = {
  iss: ISSUER,
  aud: AUD,
  sub: 'project_path:platform/app:ref_type:branch:ref:main',
  iat: T0S - 10,
  nbf: T0S - 10,
  exp: T0S + 3590,
  jti: 'jti-1',
};

const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
const EC_ALGS = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' } as const;
/** EC group orders, for the high-S (malleated) signature. */
const EC_ORDER: Record<string, bigint> = {
  ES256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  ES384: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  ES512:
    0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
};

/** Refusals by a rule jose does not have (structure, header allow-list): the only allowed divergence. */
const STRICTER: ReadonlySet<string> = new Set([
  C.MALFORMED,
  C.TOO_LARGE,
  C.DUPLICATE_MEMBER,
  C.HEADER_FORBIDDEN,
  C.HEADER_TYP,
  C.HEADER_KID,
]);

const b64u = (v: string | Buffer | object) =>
  (typeof v === 'string' || Buffer.isBuffer(v) ? Buffer.from(v) : Buffer.from(JSON.stringify(v))).toString(
    'base64url',
  );

type Header = Record<string, unknown> | string;

interface SignOptions {
  saltLength?: number;
  dsaEncoding?: 'der' | 'ieee-p1363';
}

function signature(alg: string, key: KeyObject, input: string, o: SignOptions = {}): Buffer {
  const data = Buffer.from(input, 'ascii');
  const hash = `sha${alg.slice(2)}`;
  if (alg === 'EdDSA') return sign(null, data, key);
  if (alg.startsWith('ES')) return sign(hash, data, { key, dsaEncoding: o.dsaEncoding ?? 'ieee-p1363' });
  if (alg.startsWith('PS')) {
    return sign(hash, data, {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: o.saltLength ?? constants.RSA_PSS_SALTLEN_DIGEST,
    });
  }
  return sign(hash, data, key);
}

/** A compact JWS; a string header or payload is taken as raw JSON text. */
function jws(
  alg: string,
  key: KeyObject,
  header: Header,
  payload: object | string = CLAIMS,
  o?: SignOptions,
) {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${signature(alg, key, input, o).toString('base64url')}`;
}

/** Replace one segment (0 header, 1 payload, 2 signature) of a token. */
function withSegment(token: string, i: number, value: string): string {
  const parts = token.split('.');
  parts[i] = value;
  return parts.join('.');
}

const sigBytes = (token: string) => Buffer.from(token.split('.')[2] ?? '', 'base64url');

interface Pair {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const generate = promisify(generateKeyPair) as (
  type: string,
  options: Record<string, unknown>,
) => Promise<{ publicKey: KeyObject; privateKey: KeyObject }>;

async function pair(kid: string, type: 'rsa' | 'ec' | 'ed25519', opt: Record<string, unknown> = {}) {
  const { publicKey, privateKey } = await generate(type, opt);
  return { kid, publicKey, privateKey } satisfies Pair;
}

type Expect = 'accept' | 'refuse' | { oursRefuses: string };

describe('JWS verification: ours (node:crypto) against jose compactVerify', () => {
  const keys = new Map<string, Pair>();
  let jwks: { keys: JWK[] };
  let validator: TokenValidatorHandle;
  let joseKeys: ReturnType<typeof createLocalJWKSet>;

  before(async () => {
    const pairs = await Promise.all([
      pair('rsa1024', 'rsa', { modulusLength: 1024 }),
      pair('rsa2048', 'rsa', { modulusLength: 2048 }),
      pair('rsa3072', 'rsa', { modulusLength: 3072 }),
      pair('rsa4096', 'rsa', { modulusLength: 4096 }),
      pair('rsa2048-other', 'rsa', { modulusLength: 2048 }),
      pair('p256', 'ec', { namedCurve: 'P-256' }),
      pair('p384', 'ec', { namedCurve: 'P-384' }),
      pair('p521', 'ec', { namedCurve: 'P-521' }),
      pair('ed25519', 'ed25519'),
    ]);
    for (const p of pairs) keys.set(p.kid, p);
    const rsa2048 = keys.get('rsa2048')!;
    // The same RSA key once more, bound to RS256 by the JWK's `alg`.
    keys.set('rsa2048-rs256', { ...rsa2048, kid: 'rsa2048-rs256' });
    jwks = {
      keys: [...keys.values()].map((p) => ({
        ...(p.publicKey.export({ format: 'jwk' }) as JWK),
        kid: p.kid,
        use: 'sig',
        ...(p.kid === 'rsa2048-rs256' ? { alg: 'RS256' } : {}),
      })),
    };
    joseKeys = createLocalJWKSet(jwks);
    validator = createTokenValidator({
      issuers: {
        ci: {
          name: 'ci',
          kind: 'oidc',
          issuer: ISSUER,
          jwksUri: JWKS_URL,
          audiences: [AUD],
          maxTokenLifetime: 3900,
        },
      },
      clockSkewSeconds: 300,
      now: () => T0,
      backgroundRefreshMs: 0,
      fetchJson: async (url) => {
        if (url !== JWKS_URL) throw new Error(`unexpected fetch of ${url}`);
        return jwks;
      },
    });
    await validator.init();
    assert.equal(validator.ready(), true);
  });

  async function ours(token: string): Promise<{ ok: true } | { ok: false; code: string }> {
    try {
      await validator.validate(token);
      return { ok: true };
    } catch (err) {
      if (err instanceof SubjectTokenError) return { ok: false, code: err.code };
      throw err; // a bug, not a verdict
    }
  }

  const jose = (token: string): Promise<boolean> =>
    compactVerify(token, joseKeys, { algorithms: [...ASYMMETRIC_ALGS] }).then(
      () => true,
      () => false,
    );

  async function assertVerdicts(name: string, token: string, expect: Expect): Promise<void> {
    const [o, j] = await Promise.all([ours(token), jose(token)]);
    const got = { ours: o.ok ? 'accept' : `refuse ${o.code}`, jose: j ? 'accept' : 'refuse' };
    if (expect === 'accept') assert.deepEqual(got, { ours: 'accept', jose: 'accept' }, name);
    else if (expect === 'refuse') {
      assert.equal(got.jose, 'refuse', `${name}: jose`);
      assert.match(got.ours, /^refuse /, `${name}: ours`);
    } else assert.deepEqual(got, { ours: `refuse ${expect.oursRefuses}`, jose: 'accept' }, name);
  }

  const key = (kid: string) => keys.get(kid)!.privateKey;
  const header = (alg: string, kid: string, extra: Record<string, unknown> = {}) => ({
    alg,
    kid,
    typ: 'JWT',
    ...extra,
  });

  /** Every allowed algorithm on every key size it takes: [alg, kid]. */
  function grid(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const kid of ['rsa2048', 'rsa3072', 'rsa4096']) for (const alg of RSA_ALGS) out.push([alg, kid]);
    out.push(['ES256', 'p256'], ['ES384', 'p384'], ['ES512', 'p521'], ['EdDSA', 'ed25519']);
    return out;
  }

  it('covers every algorithm the header allow-list accepts', () => {
    assert.deepEqual(new Set(grid().map(([alg]) => alg)), ASYMMETRIC_ALGS);
    for (const [alg, crv] of Object.entries(EC_ALGS)) {
      assert.equal(
        jwks.keys.find((k) => k.crv === crv)?.kid,
        { ES256: 'p256', ES384: 'p384', ES512: 'p521' }[alg],
      );
    }
  });

  it('good, and tampered header, payload and signature, for every alg and key size', async () => {
    for (const [alg, kid] of grid()) {
      const good = jws(alg, key(kid), header(alg, kid));
      const [h, p, s] = good.split('.') as [string, string, string];
      const flipped = sigBytes(good);
      flipped[0] = (flipped[0] ?? 0) ^ 0x01;
      const cases: Array<[string, string, Expect]> = [
        ['good', good, 'accept'],
        ['header member added', `${b64u(header(alg, kid, { x: 1 }))}.${p}.${s}`, 'refuse'],
        ['header typ changed', `${b64u(header(alg, kid, { typ: 'at+jwt' }))}.${p}.${s}`, 'refuse'],
        ['payload sub changed', `${h}.${b64u({ ...CLAIMS, sub: 'x' })}.${s}`, 'refuse'],
        ['payload exp extended', `${h}.${b64u({ ...CLAIMS, exp: CLAIMS.exp + 1 })}.${s}`, 'refuse'],
        ['signature bit flipped', withSegment(good, 2, flipped.toString('base64url')), 'refuse'],
        [
          'signature last byte dropped',
          withSegment(good, 2, sigBytes(good).subarray(0, -1).toString('base64url')),
          'refuse',
        ],
        [
          'signature zero byte prepended',
          withSegment(good, 2, Buffer.concat([Buffer.alloc(1), sigBytes(good)]).toString('base64url')),
          'refuse',
        ],
        ['signature emptied', `${h}.${p}.`, 'refuse'],
        [
          'signature of another token',
          withSegment(good, 2, jws(alg, key(kid), header(alg, kid), { ...CLAIMS, jti: '2' }).split('.')[2]!),
          'refuse',
        ],
      ];
      if (alg.startsWith('RS') || alg.startsWith('PS')) {
        const other = jws(alg, key('rsa2048-other'), header(alg, kid));
        cases.push(['signed by another RSA key', other, 'refuse']);
      }
      for (const [name, token, expect] of cases)
        await assertVerdicts(`${alg}/${kid}: ${name}`, token, expect);
    }
  });

  it('a 1024-bit RSA key is refused by both, whatever the alg (RFC 7518 §3.3)', async () => {
    // PS512 cannot be signed at all with a 1024-bit key and a 64-byte salt (RFC 8017 §9.1.1).
    for (const alg of RSA_ALGS.filter((a) => a !== 'PS512')) {
      const token = jws(alg, key('rsa1024'), header(alg, 'rsa1024'));
      await assertVerdicts(`${alg}/rsa1024`, token, 'refuse');
      assert.deepEqual(await ours(token), { ok: false, code: C.KEY_MISMATCH });
    }
  });

  it('keys are bound to their alg, curve and type', async () => {
    const cases: Array<[string, string, Expect]> = [
      [
        'PS256 under a JWK pinned to RS256',
        jws('PS256', key('rsa2048'), header('PS256', 'rsa2048-rs256')),
        'refuse',
      ],
      [
        'RS256 under a JWK pinned to RS256',
        jws('RS256', key('rsa2048'), header('RS256', 'rsa2048-rs256')),
        'accept',
      ],
      ['ES384 header, P-256 key', jws('ES256', key('p256'), header('ES384', 'p256')), 'refuse'],
      ['ES256 header and signature, P-384 kid', jws('ES256', key('p256'), header('ES256', 'p384')), 'refuse'],
      ['RS256 header, EC kid', jws('RS256', key('rsa2048'), header('RS256', 'p256')), 'refuse'],
      ['EdDSA header, RSA kid', jws('EdDSA', key('ed25519'), header('EdDSA', 'rsa2048')), 'refuse'],
      ['unknown kid', jws('RS256', key('rsa2048'), header('RS256', 'nope')), 'refuse'],
      // Several RSA keys fit: both refuse to guess.
      [
        'no kid, several candidate keys',
        jws('RS256', key('rsa2048'), { alg: 'RS256', typ: 'JWT' }),
        'refuse',
      ],
      ['no kid, one candidate key (Ed25519)', jws('EdDSA', key('ed25519'), { alg: 'EdDSA' }), 'accept'],
    ];
    for (const [name, token, expect] of cases) await assertVerdicts(name, token, expect);
  });

  it('algorithms outside the allow-list: none, HS256 keyed with the public key', async () => {
    const h = header('none', 'rsa2048');
    const pem = keys.get('rsa2048')!.publicKey.export({ format: 'pem', type: 'spki' });
    const input = `${b64u(header('HS256', 'rsa2048'))}.${b64u(CLAIMS)}`;
    const { createHmac } = await import('node:crypto');
    const hs = `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    const cases: Array<[string, string, Expect]> = [
      ['alg none, empty signature', `${b64u(h)}.${b64u(CLAIMS)}.`, 'refuse'],
      ['alg none, some signature', `${b64u(h)}.${b64u(CLAIMS)}.AAAA`, 'refuse'],
      ['HS256 with the RSA public key as secret', hs, 'refuse'],
      [
        'RS256 signature, alg rewritten to RS512',
        withSegment(
          jws('RS256', key('rsa2048'), header('RS256', 'rsa2048')),
          0,
          b64u(header('RS512', 'rsa2048')),
        ),
        'refuse',
      ],
    ];
    for (const [name, token, expect] of cases) await assertVerdicts(name, token, expect);
  });

  it('ECDSA signature encodings: raw R‖S only, no zero values; high-S is valid for both', async () => {
    for (const [alg, kid] of [
      ['ES256', 'p256'],
      ['ES384', 'p384'],
      ['ES512', 'p521'],
    ] as const) {
      const good = jws(alg, key(kid), header(alg, kid));
      const raw = sigBytes(good);
      const half = raw.length / 2;
      const s = BigInt(`0x${raw.subarray(half).toString('hex')}`);
      const highS = Buffer.concat([
        raw.subarray(0, half),
        Buffer.from((EC_ORDER[alg]! - s).toString(16).padStart(half * 2, '0'), 'hex'),
      ]);
      const cases: Array<[string, string, Expect]> = [
        ['DER signature', jws(alg, key(kid), header(alg, kid), CLAIMS, { dsaEncoding: 'der' }), 'refuse'],
        [
          'r = s = 0 (CVE-2022-21449)',
          withSegment(good, 2, Buffer.alloc(raw.length).toString('base64url')),
          'refuse',
        ],
        [
          'r = 0',
          withSegment(good, 2, Buffer.concat([Buffer.alloc(half), raw.subarray(half)]).toString('base64url')),
          'refuse',
        ],
        [
          's = n (the order)',
          withSegment(
            good,
            2,
            Buffer.concat([
              raw.subarray(0, half),
              Buffer.from(EC_ORDER[alg]!.toString(16).padStart(half * 2, '0'), 'hex'),
            ]).toString('base64url'),
          ),
          'refuse',
        ],
        [
          'high S (n − s): malleable, valid ECDSA',
          withSegment(good, 2, highS.toString('base64url')),
          'accept',
        ],
      ];
      for (const [name, token, expect] of cases) await assertVerdicts(`${alg}: ${name}`, token, expect);
    }
  });

  it('RSASSA-PSS: the salt must be as long as the hash (RFC 7518 §3.5)', async () => {
    for (const alg of ['PS256', 'PS384', 'PS512'] as const) {
      const digest = Number(alg.slice(2)) / 8;
      const cases: Array<[string, number, Expect]> = [
        ['salt of the hash length', digest, 'accept'],
        ['no salt', 0, 'refuse'],
        ['salt one byte short', digest - 1, 'refuse'],
        ['maximal salt', constants.RSA_PSS_SALTLEN_MAX_SIGN, 'refuse'],
      ];
      for (const [name, saltLength, expect] of cases) {
        const token = jws(alg, key('rsa2048'), header(alg, 'rsa2048'), CLAIMS, { saltLength });
        await assertVerdicts(`${alg}: ${name}`, token, expect);
      }
    }
  });

  it('RSA signatures shorter than the modulus: PKCS#1 v1.5 refused, PSS accepted, by both alike', async () => {
    // RFC 8017 §8.1.2 step 1 wants exactly k octets; OpenSSL (under node:crypto and under
    // WebCrypto alike) left-pads a short PSS signature and accepts it. Same integer, same verdict.
    for (const [alg, expect] of [
      ['RS256', 'refuse'],
      ['PS256', 'accept'],
    ] as const) {
      let token = '';
      for (let i = 0; !token; i++) {
        const t = jws(alg, key('rsa2048'), header(alg, 'rsa2048'), { ...CLAIMS, jti: `z${i}` });
        if (sigBytes(t)[0] === 0) token = withSegment(t, 2, sigBytes(t).subarray(1).toString('base64url'));
      }
      assert.equal(sigBytes(token).length, 255);
      await assertVerdicts(`${alg}: leading zero byte stripped`, token, expect);
    }
  });

  it('crit and b64 (RFC 7515 §4.1.11, RFC 7797): jose honours them, ours refuses both members', async () => {
    const rs = (h: Header, payload: object | string = CLAIMS) => jws('RS256', key('rsa2048'), h, payload);
    // RFC 7797 §3: with b64 false the payload is signed and sent as is (no "." in it).
    const unencoded = (h: Record<string, unknown>, payload: string) => {
      const input = `${b64u(h)}.${payload}`;
      return `${input}.${signature('RS256', key('rsa2048'), input).toString('base64url')}`;
    };
    const cases: Array<[string, string, Expect]> = [
      [
        'crit naming an unknown extension',
        rs(header('RS256', 'rsa2048', { crit: ['exp'], exp: 1 })),
        'refuse',
      ],
      ['crit empty', rs(header('RS256', 'rsa2048', { crit: [] })), 'refuse'],
      ['crit naming a member that is absent', rs(header('RS256', 'rsa2048', { crit: ['b64'] })), 'refuse'],
      [
        'crit b64, b64 true',
        rs(header('RS256', 'rsa2048', { crit: ['b64'], b64: true })),
        { oursRefuses: C.HEADER_FORBIDDEN },
      ],
      // Refused by structure before the header is read: "hello" is no canonical base64url.
      [
        'crit b64, b64 false, unencoded payload',
        unencoded(header('RS256', 'rsa2048', { crit: ['b64'], b64: false }), 'hello'),
        { oursRefuses: C.MALFORMED },
      ],
      // Without crit, jose ignores b64 (RFC 7797 §6) and verifies an ordinary JWS.
      [
        'b64 false without crit, encoded payload',
        rs(header('RS256', 'rsa2048', { b64: false })),
        { oursRefuses: C.HEADER_FORBIDDEN },
      ],
      [
        'b64 false without crit, unencoded payload',
        unencoded(header('RS256', 'rsa2048', { b64: false }), 'hello'),
        'refuse',
      ],
    ];
    for (const [name, token, expect] of cases) await assertVerdicts(name, token, expect);
  });

  it('other header and structure rules that are ours alone', async () => {
    const rs = (h: Header) => jws('RS256', key('rsa2048'), h);
    const good = rs(header('RS256', 'rsa2048'));
    const sig = good.split('.')[2]!;
    // 256 bytes: the last base64url character carries 4 unused bits; set one.
    const last = sig.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const loose = sig.slice(0, -1) + alphabet[alphabet.indexOf(last) | 1];
    const cases: Array<[string, string, Expect]> = [
      ['typ JOSE', rs(header('RS256', 'rsa2048', { typ: 'JOSE' })), { oursRefuses: C.HEADER_TYP }],
      [
        'jku (a key URL chosen by the token)',
        rs(header('RS256', 'rsa2048', { jku: 'https://evil.test/jwks' })),
        { oursRefuses: C.HEADER_FORBIDDEN },
      ],
      [
        'cty JWT (nested token)',
        rs(header('RS256', 'rsa2048', { cty: 'JWT' })),
        { oursRefuses: C.HEADER_FORBIDDEN },
      ],
      [
        'duplicate alg, last one wins for jose',
        rs('{"alg":"HS256","alg":"RS256","kid":"rsa2048"}'),
        { oursRefuses: C.DUPLICATE_MEMBER },
      ],
      ['duplicate alg, refused by both', rs('{"alg":"RS256","alg":"HS256","kid":"rsa2048"}'), 'refuse'],
      [
        'non-canonical base64url signature (unused bits set)',
        withSegment(good, 2, loose),
        { oursRefuses: C.MALFORMED },
      ],
      ['padded signature', `${good}${'='.repeat((4 - (sig.length % 4)) % 4)}`, { oursRefuses: C.MALFORMED }],
      ['kid of 129 characters', rs(header('RS256', 'k'.repeat(129))), 'refuse'],
      ['four segments', `${good}.x`, 'refuse'],
    ];
    assert.notEqual(loose, sig);
    for (const [name, token, expect] of cases) await assertVerdicts(name, token, expect);
  });

  it('property: under random edits of a good token, ours never accepts what jose refuses', async () => {
    const goods = grid()
      .filter(([, kid]) => kid !== 'rsa3072' && kid !== 'rsa4096')
      .map(([alg, kid]) => jws(alg, key(kid), header(alg, kid)));
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=';
    const edit = fc.record({
      token: fc.constantFrom(...goods),
      at: fc.nat(),
      op: fc.constantFrom('replace', 'insert', 'delete'),
      char: fc.constantFrom(...chars.split('')),
    });
    await fc.assert(
      fc.asyncProperty(edit, async ({ token, at, op, char }) => {
        const i = at % token.length;
        const edited =
          op === 'delete'
            ? token.slice(0, i) + token.slice(i + 1)
            : token.slice(0, i) + char + token.slice(op === 'replace' ? i + 1 : i);
        const [o, j] = await Promise.all([ours(edited), jose(edited)]);
        if (o.ok) assert.equal(j, true, `ours accepts, jose refuses: ${edited}`);
        else if (j) assert.ok(STRICTER.has(o.code), `jose accepts, ours refuses with ${o.code}: ${edited}`);
      }),
      { numRuns: 300, seed: 8693 },
    );
  });
});
