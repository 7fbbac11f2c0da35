/**
 * Child process for test/integration/keyvault-emulator.test.ts: drives the Key Vault emulator
 * with the unmodified `@azure/keyvault-secrets` SecretClient and `@azure/identity` credentials
 * (client secret, managed identity) against the Entra ID emulator, and prints one JSON object
 * `{ [scenario]: StepResult[] }` on stdout.
 *
 * A separate process because @azure/identity trusts a CA only through NODE_EXTRA_CA_CERTS,
 * which Node reads at start-up, and msal-node keeps the managed identity source per process.
 *
 * env: SCENARIOS = JSON array of Scenario; NODE_EXTRA_CA_CERTS (the CA both emulators share);
 * for managed identity AZURE_POD_IDENTITY_AUTHORITY_HOST; HOSTS_FILE = JSON array of host names
 * this process resolves to 127.0.0.1, a stand-in for /etc/hosts entries (dns.lookup only: the
 * SDK and its HTTP stack are not touched).
 */
import dns from 'node:dns';
import { ClientSecretCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';

export type Credential =
  | { kind: 'secret'; tenantId: string; clientId: string; secret: string; authorityHost: string }
  | { kind: 'managed'; clientId?: string }
  /** A client-secret credential that ignores the scope it is asked for and gets a token for `scope`. */
  | {
      kind: 'fixed-scope';
      tenantId: string;
      clientId: string;
      secret: string;
      authorityHost: string;
      scope: string;
    };

export type Step =
  | { op: 'set'; name: string; value: string; contentType?: string }
  /** `version: "$N"` = the version step N of the same scenario returned. */
  | { op: 'get'; name: string; version?: string }
  | { op: 'versions'; name: string };

export interface Scenario {
  name: string;
  vaultUrl: string;
  credential: Credential;
  /** The client option; absent = the SDK's default (false). */
  disableChallengeResourceVerification?: boolean;
  steps: Step[];
}

export type StepResult =
  | {
      ok: {
        name?: string;
        value?: string;
        version?: string;
        id?: string;
        contentType?: string;
        versions?: string[];
      };
    }
  | { error: { name: string; code?: string; statusCode?: number; message: string } };

const hosts = new Set((JSON.parse(process.env.HOSTS_FILE ?? '[]') as string[]).map((h) => h.toLowerCase()));
if (hosts.size > 0) {
  const original = dns.lookup;
  (dns as any).lookup = (hostname: string, options: any, callback: any) => {
    const cb = typeof options === 'function' ? options : callback;
    const opts =
      typeof options === 'function'
        ? {}
        : typeof options === 'number'
          ? { family: options }
          : (options ?? {});
    if (!hosts.has(String(hostname).toLowerCase())) return original(hostname, options, callback);
    if (opts.all) return process.nextTick(cb, null, [{ address: '127.0.0.1', family: 4 }]);
    return process.nextTick(cb, null, '127.0.0.1', 4);
  };
}

function credentialFor(c: Credential): TokenCredential {
  if (c.kind === 'managed') {
    return c.clientId
      ? new ManagedIdentityCredential({ clientId: c.clientId })
      : new ManagedIdentityCredential();
  }
  const inner = new ClientSecretCredential(c.tenantId, c.clientId, c.secret, {
    authorityHost: c.authorityHost,
    disableInstanceDiscovery: true,
  });
  if (c.kind === 'secret') return inner;
  const scope = c.scope;
  // The tenant the challenge names is dropped too: the token is the one this credential gets.
  return { getToken: (_scopes, options) => inner.getToken(scope, { ...options, tenantId: undefined }) };
}

async function run(client: SecretClient, step: Step, earlier: StepResult[]): Promise<StepResult> {
  try {
    switch (step.op) {
      case 'set': {
        const s = await client.setSecret(
          step.name,
          step.value,
          step.contentType ? { contentType: step.contentType } : {},
        );
        return {
          ok: {
            name: s.name,
            version: s.properties.version,
            id: s.properties.id,
            contentType: s.properties.contentType,
          },
        };
      }
      case 'get': {
        const ref = step.version?.startsWith('$') ? earlier[Number(step.version.slice(1))] : undefined;
        const version = ref && 'ok' in ref ? ref.ok.version : step.version;
        const s = await client.getSecret(step.name, version ? { version } : {});
        return { ok: { name: s.name, value: s.value, version: s.properties.version, id: s.properties.id } };
      }
      case 'versions': {
        const versions: string[] = [];
        for await (const p of client.listPropertiesOfSecretVersions(step.name))
          versions.push(p.version ?? '?');
        return { ok: { versions } };
      }
    }
  } catch (err) {
    const e = err as { name?: string; code?: string; statusCode?: number; message?: string };
    return {
      error: {
        name: e.name ?? 'Error',
        code: e.code,
        statusCode: e.statusCode,
        message: String(e.message).slice(0, 2000),
      },
    };
  }
}

const scenarios = JSON.parse(process.env.SCENARIOS ?? '[]') as Scenario[];
const results: Record<string, StepResult[]> = {};
for (const s of scenarios) {
  const client = new SecretClient(s.vaultUrl, credentialFor(s.credential), {
    ...(s.disableChallengeResourceVerification === undefined
      ? {}
      : { disableChallengeResourceVerification: s.disableChallengeResourceVerification }),
    retryOptions: { maxRetries: 0 },
  });
  results[s.name] = [];
  for (const step of s.steps) results[s.name]!.push(await run(client, step, results[s.name]!));
}
process.stdout.write(JSON.stringify(results));
