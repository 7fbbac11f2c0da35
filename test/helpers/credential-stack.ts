/**
 * The emulators an STS needs when its GitLab token lives in Key Vault: Entra ID
 * (its IMDS endpoint is the managed identity), GitLab, and a Key Vault trusting
 * the Entra emulator (one CA for both), with the STS's token stored in secret
 * `gitlab-token`; and the STS configuration that reads it there. For the
 * credential tests (test/integration/credential-*.test.ts, test/security/credential.test.ts).
 *
 * @azure/identity picks its managed identity endpoint once per process: a
 * process uses one Entra emulator (start this once per test file).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import {
  DEV_PIPELINE_OBJECT_ID,
  DEV_SYSTEM_MI_OBJECT_ID,
  DEV_USER_MI_OBJECT_ID,
  type DevSeedSummary,
  summarizeDevSeed,
} from '../../src/emulators/entra/dev-seed.ts';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import { defaultGitlabSeed } from '../../src/emulators/gitlab/config.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { type KeyVaultEmulatorHandle, startKeyVaultEmulator } from '../../src/emulators/keyvault/index.ts';
import { sha256Hex } from '../../src/util/hash.ts';
import { PROJECT } from './stack.ts';

export const SECRET = 'gitlab-token';

export interface CredentialEmulators {
  dir: string;
  entra: EntraEmulatorHandle;
  gitlab: GitlabEmulatorHandle;
  kv: KeyVaultEmulatorHandle;
  seed: DevSeedSummary;
  /** fetch() options trusting the emulators' CA. */
  tls: { dispatcher: Agent };
  close(): Promise<void>;
}

/**
 * `stsTokenExpiresAt`: the STS's token (the seed admin's) expires that day (a rotation is then due at
 * once with `every: 1d`); `persistGitlab`: keep GitLab's state across a restart of the emulator.
 */
export async function startCredentialEmulators(
  dir: string,
  o: { stsTokenExpiresAt?: string; gitlabPort?: number } = {},
): Promise<CredentialEmulators> {
  const entra = await startEntraEmulator({ stateDir: join(dir, 'entra') });
  const seedConfig = defaultGitlabSeed();
  const root = seedConfig.users?.find((u) => u.admin);
  for (const t of root?.tokens ?? []) if (o.stsTokenExpiresAt) t.expires_at = o.stsTokenExpiresAt;
  const gitlab = await startGitlabEmulator({
    stateDir: join(dir, 'gitlab'),
    config: seedConfig,
    persist: true,
    ...(o.gitlabPort ? { port: o.gitlabPort } : {}),
  });
  const seed = summarizeDevSeed(entra.config);
  const kv = await startKeyVaultEmulator({
    stateDir: join(dir, 'keyvault'),
    caDir: join(dir, 'entra'),
    authority: entra.url,
    persist: true,
    config: {
      name: 'tanuki-test',
      tenantId: seed.tenantId,
      roleAssignments: [
        // The STS (system-assigned identity): Officer on its one secret, as docs/operations.md says.
        { objectId: DEV_SYSTEM_MI_OBJECT_ID, role: 'Key Vault Secrets Officer', secret: SECRET },
        // The user-assigned identity reads the whole vault (a missing secret is then a 404, not a 403).
        { objectId: DEV_USER_MI_OBJECT_ID, role: 'Key Vault Secrets User' },
        // The pipeline app: nothing but one unrelated secret.
        { objectId: DEV_PIPELINE_OBJECT_ID, role: 'Key Vault Secrets User', secret: 'unrelated' },
      ],
    },
  });
  kv.setSecret(SECRET, gitlab.adminToken);
  const tls = { dispatcher: new Agent({ connect: { ca: readFileSync(kv.caFile, 'utf8') } }) };
  return {
    dir,
    entra,
    gitlab,
    kv,
    seed,
    tls,
    async close() {
      await kv.close().catch(() => {});
      await gitlab.close().catch(() => {});
      await entra.close().catch(() => {});
      await tls.dispatcher.close();
    },
  };
}

/** An STS configuration (raw, as in a YAML file) whose GitLab token is read from the emulated vault. */
export function keyVaultStsConfig(
  e: CredentialEmulators,
  o: {
    store?: Record<string, unknown>;
    keyVault?: Record<string, unknown>;
    gitlab?: Record<string, unknown>;
    audit?: string;
  } = {},
): Record<string, any> {
  return {
    server: {
      listen: '127.0.0.1:0',
      metricsListen: '127.0.0.1:0',
      publicUrl: 'http://127.0.0.1:8600',
      id: 'cred',
      rateLimit: { perIdentity: 0, perIp: 0 },
      maxActiveGrantsPerIdentity: 0,
      clientBundle: false,
    },
    gitlab: {
      url: e.gitlab.url,
      token: {
        keyVault: {
          vaultUrl: e.kv.url,
          secret: SECRET,
          caFile: e.kv.caFile,
          managedIdentityEndpoint: e.entra.imdsUrl,
          ...o.keyVault,
        },
      },
      timeout: '5s',
      ...o.gitlab,
    },
    store: o.store ?? { sqlite: join(e.dir, 'ledger.db') },
    issuers: {
      contoso: {
        entra: { tenant: e.seed.tenantId, authorityHost: e.entra.url },
        caFile: e.entra.caFile,
        audiences: [e.seed.resourceUri, e.seed.resourceClientId],
      },
    },
    policies: [
      {
        name: 'image-build',
        issuer: 'contoso',
        match: { appid: e.seed.pipelineClientId, roles: { contains: 'GitLab.Read' } },
        grant: {
          projects: [PROJECT],
          scopes: ['read_repository', 'read_api'],
          role: 'reporter',
          ttl: { default: '15m', max: '1h' },
        },
      },
    ],
    ...(o.audit ? { audit: { file: o.audit } } : {}),
  };
}

/** What the vault holds: the versions of the secret, each with the SHA-256 of its value. */
export async function vaultVersions(
  e: CredentialEmulators,
): Promise<Array<{ version: string; sha256: string }>> {
  const res = await undiciFetch(`${e.kv.url}/_emulator/secrets`, e.tls);
  const all = (await res.json()) as Array<{
    name: string;
    versions: Array<{ version: string; sha256: string }>;
  }>;
  return all.find((s) => s.name === SECRET)?.versions ?? [];
}

/** Faults of the vault: the next `count` requests of `operations` answer `status`; `null` clears them. */
export async function vaultFaults(
  e: CredentialEmulators,
  f: { status: number; operations: string[]; count?: number } | null,
): Promise<void> {
  const res = await undiciFetch(`${e.kv.url}/_emulator/faults`, {
    ...e.tls,
    method: f ? 'POST' : 'DELETE',
    ...(f ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(f) } : {}),
  });
  if (res.status >= 300) throw new Error(`faults: HTTP ${res.status}`);
}

/** The personal access tokens of the STS's GitLab user (the seed admin, id 1), as GitLab holds them. */
export async function stsUserTokens(
  e: CredentialEmulators,
): Promise<Array<{ id: number; active: boolean; sha256: string; expires_at: string | null }>> {
  const res = await fetch(`${e.gitlab.url}/_emulator/tokens`);
  const all = (await res.json()) as Array<Record<string, any>>;
  return all.filter((t) => t.kind === 'personal' && t.user_id === 1) as any;
}

/** Whether GitLab accepts `token` (GET /personal_access_tokens/self). */
export async function gitlabAccepts(e: CredentialEmulators, token: string): Promise<boolean> {
  const res = await fetch(`${e.gitlab.url}/api/v4/personal_access_tokens/self`, {
    headers: { 'PRIVATE-TOKEN': token },
  });
  await res.arrayBuffer();
  return res.status === 200;
}

/** The latest vault version names the one active token of the STS's user. */
export async function vaultHoldsTheLiveToken(e: CredentialEmulators): Promise<boolean> {
  const versions = await vaultVersions(e);
  const active = (await stsUserTokens(e)).filter((t) => t.active);
  return active.some((t) => t.sha256 === versions.at(-1)?.sha256);
}

export { sha256Hex };
