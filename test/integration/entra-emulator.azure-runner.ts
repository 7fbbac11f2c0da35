/**
 * Child process for test/integration/entra-emulator.test.ts: runs unmodified
 * @azure/identity credentials against the Entra ID emulator and prints one
 * JSON object `{ [scenario]: { token } | { error } }` on stdout.
 *
 * It is a separate process because @azure/identity offers no way to trust a
 * CA but NODE_EXTRA_CA_CERTS, which Node reads at start-up only; and because
 * msal-node caches the managed identity source per process
 * (ManagedIdentityClient.identitySource is static), so IMDS and App Service
 * need a process each.
 *
 * env: SCENARIOS = JSON array of Scenario; NODE_EXTRA_CA_CERTS; for managed
 * identity AZURE_POD_IDENTITY_AUTHORITY_HOST or IDENTITY_ENDPOINT + IDENTITY_HEADER.
 */
import {
  ClientAssertionCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  type TokenCredential,
  WorkloadIdentityCredential,
} from '@azure/identity';

export type Scenario =
  | {
      name: string;
      kind: 'secret';
      tenantId: string;
      clientId: string;
      secret: string;
      scope: string;
      authorityHost: string;
    }
  | {
      name: string;
      kind: 'certificate';
      tenantId: string;
      clientId: string;
      certificatePath: string;
      scope: string;
      authorityHost: string;
    }
  | {
      name: string;
      kind: 'assertion';
      tenantId: string;
      clientId: string;
      assertion: string;
      scope: string;
      authorityHost: string;
    }
  | {
      name: string;
      kind: 'workload';
      tenantId: string;
      clientId: string;
      tokenFilePath: string;
      scope: string;
      authorityHost: string;
    }
  | { name: string; kind: 'managed'; clientId?: string; scope: string };

function credentialFor(s: Scenario): TokenCredential {
  if (s.kind === 'managed')
    return s.clientId
      ? new ManagedIdentityCredential({ clientId: s.clientId })
      : new ManagedIdentityCredential();
  const common = { authorityHost: s.authorityHost, disableInstanceDiscovery: true };
  switch (s.kind) {
    case 'secret':
      return new ClientSecretCredential(s.tenantId, s.clientId, s.secret, common);
    case 'certificate':
      return new ClientCertificateCredential(s.tenantId, s.clientId, s.certificatePath, common);
    case 'assertion':
      return new ClientAssertionCredential(s.tenantId, s.clientId, async () => s.assertion, common);
    case 'workload':
      return new WorkloadIdentityCredential({
        ...common,
        tenantId: s.tenantId,
        clientId: s.clientId,
        tokenFilePath: s.tokenFilePath,
      });
  }
}

const scenarios = JSON.parse(process.env.SCENARIOS ?? '[]') as Scenario[];
const results: Record<string, { token?: string; error?: string }> = {};
// Sequential: the managed identity scenarios share msal-node's static source.
for (const s of scenarios) {
  try {
    const t = await credentialFor(s).getToken(s.scope);
    results[s.name] = t ? { token: t.token } : { error: 'getToken returned null' };
  } catch (err) {
    results[s.name] = { error: (err as Error).message.slice(0, 2000) };
  }
}
process.stdout.write(JSON.stringify(results));
