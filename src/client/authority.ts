/**
 * Why an Entra ID sign-in could not even start. MSAL reports a wrong tenant, an
 * authority whose TLS certificate Node does not trust (a private CA without
 * NODE_EXTRA_CA_CERTS) and an unreachable authority host all as
 * `endpoints_resolution_error`. When a sign-in fails that way, the client fetches
 * the tenant's OpenID configuration itself —
 * `<authority>/<tenant>/v2.0/.well-known/openid-configuration`, the document
 * MSAL failed to resolve — and says which of the three it is.
 *
 * Entra ID answers an unknown tenant there with 400
 * `{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant '…' not found…","error_codes":[90002]}`
 * (Microsoft Entra error codes: AADSTS90002 InvalidTenantName).
 */
import { aadstsAdvice, findAadstsCode } from './aadsts.ts';
import { redact } from './redact.ts';

export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';

export interface AuthorityDiagnosis {
  /** One sentence: what is wrong and what to change. */
  message: string;
  /** The AADSTS code Entra ID gave, when it gave one (90002 for an unknown tenant). */
  aadsts?: number;
}

export interface DiagnoseOptions {
  tenantId: string;
  /** --authority-host / AZURE_AUTHORITY_HOST; Entra's public cloud when absent. */
  authorityHost: string | undefined;
  timeoutMs: number;
  /** NODE_EXTRA_CA_CERTS as this process started with it (Node reads it at start-up only). */
  extraCaCerts: string | undefined;
  fetch?: typeof fetch;
}

/** Certificate errors that mean "Node does not trust the CA that signed it". */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** An error document is a few hundred bytes; a hostile or broken host gets no more than this read. */
const MAX_BODY = 16 * 1024;

async function readCapped(res: Response, cap: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < cap) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, cap).toString('utf8');
}

/** A tenant as typed by the user, shown safely (it came from a flag or variable). */
function showTenant(tenant: string): string {
  return /^[A-Za-z0-9._-]{1,100}$/.test(tenant) ? tenant : JSON.stringify(tenant.slice(0, 60));
}

/** The authority's origin and path, no trailing slash (`https://login.microsoftonline.com`). */
export function authorityBase(authorityHost: string | undefined): string {
  return (authorityHost ?? DEFAULT_AUTHORITY_HOST).replace(/\/+$/, '');
}

export function discoveryUrl(authorityHost: string | undefined, tenantId: string): string {
  return `${authorityBase(authorityHost)}/${encodeURIComponent(tenantId)}/v2.0/.well-known/openid-configuration`;
}

function transportProblem(err: unknown, h: string, o: DiagnoseOptions): AuthorityDiagnosis {
  const code = errorCode(err);
  const name = (err as { name?: string })?.name;
  if (code !== undefined && UNTRUSTED.has(code)) {
    const set =
      o.extraCaCerts === undefined || o.extraCaCerts === ''
        ? 'set NODE_EXTRA_CA_CERTS to the PEM file of the CA that signed it (before node starts)'
        : `NODE_EXTRA_CA_CERTS is ${JSON.stringify(o.extraCaCerts.slice(0, 200))}, which does not hold the CA that signed it`;
    return { message: `TLS: certificate of ${h} not trusted (${code}) — ${set}` };
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return {
      message: `TLS: the certificate of ${h} is for another host name (${code}) — check --authority-host / AZURE_AUTHORITY_HOST`,
    };
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    return {
      message: `TLS: the certificate of ${h} has expired or is not yet valid (${code}) — check the clock, or the authority's certificate`,
    };
  if (code !== undefined && (/^ERR_(TLS|SSL)_/.test(code) || code.includes('CERT')))
    return { message: `TLS with ${h} failed (${code})` };
  const why =
    name === 'TimeoutError' || name === 'AbortError'
      ? `no answer within ${Math.round(o.timeoutMs / 1000)}s`
      : (code ??
        redact(
          String((err as { cause?: { message?: string } })?.cause?.message ?? (err as Error)?.message ?? err),
        ).slice(0, 120));
  return {
    message: `cannot reach ${h} (${why}) — check --authority-host / AZURE_AUTHORITY_HOST, the network and any proxy`,
  };
}

/**
 * Fetches the tenant's OpenID configuration and says what is wrong, or undefined when
 * the document is there (then the sign-in failed for another reason, and MSAL's words stand).
 */
export async function diagnoseAuthority(o: DiagnoseOptions): Promise<AuthorityDiagnosis | undefined> {
  const base = authorityBase(o.authorityHost);
  let h: string;
  try {
    h = new URL(base).host;
  } catch {
    return { message: `--authority-host / AZURE_AUTHORITY_HOST "${base.slice(0, 80)}" is not a URL` };
  }
  const url = discoveryUrl(o.authorityHost, o.tenantId);
  let res: Response;
  let body = '';
  try {
    res = await (o.fetch ?? fetch)(url, {
      redirect: 'manual',
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(o.timeoutMs),
    });
    body = await readCapped(res, MAX_BODY);
  } catch (err) {
    return transportProblem(err, h, o);
  }
  if (res.status === 200) return undefined;
  let parsed: { error?: unknown; error_description?: unknown; error_codes?: unknown } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {}
  const codes = Array.isArray(parsed.error_codes) ? parsed.error_codes : [];
  const code =
    (typeof codes[0] === 'number' ? codes[0] : undefined) ??
    findAadstsCode(typeof parsed.error_description === 'string' ? parsed.error_description : '');
  const tenant = showTenant(o.tenantId);
  if (code === 90002 || (code === undefined && parsed.error === 'invalid_tenant'))
    return {
      message: `tenant ${tenant} not found at ${h} (AADSTS90002) — check --tenant-id / --authority-host (AZURE_TENANT_ID / AZURE_AUTHORITY_HOST)`,
      aadsts: 90002,
    };
  if (code !== undefined)
    return { message: `${h} refused tenant ${tenant}: AADSTS${code}: ${aadstsAdvice(code)}`, aadsts: code };
  return {
    message: `${h} answered HTTP ${res.status} for the tenant's OpenID configuration (${url}) — is --authority-host / AZURE_AUTHORITY_HOST an Entra ID authority, e.g. ${DEFAULT_AUTHORITY_HOST}?`,
  };
}
