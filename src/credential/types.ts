/**
 * Plain data of the STS's own GitLab credential: where it is read from (the
 * `gitlab.token` forms of the configuration) and how it is rotated
 * (`gitlab.rotation`). src/config builds these; nothing here reads a file.
 */

/** Where the token comes from. The value of `inline`, `env` and `file` is read by the config loader. */
export type CredentialSourceSpec =
  | { kind: 'inline' }
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string }
  | ({ kind: 'keyVault' } & KeyVaultSpec);

export interface KeyVaultSpec {
  /** `https://NAME.vault.azure.net` (no path). */
  vaultUrl: string;
  /** The secret's name (1-127 of `0-9a-zA-Z-`). */
  secret: string;
  /** A user-assigned managed identity (or workload identity app) by client ID; absent: the default identity. */
  clientId?: string;
  /**
   * Extra CA (PEM file) trusted for the vault's TLS (the emulator). With a loopback vault host it
   * also turns off the SDK's challenge-resource check, which only a `*.vault.azure.net` host passes.
   */
  caFile?: string;
  /**
   * Dev only: the IMDS-style managed identity endpoint (a loopback `http://127.0.0.1:PORT`, what
   * `AZURE_POD_IDENTITY_AUTHORITY_HOST` says) instead of the platform's: `tanuki-sts dev`'s emulator.
   */
  managedIdentityEndpoint?: string;
}

/** `gitlab.rotation`, in seconds. */
export interface RotationSettings {
  /** Rotate when the token is this old, or expires within this long. */
  every: number;
  /** The new token's `expires_at` horizon (a date: GitLab's day granularity). */
  lifetime: number;
}

/** Where a source is, for people (status, messages): never a value. */
export function describeSource(spec: CredentialSourceSpec): string {
  switch (spec.kind) {
    case 'inline':
      return 'the configuration file (inline)';
    case 'env':
      return `environment variable ${spec.name}`;
    case 'file':
      return `file ${spec.path}`;
    case 'keyVault':
      return `Key Vault ${spec.vaultUrl.replace(/\/+$/, '')}, secret ${spec.secret}`;
  }
}
