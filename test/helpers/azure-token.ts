/**
 * Child-process helper: gets an Entra ID access token with @azure/identity,
 * unmodified, and prints it as JSON on stdout. It runs in its own process
 * because @azure/identity trusts only NODE_EXTRA_CA_CERTS, which Node reads at
 * start-up (the emulator's CA is made at test time).
 *
 * env: AZURE_AUTHORITY_HOST, AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, SCOPE
 */
import { ClientSecretCredential } from '@azure/identity';

const { AZURE_AUTHORITY_HOST, AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, SCOPE } = process.env;
const credential = new ClientSecretCredential(
  AZURE_TENANT_ID ?? '',
  AZURE_CLIENT_ID ?? '',
  AZURE_CLIENT_SECRET ?? '',
  {
    authorityHost: AZURE_AUTHORITY_HOST,
    disableInstanceDiscovery: true,
  },
);
try {
  const t = await credential.getToken(SCOPE ?? '');
  process.stdout.write(JSON.stringify({ token: t.token }));
} catch (err) {
  process.stdout.write(JSON.stringify({ error: (err as Error).message.slice(0, 500) }));
  process.exitCode = 1;
}
