/**
 * Plain advice for the Entra ID (AADSTS) error codes pipelines hit most.
 * The code stays in the message so it can be searched for; the advice says
 * what to check. Source: Microsoft's "Microsoft Entra authentication and
 * authorization error codes" page.
 */
const ADVICE: Record<number, string> = {
  7000215: "the client secret is wrong — use the secret's Value, not its Secret ID (AZURE_CLIENT_SECRET)",
  7000222:
    'the client secret has expired — create a new secret in the app registration and update the pipeline variable',
  7000216:
    'no client secret or client assertion was sent — set AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH',
  700016:
    'the application was not found in the tenant — check AZURE_CLIENT_ID / --client-id (the Application (client) ID) and AZURE_TENANT_ID / --tenant-id',
  70021:
    "no federated credential matches the token's issuer/subject/audience — compare the app's federated credential with the CI token exactly (issuer URL incl. trailing slash, subject such as project_path:group/project:ref_type:branch:ref:main, audience api://AzureADTokenExchange)",
  700211:
    "no federated credential matches the token's issuer — check the issuer URL on the app's federated credential",
  700212:
    "no federated credential matches the token's audience — the CI id_token's aud must equal the federated credential's audience (api://AzureADTokenExchange)",
  700213:
    "no federated credential matches the token's subject — for GitLab the subject is project_path:<group>/<project>:ref_type:<branch|tag>:ref:<name>",
  700024:
    "the client assertion (CI id_token or federated token file) has expired or is not yet valid — fetch it fresh in the same job and check the runner's clock",
  700027:
    "the client assertion's signature is invalid — is the certificate uploaded to this app registration?",
  500011:
    'the resource (scope) was not found in the tenant — check the STS App ID URI (--azure-scope / the STS metadata azure_scope, e.g. api://<STS app client ID>/.default) and that the API has a service principal (enterprise application) in this tenant',
  70011:
    'the scope is invalid — it must be the STS App ID URI followed by /.default, e.g. api://<STS app client ID>/.default',
  90002:
    'the tenant was not found — check AZURE_TENANT_ID / --tenant-id and, for sovereign clouds, --authority-host',
  900023: 'the tenant ID is malformed — use the Directory (tenant) ID GUID or a verified domain',
  501051:
    "the pipeline's identity is not assigned an app role on the STS API, which requires assignment — assign the role to the service principal or managed identity",
  7000112: 'the application is disabled in the tenant',
  7000229:
    'the client application has no service principal in the tenant — create the enterprise application (az ad sp create --id <client-id>)',
  50034:
    'Entra ID refused the sign-in (the account does not exist in that tenant) — check the tenant and client IDs',
};

/** Finds an AADSTS code in text such as "AADSTS7000215: Invalid client secret provided…". */
export function findAadstsCode(text: string): number | undefined {
  const m = /AADSTS(\d{5,7})/.exec(text);
  return m ? Number(m[1]) : undefined;
}

export function aadstsAdvice(code: number): string {
  return (
    ADVICE[code] ??
    'Entra ID refused the sign-in — look the code up at https://login.microsoftonline.com/error?code=' + code
  );
}
