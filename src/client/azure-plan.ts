/**
 * Which Entra ID credential to use, decided from flags and environment
 * before any network call. Pure (environment in, plan out) and free of
 * @azure/identity, so it is cheap to load and unit-tested on its own.
 */
import { existsSync } from 'node:fs';
import { UsageError } from './errors.ts';
import { redactor } from './redact.ts';
import { checkSecretFile, checkSecretSize } from './secret-input.ts';
import type { AzureAuthMode, AzureAuthSettings, Env } from './settings.ts';

/** Authority hosts of Microsoft's clouds; anything else gets instance discovery disabled (emulators, ADFS-like hosts). */
const MICROSOFT_AUTHORITY_HOSTS = new Set([
  'login.microsoftonline.com',
  'login.microsoft.com',
  'login.windows.net',
  'login.microsoftonline.us',
  'login.usgovcloudapi.net',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
  'login.microsoftonline.de',
]);

export type ConcreteMode = Exclude<AzureAuthMode, 'auto'>;

export interface AzurePlan {
  mode: ConcreteMode;
  /** Was the mode picked by `auto`? Then one line on stderr says which. */
  auto: boolean;
  /** Human description without secrets, e.g. "client secret of app … in tenant …". */
  description: string;
  tenantId?: string;
  clientId?: string;
  authorityHost?: string;
  disableInstanceDiscovery: boolean;
  secret?: string;
  certificatePath?: string;
  certificatePassword?: string;
  sendCertificateChain?: boolean;
  tokenFilePath?: string;
  idTokenVar?: string;
  assertion?: string;
  serviceConnectionId?: string;
  systemAccessToken?: string;
}

function need(value: string | undefined, what: string, mode: string): string {
  if (!value) throw new UsageError(`--azure-auth ${mode} needs ${what}`);
  return value;
}

/** The app a credential signs in as: tenant and client ID are both required (`also`: another variable prefix that sets them). */
function appIds(s: AzureAuthSettings, mode: string, also?: string): { tenantId: string; clientId: string } {
  const or = (name: string) => (also ? ` (or ${also}${name})` : '');
  return {
    tenantId: need(s.tenantId, `--tenant-id or AZURE_TENANT_ID${or('TENANT_ID')}`, mode),
    clientId: need(s.clientId, `--client-id or AZURE_CLIENT_ID${or('CLIENT_ID')}`, mode),
  };
}

export function isMicrosoftAuthorityHost(host: string): boolean {
  try {
    return MICROSOFT_AUTHORITY_HOSTS.has(new URL(host).hostname.toLowerCase());
  } catch {
    return false;
  }
}

/** Chooses the credential and checks its inputs are all there, before any network call. */
export function planAzureAuth(s: AzureAuthSettings, env: Env): AzurePlan {
  const authorityHost = s.authorityHost;
  if (authorityHost !== undefined) {
    let u: URL;
    try {
      u = new URL(authorityHost);
    } catch {
      throw new UsageError(
        `--authority-host / AZURE_AUTHORITY_HOST "${authorityHost.slice(0, 80)}" is not a URL`,
      );
    }
    // @azure/identity refuses http authorities; say it in our words first.
    if (u.protocol !== 'https:')
      throw new UsageError('--authority-host / AZURE_AUTHORITY_HOST must be an https:// URL');
  }
  const base = {
    tenantId: s.tenantId,
    clientId: s.clientId,
    authorityHost,
    disableInstanceDiscovery: authorityHost !== undefined && !isMicrosoftAuthorityHost(authorityHost),
  };
  const ids = `app ${s.clientId ?? '?'} in tenant ${s.tenantId ?? '?'}`;
  const idToken = env[s.idTokenVar];

  let mode: ConcreteMode;
  const auto = s.mode === 'auto';
  if (!auto) mode = s.mode as ConcreteMode;
  else if (s.tenantId && s.clientId && env.AZURE_CLIENT_SECRET) mode = 'secret';
  else if (s.tenantId && s.clientId && env.AZURE_CLIENT_CERTIFICATE_PATH) mode = 'certificate';
  else if (s.tenantId && s.clientId && env.AZURE_FEDERATED_TOKEN_FILE) mode = 'workload-identity';
  else if (s.tenantId && s.clientId && idToken) mode = 'gitlab-oidc';
  else if (
    s.tenantId &&
    s.clientId &&
    env.SYSTEM_OIDCREQUESTURI &&
    env.SYSTEM_ACCESSTOKEN &&
    s.serviceConnectionId
  )
    mode = 'azure-pipelines';
  else mode = 'managed-identity';

  const m = mode;
  switch (mode) {
    case 'secret': {
      const secret = need(
        env.AZURE_CLIENT_SECRET,
        'AZURE_CLIENT_SECRET (the secret is read from the environment only)',
        m,
      );
      redactor.add(secret);
      return {
        ...base,
        mode,
        auto,
        ...appIds(s, m),
        secret,
        description: `client secret (AZURE_CLIENT_SECRET) of ${ids}`,
      };
    }
    case 'certificate': {
      const path = need(
        env.AZURE_CLIENT_CERTIFICATE_PATH,
        'AZURE_CLIENT_CERTIFICATE_PATH (PEM with certificate and key)',
        m,
      );
      if (!existsSync(path)) throw new UsageError(`AZURE_CLIENT_CERTIFICATE_PATH ${path} does not exist`);
      redactor.add(env.AZURE_CLIENT_CERTIFICATE_PASSWORD);
      return {
        ...base,
        mode,
        auto,
        ...appIds(s, m),
        certificatePath: path,
        certificatePassword: env.AZURE_CLIENT_CERTIFICATE_PASSWORD || undefined,
        sendCertificateChain: /^(1|true)$/i.test(env.AZURE_CLIENT_SEND_CERTIFICATE_CHAIN ?? ''),
        description: `certificate ${path} of ${ids}`,
      };
    }
    case 'workload-identity': {
      const file = need(env.AZURE_FEDERATED_TOKEN_FILE, 'AZURE_FEDERATED_TOKEN_FILE', m);
      if (!existsSync(file)) throw new UsageError(`AZURE_FEDERATED_TOKEN_FILE ${file} does not exist`);
      // @azure/identity reads it without limits: same rule as --subject-token-file, checked first.
      checkSecretFile(file, 'AZURE_FEDERATED_TOKEN_FILE');
      return {
        ...base,
        mode,
        auto,
        ...appIds(s, m),
        tokenFilePath: file,
        description: `workload identity (federated token file ${file}) of ${ids}`,
      };
    }
    case 'gitlab-oidc': {
      if (!idToken) {
        throw new UsageError(
          `the CI variable ${s.idTokenVar} is empty — add to the job: id_tokens: { ${s.idTokenVar}: { aud: api://AzureADTokenExchange } } (or set --id-token-var)`,
        );
      }
      checkSecretSize(idToken, `the CI variable ${s.idTokenVar}`);
      redactor.add(idToken);
      return {
        ...base,
        mode,
        auto,
        ...appIds(s, m),
        idTokenVar: s.idTokenVar,
        assertion: idToken,
        description: `GitLab CI id_token (${s.idTokenVar}) as federated credential of ${ids}`,
      };
    }
    case 'azure-pipelines': {
      const systemAccessToken = need(
        env.SYSTEM_ACCESSTOKEN,
        'SYSTEM_ACCESSTOKEN — map it in the step: env: { SYSTEM_ACCESSTOKEN: $(System.AccessToken) }',
        m,
      );
      redactor.add(systemAccessToken);
      need(
        env.SYSTEM_OIDCREQUESTURI,
        'SYSTEM_OIDCREQUESTURI (set by Azure Pipelines; run inside a pipeline job)',
        m,
      );
      return {
        ...base,
        mode,
        auto,
        ...appIds(s, m, 'AZURESUBSCRIPTION_'),
        serviceConnectionId: need(
          s.serviceConnectionId,
          '--service-connection-id or AZURESUBSCRIPTION_SERVICE_CONNECTION_ID',
          m,
        ),
        systemAccessToken,
        description: `Azure Pipelines service connection ${s.serviceConnectionId} (workload identity federation) of ${ids}`,
      };
    }
    case 'managed-identity':
      return {
        ...base,
        mode,
        auto,
        description: s.clientId
          ? `user-assigned managed identity ${s.clientId}`
          : 'system-assigned managed identity',
      };
    case 'azure-cli':
      return {
        ...base,
        mode,
        auto,
        description: `Azure CLI sign-in${s.tenantId ? ` (tenant ${s.tenantId})` : ''}`,
      };
  }
}
