/**
 * The identity record every validated subject token becomes, whatever its
 * issuer or version. Policies match against `claims`; for Entra tokens both
 * `appid` and `azp` are present there (the client app ID), so a policy may
 * name either and mean the same thing.
 */
export interface Identity {
  /** Configured issuer name (the key under `issuers:`). */
  issuer: string;
  kind: 'entra' | 'oidc';
  /** Entra tenant ID (lower-case GUID); undefined for generic OIDC. */
  tenant?: string;
  /** Entra client application ID (v1 `appid`, v2 `azp`). */
  clientId?: string;
  /** Entra service principal object ID (`oid`). */
  objectId?: string;
  /** `sub` of the token. */
  subject: string;
  /** App roles (`roles`), empty when absent. */
  roles: string[];
  /** `jti` or Entra's `uti`, for the audit trail. */
  tokenId?: string;
  /** Subject token expiry, epoch seconds. */
  expiresAt: number;
  /** Entra token version, when known. */
  version?: '1.0' | '2.0';
  /** The token's claims as issued, plus `appid`/`azp` normalised for Entra. Never coerced. */
  claims: Readonly<Record<string, unknown>>;
}

/** A stable key for per-identity limits: issuer name + tenant + subject. */
export function identityKey(id: Identity): string {
  return `${id.issuer}|${id.tenant ?? ''}|${id.subject}`;
}
