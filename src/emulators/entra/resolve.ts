/**
 * Turns a validated raw config into the resolved `EntraConfig`: generated
 * client secrets and the App Service identity header are made once and kept in
 * `<stateDir>/secrets.json`; generated client certificates (RSA, so PS256 and
 * RS256 both work) are kept in `<stateDir>/clients/`; `{emulatorUrl}` is
 * replaced by the emulator's URL.
 */
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import * as x509 from '@peculiar/x509';
import { type CryptoKeyPair, privateKeyPem, randomSerial, thumbprints, writeFileAtomic } from '../tls.ts';
import {
  type AppConfig,
  type ClientCertificateConfig,
  type EntraConfig,
  EntraConfigError,
  type RawApp,
  type RawEntraConfig,
} from './config.ts';
import { EMULATOR_URL_PLACEHOLDER } from './dev-seed.ts';

type RawCertificate = RawApp['clientCertificates'][number];

export async function resolveEntraConfig(
  raw: RawEntraConfig,
  opts: { stateDir: string; emulatorUrl: string; baseDir?: string },
): Promise<EntraConfig> {
  const secrets = new SecretStore(join(opts.stateDir, 'secrets.json'));
  const tenants = [];
  for (const t of raw.tenants) {
    const apps: AppConfig[] = [];
    for (const a of t.apps) {
      const clientCertificates: ClientCertificateConfig[] = [];
      for (const c of a.clientCertificates) {
        clientCertificates.push(await resolveCertificate(c, a, t.id, opts));
      }
      apps.push({
        ...a,
        clientSecrets: a.clientSecrets.map((s) => ({
          id: s.id,
          value: s.value ?? secrets.get(`${t.id}/${a.clientId}/${s.id}`, () => newClientSecret()),
        })),
        clientCertificates,
        federatedCredentials: a.federatedCredentials.map((f) => ({
          ...f,
          issuer: f.issuer.split(EMULATOR_URL_PLACEHOLDER).join(opts.emulatorUrl),
        })),
      });
    }
    tenants.push({ ...t, apps });
  }
  const appServiceIdentityHeader =
    raw.appServiceIdentityHeader ??
    secrets.get('appServiceIdentityHeader', () => randomBytes(24).toString('hex'));
  secrets.save();
  return {
    tenants,
    appServiceIdentityHeader,
    signingKeyGraceSeconds: raw.signingKeyGraceSeconds,
    testIssuer: `${opts.emulatorUrl}/_emulator/oidc`,
  };
}

/** Shaped like an Entra secret value: 40 characters with a `~` (only the shape is borrowed). */
function newClientSecret(): string {
  const body = randomBytes(30).toString('base64url').replace(/[-_]/g, 'x');
  return `${body.slice(0, 3)}8Q~${body.slice(3, 40)}`;
}

class SecretStore {
  private data: Record<string, string> = {};
  private dirty = false;
  constructor(private readonly file: string) {
    if (existsSync(file)) {
      try {
        this.data = JSON.parse(readFileSync(file, 'utf8'));
      } catch {
        throw new EntraConfigError(`${file} is not valid JSON; delete it to regenerate the dev secrets`);
      }
    }
  }
  get(key: string, make: () => string): string {
    let v = this.data[key];
    if (v === undefined) {
      v = make();
      this.data[key] = v;
      this.dirty = true;
    }
    return v;
  }
  save(): void {
    if (this.dirty) writeFileAtomic(this.file, `${JSON.stringify(this.data, null, 2)}\n`);
  }
}

async function resolveCertificate(
  c: RawCertificate,
  app: RawApp,
  tenantId: string,
  opts: { stateDir: string; baseDir?: string },
): Promise<ClientCertificateConfig> {
  if (c.generate) return generatedCertificate(c.name, app, tenantId, opts.stateDir);
  let pem: string;
  let certificateFile: string | undefined;
  if (c.certificateFile) {
    certificateFile = isAbsolute(c.certificateFile)
      ? c.certificateFile
      : resolve(opts.baseDir ?? process.cwd(), c.certificateFile);
    try {
      pem = readFileSync(certificateFile, 'utf8');
    } catch (err) {
      throw new EntraConfigError(
        `app ${app.name}: cannot read certificate ${certificateFile}: ${(err as Error).message}`,
      );
    }
  } else {
    pem = c.certificatePem ?? '';
  }
  const match = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new EntraConfigError(`app ${app.name}: certificate ${c.name} holds no PEM certificate`);
  let der: Uint8Array;
  try {
    der = new Uint8Array(new x509.X509Certificate(match[0]).rawData);
  } catch (err) {
    throw new EntraConfigError(
      `app ${app.name}: certificate ${c.name} cannot be parsed: ${(err as Error).message}`,
    );
  }
  return { name: c.name, certificatePem: `${match[0]}\n`, ...thumbprints(der), certificateFile };
}

async function generatedCertificate(
  certName: string,
  app: RawApp,
  tenantId: string,
  stateDir: string,
): Promise<ClientCertificateConfig> {
  const dir = join(stateDir, 'clients');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const base = join(dir, `${tenantId.slice(0, 8)}-${app.name}-${certName}`);
  const files = {
    certificateFile: `${base}.cert.pem`,
    privateKeyFile: `${base}.key.pem`,
    pemFile: `${base}.pem`,
  };
  if (!existsSync(files.certificateFile) || !existsSync(files.privateKeyFile) || !existsSync(files.pemFile)) {
    const alg = {
      name: 'RSASSA-PKCS1-v1_5',
      hash: 'SHA-256',
      publicExponent: new Uint8Array([1, 0, 1]),
      modulusLength: 2048,
    };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: `CN=${app.name} (${app.clientId})`,
      notBefore: new Date(now - 86_400_000),
      notAfter: new Date(now + 2 * 365 * 86_400_000),
      signingAlgorithm: alg,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      ],
    });
    const certPem = `${cert.toString('pem')}\n`;
    const keyPem = await privateKeyPem(keys.privateKey);
    writeFileAtomic(files.privateKeyFile, keyPem);
    writeFileAtomic(files.pemFile, keyPem + certPem);
    writeFileAtomic(files.certificateFile, certPem, 0o644);
  }
  const certificatePem = readFileSync(files.certificateFile, 'utf8');
  const der = new Uint8Array(new x509.X509Certificate(certificatePem).rawData);
  return { name: certName, certificatePem, ...thumbprints(der), ...files };
}
