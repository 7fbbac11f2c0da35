/**
 * Claim checks, run only after the signature verified (RFC 8725 §3.1 order;
 * jose does the same). Types are strict: nothing is coerced (a string `exp`
 * is refused, not parsed).
 *
 * Audience rule (RFC 7519 §4.1.3, CVE-2020-26160, CVE-2024-5798): `aud` is a
 * non-empty string equal, byte for byte, to one of the configured audiences;
 * for generic OIDC also a non-empty array of such strings (at most 16, every
 * element a non-empty string) of which at least one is configured. Entra
 * access tokens always carry a single string, so an array is refused for them.
 */
import type { EntraVersion } from './discovery.ts';
import { SubjectTokenCodes as C, quote, refuse } from './errors.ts';
import type { EntraIssuerConfig, IssuerConfig, OidcIssuerConfig } from './issuer-config.ts';
import type { Identity } from './types.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_AUD_ENTRIES = 16;

export interface ClaimContext {
  /** Configured issuer name. */
  issuerName: string;
  /** The `iss` this source issues (exact). */
  issuer: string;
  nowSeconds: number;
  clockSkewSeconds: number;
}

type Claims = Record<string, unknown>;

const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * exp required (RFC 7519 §4.1.4), iat required (so the lifetime is known),
 * nbf optional (§4.1.5); all NumericDate numbers, skew allowed both ways;
 * `exp − iat` at most the issuer's `maxTokenLifetime`.
 */
export function checkTimes(p: Claims, cfg: IssuerConfig, ctx: ClaimContext): number {
  const { exp, iat, nbf } = p;
  const now = ctx.nowSeconds;
  const skew = ctx.clockSkewSeconds;
  if (!isNumericDate(exp)) throw refuse(C.CLAIM_EXP, `exp is missing or not a number: ${quote(exp)}`);
  if (!isNumericDate(iat)) throw refuse(C.CLAIM_IAT, `iat is missing or not a number: ${quote(iat)}`);
  if (nbf !== undefined && !isNumericDate(nbf))
    throw refuse(C.CLAIM_NBF, `nbf is not a number: ${quote(nbf)}`);
  if (now - skew >= exp) throw refuse(C.CLAIM_EXP, `token expired at ${exp} (now ${now}, skew ${skew}s)`);
  if (nbf !== undefined && nbf > now + skew)
    throw refuse(C.CLAIM_NBF, `nbf ${nbf} is in the future (now ${now})`);
  if (iat > now + skew) throw refuse(C.CLAIM_IAT, `iat ${iat} is in the future (now ${now})`);
  if (exp <= iat) throw refuse(C.CLAIM_LIFETIME, `exp ${exp} is not after iat ${iat}`);
  if (exp - iat > cfg.maxTokenLifetime) {
    throw refuse(C.CLAIM_LIFETIME, `lifetime ${exp - iat}s exceeds the maximum ${cfg.maxTokenLifetime}s`);
  }
  return exp;
}

export function checkAudience(aud: unknown, audiences: readonly string[], allowArray: boolean): void {
  const ok = (a: unknown): a is string => typeof a === 'string' && a.length > 0;
  if (typeof aud === 'string') {
    if (ok(aud) && audiences.includes(aud)) return;
    throw refuse(C.CLAIM_AUD, `aud ${quote(aud)} is not a configured audience`);
  }
  if (Array.isArray(aud)) {
    if (!allowArray) throw refuse(C.CLAIM_AUD, 'aud is an array (a single string is required)');
    if (aud.length === 0 || aud.length > MAX_AUD_ENTRIES || !aud.every(ok)) {
      throw refuse(C.CLAIM_AUD, `aud array is empty, too long or holds a non-string: ${quote(aud)}`);
    }
    if (aud.some((a) => audiences.includes(a))) return;
    throw refuse(C.CLAIM_AUD, `no aud in ${quote(aud)} is a configured audience`);
  }
  throw refuse(C.CLAIM_AUD, `aud is missing or not a string: ${quote(aud)}`);
}

function stringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function tokenId(p: Claims): string | undefined {
  if (typeof p.jti === 'string') return p.jti;
  if (typeof p.uti === 'string') return p.uti;
  return undefined;
}

/**
 * Entra access token (Microsoft identity platform docs: access-tokens.md
 * "Validate tokens", claims-validation.md): iss exact and matching ver, tid = configured tenant
 * (all tenants share signing keys), aud, times, app-only (no `scp`; `idtyp`
 * is `app` when present) unless delegated tokens are allowed, client ID from
 * `appid` (v1) / `azp` (v2), `oid` and `sub`.
 */
export function entraIdentity(
  p: Claims,
  cfg: EntraIssuerConfig,
  version: EntraVersion,
  ctx: ClaimContext,
): Identity {
  if (p.iss !== ctx.issuer) throw refuse(C.CLAIM_ISS, `iss ${quote(p.iss)} is not ${quote(ctx.issuer)}`);
  if (p.ver !== version) {
    throw refuse(
      C.CLAIM_VER,
      `ver ${quote(p.ver)} does not match the v${version} issuer ${quote(ctx.issuer)}`,
    );
  }
  if (p.tid !== cfg.tenant)
    throw refuse(C.CLAIM_TID, `tid ${quote(p.tid)} is not the configured tenant ${cfg.tenant}`);
  checkAudience(p.aud, cfg.audiences, false);
  const exp = checkTimes(p, cfg, ctx);

  if (Object.hasOwn(p, 'scp') && !cfg.allowDelegated) {
    throw refuse(C.CLAIM_DELEGATED, 'delegated (user) token: scp present and allowDelegated is off');
  }
  if (p.idtyp !== undefined) {
    if (typeof p.idtyp !== 'string') throw refuse(C.CLAIM_IDTYP, `idtyp is not a string: ${quote(p.idtyp)}`);
    if (p.idtyp !== 'app' && !cfg.allowDelegated) {
      throw refuse(C.CLAIM_IDTYP, `idtyp ${quote(p.idtyp)} is not "app" and allowDelegated is off`);
    }
  }

  const clientClaim = version === '1.0' ? 'appid' : 'azp';
  const otherClaim = version === '1.0' ? 'azp' : 'appid';
  const clientId = p[clientClaim];
  if (typeof clientId !== 'string' || !GUID.test(clientId)) {
    throw refuse(C.CLAIM_CLIENT, `${clientClaim} is missing or not a GUID: ${quote(clientId)}`);
  }
  // Both are set to the client ID below; a different value in the other one must not be silently replaced.
  if (p[otherClaim] !== undefined && p[otherClaim] !== clientId) {
    throw refuse(C.CLAIM_CLIENT, `${otherClaim} ${quote(p[otherClaim])} differs from ${clientClaim}`);
  }
  if (typeof p.oid !== 'string' || !GUID.test(p.oid)) {
    throw refuse(C.CLAIM_OID, `oid is missing or not a GUID: ${quote(p.oid)}`);
  }
  if (typeof p.sub !== 'string' || p.sub.length === 0) {
    throw refuse(C.CLAIM_SUB, `sub is missing or not a string: ${quote(p.sub)}`);
  }
  if (p.roles !== undefined && !stringArray(p.roles)) {
    throw refuse(C.CLAIM_ROLES, `roles is not an array of strings: ${quote(p.roles)}`);
  }

  const id: Identity = {
    issuer: ctx.issuerName,
    kind: 'entra',
    tenant: cfg.tenant,
    clientId,
    objectId: p.oid,
    subject: p.sub,
    roles: p.roles ? [...p.roles] : [],
    expiresAt: exp,
    version,
    claims: Object.freeze({ ...p, appid: clientId, azp: clientId }),
  };
  const jti = tokenId(p);
  if (jti !== undefined) id.tokenId = jti;
  return id;
}

/** Generic OIDC token: iss byte-equal, aud, times, `sub` (OIDC Core §2, RFC 7519 §4.1). */
export function oidcIdentity(p: Claims, cfg: OidcIssuerConfig, ctx: ClaimContext): Identity {
  if (p.iss !== ctx.issuer) throw refuse(C.CLAIM_ISS, `iss ${quote(p.iss)} is not ${quote(ctx.issuer)}`);
  checkAudience(p.aud, cfg.audiences, true);
  const exp = checkTimes(p, cfg, ctx);
  if (typeof p.sub !== 'string' || p.sub.length === 0) {
    throw refuse(C.CLAIM_SUB, `sub is missing or not a string: ${quote(p.sub)}`);
  }
  const id: Identity = {
    issuer: ctx.issuerName,
    kind: 'oidc',
    subject: p.sub,
    // Generic issuers use `roles` freely; only an array of strings is taken, the claim itself stays as issued.
    roles: stringArray(p.roles) ? [...p.roles] : [],
    expiresAt: exp,
    claims: Object.freeze({ ...p }),
  };
  const jti = tokenId(p);
  if (jti !== undefined) id.tokenId = jti;
  return id;
}
