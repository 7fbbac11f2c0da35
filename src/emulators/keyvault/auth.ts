/**
 * Key Vault's challenge-based authentication (Microsoft Learn, "Authentication, requests and
 * responses"; Azure SDK `keyVaultAuthenticationPolicy`): a request without a token is answered
 * `401` with `WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"`,
 * the client asks Entra ID for a token for `https://vault.azure.net/.default` in that tenant and
 * sends the request again. Every `401` carries the challenge.
 *
 * A bearer token is checked as Microsoft.IdentityModel checks it (signature, then lifetime,
 * audience, issuer), against the authority's keys (`<authority>/<tenant>/discovery/keys`,
 * fetched over HTTPS and kept; an unknown `kid` fetches them again, at most once a second).
 * Accepted: `RS256`, `aud` = `https://vault.azure.net` (no trailing slash) or the Key Vault
 * application ID, `iss` = the v1 or v2 issuer of the vault's tenant, 5 minutes of clock skew,
 * an `oid`. Tokens of another tenant of the same authority verify (Entra's keys are shared by
 * all tenants) and are refused by their issuer (AKV10032).
 */
import { rootCertificates } from 'node:tls';
import { decodeJwt, decodeProtectedHeader, importJWK, type JWK, errors as joseErrors, jwtVerify } from 'jose';
import { Agent, fetch } from 'undici';
import { KEY_VAULT_APP_ID, KEY_VAULT_RESOURCE, kvErrors } from './errors.ts';

/** Who called, from a verified token. */
export interface Principal {
  objectId: string;
  /** `appid` (v1) or `azp` (v2). */
  appId: string | undefined;
  tenantId: string;
  issuer: string;
}

type VerifyKey = Awaited<ReturnType<typeof importJWK>>;

export const CLOCK_SKEW_SECONDS = 300;
const KEY_REFETCH_MS = 1000;
const MAX_JWKS_BYTES = 256 * 1024;

/** `Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"`. */
export function challengeHeader(authority: string, tenantId: string): string {
  return `Bearer authorization="${authority}/${tenantId}", resource="${KEY_VAULT_RESOURCE}"`;
}

/**
 * The issuers a vault in `tenantId` accepts: v1 and v2. For Microsoft's own authority the v1
 * issuer is `https://sts.windows.net/<tenant>/` (entra-id.md); the Entra emulator issues v1
 * tokens under its own host (`<authority>/<tenant>/`, its README).
 */
export function acceptedIssuers(authority: string, tenantId: string): string[] {
  const v1 =
    new URL(authority).hostname === 'login.microsoftonline.com'
      ? `https://sts.windows.net/${tenantId}/`
      : `${authority}/${tenantId}/`;
  return [v1, `${authority}/${tenantId}/v2.0`];
}

export class TokenVerifier {
  private readonly agent: Agent;
  private readonly issuers: string[];
  private keys = new Map<string, VerifyKey>();
  private lastFetch = 0;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly o: {
      /** `https://localhost:PORT` (no trailing slash). */
      authority: string;
      tenantId: string;
      /** PEM CAs trusted besides the system roots (the emulators' local CA). */
      extraCaPems: string[];
      now?: () => number;
    },
  ) {
    this.agent = new Agent({ connect: { ca: [...rootCertificates, ...o.extraCaPems] }, connections: 2 });
    this.issuers = acceptedIssuers(o.authority, o.tenantId);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** The caller of a request with this `Authorization` header, or a 401 KeyVaultError. */
  async verify(authorization: string | undefined): Promise<Principal> {
    const m = authorization ? /^Bearer +([A-Za-z0-9_=.-]+) *$/i.exec(authorization) : null;
    if (!m?.[1]) throw kvErrors.missingToken();
    const token = m[1];
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
      decodeJwt(token);
    } catch {
      throw kvErrors.malformedToken();
    }
    const encodedHeader = token.split('.')[0] ?? '';
    if (header.alg !== 'RS256' || typeof header.kid !== 'string') throw kvErrors.unknownKey(encodedHeader);
    const key = await this.keyFor(header.kid);
    if (!key) throw kvErrors.unknownKey(encodedHeader);

    let claims: Record<string, unknown>;
    try {
      const nowSeconds = Math.floor((this.o.now?.() ?? Date.now()) / 1000);
      ({ payload: claims } = await jwtVerify(token, key, {
        algorithms: ['RS256'],
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(nowSeconds * 1000),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw kvErrors.expired();
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'nbf') {
        throw kvErrors.notYetValid();
      }
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw kvErrors.badSignature();
      throw kvErrors.malformedToken();
    }
    if (typeof claims.exp !== 'number') throw kvErrors.expired();

    const aud = claims.aud;
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.map(String) : [];
    if (!audiences.some((a) => a === KEY_VAULT_RESOURCE || a.toLowerCase() === KEY_VAULT_APP_ID)) {
      throw kvErrors.invalidAudience(audiences.join(', ') || 'null');
    }
    const iss = typeof claims.iss === 'string' ? claims.iss : '';
    if (
      !this.issuers.includes(iss) ||
      String(claims.tid ?? '').toLowerCase() !== this.o.tenantId.toLowerCase()
    ) {
      throw kvErrors.invalidIssuer(this.issuers, iss || 'null');
    }
    const oid = claims.oid;
    if (typeof oid !== 'string' || oid === '') throw kvErrors.noObjectId();
    const appId =
      typeof claims.appid === 'string'
        ? claims.appid
        : typeof claims.azp === 'string'
          ? claims.azp
          : undefined;
    return { objectId: oid, appId, tenantId: this.o.tenantId, issuer: iss };
  }

  /** The verification key for `kid`: from the cache, else from the authority's JWKS. */
  private async keyFor(kid: string): Promise<VerifyKey | undefined> {
    const known = this.keys.get(kid);
    if (known) return known;
    // A fetch under way answers every request waiting for it (the first requests of a client
    // arrive together); a new one starts at most once a second.
    if (!this.inflight && Date.now() - this.lastFetch >= KEY_REFETCH_MS) {
      this.inflight = this.fetchKeys().finally(() => {
        this.inflight = undefined;
      });
    }
    if (this.inflight) await this.inflight;
    return this.keys.get(kid);
  }

  private async fetchKeys(): Promise<void> {
    this.lastFetch = Date.now();
    const url = `${this.o.authority}/${this.o.tenantId}/discovery/keys`;
    try {
      const res = await fetch(url, {
        dispatcher: this.agent,
        signal: AbortSignal.timeout(5000),
        headers: { accept: 'application/json' },
      });
      const text = await res.text();
      if (res.status !== 200 || text.length > MAX_JWKS_BYTES) throw new Error(`HTTP ${res.status}`);
      const jwks = JSON.parse(text) as { keys?: unknown };
      if (!Array.isArray(jwks.keys)) throw new Error('no keys array');
      const next = new Map<string, VerifyKey>();
      for (const jwk of jwks.keys as JWK[]) {
        if (jwk?.kty !== 'RSA' || typeof jwk.kid !== 'string') continue;
        try {
          next.set(jwk.kid, await importJWK({ kty: 'RSA', n: jwk.n, e: jwk.e }, 'RS256'));
        } catch {
          // A key jose cannot import verifies nothing.
        }
      }
      this.keys = next;
    } catch (err) {
      // The keys stay as they were; the request is refused with AKV10046.
      process.stderr.write(
        `keyvault emulator: cannot fetch the signing keys from ${url}: ${(err as Error).message}\n`,
      );
    }
  }
}
