/**
 * Fetches an external OIDC issuer's keys, as Entra does for workload identity
 * federation (workload-identity-federation.md): `{issuer}/.well-known/openid-configuration`,
 * then its `jwks_uri`. Only issuers named by a federated identity credential of
 * the app are ever fetched (never an arbitrary `iss`). HTTPS trusts the system
 * roots plus the emulator's own CA (so the built-in test issuer works); plain
 * HTTP is allowed for loopback hosts only. No cache: the emulator always sees
 * the issuer's current keys.
 */
import { rootCertificates } from 'node:tls';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { Agent, fetch } from 'undici';

export class IssuerFetchError extends Error {
  static readonly code = 'ERR_ENTRA_EMULATOR_ISSUER_FETCH';
  readonly code = IssuerFetchError.code;
  override name = 'IssuerFetchError';
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const MAX_BODY = 256 * 1024;

export class IssuerKeyFetcher {
  private readonly agent: Agent;

  constructor(extraCaPem: string) {
    this.agent = new Agent({ connect: { ca: [...rootCertificates, extraCaPem] }, connections: 4 });
  }

  async keysOf(issuer: string): Promise<JWTVerifyGetKey> {
    const discoveryUrl = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const discovery = await this.getJson(discoveryUrl);
    if (discovery.issuer !== issuer) {
      throw new IssuerFetchError(
        `the discovery document names issuer ${String(discovery.issuer)}, not ${issuer}`,
      );
    }
    if (typeof discovery.jwks_uri !== 'string')
      throw new IssuerFetchError('the discovery document has no jwks_uri');
    const jwks = await this.getJson(discovery.jwks_uri);
    if (!Array.isArray(jwks.keys)) throw new IssuerFetchError('the JWKS has no keys array');
    return createLocalJWKSet(jwks as unknown as JSONWebKeySet);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async getJson(url: string): Promise<Record<string, unknown>> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new IssuerFetchError(`not a URL: ${url}`);
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.host.replace(/:\d+$/, '')))) {
      throw new IssuerFetchError(`refusing ${u.protocol} for ${u.host}: https, or http on loopback only`);
    }
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      res = await fetch(u, {
        dispatcher: this.agent,
        signal: AbortSignal.timeout(5000),
        headers: { accept: 'application/json' },
      });
    } catch (err) {
      throw new IssuerFetchError(`GET ${url} failed: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (res.status !== 200) throw new IssuerFetchError(`GET ${url}: HTTP ${res.status}`);
    if (text.length > MAX_BODY) throw new IssuerFetchError(`GET ${url}: response too large`);
    try {
      const v = JSON.parse(text) as unknown;
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch {
      throw new IssuerFetchError(`GET ${url}: not a JSON object`);
    }
  }
}
