/**
 * The parts of the request context that the configuration's reloadable
 * sections make (issuers aside: reload.ts rebuilds the validator): the
 * compiled policies, `server.deny` and the confidential clients. Built the same
 * way at start-up (server.ts), on reload (reload.ts) and in the tests, so that
 * none of them can forget one: a deny list that is not compiled must never mean
 * "deny nobody".
 */
import { ConfigError, type StsConfig } from '../config/index.ts';
import { openCredentialSource } from '../credential/index.ts';
import { compileDenyList, compilePolicies, type DenyList, type PolicySet } from '../policy/index.ts';
import { type ClientRegistry, createClientRegistry } from './client-auth.ts';

export interface CompiledConfig {
  policies: PolicySet;
  deny: DenyList;
  clients: ClientRegistry;
}

/** Shortest client secret accepted (as the config loader checks the ones it reads). */
const MIN_CLIENT_SECRET_CHARS = 16;

/**
 * The configuration with every client secret read: those in Key Vault are read now (the loader
 * reads the others), as `gitlab.token`'s is at start-up. Throws ConfigError naming
 * `clients.NAME.secret` and the source, never a value. Returns `config` itself when no client
 * secret lives in Key Vault.
 */
export async function readClientSecrets(config: StsConfig, timeoutMs = 30_000): Promise<StsConfig> {
  const remote = Object.entries(config.clients).filter(([, c]) => c.source.kind === 'keyVault');
  if (remote.length === 0) return config;
  const issues: string[] = [];
  const read = await Promise.all(
    remote.map(async ([name, c]) => {
      const source = openCredentialSource(c.source, { value: '', timeoutMs });
      try {
        const secret = (await source.read()).trim();
        if (secret.length < MIN_CLIENT_SECRET_CHARS) {
          issues.push(`clients.${name}.secret: shorter than ${MIN_CLIENT_SECRET_CHARS} characters`);
        }
        return [name, { ...c, secret }] as const;
      } catch (err) {
        issues.push(`clients.${name}.secret: ${(err as Error).message}`);
        return [name, c] as const;
      } finally {
        await source.close().catch(() => {});
      }
    }),
  );
  if (issues.length) throw new ConfigError('invalid configuration', issues);
  return { ...config, clients: { ...config.clients, ...Object.fromEntries(read) } };
}

/**
 * Throws PolicyCompileError or DenyListError on the first unusable entry. `gitlabUrl`: the
 * GitLab the running process talks to (a reload cannot change it: restart-only).
 */
export function compileConfig(config: StsConfig, gitlabUrl = config.gitlab.url): CompiledConfig {
  return {
    policies: compilePolicies(config.policies, { gitlabUrl }),
    deny: compileDenyList(config.server.deny),
    clients: createClientRegistry(config.clients),
  };
}
