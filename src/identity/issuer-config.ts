/**
 * One trusted issuer, as the validator needs it: what `src/config` builds
 * from each entry of the `issuers` section (names resolved, defaults filled
 * in, relative paths made absolute). Plain data.
 */

interface IssuerCommon {
  /** The key under `issuers:`, what policies refer to. */
  name: string;
  /** Accepted `aud` values; never empty. */
  audiences: string[];
  /** Extra CA (PEM file, absolute path) trusted for discovery and JWKS. */
  caFile?: string;
  /** Longest accepted subject-token lifetime (`exp − iat`), seconds. */
  maxTokenLifetime: number;
}

export interface EntraIssuerConfig extends IssuerCommon {
  kind: 'entra';
  /** Tenant ID, lower-case GUID. */
  tenant: string;
  /** Where the tenant's discovery documents live, without a trailing `/`. */
  authorityHost: string;
  /** Accept delegated (user) tokens carrying `scp`. */
  allowDelegated: boolean;
}

export interface OidcIssuerConfig extends IssuerCommon {
  kind: 'oidc';
  /** Compared byte for byte with the token's `iss`. */
  issuer: string;
  /** Explicit JWKS URL; otherwise taken from discovery. */
  jwksUri?: string;
}

export type IssuerConfig = EntraIssuerConfig | OidcIssuerConfig;
