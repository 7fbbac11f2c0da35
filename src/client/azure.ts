/**
 * Getting the Entra ID access token that becomes the subject token, with
 * @azure/identity, for a plan made by azure-plan.ts. Every failure becomes
 * AzureSignInError (exit 3) with advice, its AADSTS code, and no secret.
 */
import {
  AzureCliCredential,
  AzurePipelinesCredential,
  ClientAssertionCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  type TokenCredential,
  WorkloadIdentityCredential,
} from '@azure/identity';
import { aadstsAdvice, findAadstsCode } from './aadsts.ts';
import { diagnoseAuthority } from './authority.ts';
import type { AzurePlan } from './azure-plan.ts';
import { AzureSignInError } from './errors.ts';
import { redact, redactor } from './redact.ts';

export function buildCredential(plan: AzurePlan): TokenCredential {
  const common = {
    ...(plan.authorityHost ? { authorityHost: plan.authorityHost } : {}),
    disableInstanceDiscovery: plan.disableInstanceDiscovery,
  };
  const t = plan.tenantId ?? '';
  const c = plan.clientId ?? '';
  switch (plan.mode) {
    case 'secret':
      return new ClientSecretCredential(t, c, plan.secret ?? '', common);
    case 'certificate':
      return new ClientCertificateCredential(
        t,
        c,
        { certificatePath: plan.certificatePath ?? '', certificatePassword: plan.certificatePassword },
        { ...common, sendCertificateChain: plan.sendCertificateChain },
      );
    case 'workload-identity':
      return new WorkloadIdentityCredential({
        ...common,
        tenantId: t,
        clientId: c,
        tokenFilePath: plan.tokenFilePath,
      });
    case 'gitlab-oidc': {
      const assertion = plan.assertion ?? '';
      return new ClientAssertionCredential(t, c, async () => assertion, common);
    }
    case 'azure-pipelines':
      return new AzurePipelinesCredential(
        t,
        c,
        plan.serviceConnectionId ?? '',
        plan.systemAccessToken ?? '',
        common,
      );
    case 'managed-identity': {
      // Picked by `auto`: probe IMDS quickly first, as DefaultAzureCredential does, instead of retrying for a minute.
      const options = { sendProbeRequest: plan.auto } as Record<string, unknown>;
      return plan.clientId
        ? new ManagedIdentityCredential({ clientId: plan.clientId, ...options })
        : new ManagedIdentityCredential(options);
    }
    case 'azure-cli':
      return new AzureCliCredential(plan.tenantId ? { tenantId: plan.tenantId } : {});
  }
}

export async function getAzureToken(plan: AzurePlan, scope: string, timeoutMs: number): Promise<string> {
  let token: string;
  try {
    const credential = buildCredential(plan);
    const result = await credential.getToken(scope, { abortSignal: AbortSignal.timeout(timeoutMs) });
    if (!result?.token) throw new Error('the credential returned no token');
    token = result.token;
  } catch (err) {
    const described = describeAzureError(err, plan, scope);
    if (!needsDiagnosis(err, plan, described)) throw described;
    // MSAL's one word for a wrong tenant, an untrusted TLS certificate and an unreachable host:
    // ask the authority ourselves which it is (authority.ts).
    const found = await diagnoseAuthority({
      tenantId: plan.tenantId ?? '',
      authorityHost: plan.authorityHost,
      timeoutMs: Math.min(10_000, timeoutMs),
      extraCaCerts: process.env.NODE_EXTRA_CA_CERTS,
    }).catch(() => undefined);
    if (!found) throw described;
    throw new AzureSignInError(`${headOf(plan, scope)}: ${found.message}`, found.aadsts, { cause: err });
  }
  redactor.add(token);
  return token;
}

/** Modes that sign in at an authority for a tenant (not managed identity, not the Azure CLI). */
const AUTHORITY_MODES = new Set([
  'secret',
  'certificate',
  'workload-identity',
  'gitlab-oidc',
  'azure-pipelines',
]);

/**
 * Worth asking the authority why: MSAL could not resolve the tenant's endpoints, or the
 * failure looks like the network or TLS, or Entra ID said the tenant does not exist.
 */
export function needsDiagnosis(err: unknown, plan: AzurePlan, described: AzureSignInError): boolean {
  if (!AUTHORITY_MODES.has(plan.mode) || !plan.tenantId) return false;
  if (described.aadsts === 90002) return true;
  if (described.aadsts !== undefined) return false;
  const e = err as { message?: string; errorCode?: unknown; code?: unknown };
  const text = `${e?.message ?? String(err)} ${String(e?.errorCode ?? '')} ${String(e?.code ?? '')}`;
  return /endpoints_resolution_error|network|ECONN|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|timed? ?out|aborted|socket|fetch failed|certificate|self.signed|UNABLE_TO|CERT_|TLS/i.test(
    text,
  );
}

function headOf(plan: AzurePlan, scope: string): string {
  return `Azure sign-in failed (${plan.mode}: ${plan.description}, scope ${scope})`;
}

/** Turns an @azure/identity / MSAL error into one or two lines a pipeline engineer can act on. */
export function describeAzureError(err: unknown, plan: AzurePlan, scope: string): AzureSignInError {
  const e = err as {
    name?: string;
    message?: string;
    errorResponse?: { errorDescription?: string; errorCodes?: number[] };
  };
  const raw = `${e?.errorResponse?.errorDescription ?? ''}\n${e?.message ?? String(err)}`;
  const code = e?.errorResponse?.errorCodes?.[0] ?? findAadstsCode(raw);
  const head = headOf(plan, scope);
  if (code !== undefined) {
    return new AzureSignInError(`${head}: AADSTS${code}: ${aadstsAdvice(code)}`, code, { cause: err });
  }
  // No AADSTS code: keep the library's first meaningful line, scrubbed and short.
  const first = redact(
    (e?.message ?? String(err))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^(More details:|Trace ID|Correlation ID|Timestamp)/.test(l))
      .slice(0, 2)
      .join(' '),
  ).slice(0, 300);
  let hint = '';
  if (e?.name === 'CredentialUnavailableError' || /unavailable|not available/i.test(first)) {
    hint =
      plan.mode === 'managed-identity'
        ? ' — no managed identity endpoint answered; outside Azure set AZURE_TENANT_ID/AZURE_CLIENT_ID with AZURE_CLIENT_SECRET, a certificate, or a federated token, or choose --azure-auth'
        : plan.mode === 'azure-cli'
          ? ' — run `az login` first'
          : '';
  } else if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|socket|network|fetch failed/i.test(first)) {
    hint = ' — cannot reach Entra ID; check --authority-host / AZURE_AUTHORITY_HOST and the network';
  } else if (/certificate|self.signed|UNABLE_TO_VERIFY/i.test(first)) {
    hint = ' — TLS to the authority failed; set NODE_EXTRA_CA_CERTS to the CA that signed it';
  } else if (e?.name === 'AbortError' || /abort|timed? ?out/i.test(first)) {
    hint = ' — Entra ID did not answer in time';
  }
  return new AzureSignInError(`${head}: ${first}${hint}`, undefined, { cause: err });
}
