/**
 * `gitlab.token`'s Key Vault form and `gitlab.rotation`: the schema, the
 * source description the service opens (src/credential), and the rules across
 * them (a token from an environment variable or inline cannot be rotated:
 * there is nowhere to write the new one).
 */
import { z } from 'zod';
import type { CredentialSourceSpec, RotationSettings } from '../credential/types.ts';
import { isLoopbackHost } from '../util/url.ts';
import { doc, duration } from './fields.ts';
import { secretRef } from './secrets.ts';

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** `https://NAME.vault.azure.net` (any https host: sovereign clouds, the emulator), no path, query or credentials. */
const vaultUrl = z
  .string()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (
        u.protocol === 'https:' &&
        !u.username &&
        !u.password &&
        !u.search &&
        !u.hash &&
        (u.pathname === '/' || u.pathname === '')
      );
    } catch {
      return false;
    }
  }, 'expected the vault URL, https://NAME.vault.azure.net (no path)')
  .meta({ expected: 'the vault URL, `https://NAME.vault.azure.net`' });

/** An http(s) URL on a loopback host: the emulator's managed identity endpoint. */
const loopbackEndpoint = z
  .string()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && isLoopbackHost(u.hostname) && !u.username;
    } catch {
      return false;
    }
  }, 'expected http://127.0.0.1:PORT (a loopback managed identity endpoint: the emulator)')
  .meta({ expected: 'a loopback URL, `http://127.0.0.1:PORT`' });

export const keyVaultRef = z
  .object({
    keyVault: z
      .object({
        vaultUrl,
        secret: z
          .string()
          .regex(/^[0-9a-zA-Z-]{1,127}$/, 'expected a Key Vault secret name: 1-127 of 0-9, a-z, A-Z, "-"'),
        clientId: z.string().regex(GUID, 'expected a client ID (a GUID)').optional(),
        caFile: z.string().min(1).optional(),
        managedIdentityEndpoint: loopbackEndpoint.optional(),
      })
      .strict(),
  })
  .strict();

/** `gitlab.token`: the secret sources of secrets.ts, or Key Vault. */
export const gitlabTokenRef = z.union([...secretRef.options, keyVaultRef]);
export type GitlabTokenRef = z.output<typeof gitlabTokenRef>;

export const TOKEN_DOC =
  "The STS's own GitLab token: a personal access token (not a project or group token — those cannot " +
  'create tokens) with the `api` scope, of a user who is Maintainer on every project and Owner on ' +
  'every group the policies grant. `{ keyVault: { vaultUrl: https://NAME.vault.azure.net, secret: NAME } }` ' +
  '(read with `DefaultAzureCredential`: workload identity, managed identity or environment; optional ' +
  '`clientId`: a user-assigned identity; `caFile`: a CA for the vault, which with a loopback vault also ' +
  "turns off the SDK's challenge-resource check; `managedIdentityEndpoint`: a loopback IMDS endpoint, " +
  'for the dev stack), `{ file: /run/secrets/gitlab-token }`, `{ env: NAME }`, or (discouraged) an inline ' +
  'string. Key Vault is read at start-up: a vault or secret that cannot be read stops the start with ' +
  'the Azure error. See [operations](operations.md#the-stss-own-gitlab-token).';

export const credentialRefresh = doc(
  duration.default(300),
  'How often every replica reads `gitlab.token` again (and asks GitLab about it): a token rotated by ' +
    'the leader or `tanuki-sts credential rotate` is picked up without a restart. A `401` from GitLab ' +
    'makes a replica look at once.',
);

export const rotation = doc(
  z
    .object({ every: duration, lifetime: duration })
    .strict()
    .superRefine((r, ctx) => {
      if (r.every < 3600) ctx.addIssue({ code: 'custom', path: ['every'], message: 'expected at least 1h' });
      if (r.lifetime < 2 * 86400 || r.lifetime > 365 * 86400) {
        ctx.addIssue({ code: 'custom', path: ['lifetime'], message: 'expected 2d to 365d' });
      } else if (r.lifetime < r.every + 86400) {
        ctx.addIssue({
          code: 'custom',
          path: ['lifetime'],
          message: 'lifetime must be at least every + 1d (the token must outlive the next rotation)',
        });
      }
    })
    .optional(),
  "Rotate the STS's own token: `{ every: 24h, lifetime: 7d }`. The leader rotates it when it is " +
    '`every` old or expires within `every` (`POST /personal_access_tokens/self/rotate`, with `expires_at` ' +
    '`lifetime` ahead, a date), and writes the new one back to `gitlab.token`: a new Key Vault version, ' +
    'or the file replaced atomically (mode 0600). Needs `keyVault` or `file` (an `env` or inline token ' +
    "cannot be written back) and the token's `api` (or `self_rotate`) scope. `every` ≥ 1h; `lifetime` " +
    '2d–365d and ≥ `every` + 1d. Off when absent. See [operations](operations.md#rotation).',
  'off',
);

/** The source's description for src/credential; relative paths resolved by `rel`. */
export function tokenSourceSpec(ref: GitlabTokenRef, rel: (p: string) => string): CredentialSourceSpec {
  if (typeof ref === 'string') return { kind: 'inline' };
  if ('env' in ref) return { kind: 'env', name: ref.env };
  if ('file' in ref) return { kind: 'file', path: rel(ref.file) };
  const k = ref.keyVault;
  return {
    kind: 'keyVault',
    vaultUrl: k.vaultUrl.replace(/\/+$/, ''),
    secret: k.secret,
    ...(k.clientId !== undefined ? { clientId: k.clientId } : {}),
    ...(k.caFile !== undefined ? { caFile: rel(k.caFile) } : {}),
    ...(k.managedIdentityEndpoint !== undefined
      ? { managedIdentityEndpoint: k.managedIdentityEndpoint }
      : {}),
  };
}

/** The rule across `gitlab.token` and `gitlab.rotation`, as a `key: problem` line, or undefined. */
export function rotationProblem(
  spec: CredentialSourceSpec,
  r: RotationSettings | undefined,
): string | undefined {
  if (!r) return undefined;
  if (spec.kind === 'env') {
    return 'gitlab.rotation: a token from an environment variable cannot be rotated (nowhere to write the new one): use gitlab.token: { keyVault: … } or { file: … }';
  }
  if (spec.kind === 'inline') {
    return 'gitlab.rotation: an inline gitlab.token cannot be rotated (nowhere to write the new one): use gitlab.token: { keyVault: … } or { file: … }';
  }
  return undefined;
}
