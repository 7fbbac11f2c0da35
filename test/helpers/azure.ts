/** Run test/helpers/azure-token.ts in a child process that trusts the emulator's CA. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./azure-token.ts', import.meta.url));

export interface AzureTokenRequest {
  caFile: string;
  authorityHost: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  scope: string;
}

export function azureToken(r: AzureTokenRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', script],
      {
        env: {
          PATH: process.env.PATH,
          NODE_EXTRA_CA_CERTS: r.caFile,
          AZURE_AUTHORITY_HOST: r.authorityHost,
          AZURE_TENANT_ID: r.tenantId,
          AZURE_CLIENT_ID: r.clientId,
          AZURE_CLIENT_SECRET: r.clientSecret,
          SCOPE: r.scope,
        },
        timeout: 30_000,
      },
      (err, stdout) => {
        let parsed: { token?: string; error?: string } = {};
        try {
          parsed = JSON.parse(stdout);
        } catch {}
        if (parsed.token) resolve(parsed.token);
        else reject(new Error(parsed.error ?? err?.message ?? 'no token'));
      },
    );
  });
}
