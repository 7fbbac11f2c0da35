/**
 * The Key Vault emulator's config: one vault, its tenant, its secrets and the
 * Azure RBAC role assignments that grant access to them. YAML (or an object),
 * validated with zod; errors name the key (`roleAssignments[0].objectId: must be a GUID`).
 *
 * ```yaml
 * name: tanuki-dev                      # the vault's name (403 messages, resource IDs)
 * tenantId: 7f3c2a1e-…                  # the vault's tenant: the challenge's authority, the accepted issuers
 * authority: https://localhost:8443     # optional: the Entra ID (emulator) authority host; the start option wins
 * secrets:                              # optional initial values (each one version)
 *   - { name: gitlab-token, value: glpat-…, contentType: text/plain }
 * roleAssignments:                      # Azure RBAC on the vault's data plane
 *   - objectId: 8b9c0d1e-…              # the caller's token `oid` (service principal / managed identity)
 *     role: Key Vault Secrets Officer   # Secrets User | Secrets Officer | Reader | Administrator
 *     secret: gitlab-token              # the scope: one secret; omitted = the whole vault
 * ```
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export class KeyVaultConfigError extends Error {
  static readonly code = 'ERR_KEYVAULT_EMULATOR_CONFIG';
  readonly code = KeyVaultConfigError.code;
  override name = 'KeyVaultConfigError';
}

/**
 * Object names: 1-127 of 0-9 a-z A-Z and `-` (Microsoft Learn, "About keys, secrets and
 * certificates": objects, identifiers and versioning). Names are case-insensitive.
 */
export const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;

/**
 * The data actions of Key Vault's built-in roles for secrets (Microsoft Learn, "Azure built-in
 * roles for Security": Key Vault Secrets User = `getSecret/action` + `readMetadata/action`;
 * Secrets Officer = `Microsoft.KeyVault/vaults/secrets/*`; Reader = `readMetadata/action`;
 * Administrator = `Microsoft.KeyVault/vaults/*`).
 */
export const ROLE_DATA_ACTIONS = {
  'Key Vault Secrets User': ['getSecret', 'readMetadata'],
  'Key Vault Secrets Officer': ['getSecret', 'readMetadata', 'setSecret'],
  'Key Vault Reader': ['readMetadata'],
  'Key Vault Administrator': ['getSecret', 'readMetadata', 'setSecret'],
} as const;
export type RoleName = keyof typeof ROLE_DATA_ACTIONS;
export type SecretDataAction = 'getSecret' | 'readMetadata' | 'setSecret';

const guid = z.guid({ error: 'must be a GUID' });
const secretName = z.string().regex(SECRET_NAME, { error: 'must be 1-127 of 0-9 a-z A-Z -' });

const secret = z.strictObject({
  name: secretName,
  /** The first version's value. */
  value: z.string().max(25_600, { error: 'must be at most 25 KB (Key Vault secret size limit)' }),
  contentType: z.string().max(255).optional(),
});

const roleAssignment = z.strictObject({
  /** The principal's object ID: the `oid` claim of its tokens. */
  objectId: guid,
  role: z.enum(Object.keys(ROLE_DATA_ACTIONS) as [RoleName, ...RoleName[]]),
  /** The scope: this secret only; omitted = the whole vault. */
  secret: secretName.optional(),
});

export const keyVaultConfigSchema = z
  .strictObject({
    /** The vault's name, 3-24 of a-z A-Z 0-9 and `-`, starting with a letter (Azure's vault name rule). */
    name: z
      .string()
      .regex(/^[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]$/, {
        error: 'must be 3-24 of a-z A-Z 0-9 -, start with a letter, end with a letter or digit, no --',
      })
      .default('tanuki-dev'),
    /** The vault's tenant. */
    tenantId: guid,
    /** The Entra ID authority host (`https://localhost:PORT` for the Entra emulator); the start option wins. */
    authority: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }).optional(),
    /** The vault's ARM resource ID (403 messages); default `/subscriptions/0…0/resourceGroups/tanuki-dev/providers/Microsoft.KeyVault/vaults/<name>`. */
    resourceId: z.string().startsWith('/subscriptions/').optional(),
    /** The vault's region, as 403 messages name it. */
    location: z
      .string()
      .regex(/^[a-z0-9]{1,40}$/)
      .default('emulator'),
    secrets: z.array(secret).default([]),
    roleAssignments: z.array(roleAssignment).default([]),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, number>();
    for (const [i, s] of cfg.secrets.entries()) {
      const prev = seen.get(s.name.toLowerCase());
      if (prev !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['secrets', i, 'name'],
          message: `duplicate secret ${s.name} (names are case-insensitive; also at secrets[${prev}])`,
        });
      } else seen.set(s.name.toLowerCase(), i);
    }
  });

export type KeyVaultConfig = z.output<typeof keyVaultConfigSchema>;
export type RoleAssignment = KeyVaultConfig['roleAssignments'][number];

/** Validates a parsed config object; throws KeyVaultConfigError naming each wrong key. */
export function parseKeyVaultConfig(raw: unknown, source = 'config'): KeyVaultConfig {
  const result = keyVaultConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  ${formatPath(i.path)}: ${i.message}`);
  throw new KeyVaultConfigError(`invalid Key Vault emulator ${source}:\n${lines.join('\n')}`);
}

/** Reads and validates a YAML config file. */
export function loadKeyVaultConfigFile(file: string): KeyVaultConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new KeyVaultConfigError(`cannot read Key Vault emulator config ${file}: ${(err as Error).message}`);
  }
  return parseKeyVaultConfig(raw, `config ${file}`);
}

/** The vault's ARM resource ID. */
export function vaultResourceId(cfg: KeyVaultConfig): string {
  return (
    cfg.resourceId ??
    `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/tanuki-dev/providers/Microsoft.KeyVault/vaults/${cfg.name}`
  );
}

/**
 * Whether `objectId` may perform `action` on `secret` (a name) or, with `secret`
 * undefined, on the vault itself (listing secrets): a role assignment for that
 * principal whose role carries the action, scoped to the vault or to that secret.
 */
export function isAllowed(
  cfg: KeyVaultConfig,
  objectId: string,
  action: SecretDataAction,
  secret: string | undefined,
): boolean {
  const oid = objectId.toLowerCase();
  return cfg.roleAssignments.some(
    (a) =>
      a.objectId.toLowerCase() === oid &&
      (ROLE_DATA_ACTIONS[a.role] as readonly string[]).includes(action) &&
      (a.secret === undefined || (secret !== undefined && a.secret.toLowerCase() === secret.toLowerCase())),
  );
}

function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}
