/**
 * What the client accepts from the STS and from URLs it is given. The design
 * rests on two promises: the STS only ever receives tokens meant for the STS,
 * and git (or a shell) only ever receives a GitLab token. A rogue or
 * intercepted STS controls its metadata and its answers, so both are checked
 * here before they can steer a sign-in or reach an output. Pure functions.
 */
import { UsageError } from './errors.ts';

/** `localhost`, `127.0.0.0/8`, `::1`: plain http there cannot be intercepted off the host. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * https, or http on loopback only: over plain http anyone on the path could
 * play the STS (and choose the Azure resource) or read the GitLab token.
 */
export function checkTransport(u: URL, what: string): void {
  if (u.protocol === 'https:') return;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return;
  throw new UsageError(
    `${what} must be https (plain http only on a loopback host, for development), got ${u.protocol}//${u.host}`,
  );
}

/**
 * Hosts of Microsoft's own resources (and their subdomains), in every cloud.
 * An Entra token for any of them is worth more than a GitLab token: Resource
 * Manager (often Contributor), Graph, Key Vault, Storage, SQL, DevOps…
 */
const MICROSOFT_HOST_SUFFIXES = [
  'microsoft.com',
  'microsoftonline.com',
  'microsoftonline.us',
  'microsoftonline.de',
  'microsoftonline.cn',
  'windows.net',
  'windows-ppe.net',
  'azure.com',
  'azure.net',
  'azure.us',
  'azure.cn',
  'chinacloudapi.cn',
  'usgovcloudapi.net',
  'cloudapi.de',
  'microsoftazure.de',
  'office.com',
  'office.net',
  'office365.com',
  'office365.us',
  'sharepoint.com',
  'sharepoint.us',
  'sharepoint.cn',
  'outlook.com',
  'dynamics.com',
  'powerbi.com',
  'powerapps.com',
  'visualstudio.com',
  'applicationinsights.io',
  'loganalytics.io',
  'azurecr.io',
  'azuresynapse.net',
  'azure-api.net',
];

/**
 * Application IDs of Microsoft first-party resources, for `<appId>/.default` and `api://<appId>/.default`.
 * A list cannot be complete (nor can it know the tenant's own APIs): the templates and docs pin
 * TANUKI_AZURE_SCOPE, which is the real defence against a rogue STS; this list is the backstop.
 */
const MICROSOFT_APP_IDS = new Set([
  '797f4846-ba00-4fd7-ba43-dac1f8f63013', // Azure Resource Manager (Windows Azure Service Management API)
  '00000003-0000-0000-c000-000000000000', // Microsoft Graph
  '00000002-0000-0000-c000-000000000000', // Azure AD Graph
  'cfa8b339-82a2-471a-a3c9-0fc0be7a4093', // Azure Key Vault
  '589d5083-6f11-4d30-a62a-a4b316a14abf', // Azure Key Vault Managed HSM
  'e406a681-f3d4-42a8-90b6-c2b029497af1', // Azure Storage
  '022907d3-0f1b-48f7-badc-1ba6abab6d66', // Azure SQL Database
  '123cd850-d9df-40bd-94d5-c9f07b7fa203', // Azure Database for PostgreSQL/MySQL (OSS RDBMS)
  '499b84ac-1321-427f-aa17-267ca6975798', // Azure DevOps
  '6dae42f8-4368-4678-94ff-3960e28e3630', // Azure Kubernetes Service AAD Server
  'ca7f3f0b-7d91-482c-8e09-c5d840d0eac5', // Log Analytics API
  '80369ed6-5f11-4dd9-bef3-692475845e77', // Event Hubs / Service Bus
  '7d312290-28c8-473c-a0ed-8e53749b6d6d', // Cognitive Services
  '2746ea77-4702-4b45-80ca-3c97e680e8b7', // Azure Data Explorer
  'e9f49c6b-5ce5-44c8-925d-015017e9f7ad', // Azure Data Lake
  'ddbf3205-c6bd-46ae-8127-60eb93363864', // Azure Batch
  '04b07795-8ddb-461a-bbee-02f9e1bf7b46', // Azure CLI
  '1950a258-227b-4e31-a9cf-717495945fc2', // Azure PowerShell
  'a232010e-820c-4083-83bb-3ace5fc29d0b', // Azure Cosmos DB
  '18a66f5f-dbdf-4c17-9dd7-1634712a9cbe', // Azure Machine Learning
  '0b07f429-9f4b-4714-9392-cc5e8e80c8b0', // Azure Digital Twins
  '4962773b-9cdb-44cf-a8bf-237846a00ab7', // Azure Event Grid
  '00000009-0000-0000-c000-000000000000', // Power BI (also in the reserved range; named for readers)
]);

/** Microsoft's reserved first-party ranges: 0000000x-0000-0000-c000-… (Graph, CRM…) and …-0ff1-ce00-… (Office). */
const MICROSOFT_APP_ID_RANGE = /^0000[0-9a-f]{4}-0000-0(?:000-c000|ff1-ce00)-000000000000$/;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const API_SCOPE = /^api:\/\/([^/\s?#]+)((?:\/[^/\s?#]+)*)\/\.default$/i;
const APP_ID_SCOPE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/\.default$/i;

export const AZURE_SCOPE_RULE =
  'an STS may only name api://<App ID URI>/.default or <application GUID>/.default, for no Microsoft first-party resource';

function isMicrosoftFirstParty(name: string): boolean {
  const n = name.toLowerCase().replace(/:\d+$/, '');
  if (GUID.test(n)) return MICROSOFT_APP_IDS.has(n) || MICROSOFT_APP_ID_RANGE.test(n);
  // api://AzureADTokenExchange[USGov|China]: the audience of federated credentials. A token for it
  // is an assertion every app that trusts this identity accepts — a key to all of them.
  if (n.startsWith('azureadtokenexchange')) return true;
  return MICROSOFT_HOST_SUFFIXES.some((s) => n === s || n.endsWith(`.${s}`));
}

/** Why an `azure_scope` from the STS metadata is refused, or undefined when it is acceptable. */
export function azureScopeProblem(scope: string): string | undefined {
  if (scope.length > 256) return 'longer than 256 characters';
  const api = API_SCOPE.exec(scope);
  const appId = APP_ID_SCOPE.exec(scope);
  if (!api && !appId) return 'not of the form api://<App ID URI>/.default or <application GUID>/.default';
  const name = (api?.[1] ?? appId?.[1])!;
  if (isMicrosoftFirstParty(name)) return `it names a Microsoft first-party resource (${name})`;
  return undefined;
}

/**
 * The Entra scope the STS metadata asks for, checked before any sign-in. A
 * scope pinned with --azure-scope / TANUKI_AZURE_SCOPE is the operator's
 * choice and is not subject to this rule.
 */
export function checkMetadataAzureScope(scope: unknown): string {
  const text = typeof scope === 'string' ? scope : JSON.stringify(scope);
  const problem = typeof scope === 'string' ? azureScopeProblem(scope) : 'not a string';
  if (problem === undefined) return scope as string;
  throw new UsageError(
    `refusing the STS metadata's azure_scope ${JSON.stringify(text.slice(0, 120))}: ${problem} — ${AZURE_SCOPE_RULE} (nothing was signed in for). Pin the STS's own scope with --azure-scope / TANUKI_AZURE_SCOPE, e.g. api://<STS app client ID>/.default`,
  );
}

/**
 * GitLab's token formats: `glpat-` + 20 characters (≤ 17.x), `glpat-` +
 * payload + `.01.` + 9 (18.x, 51–54 characters), other configurable
 * prefixes. One line of `[A-Za-z0-9_.-]`, 8–512 characters: nothing that a
 * shell, git's credential protocol, a netrc file or an HTTP header would read
 * as syntax.
 */
const TOKEN_SHAPE = /^[A-Za-z0-9_.-]{8,512}$/;

export function isTokenShaped(token: unknown): token is string {
  return typeof token === 'string' && TOKEN_SHAPE.test(token);
}

/**
 * A username to give git and the registries with the token (the STS's `gitlab_username`): GitLab's
 * deploy-token username rule (`[A-Za-z0-9.+_-]`, at most 255; app/models/deploy_token.rb), which
 * `oauth2` and `gitlab+deploy-token-N` meet. Nothing a netrc file, a URL's userinfo, git's
 * credential protocol or a shell would read as syntax (no space, `:`, `@`, quote or newline).
 */
const USERNAME_SHAPE = /^[A-Za-z0-9.+_-]{1,255}$/;

export function isUsernameShaped(username: unknown): username is string {
  return typeof username === 'string' && USERNAME_SHAPE.test(username);
}

/** POSIX shell single quotes: the value is never expanded, whatever it holds. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
