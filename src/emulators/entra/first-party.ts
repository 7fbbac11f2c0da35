/**
 * Microsoft first-party resource APIs: every tenant has a service principal for
 * them, so a token request may name one without any app registration in the
 * config. The emulator knows one, Azure Key Vault, for the Key Vault emulator
 * (`../keyvault/`):
 *
 * - application ID `cfa8b339-82a2-471a-a3c9-0fc0be7a4093` in the public cloud
 *   (Microsoft Learn, "Manage storage account keys with Key Vault",
 *   `articles/key-vault/secrets/overview-storage-keys.md`: "Microsoft Entra tenants in
 *   the Azure public cloud use application ID cfa8b339-82a2-471a-a3c9-0fc0be7a4093");
 * - resource `https://vault.azure.net`, no trailing slash (`rest-error-codes.md`: "The
 *   resource for all tokens to access a Key Vault is https://vault.azure.net (with no
 *   trailing slash)");
 * - v1 access tokens (`ver: "1.0"`, `aud: "https://vault.azure.net"`, as the decoded
 *   token in `rest-error-codes.md` shows), whichever endpoint issued them; no app roles
 *   (Key Vault authorizes with Azure RBAC on the caller's `oid`, not with `roles`).
 *
 * A tenant's own resource with the same client ID or identifier URI wins (directory.ts).
 */
import type { ResourceConfig } from './config.ts';

export const KEY_VAULT_APP_ID = 'cfa8b339-82a2-471a-a3c9-0fc0be7a4093';
export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';

export const FIRST_PARTY_RESOURCES: readonly ResourceConfig[] = [
  {
    name: 'azure-key-vault',
    clientId: KEY_VAULT_APP_ID,
    // The service principal's object ID differs per tenant; tokens never carry it.
    objectId: '00000000-0000-4000-8000-00000000a4f0',
    identifierUris: [KEY_VAULT_RESOURCE],
    appRoles: [],
    accessTokenAcceptedVersion: 1,
    idtypOptionalClaim: false,
  },
];
