/**
 * Signing keys, kept in `<stateDir>/keys.json` so tokens stay verifiable
 * across restarts.
 *
 * - Entra signing keys: RSA 2048 with a self-signed certificate each; `kid` =
 *   `x5t` = base64url SHA-1 thumbprint of the certificate, as Entra publishes
 *   them (access-tokens.md, signing-key-rollover.md). All tenants share them,
 *   as in Entra. A rotated-out key stays in the JWKS for a grace period.
 * - The built-in OIDC test issuer's keys: one RSA (RS256) and one EC P-256
 *   (ES256) key, `kid` = RFC 7638 thumbprint.
 */
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, type KeyObject, webcrypto } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { type CryptoKeyPair, privateKeyPem, randomSerial, thumbprints, writeFileAtomic } from '../tls.ts';

interface StoredKey {
  kid: string;
  privateKeyPem: string;
  /** Entra keys only: the self-signed certificate (base64 DER, the `x5c` value). */
  certificate?: string;
  createdAt: number;
  /** When it stopped signing. */
  retiredAt?: number;
  /** When it leaves the JWKS (retiredAt + grace period). */
  unpublishAt?: number;
}

interface KeyFile {
  entra: StoredKey[];
  testIssuerRsa: StoredKey;
  testIssuerEc: StoredKey;
}

export interface LoadedKey {
  kid: string;
  privateKey: KeyObject;
  publicJwk: JWK;
  certificate?: string;
  createdAt: number;
  retiredAt?: number;
  unpublishAt?: number;
}

const RSA_ALG = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
};

export class KeyStore {
  private entra: LoadedKey[] = [];
  private rsa!: LoadedKey;
  private ec!: LoadedKey;

  private constructor(
    private readonly file: string,
    private readonly now: () => number,
  ) {}

  static async open(stateDir: string, now: () => number = Date.now): Promise<KeyStore> {
    const store = new KeyStore(join(stateDir, 'keys.json'), now);
    let data: KeyFile | undefined;
    if (existsSync(store.file)) {
      try {
        data = JSON.parse(readFileSync(store.file, 'utf8')) as KeyFile;
      } catch {
        data = undefined; // unreadable: start over with new keys (tokens signed before are lost, as after a rollover)
      }
    }
    if (!data?.entra?.length || !data.testIssuerRsa || !data.testIssuerEc) {
      data = {
        entra: [await newEntraKey(now())],
        testIssuerRsa: await newJwkKey('RSA', now()),
        testIssuerEc: await newJwkKey('EC', now()),
      };
      writeFileAtomic(store.file, JSON.stringify(data));
    }
    store.entra = await Promise.all(data.entra.map(load));
    store.rsa = await load(data.testIssuerRsa);
    store.ec = await load(data.testIssuerEc);
    return store;
  }

  /** The key that signs new Entra tokens. */
  currentEntraKey(): LoadedKey {
    const k = this.entra.find((x) => x.retiredAt === undefined) ?? this.entra[this.entra.length - 1];
    if (!k) throw new Error('no signing key');
    return k;
  }

  /** Keys still published: the current one and retired ones within their grace period. */
  publishedEntraKeys(): LoadedKey[] {
    const t = this.now();
    return this.entra.filter((k) => k.unpublishAt === undefined || t < k.unpublishAt);
  }

  /** A new signing key with a new kid; the old one is retired (still published during the grace period). */
  async rotateEntraKey(graceSeconds: number): Promise<{ kid: string; previousKid: string }> {
    const previous = this.currentEntraKey();
    const fresh = await newEntraKey(this.now());
    const t = this.now();
    for (const k of this.entra) {
      if (k.retiredAt !== undefined) continue;
      k.retiredAt = t;
      k.unpublishAt = t + graceSeconds * 1000;
    }
    this.entra = [...this.publishedEntraKeys(), await load(fresh)];
    this.save();
    return { kid: fresh.kid, previousKid: previous.kid };
  }

  testIssuerKey(alg: 'RS256' | 'PS256' | 'ES256'): LoadedKey {
    return alg === 'ES256' ? this.ec : this.rsa;
  }

  testIssuerKeys(): LoadedKey[] {
    return [this.rsa, this.ec];
  }

  private save(): void {
    const dump = (k: LoadedKey): StoredKey => ({
      kid: k.kid,
      privateKeyPem: k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      certificate: k.certificate,
      createdAt: k.createdAt,
      retiredAt: k.retiredAt,
      unpublishAt: k.unpublishAt,
    });
    const data: KeyFile = {
      entra: this.entra.map(dump),
      testIssuerRsa: dump(this.rsa),
      testIssuerEc: dump(this.ec),
    };
    writeFileAtomic(this.file, JSON.stringify(data));
  }
}

async function load(k: StoredKey): Promise<LoadedKey> {
  const privateKey = createPrivateKey(k.privateKeyPem);
  const publicJwk = await exportJWK(createPublicKey(privateKey));
  return {
    kid: k.kid,
    privateKey,
    publicJwk,
    certificate: k.certificate,
    createdAt: k.createdAt,
    retiredAt: k.retiredAt,
    unpublishAt: k.unpublishAt,
  };
}

async function newEntraKey(now: number): Promise<StoredKey> {
  const keys = (await webcrypto.subtle.generateKey(RSA_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    // Entra's signing certificates are self-signed with this subject.
    name: 'CN=accounts.accesscontrol.windows.net',
    notBefore: new Date(now - 86_400_000),
    notAfter: new Date(now + 5 * 365 * 86_400_000),
    signingAlgorithm: RSA_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    ],
  });
  const der = new Uint8Array(cert.rawData);
  return {
    kid: thumbprints(der).x5t,
    privateKeyPem: await privateKeyPem(keys.privateKey),
    certificate: Buffer.from(der).toString('base64'),
    createdAt: now,
  };
}

async function newJwkKey(kty: 'RSA' | 'EC', now: number): Promise<StoredKey> {
  const alg = kty === 'RSA' ? RSA_ALG : { name: 'ECDSA', namedCurve: 'P-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const jwk = await exportJWK(keys.publicKey);
  return {
    kid: await calculateJwkThumbprint(jwk),
    privateKeyPem: await privateKeyPem(keys.privateKey),
    createdAt: now,
  };
}
