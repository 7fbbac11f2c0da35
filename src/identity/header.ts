/**
 * The JOSE header allow-list (RFC 8725 JWT BCP; the attacks it stops are
 * replayed in test/security/jwt-attacks.test.ts). Two steps: `checkHeader` before the
 * issuer is known, `checkHeaderForIssuer` once it is.
 */
import { SubjectTokenCodes as C, quote, refuse } from './errors.ts';

/** Asymmetric JWS algorithms only (RFC 7518 §3.1, RFC 8037): never `none`, never HS* (RFC 8725 §3.1-3.2). */
export const ASYMMETRIC_ALGS = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
]);

/** Entra signs access tokens with RS256 only (Microsoft identity platform docs: access-tokens.md). */
export const ENTRA_ALG = 'RS256';

/**
 * Header members refused outright:
 * - `jku`, `x5u`, `jwk`, `x5c`: keys or key URLs chosen by the token (RFC 8725 §3.10, CVE-2018-0114);
 *   we only ever use keys from the configured issuer's JWKS.
 * - `crit` (RFC 7515 §4.1.11: we understand no extension), `b64` (RFC 7797 unencoded payload).
 * - `zip`, `enc` and the other JWE members (RFC 7516): JWE is never accepted.
 * - `cty`: a JWT claim set needs none (RFC 7519 §5.2); `cty: JWT` means a nested token (CVE-2023-51774).
 * - `nonce`: Microsoft Graph tokens carry it and cannot be validated by third parties.
 */
export const FORBIDDEN_HEADER_MEMBERS = [
  'jku',
  'x5u',
  'jwk',
  'x5c',
  'crit',
  'b64',
  'zip',
  'enc',
  'epk',
  'apu',
  'apv',
  'iv',
  'tag',
  'p2s',
  'p2c',
  'cty',
  'nonce',
] as const;

/** `typ` values accepted when present (RFC 7519 §5.1, RFC 9068 §2.1); compared case-insensitively (RFC 7515 §4.1.9). */
const ALLOWED_TYP = new Set(['jwt', 'application/jwt', 'at+jwt', 'application/at+jwt']);

/** A short printable `kid`: no NUL, path or shell metacharacters beyond base64 ones (attack catalogue #8). */
export const KID_PATTERN = /^[A-Za-z0-9._~+/=-]{1,128}$/;

export interface CheckedHeader {
  alg: string;
  kid?: string;
}

export function checkHeader(header: Record<string, unknown>): CheckedHeader {
  const { alg, kid, typ } = header;
  if (typeof alg !== 'string' || !ASYMMETRIC_ALGS.has(alg)) {
    throw refuse(C.HEADER_ALG, `header alg ${quote(alg)} is not an allowed asymmetric algorithm`);
  }
  for (const member of FORBIDDEN_HEADER_MEMBERS) {
    if (Object.hasOwn(header, member))
      throw refuse(C.HEADER_FORBIDDEN, `header member "${member}" is not accepted`);
  }
  if (typ !== undefined && (typeof typ !== 'string' || !ALLOWED_TYP.has(typ.toLowerCase()))) {
    throw refuse(C.HEADER_TYP, `header typ ${quote(typ)} is not a JWT type`);
  }
  if (kid !== undefined && (typeof kid !== 'string' || !KID_PATTERN.test(kid))) {
    throw refuse(C.HEADER_KID, `header kid ${quote(kid, 40)} is not a short printable string`);
  }
  return kid === undefined ? { alg } : { alg, kid };
}

/** Issuer-specific rules: Entra requires RS256 and a kid (keys are chosen by kid: access-tokens.md). */
export function checkHeaderForIssuer(h: CheckedHeader, kind: 'entra' | 'oidc'): void {
  if (kind !== 'entra') return;
  if (h.alg !== ENTRA_ALG) throw refuse(C.HEADER_ALG, `header alg ${quote(h.alg)} is not RS256 (Entra)`);
  if (h.kid === undefined) throw refuse(C.HEADER_KID, 'header kid is missing (required for Entra)');
}
