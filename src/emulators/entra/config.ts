/**
 * The emulator's directory: tenants, app registrations, resource APIs and
 * managed identities, from YAML (or an object) validated with zod. Every key
 * is documented in README.md. Errors name the key that is wrong
 * (`tenants[0].apps[1].clientId: …`).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FEDERATION_AUDIENCE } from './dev-seed.ts';
import {
  IDENTIFIER_URI_PAGE,
  IDENTIFIER_URI_RULE,
  isSecureIdentifierUri,
  SECURE_IDENTIFIER_URI_FORMS,
} from './identifier-uris.ts';

export class EntraConfigError extends Error {
  static readonly code = 'ERR_ENTRA_EMULATOR_CONFIG';
  readonly code = EntraConfigError.code;
  override name = 'EntraConfigError';
}

const guid = z.guid({ error: 'must be a GUID' });
const name = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'must be 1-64 of A-Z a-z 0-9 . _ -' });

type RoleAssignmentInput = { resource: string; role: string };

const roleAssignment = z.strictObject({
  /** The resource API: one of its identifier URIs, its client ID or its name. */
  resource: z.string().min(1),
  /** The app role's `value` (what appears in the token's `roles`). */
  role: z.string().min(1),
});

const clientSecret = z.strictObject({
  /** A label; generated secrets are kept in the state dir under it. */
  id: name.default('default'),
  /** The secret's value; omitted = generated randomly on first start and kept in the state dir. */
  value: z.string().min(8).optional(),
});

const clientCertificate = z
  .strictObject({
    name: name.default('default'),
    /** A PEM file holding the public certificate (it may hold the private key too; only the certificate is read). */
    certificateFile: z.string().min(1).optional(),
    /** The public certificate as PEM text. */
    certificatePem: z.string().min(1).optional(),
    /** true = the emulator makes an RSA cert + key pair for dev in `<stateDir>/clients/` (kept across starts). */
    generate: z.boolean().optional(),
  })
  .refine(
    (c) => [c.certificateFile, c.certificatePem, c.generate ? true : undefined].filter(Boolean).length === 1,
    {
      error: 'give exactly one of certificateFile, certificatePem or generate: true',
    },
  );

const federatedCredential = z.strictObject({
  name,
  /** Compared exactly with the external token's `iss` (`{emulatorUrl}` is replaced by the emulator's URL). */
  issuer: z.string().min(1),
  /** Compared exactly with the external token's `sub`. */
  subject: z.string().min(1),
  /** One value, compared exactly with the token's `aud` (Entra allows one). */
  audiences: z.array(z.string().min(1)).length(1).default([FEDERATION_AUDIENCE]),
});

const app = z.strictObject({
  name,
  /** The application (client) ID. */
  clientId: guid,
  /** The service principal's object ID: the token's `oid` and `sub`. */
  objectId: guid,
  clientSecrets: z.array(clientSecret).default([]),
  clientCertificates: z.array(clientCertificate).default([]),
  /** At most 20 per app, as in Entra (workload-identity-federation.md). */
  federatedCredentials: z.array(federatedCredential).max(20).default([]),
  appRoleAssignments: z.array(roleAssignment).default([]),
});

const resource = z.strictObject({
  name,
  clientId: guid,
  objectId: guid,
  /**
   * App ID URIs, e.g. `api://<clientId>` (Entra's default). Each must match a
   * secure pattern (identifier-uris.ts) unless the tenant sets
   * `allowLegacyIdentifierUris: true`.
   */
  identifierUris: z.array(z.string().min(1)).default([]),
  appRoles: z.array(z.strictObject({ value: z.string().min(1), id: guid.optional() })).default([]),
  /** The token version this API gets, whatever endpoint the client used (null = 1, as in Entra). */
  accessTokenAcceptedVersion: z
    .union([z.literal(1), z.literal(2), z.null()])
    .default(1)
    .transform((v) => v ?? 1),
  /** Emit `idtyp: "app"` in app-only tokens (an optional claim the API must ask for). */
  idtypOptionalClaim: z.boolean().default(false),
});

const managedIdentity = z.strictObject({
  name,
  type: z.enum(['systemAssigned', 'userAssigned']),
  clientId: guid,
  objectId: guid,
  /** The ARM resource ID (`msi_res_id` / `mi_res_id`); user-assigned only. */
  resourceId: z.string().min(1).optional(),
  appRoleAssignments: z.array(roleAssignment).default([]),
});

const tenant = z.strictObject({
  id: guid,
  /** Used in error messages only. */
  name: z.string().min(1).optional(),
  /** The tenant's verified domains (e.g. `contoso.onmicrosoft.com`): what `https://…` and `api://<domain>/…` identifier URIs may use. */
  verifiedDomains: z
    .array(z.string().regex(/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/, { error: 'must be a domain name' }))
    .default([]),
  /**
   * false (default) = identifier URIs must match Entra's secure patterns, as in
   * tenants where the app management policy's identifierUriRestriction is on
   * (Microsoft turns it on for new applications); true = any URI, as tenants
   * created before the restriction behave.
   */
  allowLegacyIdentifierUris: z.boolean().default(false),
  resources: z.array(resource).default([]),
  apps: z.array(app).default([]),
  managedIdentities: z.array(managedIdentity).default([]),
});

export const entraConfigSchema = z
  .strictObject({
    tenants: z.array(tenant).min(1),
    /** The App Service `X-IDENTITY-HEADER` secret; omitted = generated on first start, kept in the state dir. */
    appServiceIdentityHeader: z.string().min(8).optional(),
    /** How long a rotated-out signing key stays in the JWKS (default 1 h). */
    signingKeyGraceSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(3600),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, string>();
    const unique = (id: string, path: (string | number)[]) => {
      const key = id.toLowerCase();
      const prev = seen.get(key);
      if (prev) ctx.addIssue({ code: 'custom', path, message: `duplicate ID ${id} (also at ${prev})` });
      else seen.set(key, path.join('.'));
    };
    for (const [ti, t] of cfg.tenants.entries()) {
      const at = (...rest: (string | number)[]) => ['tenants', ti, ...rest];
      unique(t.id, at('id'));
      for (const [i, r] of t.resources.entries()) unique(r.clientId, at('resources', i, 'clientId'));
      const restricted = t.allowLegacyIdentifierUris ? [] : t.resources;
      for (const [i, r] of restricted.entries()) {
        const context = { appId: r.clientId, tenantId: t.id, verifiedDomains: t.verifiedDomains };
        for (const [u, uri] of r.identifierUris.entries()) {
          if (isSecureIdentifierUri(uri, context)) continue;
          ctx.addIssue({
            code: 'custom',
            path: at('resources', i, 'identifierUris', u),
            message: `${uri} is refused by ${IDENTIFIER_URI_RULE}: use one of ${SECURE_IDENTIFIER_URI_FORMS.join(', ')} (here api://${r.clientId}), see ${IDENTIFIER_URI_PAGE}; or set tenants[${ti}].allowLegacyIdentifierUris: true to emulate a tenant created before the restriction`,
          });
        }
      }
      for (const [i, a] of t.apps.entries()) unique(a.clientId, at('apps', i, 'clientId'));
      for (const [i, m] of t.managedIdentities.entries())
        unique(m.clientId, at('managedIdentities', i, 'clientId'));
      if (t.managedIdentities.filter((m) => m.type === 'systemAssigned').length > 1) {
        ctx.addIssue({
          code: 'custom',
          path: at('managedIdentities'),
          message: 'at most one systemAssigned',
        });
      }
      const checkAssignments = (list: RoleAssignmentInput[], path: (string | number)[]) => {
        for (const [i, ra] of list.entries()) {
          const r = t.resources.find((x) => matchesResource(x, ra.resource));
          if (!r) {
            ctx.addIssue({
              code: 'custom',
              path: [...path, i, 'resource'],
              message: `no resource ${ra.resource}`,
            });
          } else if (!r.appRoles.some((role) => role.value === ra.role)) {
            ctx.addIssue({
              code: 'custom',
              path: [...path, i, 'role'],
              message: `${r.name} has no app role ${ra.role}`,
            });
          }
        }
      };
      for (const [i, a] of t.apps.entries())
        checkAssignments(a.appRoleAssignments, at('apps', i, 'appRoleAssignments'));
      for (const [i, m] of t.managedIdentities.entries()) {
        checkAssignments(m.appRoleAssignments, at('managedIdentities', i, 'appRoleAssignments'));
      }
    }
  });

export type RawEntraConfig = z.output<typeof entraConfigSchema>;
export type RawTenant = RawEntraConfig['tenants'][number];
export type RawApp = RawTenant['apps'][number];
export type ResourceConfig = RawTenant['resources'][number];
export type ManagedIdentityConfig = RawTenant['managedIdentities'][number];
export type FederatedCredentialConfig = RawApp['federatedCredentials'][number];
export type RoleAssignment = RawApp['appRoleAssignments'][number];

export interface ClientSecretConfig {
  id: string;
  value: string;
}

export interface ClientCertificateConfig {
  name: string;
  /** The public certificate (PEM). */
  certificatePem: string;
  /** base64url SHA-1 and SHA-256 thumbprints of its DER (`x5t`, `x5t#S256`). */
  x5t: string;
  x5tS256: string;
  certificateFile?: string;
  /** Generated certificates only: the private key (PKCS#8 PEM) ... */
  privateKeyFile?: string;
  /** ... and key + certificate in one PEM, what `ClientCertificateCredential` / AZURE_CLIENT_CERTIFICATE_PATH reads. */
  pemFile?: string;
}

export interface AppConfig extends Omit<RawApp, 'clientSecrets' | 'clientCertificates'> {
  clientSecrets: ClientSecretConfig[];
  clientCertificates: ClientCertificateConfig[];
}

export interface TenantConfig extends Omit<RawTenant, 'apps'> {
  apps: AppConfig[];
}

/** The resolved config: generated secrets and certificates filled in, `{emulatorUrl}` substituted. */
export interface EntraConfig {
  tenants: TenantConfig[];
  appServiceIdentityHeader: string;
  signingKeyGraceSeconds: number;
  /** The URL of the built-in OIDC test issuer (`{url}/_emulator/oidc`). */
  testIssuer: string;
}

/** Validates a parsed config object; throws EntraConfigError naming each wrong key. */
export function parseEntraConfig(raw: unknown, source = 'config'): RawEntraConfig {
  const result = entraConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  ${formatPath(i.path)}: ${i.message}`);
  throw new EntraConfigError(`invalid Entra emulator ${source}:\n${lines.join('\n')}`);
}

/** Reads and validates a YAML config file. */
export function loadEntraConfigFile(file: string): RawEntraConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new EntraConfigError(`cannot read Entra emulator config ${file}: ${(err as Error).message}`);
  }
  return parseEntraConfig(raw, `config ${file}`);
}

export function matchesResource(r: ResourceConfig, ref: string): boolean {
  return r.identifierUris.includes(ref) || r.clientId.toLowerCase() === ref.toLowerCase() || r.name === ref;
}

function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}
