/**
 * Access tokens shaped as Entra issues them for app-only flows
 * (Microsoft identity platform docs: access-token-claims-reference.md, access-tokens.md):
 *
 * |            | v1                               | v2                                |
 * |------------|----------------------------------|-----------------------------------|
 * | iss        | `{url}/{tid}/` (*)               | `{url}/{tid}/v2.0`                |
 * | aud        | identifier URI or client ID, as requested | the resource's client ID |
 * | client     | `appid`, `appidacr`              | `azp`, `azpacr`                   |
 * | ver        | "1.0"                            | "2.0"                             |
 * | header     | typ, alg RS256, x5t (= kid), kid | typ, alg RS256, kid               |
 *
 * (*) Entra's v1 issuer is `https://sts.windows.net/{tid}/`; the emulator uses
 * its own authority host instead, since it stands for the whole cloud.
 * `iat`/`nbf` are backdated 5 minutes as Entra does; `idtyp: "app"` only when
 * the resource asks for it as an optional claim.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { KeyStore } from './keys.ts';

export const CLIENT_CREDENTIALS_LIFETIME = 3599;
/** Managed identity tokens live about 24 hours (how-to-use-vm-token.md). */
export const MANAGED_IDENTITY_LIFETIME = 86_399;
const BACKDATE_SECONDS = 300;

/** How the client proved itself: "0" public, "1" secret, "2" certificate or federated assertion. */
export type ClientAuthMethod = '0' | '1' | '2';

export interface EntraTokenSpec {
  baseUrl: string;
  tenantId: string;
  /** The client app's (or managed identity's) client ID: `appid` / `azp`. */
  clientId: string;
  /** Its service principal object ID: `oid` and `sub`. */
  objectId: string;
  clientAuth: ClientAuthMethod;
  /** The resource as the client named it (identifier URI or client ID): the v1 `aud`. */
  requestedResource: string;
  /** The resource's client ID: the v2 `aud`. */
  resourceClientId: string;
  version: 1 | 2;
  roles: string[];
  idtyp: boolean;
  lifetimeSeconds: number;
  /** Managed identities: the ARM resource ID (`xms_mirid`). */
  managedIdentityResourceId?: string;
  /** Test minting only: claims to add or override (null removes a claim). */
  extraClaims?: Record<string, unknown>;
  /** Test minting only: header members to add or override. */
  header?: Record<string, unknown>;
}

export interface SignedToken {
  token: string;
  iat: number;
  nbf: number;
  exp: number;
}

export function entraIssuer(baseUrl: string, tenantId: string, version: 1 | 2): string {
  return version === 2 ? `${baseUrl}/${tenantId}/v2.0` : `${baseUrl}/${tenantId}/`;
}

export async function signEntraToken(
  keys: KeyStore,
  spec: EntraTokenSpec,
  nowMs = Date.now(),
): Promise<SignedToken> {
  const now = Math.floor(nowMs / 1000);
  const iat = now - BACKDATE_SECONDS;
  const exp = now + spec.lifetimeSeconds;
  const v1 = spec.version === 1;
  const iss = entraIssuer(spec.baseUrl, spec.tenantId, spec.version);
  const claims: Record<string, unknown> = {
    aud: v1 ? spec.requestedResource : spec.resourceClientId,
    iss,
    iat,
    nbf: iat,
    exp,
    aio: randomBytes(48).toString('base64'),
    ...(v1
      ? { appid: spec.clientId, appidacr: spec.clientAuth, idp: iss }
      : { azp: spec.clientId, azpacr: spec.clientAuth }),
    ...(spec.idtyp ? { idtyp: 'app' } : {}),
    oid: spec.objectId,
    rh: `0.${randomBytes(48).toString('base64url')}.`,
    ...(spec.roles.length > 0 ? { roles: spec.roles } : {}),
    sub: spec.objectId,
    tid: spec.tenantId,
    uti: randomBytes(16).toString('base64url'),
    ver: v1 ? '1.0' : '2.0',
    ...(spec.managedIdentityResourceId ? { xms_mirid: spec.managedIdentityResourceId } : {}),
  };
  applyOverrides(claims, spec.extraClaims);
  const key = keys.currentEntraKey();
  const header: Record<string, unknown> = {
    typ: 'JWT',
    alg: 'RS256',
    ...(v1 ? { x5t: key.kid } : {}),
    kid: key.kid,
  };
  applyOverrides(header, spec.header);
  const token = await new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
  return { token, iat, nbf: iat, exp };
}

export interface TestIssuerTokenSpec {
  issuer: string;
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  lifetimeSeconds?: number;
}

/**
 * A token from the built-in OIDC test issuer (shaped like a GitLab CI
 * id_token once the caller adds `sub`, `project_path`, …). Defaults: iss = the
 * test issuer, aud = api://AzureADTokenExchange, iat/nbf = now, exp = now +
 * lifetime (default 5 minutes, GitLab's default), a fresh jti. `header.alg`
 * ES256 signs with the EC key, RS256 (default) or PS256 with the RSA key.
 */
export async function signTestIssuerToken(
  keys: KeyStore,
  spec: TestIssuerTokenSpec,
  defaultAudience: string,
  nowMs = Date.now(),
): Promise<SignedToken> {
  const now = Math.floor(nowMs / 1000);
  const lifetime = spec.lifetimeSeconds ?? 300;
  const claims: Record<string, unknown> = {
    iss: spec.issuer,
    aud: defaultAudience,
    iat: now,
    nbf: now,
    exp: now + lifetime,
    jti: randomUUID(),
  };
  applyOverrides(claims, spec.claims);
  const alg = spec.header?.alg ?? 'RS256';
  if (alg !== 'RS256' && alg !== 'PS256' && alg !== 'ES256') {
    throw new TypeError(`header.alg must be RS256, PS256 or ES256 (build other tokens by hand)`);
  }
  const key = keys.testIssuerKey(alg);
  const header: Record<string, unknown> = { alg, kid: key.kid, typ: 'JWT' };
  applyOverrides(header, spec.header);
  const token = await new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
  return {
    token,
    iat: Number(claims.iat),
    nbf: Number(claims.nbf),
    exp: Number(claims.exp),
  };
}

function applyOverrides(
  target: Record<string, unknown>,
  overrides: Record<string, unknown> | undefined,
): void {
  for (const [k, v] of Object.entries(overrides ?? {})) {
    if (v === null) delete target[k];
    else target[k] = v;
  }
}
