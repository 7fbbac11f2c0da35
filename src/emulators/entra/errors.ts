/**
 * Errors as Entra's token endpoint returns them (reference-error-codes.md):
 * `{ error, error_description: "AADSTS<code>: …\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …",
 *    error_codes: [code], timestamp, trace_id, correlation_id, error_uri }`.
 * `error_uri` points at Microsoft's public error lookup page for the code, as
 * Entra's does, since that page explains the code.
 */
import { randomUUID } from 'node:crypto';

export class AadstsError extends Error {
  static readonly code = 'ERR_ENTRA_EMULATOR_AADSTS';
  readonly code = AadstsError.code;
  override name = 'AadstsError';
  constructor(
    /** The AADSTS number, e.g. 7000215. */
    readonly aadsts: number,
    /** The OAuth `error` value. */
    readonly error: string,
    readonly status: number,
    /** The text after `AADSTS<code>: `. */
    readonly description: string,
  ) {
    super(`AADSTS${aadsts}: ${description}`);
  }
}

/** Entra's timestamp format: `2016-01-09 02:02:12Z`. */
export function entraTimestamp(d = new Date()): string {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

export function aadstsBody(err: AadstsError, correlationId: string, traceId = randomUUID()) {
  const timestamp = entraTimestamp();
  return {
    error: err.error,
    error_description: `${err.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [err.aadsts],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${err.aadsts}`,
  };
}

// One factory per AADSTS code the emulator returns, with the HTTP status Entra ID answers it with.
export const aadsts = {
  missingParameter: (p: string) =>
    new AadstsError(
      900144,
      'invalid_request',
      400,
      `The request body must contain the following parameter: '${p}'.`,
    ),
  postOnly: (method: string) =>
    new AadstsError(
      900561,
      'invalid_request',
      400,
      `The endpoint only accepts POST requests. Received a ${method} request.`,
    ),
  unsupportedGrantType: (g: string) =>
    new AadstsError(
      70003,
      'unsupported_grant_type',
      400,
      `The app requested an unsupported grant type '${g.slice(0, 100)}'. The emulator supports client_credentials.`,
    ),
  tenantNotFound: (t: string, error = 'invalid_request') =>
    new AadstsError(
      90002,
      error,
      400,
      `Tenant '${t.slice(0, 100)}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
    ),
  appNotFound: (clientId: string, tenant: string) =>
    new AadstsError(
      700016,
      'unauthorized_client',
      400,
      `Application with identifier '${clientId.slice(0, 100)}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    ),
  resourceNotFound: (resource: string, tenant: string) =>
    new AadstsError(
      500011,
      'invalid_resource',
      400,
      `The resource principal named ${resource.slice(0, 200)} was not found in the tenant named ${tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
    ),
  invalidScope: (scope: string) =>
    new AadstsError(
      70011,
      'invalid_scope',
      400,
      `The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope ${scope.slice(0, 200)} is not valid.`,
    ),
  badSecret: (clientId: string) =>
    new AadstsError(
      7000215,
      'invalid_client',
      401,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
    ),
  noCredential: () =>
    new AadstsError(
      7000216,
      'invalid_client',
      401,
      `'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.`,
    ),
  clientIdMismatch: () =>
    new AadstsError(
      700021,
      'invalid_client',
      401,
      `Client assertion application identifier doesn't match 'client_id' parameter.`,
    ),
  malformedAssertion: (why: string) =>
    new AadstsError(50027, 'invalid_request', 400, `JWT token is invalid or malformed. [Reason - ${why}]`),
  unsupportedAssertionType: () =>
    new AadstsError(
      70002,
      'invalid_client',
      401,
      `The provided value for the input parameter 'client_assertion_type' is not valid: it must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.`,
    ),
  assertionTime: (now: number, nbf: unknown, exp: unknown) =>
    new AadstsError(
      700024,
      'invalid_client',
      400,
      `Client assertion is not within its valid time range. Current time: ${iso(now)}, assertion valid from ${iso(nbf)}, expiry time of assertion ${iso(exp)}.`,
    ),
  badSignature: (why: string) =>
    new AadstsError(
      700027,
      'invalid_client',
      400,
      `Client assertion contains an invalid signature. [Reason - ${why}]`,
    ),
  noFederatedMatch: (iss: unknown, sub: unknown, aud: unknown) =>
    new AadstsError(
      70021,
      'invalid_request',
      400,
      `No matching federated identity record found for presented assertion. Assertion Issuer: '${clip(iss)}'. Assertion Subject: '${clip(sub)}'. Assertion Audience: '${clip(aud)}'.`,
    ),
  issuerUnreachable: (iss: string) =>
    new AadstsError(
      50166,
      'invalid_request',
      400,
      `Request to External OIDC endpoint failed. [Reason - the discovery document or keys of '${iss.slice(0, 200)}' could not be fetched]`,
    ),
};

function iso(v: unknown): string {
  return typeof v === 'number' && Number.isFinite(v) ? new Date(v * 1000).toISOString() : String(v);
}

function clip(v: unknown): string {
  return (Array.isArray(v) ? v.join(',') : String(v)).slice(0, 200);
}
