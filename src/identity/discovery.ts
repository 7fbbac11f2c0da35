/**
 * Where each configured issuer's metadata lives, and what its discovery
 * document must say (OpenID Connect Discovery 1.0 §3-4). Only `issuer` and
 * `jwks_uri` are read.
 *
 * - Entra: the tenant's own v1 and v2 documents under the configured
 *   authority host; the `issuer` they name
 *   is what v1 and v2 tokens carry in `iss` (`https://sts.windows.net/{tid}/`,
 *   `https://login.microsoftonline.com/{tid}/v2.0` in the public cloud). A
 *   templated `{tenantid}` is replaced by the configured tenant, and the result
 *   must contain the tenant ID (claims-validation.md: substitute, then match
 *   exactly).
 * - Generic OIDC: `{issuer}/.well-known/openid-configuration` (a trailing `/`
 *   of the issuer removed first, Discovery §4.1); the document's `issuer` must
 *   equal the configured one byte for byte (Discovery §4.3). With an explicit
 *   `jwksUri` no discovery is fetched at all.
 *
 * `jwks_uri` must be https (http for loopback hosts only).
 */
import { isAllowedUrl } from '../util/url.ts';
import { quote } from './errors.ts';
import type { IssuerConfig } from './issuer-config.ts';

export type EntraVersion = '1.0' | '2.0';

/** One place to fetch keys from: an OIDC issuer, or one token version of an Entra tenant. */
export interface SourceSpec {
  issuerName: string;
  config: IssuerConfig;
  /** Entra token version served by this source. */
  version?: EntraVersion;
  /** Discovery document URL; undefined when the JWKS URL is configured. */
  discoveryUrl?: string;
  /** Known up front for generic OIDC; learned from discovery for Entra. */
  issuer?: string;
  /** Known up front when configured. */
  jwksUri?: string;
}

export function sourcesFor(name: string, config: IssuerConfig): SourceSpec[] {
  if (config.kind === 'entra') {
    const base = `${config.authorityHost.replace(/\/+$/, '')}/${config.tenant}`;
    return [
      { issuerName: name, config, version: '1.0', discoveryUrl: `${base}/.well-known/openid-configuration` },
      {
        issuerName: name,
        config,
        version: '2.0',
        discoveryUrl: `${base}/v2.0/.well-known/openid-configuration`,
      },
    ];
  }
  if (config.jwksUri) return [{ issuerName: name, config, issuer: config.issuer, jwksUri: config.jwksUri }];
  return [
    {
      issuerName: name,
      config,
      issuer: config.issuer,
      discoveryUrl: `${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
    },
  ];
}

export class DiscoveryError extends Error {
  readonly code = 'ERR_DISCOVERY';
  constructor(message: string) {
    super(message);
    this.name = 'DiscoveryError';
  }
}

/** Check a fetched discovery document; returns the `iss` value tokens will carry and the JWKS URL. */
export function readDiscovery(spec: SourceSpec, doc: unknown): { issuer: string; jwksUri: string } {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    throw new DiscoveryError('discovery document is not an object');
  const { issuer, jwks_uri: jwksUri } = doc as { issuer?: unknown; jwks_uri?: unknown };
  if (typeof issuer !== 'string' || issuer.length === 0 || issuer.length > 512) {
    throw new DiscoveryError(`discovery "issuer" is missing or not a string: ${quote(issuer)}`);
  }
  if (typeof jwksUri !== 'string' || !isAllowedUrl(jwksUri)) {
    throw new DiscoveryError(
      `discovery "jwks_uri" is not an https URL (http only for loopback): ${quote(jwksUri)}`,
    );
  }
  const cfg = spec.config;
  if (cfg.kind === 'oidc') {
    if (issuer !== cfg.issuer) {
      throw new DiscoveryError(
        `discovery issuer ${quote(issuer)} differs from the configured ${quote(cfg.issuer)}`,
      );
    }
    return { issuer, jwksUri };
  }
  const resolved = issuer.split('{tenantid}').join(cfg.tenant);
  if (!resolved.includes(cfg.tenant)) {
    throw new DiscoveryError(`discovery issuer ${quote(resolved)} does not name tenant ${cfg.tenant}`);
  }
  if (!isAllowedUrl(resolved))
    throw new DiscoveryError(`discovery issuer ${quote(resolved)} is not an https URL`);
  return { issuer: resolved, jwksUri };
}
