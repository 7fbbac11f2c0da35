/**
 * The `issuers` section: its schema, and the `IssuerConfig` records
 * (src/identity) built from it.
 */
import { z } from 'zod';
import type { IssuerConfig } from '../identity/issuer-config.ts';
import { doc, duration, httpsUrl } from './fields.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Keys both kinds of issuer take. */
const tokenRules = {
  audiences: doc(
    z.array(z.string().min(1)).min(1, 'at least one audience is required').meta({
      expected: 'a list of accepted `aud` values, at least one: the App ID URI and/or the client ID',
    }),
    "Accepted `aud` values: the App ID URI (`api://<client ID>`, Entra's default, what v1 tokens carry) " +
      "and/or the API's client ID (what v2 tokens carry). Compared exactly. At least one: an empty list would " +
      'accept any audience (CVE-2024-5798).',
    'required (≥ 1)',
  ),
  caFile: doc(
    z.string().optional(),
    "Extra CA (PEM) trusted for this issuer's discovery and JWKS (the emulator's CA).",
  ),
  maxTokenLifetime: doc(
    duration.optional(),
    'Longest accepted subject-token lifetime (`exp − iat`).',
    '`tokens.maxLifetime`',
  ),
};

const entraIssuer = z
  .object({
    entra: z
      .object({
        tenant: doc(
          z
            .string()
            .regex(GUID, 'expected the tenant ID (a GUID)')
            .meta({ expected: 'the tenant ID, a GUID' }),
          "The tenant ID (GUID). Only tokens with this `tid` and this tenant's v1/v2 `iss` are accepted.",
        ),
        authorityHost: doc(
          httpsUrl.default('https://login.microsoftonline.com'),
          "Where the tenant's discovery documents live (`{authorityHost}/{tenant}/.well-known/openid-configuration` " +
            'for v1, `…/v2.0/.well-known/openid-configuration` for v2). Sovereign clouds: ' +
            '`https://login.microsoftonline.us`, `https://login.chinacloudapi.cn`; the emulator: its ' +
            '`https://localhost:PORT`.',
        ),
        allowDelegated: doc(
          z.boolean().default(false),
          'Accept delegated (user) tokens carrying `scp`. Off: the STS is for workloads, and an app ID ' +
            'only identifies a workload in an app-only token.',
        ),
      })
      .strict(),
    ...tokenRules,
  })
  .strict()
  .meta({ title: 'Entra ID issuer' });

const oidcIssuer = z
  .object({
    oidc: z
      .object({
        issuer: doc(
          httpsUrl,
          "Compared byte for byte with the token's `iss` (no trailing slash added or removed); discovery " +
            'is fetched from `{issuer}/.well-known/openid-configuration`, whose `issuer` must be identical.',
        ),
        jwksUri: doc(httpsUrl.optional(), 'Explicit JWKS URL.', 'from discovery'),
      })
      .strict(),
    ...tokenRules,
  })
  .strict()
  .meta({
    title: 'Generic OIDC issuer (GitLab CI `id_tokens`, GitHub Actions, Kubernetes service accounts)',
  });

export const issuersSchema = doc(
  z
    .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), z.union([entraIssuer, oidcIssuer]))
    .refine(
      (r) => Object.keys(r).length > 0,
      'at least one issuer is required: without one, no subject token is accepted',
    ),
  'At least one. A map from a name (what policies refer to; 1–64 of `A-Za-z0-9_.-`) to one trusted token issuer. ' +
    'Tokens from any other issuer are refused without a single outbound request: the issuer is looked ' +
    "up from the token's unverified `iss` in a fixed table built from this section, never fetched from " +
    'a URL the token names.',
);

export type RawIssuers = z.output<typeof issuersSchema>;

/** The validator's view of each issuer: defaults filled in, paths made absolute, names attached. */
export function buildIssuers(
  raw: RawIssuers,
  defaults: { maxTokenLifetime: number },
  path: (p: string | undefined) => string | undefined,
): Record<string, IssuerConfig> {
  const issuers: Record<string, IssuerConfig> = {};
  for (const [name, iss] of Object.entries(raw)) {
    const maxTokenLifetime = iss.maxTokenLifetime ?? defaults.maxTokenLifetime;
    const common = { name, audiences: iss.audiences, caFile: path(iss.caFile), maxTokenLifetime };
    issuers[name] =
      'entra' in iss
        ? {
            ...common,
            kind: 'entra',
            tenant: iss.entra.tenant.toLowerCase(),
            authorityHost: iss.entra.authorityHost.replace(/\/+$/, ''),
            allowDelegated: iss.entra.allowDelegated,
          }
        : { ...common, kind: 'oidc', issuer: iss.oidc.issuer, jwksUri: iss.oidc.jwksUri };
  }
  return issuers;
}
