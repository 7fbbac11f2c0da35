/**
 * One exchange from start to end: get the subject token (Azure or a file or
 * variable), resolve the target, call the STS. Shared by `token`, `exec` and
 * the git credential helper.
 */
import { readFileSync } from 'node:fs';
import { type AzurePlan, planAzureAuth } from './azure-plan.ts';
import { UsageError } from './errors.ts';
import { redactor } from './redact.ts';
import type { ClientSettings, Env } from './settings.ts';
import { type ExchangeResult, type StsClient, type StsMetadata, TOKEN_TYPE_JWT } from './sts.ts';
import { resolveTarget, type Target } from './target.ts';

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
    let text: string;
    try {
      text = readFileSync(s.path, 'utf8');
    } catch (err) {
      throw new UsageError(
        `cannot read --subject-token-file ${s.path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    const token = text.trim();
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
    redactor.add(token);
    return token;
  }
  return undefined;
}

/** The target, fetching STS metadata only when a path needs `gitlab_url`. */
export async function targetFor(
  settings: ClientSettings,
  sts: StsClient,
  resource = settings.resource,
): Promise<Target> {
  let gitlabUrl: string | undefined;
  if (!resource || !/^[a-z][a-z0-9+.-]*:\/\//i.test(resource)) gitlabUrl = (await sts.metadata()).gitlab_url;
  else gitlabUrl = (await sts.metadata().catch(() => ({}) as StsMetadata)).gitlab_url;
  return resolveTarget(resource, gitlabUrl);
}

export async function subjectToken(settings: ClientSettings, deps: MintDeps): Promise<string> {
  const direct = readDirectSubjectToken(settings, deps.env);
  if (direct !== undefined) {
    deps.log(
      `subject token: ${settings.subject.kind === 'file' ? 'file' : 'variable'} (direct OIDC, not Azure)`,
    );
    return direct;
  }
  if (settings.subject.kind !== 'azure') throw new Error('unreachable');
  const plan = planAzureAuth(settings.subject.azure, deps.env);
  const scope = settings.subject.azure.scope ?? (await deps.sts.metadata()).azure_scope;
  if (!scope) {
    throw new UsageError(
      'the STS metadata names no azure_scope: pass --azure-scope api://<STS App ID URI>/.default (or TANUKI_AZURE_SCOPE)',
    );
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
  // Resolve the target first: a bad --resource is a usage error and costs no sign-in.
  const t = target ?? (await targetFor(settings, deps.sts));
  const token = await subjectToken(settings, deps);
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
