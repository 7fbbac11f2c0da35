/**
 * The built-in dev seed of the Entra ID emulator: one tenant, the "pipeline"
 * app registration, the `tanuki-sts` resource API (identifier URI
 * `api://<its client ID>`) and two managed identities. The GUIDs are fixed so scripts and docs can name them; the
 * client secret is generated on first start and kept in the state dir (read it
 * from `handle.config`, never from here).
 *
 * `defaultEntraConfig()` returns the raw (unresolved) seed: tests copy it,
 * change a field (say `accessTokenAcceptedVersion: 2`) and pass it as
 * `startEntraEmulator({ config })`.
 */

import type { EntraConfig } from './config.ts';

/** The placeholder replaced by the emulator's URL (`https://localhost:PORT`) once it listens. */
export const EMULATOR_URL_PLACEHOLDER = '{emulatorUrl}';

/** The audience Entra expects in federated assertions (public cloud; workload-identity-federation.md). */
export const FEDERATION_AUDIENCE = 'api://AzureADTokenExchange';

export const DEV_TENANT_ID = '7f3c2a1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';
export const DEV_PIPELINE_CLIENT_ID = '2b8e5f4a-1c3d-4e5f-9a6b-7c8d9e0f1a2b';
export const DEV_PIPELINE_OBJECT_ID = '5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f';
export const DEV_RESOURCE_CLIENT_ID = '9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d';
/** The STS API's Application ID URI: Entra's default `api://<client ID>` (identifier-uris.ts). */
export const DEV_RESOURCE_URI = `api://${DEV_RESOURCE_CLIENT_ID}`;
export const DEV_RESOURCE_OBJECT_ID = '1e2f3a4b-5c6d-4e7f-9a8b-0c1d2e3f4a5c';
export const DEV_ROLE = 'GitLab.Read';
export const DEV_SYSTEM_MI_CLIENT_ID = '6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c';
export const DEV_SYSTEM_MI_OBJECT_ID = '8b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0d1e';
export const DEV_USER_MI_CLIENT_ID = '3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d';
export const DEV_USER_MI_OBJECT_ID = '0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a';
export const DEV_USER_MI_RESOURCE_ID =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/tanuki-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/tanuki-dev-uami';
/** The GitLab CI subject of the dev pipeline's federated credential. */
export const DEV_FEDERATED_SUBJECT = 'project_path:platform/internal-lib:ref_type:branch:ref:main';

/** A fresh copy of the raw dev seed, in the shape of the YAML config file (see README.md). */
export function defaultEntraConfig() {
  return {
    tenants: [
      {
        id: DEV_TENANT_ID,
        name: 'tanuki-dev',
        resources: [
          {
            name: 'tanuki-sts',
            clientId: DEV_RESOURCE_CLIENT_ID,
            objectId: DEV_RESOURCE_OBJECT_ID,
            identifierUris: [DEV_RESOURCE_URI],
            appRoles: [{ value: DEV_ROLE, id: '4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f' }],
            accessTokenAcceptedVersion: 1 as 1 | 2,
            idtypOptionalClaim: false,
          },
        ],
        apps: [
          {
            name: 'pipeline',
            clientId: DEV_PIPELINE_CLIENT_ID,
            objectId: DEV_PIPELINE_OBJECT_ID,
            clientSecrets: [{ id: 'dev' }] as Array<{ id: string; value?: string }>,
            clientCertificates: [{ name: 'dev', generate: true }] as Array<Record<string, unknown>>,
            federatedCredentials: [
              {
                name: 'gitlab-ci-main',
                issuer: `${EMULATOR_URL_PLACEHOLDER}/_emulator/oidc`,
                subject: DEV_FEDERATED_SUBJECT,
                audiences: [FEDERATION_AUDIENCE],
              },
            ],
            appRoleAssignments: [{ resource: DEV_RESOURCE_URI, role: DEV_ROLE }],
          },
        ],
        managedIdentities: [
          {
            name: 'system',
            type: 'systemAssigned' as const,
            clientId: DEV_SYSTEM_MI_CLIENT_ID,
            objectId: DEV_SYSTEM_MI_OBJECT_ID,
            appRoleAssignments: [{ resource: DEV_RESOURCE_URI, role: DEV_ROLE }],
          },
          {
            name: 'tanuki-dev-uami',
            type: 'userAssigned' as const,
            clientId: DEV_USER_MI_CLIENT_ID,
            objectId: DEV_USER_MI_OBJECT_ID,
            resourceId: DEV_USER_MI_RESOURCE_ID,
            appRoleAssignments: [{ resource: DEV_RESOURCE_URI, role: DEV_ROLE }],
          },
        ],
      },
    ],
  };
}

/** What scripts and tests usually need from a running emulator with the dev seed (or a config shaped like it). */
export interface DevSeedSummary {
  tenantId: string;
  pipelineClientId: string;
  /** The generated (or configured) client secret of the first app. */
  pipelineClientSecret: string;
  /** Key + certificate PEM of the first app's generated certificate (AZURE_CLIENT_CERTIFICATE_PATH). */
  pipelineCertificatePath?: string;
  resourceUri: string;
  resourceClientId: string;
  /** A user-assigned managed identity's client ID if there is one, else the system-assigned one's. */
  managedIdentityClientId?: string;
  appServiceIdentityHeader: string;
  testIssuer: string;
}

/** Reads the first tenant, app and resource of a resolved config (`handle.config`). */
export function summarizeDevSeed(config: EntraConfig): DevSeedSummary {
  const tenant = config.tenants[0];
  const app = tenant?.apps[0];
  const resource = tenant?.resources[0];
  const secret = app?.clientSecrets[0];
  if (!tenant || !app || !resource || !secret) {
    throw new Error(
      'the Entra emulator config has no tenant with an app (with a client secret) and a resource',
    );
  }
  const identities = tenant.managedIdentities;
  const identity = identities.find((m) => m.type === 'userAssigned') ?? identities[0];
  return {
    tenantId: tenant.id,
    pipelineClientId: app.clientId,
    pipelineClientSecret: secret.value,
    pipelineCertificatePath: app.clientCertificates.find((c) => c.pemFile)?.pemFile,
    resourceUri: resource.identifierUris[0] ?? resource.clientId,
    resourceClientId: resource.clientId,
    managedIdentityClientId: identity?.clientId,
    appServiceIdentityHeader: config.appServiceIdentityHeader,
    testIssuer: config.testIssuer,
  };
}
