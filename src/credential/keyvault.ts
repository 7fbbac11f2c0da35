/**
 * The STS's GitLab token in Azure Key Vault: read with `@azure/keyvault-secrets`
 * and an `@azure/identity` credential, written back as a new secret version
 * after a rotation. No hand-written Key Vault client.
 *
 * - Credential: `DefaultAzureCredential` (environment, workload identity,
 *   managed identity, in that order), `keyVault.clientId` naming a
 *   user-assigned managed identity or workload identity app. With
 *   `keyVault.managedIdentityEndpoint` (dev only: the Entra ID emulator's IMDS
 *   endpoint), `ManagedIdentityCredential` alone, through that endpoint.
 * - `keyVault.caFile`: an HTTPS agent trusting the system CAs plus that file,
 *   given to the SecretClient (the Key Vault emulator; the dev STS runs inside
 *   `tanuki-sts dev`, so NODE_EXTRA_CA_CERTS is not there to help). Not to the
 *   credential: an HTTPS agent breaks the plain-HTTP managed identity endpoint
 *   (IMDS), and Entra ID's certificate is a public one. Only with a caFile AND a loopback vault host does the client skip its
 *   challenge-resource check (`disableChallengeResourceVerification`, "for a mock
 *   service", sdk/keyvault/TROUBLESHOOTING.md of Azure/azure-sdk-for-js): a real
 *   vault's host passes it, and the check is what stops a vault URL from
 *   obtaining a token for another resource.
 * - Errors name the vault, the secret and Azure's error: the HTTP status and
 *   code, the missing permission of a 403 (`Action: '…'` of Key Vault's
 *   message, "Azure Key Vault RBAC" troubleshooting on Microsoft Learn), the
 *   AADSTS code of a failed sign-in; never a stack trace, never the secret.
 *
 * The Azure SDK is loaded on first use: a `file` or `env` source never pays for it.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { TokenCredential } from '@azure/identity';
import type { SecretClient } from '@azure/keyvault-secrets';
import { TOKEN_PATTERN } from '../util/token-patterns.ts';
import { CredentialSourceError } from './errors.ts';
import type { CredentialSource } from './source.ts';
import { describeSource, type KeyVaultSpec } from './types.ts';

/** What @azure/identity's managed identity (msal-node's IMDS source) reads for a custom IMDS host. */
export const IMDS_HOST_VARIABLE = 'AZURE_POD_IDENTITY_AUTHORITY_HOST';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function openKeyVaultSource(spec: KeyVaultSpec, o: { timeoutMs: number }): CredentialSource {
  const description = describeSource({ kind: 'keyVault', ...spec });
  let client: Promise<SecretClient> | undefined;
  let agent: Agent | undefined;

  async function build(): Promise<SecretClient> {
    const [{ DefaultAzureCredential, ManagedIdentityCredential }, { SecretClient }] = await Promise.all([
      import('@azure/identity'),
      import('@azure/keyvault-secrets'),
    ]);
    if (spec.caFile) {
      let ca: string;
      try {
        ca = readFileSync(spec.caFile, 'utf8');
      } catch (err) {
        throw new CredentialSourceError(
          `${description}: cannot read keyVault.caFile ${spec.caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
      agent = new Agent({ ca: [...rootCertificates, ca], keepAlive: true });
    }
    let credential: TokenCredential;
    if (spec.managedIdentityEndpoint) {
      useImdsEndpoint(spec.managedIdentityEndpoint, description);
      credential = new ManagedIdentityCredential(spec.clientId ? { clientId: spec.clientId } : {});
    } else {
      credential = new DefaultAzureCredential({
        ...(spec.clientId
          ? { managedIdentityClientId: spec.clientId, workloadIdentityClientId: spec.clientId }
          : {}),
        // Instance discovery asks Microsoft whether the authority host is one of its clouds: an
        // authority on loopback (AZURE_AUTHORITY_HOST: the Entra emulator) is not, and is allowed.
        ...(loopbackAuthority(process.env.AZURE_AUTHORITY_HOST) ? { disableInstanceDiscovery: true } : {}),
      });
    }
    return new SecretClient(spec.vaultUrl, credential, {
      ...(agent ? { agent } : {}),
      disableChallengeResourceVerification: skipsChallengeCheck(spec),
      // A few quick retries of 5xx, 429 and network errors; the caller decides about longer waits.
      retryOptions: { maxRetries: 2, retryDelayInMs: 250, maxRetryDelayInMs: 2000 },
    });
  }

  const getClient = () => {
    client ??= build();
    client.catch(() => {
      client = undefined;
    });
    return client;
  };

  return {
    kind: 'keyVault',
    description,
    writable: true,
    async read() {
      const c = await getClient();
      let value: string | undefined;
      try {
        const s = await c.getSecret(spec.secret, { abortSignal: AbortSignal.timeout(o.timeoutMs) });
        value = s.value?.trim();
      } catch (err) {
        const { text, transient } = azureErrorText(err, o.timeoutMs);
        throw new CredentialSourceError(`${description}: cannot read the secret: ${text}`, transient);
      }
      if (!value) throw new CredentialSourceError(`${description}: the secret is empty`);
      return value;
    },
    async write(value: string) {
      const c = await getClient();
      try {
        const s = await c.setSecret(spec.secret, value, {
          contentType: 'text/plain',
          tags: { 'written-by': 'tanuki-sts' },
          abortSignal: AbortSignal.timeout(o.timeoutMs),
        });
        return { version: s.properties.version };
      } catch (err) {
        const { text, transient } = azureErrorText(err, o.timeoutMs);
        throw new CredentialSourceError(`${description}: cannot write a new version: ${text}`, transient);
      }
    },
    async close() {
      agent?.destroy();
    },
  };
}

function loopbackAuthority(host: string | undefined): boolean {
  if (!host) return false;
  try {
    return LOOPBACK.has(new URL(host).hostname.toLowerCase());
  } catch {
    return false;
  }
}

/**
 * Whether the SDK's challenge-resource check is turned off: only for the emulator, a caFile AND a
 * loopback vault host. A real vault's host passes the check; and the check is what keeps a vault
 * URL from making the credential fetch a token for another resource.
 */
export function skipsChallengeCheck(spec: KeyVaultSpec): boolean {
  return spec.caFile !== undefined && LOOPBACK.has(new URL(spec.vaultUrl).hostname.toLowerCase());
}

/**
 * Point @azure/identity's managed identity at `endpoint` (the emulator): msal-node reads the IMDS
 * host from the environment, once per process. A different value already set is an error, not
 * silently replaced.
 */
function useImdsEndpoint(endpoint: string, description: string): void {
  const want = endpoint.replace(/\/+$/, '');
  const have = process.env[IMDS_HOST_VARIABLE];
  if (have !== undefined && have.replace(/\/+$/, '') !== want) {
    throw new CredentialSourceError(
      `${description}: keyVault.managedIdentityEndpoint is ${want}, but ${IMDS_HOST_VARIABLE} is set to another endpoint`,
    );
  }
  process.env[IMDS_HOST_VARIABLE] = want;
}

/** C0 and C1 controls, line and paragraph separators, bidirectional overrides and isolates. */
function isControl(c: number): boolean {
  return (
    c < 0x20 ||
    (c >= 0x7f && c <= 0x9f) ||
    c === 0x2028 ||
    c === 0x2029 ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069)
  );
}

/** Control characters out, token-shaped runs out, at most `max` characters. */
function clean(text: string, max: number): string {
  return Array.from(text.replace(TOKEN_PATTERN, '[redacted]'), (ch) =>
    isControl(ch.codePointAt(0) ?? 0) ? ' ' : ch,
  )
    .join('')
    .replace(/ {2,}/g, ' ')
    .trim()
    .slice(0, max);
}

/**
 * Azure's error as one line: `403 Forbidden: identity <oid> lacks <action> …`, `404 SecretNotFound`,
 * `401 Unauthorized (AKV10022)`, `sign-in failed: AADSTS700016 …`, `no answer within 30 s`.
 */
export function azureErrorText(err: unknown, timeoutMs: number): { text: string; transient: boolean } {
  const e = (err ?? {}) as {
    name?: unknown;
    statusCode?: unknown;
    code?: unknown;
    message?: unknown;
    errorResponse?: { error?: unknown; errorDescription?: unknown };
    errors?: unknown;
  };
  const name = typeof e.name === 'string' ? e.name : '';
  const own = typeof e.message === 'string' ? e.message : '';
  // @azure/identity keeps Entra's answer (the AADSTS code) in `errorResponse`, and a chain's in `errors`.
  const inner = [
    e.errorResponse?.errorDescription,
    ...(Array.isArray(e.errors)
      ? e.errors.flatMap((x: { message?: unknown; errorResponse?: { errorDescription?: unknown } }) => [
          x?.errorResponse?.errorDescription,
          x?.message,
        ])
      : []),
  ].filter((x): x is string => typeof x === 'string' && /AADSTS\d/.test(x));
  const message = inner.length > 0 ? `${inner.join('\n')}\n${own}` : own;
  const code = typeof e.code === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(e.code) ? e.code : undefined;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const aadsts = [...new Set(message.match(/AADSTS\d{4,7}/g) ?? [])];
  if (name === 'AbortError' || name === 'TimeoutError') {
    return { text: `no answer within ${Math.round(timeoutMs / 1000)} s`, transient: true };
  }
  if (aadsts.length > 0 || /AuthenticationError|CredentialUnavailableError/.test(name)) {
    const first = aadsts[0];
    const firstLine = (text: string, stop: RegExp) => clean(text.split(stop)[0] ?? '', 200);
    const detail = first
      ? firstLine(message.slice(message.indexOf(first)), /\r?\n|\. /)
      : name === 'AggregateAuthenticationError'
        ? 'no Azure identity is available here (environment, workload identity or managed identity)'
        : firstLine(message, /\r?\n/) || name;
    const more = aadsts.length > 1 ? ` (also ${aadsts.slice(1).join(', ')})` : '';
    return { text: `sign-in failed: ${detail}${more}`, transient: aadsts.length === 0 };
  }
  if (status === 403) {
    const action = /Action: '([A-Za-z0-9/._-]{1,200})'/.exec(message)?.[1];
    const oid = /oid=([0-9a-fA-F-]{36})/.exec(message)?.[1];
    const who = oid ? `identity ${oid}` : 'the identity';
    const what = action ? `lacks ${action}` : clean(message.split(/\r?\n/)[0] ?? '', 160) || 'is not allowed';
    return {
      text: `403 ${code ?? 'Forbidden'}: ${who} ${what} (it needs "Key Vault Secrets Officer" on this secret)`,
      transient: false,
    };
  }
  if (status === 404) {
    return {
      text: `404 ${code ?? 'NotFound'}${code === 'SecretNotFound' ? ': no such secret in this vault (store the first token in it: docs/operations.md)' : ''}`,
      transient: false,
    };
  }
  if (status === 401) {
    const akv = /AKV\d{5}/.exec(message)?.[0];
    return { text: `401 ${code ?? 'Unauthorized'}${akv ? ` (${akv})` : ''}`, transient: false };
  }
  if (status !== undefined) {
    return { text: `${status}${code ? ` ${code}` : ''}`, transient: status >= 500 || status === 429 };
  }
  // A network error: the RestError carries the errno as `code` (REQUEST_SEND_ERROR wraps it).
  const errno = /\b(E[A-Z]{3,20})\b/.exec(message)?.[1] ?? code;
  return { text: `cannot reach the vault (${errno ?? 'network error'})`, transient: true };
}
