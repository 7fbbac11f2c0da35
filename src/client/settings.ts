/**
 * Options of the client commands, from flags first and then environment
 * variables, so that a pipeline template needs no flags at all. Pure: the
 * environment is passed in, nothing is read from disk or network here.
 */
import { DurationError, parseDurationSeconds } from '../util/duration.ts';
import { GITLAB_SCOPES, isGitlabScope, nearestGitlabScope } from '../util/gitlab-scopes.ts';
import { UsageError } from './errors.ts';
import { checkTransport } from './trust.ts';

export const AZURE_AUTH_MODES = [
  'auto',
  'secret',
  'certificate',
  'managed-identity',
  'workload-identity',
  'azure-cli',
  'gitlab-oidc',
  'azure-pipelines',
] as const;
export type AzureAuthMode = (typeof AZURE_AUTH_MODES)[number];

export const OUTPUT_FORMATS = ['raw', 'json', 'env', 'netrc', 'git-credentials', 'docker-config'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Options as commander hands them over (all strings, all optional). */
export interface RawClientOptions {
  sts?: string;
  resource?: string;
  scope?: string;
  ttl?: string;
  azureAuth?: string;
  azureScope?: string;
  tenantId?: string;
  clientId?: string;
  authorityHost?: string;
  idTokenVar?: string;
  serviceConnectionId?: string;
  subjectTokenFile?: string;
  subjectTokenVar?: string;
  verbose?: boolean;
  timeout?: string;
  retries?: string;
}

/**
 * Flag → environment variable. The table is the documentation too: help
 * texts and docs/pipelines.md list these names.
 */
export const ENV_OF: Record<keyof RawClientOptions, string> = {
  sts: 'TANUKI_STS_URL',
  resource: 'TANUKI_RESOURCE',
  scope: 'TANUKI_SCOPE',
  ttl: 'TANUKI_TTL',
  azureAuth: 'TANUKI_AZURE_AUTH',
  azureScope: 'TANUKI_AZURE_SCOPE',
  tenantId: 'AZURE_TENANT_ID',
  clientId: 'AZURE_CLIENT_ID',
  authorityHost: 'AZURE_AUTHORITY_HOST',
  idTokenVar: 'TANUKI_ID_TOKEN_VAR',
  serviceConnectionId: 'AZURESUBSCRIPTION_SERVICE_CONNECTION_ID',
  subjectTokenFile: 'TANUKI_SUBJECT_TOKEN_FILE',
  subjectTokenVar: 'TANUKI_SUBJECT_TOKEN_VAR',
  verbose: 'TANUKI_VERBOSE',
  timeout: 'TANUKI_TIMEOUT',
  retries: 'TANUKI_RETRIES',
};

export type Env = Record<string, string | undefined>;

export interface AzureAuthSettings {
  mode: AzureAuthMode;
  tenantId: string | undefined;
  clientId: string | undefined;
  authorityHost: string | undefined;
  /** Overrides the STS metadata's `azure_scope`. */
  scope: string | undefined;
  idTokenVar: string;
  serviceConnectionId: string | undefined;
}

export type SubjectSource =
  | { kind: 'file'; path: string }
  | { kind: 'var'; name: string }
  | { kind: 'azure'; azure: AzureAuthSettings };

export interface ClientSettings {
  stsUrl: string;
  resource: string | undefined;
  scopes: string[] | undefined;
  ttlSeconds: number | undefined;
  subject: SubjectSource;
  verbose: boolean;
  timeoutMs: number;
  retries: number;
}

function pick(raw: RawClientOptions, env: Env, key: keyof RawClientOptions): string | undefined {
  const flag = raw[key];
  if (typeof flag === 'string' && flag.trim() !== '') return flag.trim();
  const fromEnv = env[ENV_OF[key]];
  return fromEnv !== undefined && fromEnv.trim() !== '' ? fromEnv.trim() : undefined;
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

/** `https://sts.example.com/` → `https://sts.example.com`; https only (http on loopback). */
export function normalizeBaseUrl(value: string, what: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`${what} "${value.slice(0, 100)}" is not a URL (expected https://host[:port])`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new UsageError(`${what} must be an http(s) URL, got ${u.protocol}`);
  }
  checkTransport(u, what);
  if (u.username || u.password) throw new UsageError(`${what} must not contain credentials`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

export function parseDuration(value: string, what: string): number {
  try {
    return parseDurationSeconds(value);
  } catch (err) {
    if (err instanceof DurationError) throw new UsageError(`${what}: ${err.message}`);
    throw err;
  }
}

/**
 * `--scope` / `TANUKI_SCOPE`: every scope must be one GitLab knows (util/gitlab-scopes.ts), so
 * a typo is named here, before any sign-in, instead of coming back from the STS as a refusal.
 * Whether the policy grants a known scope is the STS's call.
 */
function parseScopes(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const scopes = value.split(/[\s,]+/).filter(Boolean);
  for (const s of scopes) {
    if (isGitlabScope(s)) continue;
    // Only a scope-like word is quoted back (and nothing long): the value may be anything pasted.
    const shown = /^[A-Za-z0-9_:-]{1,40}$/.test(s) ? `"${s}"` : `(${s.length} characters)`;
    const near = nearestGitlabScope(s);
    throw new UsageError(
      `--scope / TANUKI_SCOPE: unknown GitLab scope ${shown}${near ? ` — did you mean ${near}?` : ''} (GitLab's access and deploy token scopes: ${GITLAB_SCOPES.join(', ')}; which of them you get is the STS policy's call)`,
    );
  }
  return scopes.length > 0 ? [...new Set(scopes)] : undefined;
}

export function resolveSettings(raw: RawClientOptions, env: Env): ClientSettings {
  const sts = pick(raw, env, 'sts');
  if (!sts) throw new UsageError('no STS given: pass --sts https://sts.example.com or set TANUKI_STS_URL');
  const ttl = pick(raw, env, 'ttl');
  const timeout = pick(raw, env, 'timeout');
  const retriesText = pick(raw, env, 'retries');
  const retries = retriesText === undefined ? 2 : Number(retriesText);
  if (!Number.isInteger(retries) || retries < 0 || retries > 10) {
    throw new UsageError('--retries / TANUKI_RETRIES must be a whole number 0-10');
  }

  const file = pick(raw, env, 'subjectTokenFile');
  const variable = pick(raw, env, 'subjectTokenVar');
  const modeText = pick(raw, env, 'azureAuth');
  if (file && variable)
    throw new UsageError('give either --subject-token-file or --subject-token-var, not both');
  let subject: SubjectSource;
  if (file) subject = { kind: 'file', path: file };
  else if (variable) subject = { kind: 'var', name: variable };
  else {
    const mode = (modeText ?? 'auto') as AzureAuthMode;
    if (!AZURE_AUTH_MODES.includes(mode)) {
      throw new UsageError(
        `--azure-auth / TANUKI_AZURE_AUTH: unknown mode "${modeText}"; use one of ${AZURE_AUTH_MODES.join(', ')}`,
      );
    }
    // The Azure Pipelines AzureCLI@2 task exports AZURESUBSCRIPTION_*; use them when AZURE_* are absent.
    const pipelines = mode === 'azure-pipelines';
    subject = {
      kind: 'azure',
      azure: {
        mode,
        tenantId: pick(raw, env, 'tenantId') ?? (pipelines ? env.AZURESUBSCRIPTION_TENANT_ID : undefined),
        clientId: pick(raw, env, 'clientId') ?? (pipelines ? env.AZURESUBSCRIPTION_CLIENT_ID : undefined),
        authorityHost: pick(raw, env, 'authorityHost'),
        scope: pick(raw, env, 'azureScope'),
        idTokenVar: pick(raw, env, 'idTokenVar') ?? 'TANUKI_ID_TOKEN',
        serviceConnectionId: pick(raw, env, 'serviceConnectionId'),
      },
    };
  }

  return {
    stsUrl: normalizeBaseUrl(sts, '--sts / TANUKI_STS_URL'),
    resource: pick(raw, env, 'resource'),
    scopes: parseScopes(pick(raw, env, 'scope')),
    ttlSeconds: ttl === undefined ? undefined : parseDuration(ttl, '--ttl / TANUKI_TTL'),
    subject,
    verbose: raw.verbose === true || truthy(env[ENV_OF.verbose]),
    timeoutMs: (timeout === undefined ? 30 : parseDuration(timeout, '--timeout / TANUKI_TIMEOUT')) * 1000,
    retries,
  };
}
