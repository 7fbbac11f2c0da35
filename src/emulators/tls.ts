/**
 * A local certificate authority for the emulators: clients such as MSAL refuse
 * an `http://` authority, so the Entra ID emulator serves HTTPS with a server
 * certificate issued by a CA that lives in the emulator's state dir. Clients
 * trust it with `NODE_EXTRA_CA_CERTS=<caFile>` (read by Node at start-up only)
 * or per request (`undici.Agent({ connect: { ca } })`).
 *
 * Keys are ECDSA P-256 (fast to make; Node's TLS accepts them). Made once with
 * @peculiar/x509 on WebCrypto and reused on later starts; the server
 * certificate is re-issued when it is missing, near its end, or lacks a host.
 *
 * Shared with the GitLab emulator: keep `ensureLocalCa` and `LocalCa` stable.
 */
import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

// @peculiar/x509's types expect the DOM Crypto; Node's webcrypto is that at runtime.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface LocalCa {
  /** Absolute path of the CA certificate (PEM): what NODE_EXTRA_CA_CERTS points at. */
  caFile: string;
  caCertPem: string;
  /** Absolute paths of the server certificate (PEM) and its private key (PKCS#8 PEM). */
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

export interface LocalCaOptions {
  /** DNS names and IP addresses of the server certificate (default localhost, 127.0.0.1, ::1). */
  hosts?: string[];
}

export class LocalCaError extends Error {
  static readonly code = 'ERR_EMULATOR_LOCAL_CA';
  readonly code = LocalCaError.code;
  override name = 'LocalCaError';
}

const DEFAULT_HOSTS = ['localhost', '127.0.0.1', '::1'];
const DAY_MS = 86_400_000;
const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const EC_SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** Creates (first start) or reuses (later starts) the CA and the server certificate in `stateDir`. */
export async function ensureLocalCa(stateDir: string, options: LocalCaOptions = {}): Promise<LocalCa> {
  const dir = resolve(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hosts = options.hosts ?? DEFAULT_HOSTS;
  const files = {
    caFile: join(dir, 'ca.pem'),
    caKeyFile: join(dir, 'ca-key.pem'),
    certFile: join(dir, 'server-cert.pem'),
    keyFile: join(dir, 'server-key.pem'),
  };

  let ca: { cert: x509.X509Certificate; keys: CryptoKeyPair };
  try {
    ca =
      existsSync(files.caFile) && existsSync(files.caKeyFile) ? await loadCa(files) : await createCa(files);
  } catch (err) {
    throw new LocalCaError(`cannot create or read the local CA in ${dir}: ${(err as Error).message}`);
  }

  if (!serverCertUsable(files.certFile, files.keyFile, ca.cert, hosts)) {
    await createServerCert(ca, hosts, files.certFile, files.keyFile);
  }
  return {
    caFile: files.caFile,
    caCertPem: readFileSync(files.caFile, 'utf8'),
    certFile: files.certFile,
    keyFile: files.keyFile,
    certPem: readFileSync(files.certFile, 'utf8'),
    keyPem: readFileSync(files.keyFile, 'utf8'),
  };
}

/** PKCS#8 PEM of a private key. */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return toPem('PRIVATE KEY', Buffer.from(der));
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** Base64url SHA-1 / SHA-256 thumbprints of a DER certificate (the `x5t` / `x5t#S256` JOSE values). */
export function thumbprints(der: Uint8Array): { x5t: string; x5tS256: string } {
  return {
    x5t: createHash('sha1').update(der).digest('base64url'),
    x5tS256: createHash('sha256').update(der).digest('base64url'),
  };
}

/** A random serial number: positive, 16 bytes (RFC 5280 §4.1.2.2 allows up to 20). */
export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

/** Writes through a temporary file and a rename, so a crash never leaves half a key. */
export function writeFileAtomic(path: string, content: string, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
  chmodSync(path, mode);
}

async function createCa(files: { caFile: string; caKeyFile: string }) {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=tanuki-sts emulator local CA ${new Date(now).toISOString().slice(0, 10)}`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 3650 * DAY_MS),
    signingAlgorithm: EC_SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  writeFileAtomic(files.caKeyFile, await privateKeyPem(keys.privateKey));
  writeFileAtomic(files.caFile, cert.toString('pem') + '\n', 0o644);
  return { cert, keys };
}

async function loadCa(files: { caFile: string; caKeyFile: string }) {
  const cert = new x509.X509Certificate(readFileSync(files.caFile, 'utf8'));
  const keyDer = pemBody(readFileSync(files.caKeyFile, 'utf8'));
  const privateKey = await webcrypto.subtle.importKey('pkcs8', keyDer, EC_KEY, false, ['sign']);
  const publicKey = await cert.publicKey.export(EC_KEY, ['verify']);
  return { cert, keys: { privateKey, publicKey } as CryptoKeyPair };
}

function serverCertUsable(certFile: string, keyFile: string, caCert: x509.X509Certificate, hosts: string[]) {
  if (!existsSync(certFile) || !existsSync(keyFile)) return false;
  try {
    const cert = new x509.X509Certificate(readFileSync(certFile, 'utf8'));
    if (cert.issuer !== caCert.subject) return false;
    if (cert.notAfter.getTime() - Date.now() < 30 * DAY_MS) return false;
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const names = new Set((san?.names.toJSON() ?? []).map((n) => n.value.toLowerCase()));
    return hosts.every((h) => names.has(h.toLowerCase()) || names.has(expandIPv6(h)));
  } catch {
    return false;
  }
}

async function createServerCert(
  ca: { cert: x509.X509Certificate; keys: CryptoKeyPair },
  hosts: string[],
  certFile: string,
  keyFile: string,
) {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${hosts[0] ?? 'localhost'}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 397 * DAY_MS),
    signingAlgorithm: EC_SIGN,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h })),
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  writeFileAtomic(keyFile, await privateKeyPem(keys.privateKey));
  writeFileAtomic(certFile, cert.toString('pem') + '\n', 0o644);
}

function pemBody(pem: string): Uint8Array {
  const b64 = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

/** @peculiar/x509 renders IPv6 SANs in full form; compare in that form too. */
function expandIPv6(h: string): string {
  if (isIP(h) !== 6) return h.toLowerCase();
  const [head = '', tail = ''] = h.toLowerCase().split('::');
  const a = head ? head.split(':') : [];
  const b = tail ? tail.split(':') : [];
  const fill = h.includes('::') ? Array(8 - a.length - b.length).fill('0') : [];
  return [...a, ...fill, ...b].map((x) => x.padStart(4, '0')).join(':');
}
