import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { importJWK } from 'jose';
import { signatureKey, verifyCompactSignature } from './signature.ts';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

function signed(alg: string, priv: KeyObject): string {
  const input = `${b64({ alg, kid: 'k' })}.${b64({ sub: 'x' })}`;
  const data = Buffer.from(input);
  let sig: Buffer;
  if (alg.startsWith('ES')) sig = sign(`sha${alg.slice(2)}`, data, { key: priv, dsaEncoding: 'ieee-p1363' });
  else if (alg.startsWith('PS')) {
    sig = sign(`sha${alg.slice(2)}`, data, {
      key: priv,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    });
  } else if (alg === 'EdDSA') sig = sign(null, data, priv);
  else sig = sign(`sha${alg.slice(2)}`, data, priv);
  return `${input}.${sig.toString('base64url')}`;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');

async function keyFor(pub: KeyObject, alg: string) {
  return signatureKey(await importJWK(pub.export({ format: 'jwk' }), alg), alg);
}

function tamper(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const bytes = Buffer.from(s, 'base64url');
  bytes[0] = (bytes[0] ?? 0) ^ 1;
  return `${h}.${p}.${bytes.toString('base64url')}`;
}

describe('verifyCompactSignature (node:crypto)', () => {
  const cases: Array<[string, { publicKey: KeyObject; privateKey: KeyObject }]> = [
    ['RS256', rsa],
    ['RS512', rsa],
    ['PS256', rsa],
    ['ES256', ec],
    ['EdDSA', ed],
  ];
  for (const [alg, pair] of cases) {
    it(`${alg}: a valid signature passes, a flipped bit or a payload change does not`, async () => {
      const k = await keyFor(pair.publicKey, alg);
      const token = signed(alg, pair.privateKey);
      assert.equal(verifyCompactSignature(token, alg, k), true);
      assert.equal(verifyCompactSignature(tamper(token), alg, k), false);
      const [h, , s] = token.split('.');
      assert.equal(verifyCompactSignature(`${h}.${b64({ sub: 'y' })}.${s}`, alg, k), false);
    });
  }

  it('the key is bound to one alg: RS256 key, PS256 token (or header) is refused', async () => {
    const k = await keyFor(rsa.publicKey, 'RS256');
    assert.equal(verifyCompactSignature(signed('PS256', rsa.privateKey), 'PS256', k), false);
  });

  it('ES256 psychic signature (r = s = 0) and wrong-length signatures are refused', async () => {
    const k = await keyFor(ec.publicKey, 'ES256');
    const [h, p] = signed('ES256', ec.privateKey).split('.');
    assert.equal(
      verifyCompactSignature(`${h}.${p}.${Buffer.alloc(64).toString('base64url')}`, 'ES256', k),
      false,
    );
    const der = sign('sha256', Buffer.from(`${h}.${p}`), ec.privateKey).toString('base64url'); // DER, not R‖S
    assert.equal(verifyCompactSignature(`${h}.${p}.${der}`, 'ES256', k), false);
  });

  it('refuses to bind a key to an alg of another family or curve, or a private key', async () => {
    assert.throws(() => signatureKey(rsa.publicKey, 'ES256'), /cannot verify ES256/);
    assert.throws(() => signatureKey(ec.publicKey, 'RS256'), /cannot verify RS256/);
    assert.throws(() => signatureKey(ec.publicKey, 'ES384'), /cannot verify ES384/);
    assert.throws(() => signatureKey(rsa.privateKey, 'RS256'), /public key/);
    assert.throws(() => signatureKey(rsa.publicKey, 'HS256'), /unsupported alg/);
  });

  it('refuses RSA keys under 2048 bits (RFC 7518 §3.3), also through jose import', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.throws(() => signatureKey(weak.publicKey, 'RS256'), /1024 bits/);
    const imported = await importJWK(weak.publicKey.export({ format: 'jwk' }), 'RS256');
    assert.throws(() => signatureKey(imported, 'RS256'), /1024 bits/);
    assert.throws(() => signatureKey(weak.publicKey, 'PS256'), /1024 bits/);
  });
});
