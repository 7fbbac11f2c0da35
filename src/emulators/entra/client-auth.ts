/**
 * Client authentication at the token endpoint (v2-oauth2-client-creds-grant-flow.md,
 * certificate-credentials.md, workload-identity-federation.md):
 *
 * 1. `client_secret` in the form or HTTP Basic (RFC 6749 §2.3.1: both parts form-urlencoded).
 * 2. `client_assertion` signed with a registered certificate: header `x5t#S256`
 *    (msal-node ≥ 2 with PS256, see msal-node ClientAssertion.createJwt) or
 *    `x5t` (RS256); `iss` = `sub` = client ID; `aud` = the tenant's token endpoint.
 * 3. `client_assertion` from an external OIDC issuer: verified with that
 *    issuer's keys and matched exactly (issuer, subject, audience) against a
 *    federated identity credential of the app.
 */
import { timingSafeEqual } from 'node:crypto';
import { compactVerify, decodeJwt, decodeProtectedHeader, importX509, type JWTPayload } from 'jose';
import type { AppConfig, TenantConfig } from './config.ts';
import { findApp } from './directory.ts';
import { AadstsError, aadsts } from './errors.ts';
import type { IssuerKeyFetcher } from './federation.ts';
import type { ClientAuthMethod } from './tokens.ts';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Clock skew allowed on assertion times. */
const SKEW_SECONDS = 60;

export interface ClientAuthInput {
  tenant: TenantConfig;
  form: URLSearchParams;
  authorization: string | undefined;
  /** The token endpoint URLs of this tenant an assertion's `aud` may name (v2 and v1). */
  tokenEndpoints: string[];
  issuers: IssuerKeyFetcher;
  nowSeconds: number;
}

export interface AuthenticatedClient {
  app: AppConfig;
  method: ClientAuthMethod;
  /** How, for the stats: `secret`, `certificate_PS256`, `certificate_RS256`, `federated_ES256`, … */
  via: string;
}

/** The client_id of the request (form first, else HTTP Basic); throws 900144 when there is none. */
export function requestClientId(form: URLSearchParams, authorization: string | undefined): string {
  const basic = parseBasic(authorization);
  const id = form.get('client_id') ?? basic?.id;
  if (!id) throw aadsts.missingParameter('client_id');
  return id;
}

export async function authenticateClient(input: ClientAuthInput): Promise<AuthenticatedClient> {
  const { tenant, form } = input;
  const basic = parseBasic(input.authorization);
  const clientId = requestClientId(form, input.authorization);
  if (basic && form.get('client_id') && basic.id !== form.get('client_id')) throw aadsts.clientIdMismatch();
  const app = findApp(tenant, clientId);
  if (!app) throw aadsts.appNotFound(clientId, tenant.name ?? tenant.id);

  const secret = form.get('client_secret') ?? basic?.secret;
  if (secret !== undefined && secret !== null) {
    if (!app.clientSecrets.some((s) => safeEqual(s.value, secret))) throw aadsts.badSecret(app.clientId);
    return { app, method: '1', via: 'secret' };
  }
  const assertion = form.get('client_assertion');
  if (assertion) {
    if (form.get('client_assertion_type') !== JWT_BEARER) throw aadsts.unsupportedAssertionType();
    let claims: JWTPayload;
    try {
      decodeProtectedHeader(assertion);
      claims = decodeJwt(assertion);
    } catch {
      throw aadsts.malformedAssertion('the client assertion is not a compact JWS with a JSON payload');
    }
    const alg = String(decodeProtectedHeader(assertion).alg);
    if (typeof claims.iss === 'string' && claims.iss.toLowerCase() === app.clientId.toLowerCase()) {
      await verifyCertificateAssertion(assertion, claims, app, input);
      return { app, method: '2', via: `certificate_${alg}` };
    }
    await verifyFederatedAssertion(assertion, claims, app, input);
    return { app, method: '2', via: `federated_${alg}` };
  }
  throw aadsts.noCredential();
}

async function verifyCertificateAssertion(
  assertion: string,
  claims: JWTPayload,
  app: AppConfig,
  input: ClientAuthInput,
): Promise<void> {
  const header = decodeProtectedHeader(assertion);
  const x5tS256 = header['x5t#S256'];
  const cert = app.clientCertificates.find((c) =>
    typeof x5tS256 === 'string'
      ? c.x5tS256 === x5tS256
      : typeof header.x5t === 'string' && c.x5t === header.x5t,
  );
  if (!cert)
    throw aadsts.badSignature(
      'The key was not found. No registered certificate matches the x5t#S256 or x5t header.',
    );
  if (header.alg !== 'PS256' && header.alg !== 'RS256')
    throw aadsts.badSignature(`alg ${String(header.alg)} is not RS256 or PS256`);
  try {
    await compactVerify(assertion, await importX509(cert.certificatePem, header.alg), {
      algorithms: [header.alg],
    });
  } catch {
    throw aadsts.badSignature('The signature does not verify with the registered certificate.');
  }
  if (typeof claims.sub !== 'string' || claims.sub.toLowerCase() !== app.clientId.toLowerCase()) {
    throw aadsts.malformedAssertion('the sub claim must equal the client ID');
  }
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.some((a) => typeof a === 'string' && input.tokenEndpoints.includes(a))) {
    throw aadsts.malformedAssertion(`the aud claim must be the token endpoint ${input.tokenEndpoints[0]}`);
  }
  checkTimes(claims, input.nowSeconds);
}

async function verifyFederatedAssertion(
  assertion: string,
  claims: JWTPayload,
  app: AppConfig,
  input: ClientAuthInput,
): Promise<void> {
  const { iss, sub, aud } = claims;
  const candidates = app.federatedCredentials.filter((f) => f.issuer === iss);
  if (typeof iss !== 'string' || candidates.length === 0) throw aadsts.noFederatedMatch(iss, sub, aud);
  let keys: Awaited<ReturnType<IssuerKeyFetcher['keysOf']>>;
  try {
    keys = await input.issuers.keysOf(iss);
  } catch {
    throw aadsts.issuerUnreachable(iss);
  }
  try {
    await compactVerify(assertion, keys, {
      algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'],
    });
  } catch {
    throw aadsts.badSignature('The signature does not verify with the issuer keys.');
  }
  checkTimes(claims, input.nowSeconds);
  const audiences = Array.isArray(aud) ? aud : [aud];
  const match = candidates.some(
    (f) => f.subject === sub && audiences.some((a) => typeof a === 'string' && f.audiences.includes(a)),
  );
  if (!match) throw aadsts.noFederatedMatch(iss, sub, aud);
}

function checkTimes(claims: JWTPayload, now: number): void {
  const { nbf, exp } = claims;
  if (
    typeof exp !== 'number' ||
    exp <= now - SKEW_SECONDS ||
    (typeof nbf === 'number' && nbf > now + SKEW_SECONDS)
  ) {
    throw aadsts.assertionTime(now, nbf ?? claims.iat, exp);
  }
}

function parseBasic(authorization: string | undefined): { id: string; secret: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return {
      id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
      secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')),
    };
  } catch {
    throw new AadstsError(
      900023,
      'invalid_request',
      400,
      'The Authorization header is not valid HTTP Basic.',
    );
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
