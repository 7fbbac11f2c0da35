/**
 * An Identity from a claims JSON file, for `policy test`: what the token
 * validator would produce for a token with these claims, minus the
 * signature check. Entra tokens get the same `appid`/`azp` normalisation as
 * in production, so a policy naming either claim matches v1 and v2 tokens.
 */
import type { IssuerConfig } from '../identity/issuer-config.ts';
import type { Identity } from '../identity/types.ts';

export class IdentityFromClaimsError extends Error {
  readonly code = 'ERR_POLICY_CLAIMS';
  constructor(message: string) {
    super(message);
    this.name = 'IdentityFromClaimsError';
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function findIssuer(claims: Record<string, unknown>, issuers: Record<string, IssuerConfig>): IssuerConfig {
  const tid = str(claims.tid)?.toLowerCase();
  const iss = str(claims.iss);
  const found = Object.values(issuers).filter((i) =>
    i.kind === 'entra' ? i.tenant === tid : i.issuer === iss,
  );
  if (found.length === 1 && found[0]) return found[0];
  const names = Object.keys(issuers).join(', ') || 'none configured';
  throw new IdentityFromClaimsError(
    found.length === 0
      ? `no configured issuer matches the claims (tid ${tid ?? 'absent'}, iss ${iss ?? 'absent'}); pass --issuer (one of: ${names})`
      : `several issuers match the claims (${found.map((i) => i.name).join(', ')}); pass --issuer`,
  );
}

export function identityFromClaims(
  input: unknown,
  issuers: Record<string, IssuerConfig>,
  issuerName?: string,
): Identity {
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw new IdentityFromClaimsError('the claims must be a JSON object (the decoded token payload)');
  }
  const claims: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  let issuer: IssuerConfig;
  if (issuerName !== undefined) {
    const named = Object.hasOwn(issuers, issuerName) ? issuers[issuerName] : undefined;
    if (!named) throw new IdentityFromClaimsError(`issuer "${issuerName}" is not configured`);
    issuer = named;
  } else {
    issuer = findIssuer(claims, issuers);
  }

  if (issuer.kind === 'entra') {
    // v1 tokens carry `appid`, v2 tokens `azp`: the validator fills in the other.
    const clientId = str(claims.appid) ?? str(claims.azp);
    if (Object.hasOwn(claims, 'appid') && Object.hasOwn(claims, 'azp') && claims.appid !== claims.azp) {
      throw new IdentityFromClaimsError('appid and azp differ: the STS refuses such a token');
    }
    if (clientId !== undefined) {
      if (!Object.hasOwn(claims, 'appid')) claims.appid = clientId;
      if (!Object.hasOwn(claims, 'azp')) claims.azp = clientId;
    }
  }
  const ver = claims.ver;
  return {
    issuer: issuer.name,
    kind: issuer.kind,
    tenant: issuer.kind === 'entra' ? str(claims.tid)?.toLowerCase() : undefined,
    clientId: issuer.kind === 'entra' ? (str(claims.appid) ?? str(claims.azp)) : undefined,
    objectId: issuer.kind === 'entra' ? str(claims.oid) : undefined,
    subject: str(claims.sub) ?? '',
    roles: Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [],
    tokenId: str(claims.jti) ?? str(claims.uti),
    expiresAt: typeof claims.exp === 'number' ? claims.exp : 0,
    version: ver === '1.0' || ver === '2.0' ? ver : undefined,
    claims,
  };
}
