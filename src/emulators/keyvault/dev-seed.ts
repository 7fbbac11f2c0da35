/**
 * The built-in dev seed of the Key Vault emulator: the vault `tanuki-dev` in the
 * Entra emulator's dev tenant, no secrets (`tanuki-sts dev` stores the GitLab
 * token with `handle.setSecret`), and "Key Vault Secrets Officer" on the secret
 * `gitlab-token` for the dev host's managed identities, the least privilege
 * issue 17 asks of the STS's identity (read, and write new versions when it rotates).
 * The pipeline app gets nothing: pipelines never read the STS's credential.
 *
 * The GUIDs are the Entra emulator's dev seed's (`../entra/dev-seed.ts`); the emulators
 * share no code, so they are repeated here and `dev-seed.test.ts` checks they agree.
 */

export const DEV_VAULT_NAME = 'tanuki-dev';
/** The secret `tanuki-sts dev` keeps the STS's GitLab token in. */
export const DEV_SECRET_NAME = 'gitlab-token';
export const DEV_TENANT_ID = '7f3c2a1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';
export const DEV_SYSTEM_MI_OBJECT_ID = '8b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0d1e';
export const DEV_USER_MI_OBJECT_ID = '0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a';

/** A fresh copy of the raw dev seed, in the shape of the YAML config (config.ts). */
export function defaultKeyVaultConfig() {
  return {
    name: DEV_VAULT_NAME,
    tenantId: DEV_TENANT_ID,
    secrets: [] as Array<{ name: string; value: string; contentType?: string }>,
    roleAssignments: [
      { objectId: DEV_SYSTEM_MI_OBJECT_ID, role: 'Key Vault Secrets Officer', secret: DEV_SECRET_NAME },
      { objectId: DEV_USER_MI_OBJECT_ID, role: 'Key Vault Secrets Officer', secret: DEV_SECRET_NAME },
    ] as Array<{ objectId: string; role: string; secret?: string }>,
  };
}
