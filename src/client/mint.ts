/**
 * One exchange from start to end: get the subject token (Azure or a file or
 * variable), resolve the target, call the STS. Shared by `token`, `exec` and
 * the git credential helper.
 */
import { TOKEN_TYPE_JWT } from '../util/oauth-urns.ts';
import { type AzurePlan, planAzureAuth } from './azure-plan.ts';
import { UsageError } from './errors.ts';
import { redactor } from './redact.ts';
import { checkSecretSize, readSecretFile } from './secret-input.ts';
import { type ClientSettings, type Env, normalizeBaseUrl } from './settings.ts';
import type { ExchangeResult, StsClient, StsMetadata } from './sts.ts';
import { resolveTarget, type Target } from './target.ts';
import { checkMetadataAzureScope } from './trust.ts';

export interface MintDeps {
  sts: StsClient;
  env: Env;
  /** `--verbose` lines (stderr). */
  log: (line: string) => void;
  /** Lines always shown on stderr (e.g. which credential `auto` picked). */
  notice: (line: string) => void;
  /** Replaceable for tests. */
  azureToken?: (plan: AzurePlan, scope: string, timeoutMs: number) => Promise<string>;
}

export interface Minted {
  result: ExchangeResult;
  target: Target;
}

/** Reads the subject token a pipeline supplies directly (direct OIDC mode). */
export function readDirectSubjectToken(settings: ClientSettings, env: Env): string | undefined {
  const s = settings.subject;
  if (s.kind === 'file') {
    const token = readSecretFile(s.path, '--subject-token-file').trim();
    if (!token) throw new UsageError(`--subject-token-file ${s.path} is empty`);
    redactor.add(token);
    return token;
  }
  if (s.kind === 'var') {
    const token = env[s.name]?.trim();
    if (!token) {
      throw new UsageError(
        `the variable ${s.name} (--subject-token-var) is empty — in GitLab CI declare it under id_tokens: with aud set to the STS URL`,
      );
    }
    checkSecretSize(token, `the variable ${s.name} (--subject-token-var)`);
    redactor.add(token);
    return token;
  }
  return undefined;
}

/**
 * The metadata's `gitlab_url`, held to the same rules as a URL the user
 * gives (https, http only on loopback, no credentials): it decides where
 * `exec` points git's Authorization header and which origin a path names.
 */
export function metadataGitlabUrl(m: StsMetadata): string | undefined {
  if (m.gitlab_url === undefined || m.gitlab_url === null) return undefined;
  if (typeof m.gitlab_url !== 'string') throw new UsageError("the STS metadata's gitlab_url is not a string");
  try {
    return normalizeBaseUrl(m.gitlab_url, "the STS metadata's gitlab_url");
  } catch (err) {
    throw new UsageError(
      `${(err as Error).message} — refusing it; pin the GitLab URL with --gitlab / TANUKI_GITLAB_URL or give --resource as an https URL`,
    );
  }
}

/** The target, fetching STS metadata only when a path needs `gitlab_url`. */
export async function targetFor(
  settings: ClientSettings,
  sts: StsClient,
  resource = settings.resource,
): Promise<Target> {
  let gitlabUrl: string | undefined;
  if (!resource || !/^[a-z][a-z0-9+.-]*:\/\//i.test(resource))
    gitlabUrl = metadataGitlabUrl(await sts.metadata());
  // A URL resource names its GitLab itself; the metadata only helps find a path prefix.
  else
    gitlabUrl = await sts
      .metadata()
      .then(metadataGitlabUrl, () => undefined)
      .catch(() => undefined);
  return resolveTarget(resource, gitlabUrl);
}

export async function subjectToken(
  settings: ClientSettings,
  deps: MintDeps,
  direct = readDirectSubjectToken(settings, deps.env),
): Promise<string> {
  if (direct !== undefined) {
    deps.log(
      `subject token: ${settings.subject.kind === 'file' ? 'file' : 'variable'} (direct OIDC, not Azure)`,
    );
    return direct;
  }
  if (settings.subject.kind !== 'azure') throw new Error('unreachable');
  const plan = planAzureAuth(settings.subject.azure, deps.env);
  // A pinned scope is the operator's; one from the metadata is the STS's word and is checked
  // before any sign-in, or a rogue STS could ask for a Resource Manager token and receive it.
  let scope = settings.subject.azure.scope;
  if (scope === undefined) {
    const fromMetadata = (await deps.sts.metadata()).azure_scope;
    if (fromMetadata === undefined || fromMetadata === null || fromMetadata === '') {
      throw new UsageError(
        'the STS metadata names no azure_scope: pass --azure-scope api://<STS App ID URI>/.default (or TANUKI_AZURE_SCOPE)',
      );
    }
    scope = checkMetadataAzureScope(fromMetadata);
  }
  if (plan.auto) deps.notice(`Azure sign-in (auto): using ${plan.description}`);
  else deps.log(`Azure sign-in: ${plan.description}`);
  deps.log(`Azure scope: ${scope}${plan.authorityHost ? `, authority ${plan.authorityHost}` : ''}`);
  // Loaded on demand: @azure/identity is heavy, and cache hits of the git helper never need it.
  const getToken = deps.azureToken ?? (await import('./azure.ts')).getAzureToken;
  const token = await getToken(plan, scope, settings.timeoutMs * 2);
  deps.log('Azure sign-in: got a token');
  return token;
}

export async function mint(settings: ClientSettings, deps: MintDeps, target?: Target): Promise<Minted> {
  // Local input first (a direct subject token file or variable), then the target: a bad file or
  // --resource is a usage error that costs no network call and no sign-in.
  const direct = readDirectSubjectToken(settings, deps.env);
  const t = target ?? (await targetFor(settings, deps.sts));
  const token = await subjectToken(settings, deps, direct);
  const result = await deps.sts.exchange({
    subjectToken: token,
    subjectTokenType: TOKEN_TYPE_JWT,
    resource: t.resource,
    audience: t.audience,
    scopes: settings.scopes,
    ttlSeconds: settings.ttlSeconds,
  });
  deps.log(`issued: scope "${result.scopes?.join(' ') ?? '?'}", expires_in ${result.expiresIn ?? '?'}s`);
  return { result, target: t };
}
