/**
 * Managed identity endpoints on a separate plain-HTTP port, as on an Azure host.
 *
 * - IMDS (how-to-use-vm-token.md): `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
 *   `[&client_id=|&object_id=|&msi_res_id=]` with header `Metadata: true`;
 *   string-valued response. msal-node reaches it through
 *   `AZURE_POD_IDENTITY_AUTHORITY_HOST` + `/metadata/identity/oauth2/token`
 *   (msal-node Imds.tryCreate). Without that variable @azure/identity first
 *   probes with no Metadata header and treats any answer but a 403 mentioning
 *   "unreachable" as "available" (identity imdsMsi.isAvailable); IMDS answers
 *   such a probe with 400, as here.
 * - App Service (overview-managed-identity.md): `GET {IDENTITY_ENDPOINT}?resource=…&api-version=2019-08-01`
 *   with `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; optional `client_id`,
 *   `principal_id` (msal-node sends `object_id`), `mi_res_id`. Served at
 *   `/msi/token`.
 *
 * Errors are 400 (msal-node retries IMDS 404/410/429/5xx, so a 400 ends a
 * request quickly). Tokens live about 24 hours.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { findManagedIdentity, findResource, type ManagedIdentitySelector, rolesOn } from './directory.ts';
import { aadsts, aadstsBody } from './errors.ts';
import { count, type EmulatorContext, notFound, sendJson } from './http.ts';
import { MANAGED_IDENTITY_LIFETIME, signEntraToken } from './tokens.ts';

export const IMDS_TOKEN_PATH = '/metadata/identity/oauth2/token';
export const APP_SERVICE_TOKEN_PATH = '/msi/token';

export async function handleManagedIdentityRequest(
  ctx: EmulatorContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const path = url.pathname.replace(/\/+$/, '').toLowerCase();
  if (path === IMDS_TOKEN_PATH) return imds(ctx, req, res, url.searchParams);
  if (path === APP_SERVICE_TOKEN_PATH) return appService(ctx, req, res, url.searchParams);
  notFound(res, url.pathname);
}

async function imds(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, q: URLSearchParams) {
  count(ctx, 'imds');
  if (req.method !== 'GET')
    return sendJson(res, 405, { error: 'invalid_request', error_description: 'GET only' });
  if (req.headers.metadata !== 'true') return badRequest(res, 'Required metadata header not specified');
  if (!q.get('api-version')) return badRequest(res, "Required query variable 'api-version' is missing");
  const selector = {
    clientId: q.get('client_id'),
    objectId: q.get('object_id'),
    resourceId: q.get('msi_res_id'),
  };
  const issued = await issue(ctx, res, q.get('resource'), selector);
  if (!issued) return;
  const { signed, resource, clientId } = issued;
  const lifetime = String(signed.exp - Math.floor(ctx.now() / 1000));
  sendJson(res, 200, {
    access_token: signed.token,
    client_id: clientId,
    expires_in: lifetime,
    expires_on: String(signed.exp),
    ext_expires_in: lifetime,
    not_before: String(signed.nbf),
    resource,
    token_type: 'Bearer',
    refresh_token: '',
  });
}

async function appService(
  ctx: EmulatorContext,
  req: IncomingMessage,
  res: ServerResponse,
  q: URLSearchParams,
) {
  count(ctx, 'app_service');
  if (req.method !== 'GET')
    return sendJson(res, 405, { error: 'invalid_request', error_description: 'GET only' });
  const header = req.headers['x-identity-header'];
  if (typeof header !== 'string' || !safeEqual(header, ctx.config.appServiceIdentityHeader)) {
    return sendJson(res, 401, { statusCode: 401, message: 'X-IDENTITY-HEADER is missing or wrong' });
  }
  if (q.get('api-version') !== '2019-08-01') return badRequest(res, "api-version must be '2019-08-01'");
  const selector = {
    clientId: q.get('client_id'),
    objectId: q.get('principal_id') ?? q.get('object_id'),
    resourceId: q.get('mi_res_id') ?? q.get('msi_res_id'),
  };
  const issued = await issue(ctx, res, q.get('resource'), selector);
  if (!issued) return;
  sendJson(res, 200, {
    access_token: issued.signed.token,
    expires_on: String(issued.signed.exp),
    resource: issued.resource,
    token_type: 'Bearer',
    client_id: issued.clientId,
  });
}

async function issue(
  ctx: EmulatorContext,
  res: ServerResponse,
  requested: string | null,
  raw: { clientId: string | null; objectId: string | null; resourceId: string | null },
) {
  if (!requested) return void badRequest(res, "Required query variable 'resource' is missing");
  const given = Object.entries(raw).filter(([, v]) => v);
  if (given.length > 1)
    return void badRequest(res, 'Give at most one of client_id, object_id and msi_res_id');
  const selector: ManagedIdentitySelector = Object.fromEntries(given);
  const found = findManagedIdentity(ctx.config, selector);
  if (!found) return void badRequest(res, 'Identity not found');
  const { tenant, identity } = found;
  const resource = findResource(tenant, requested);
  if (!resource) {
    const err = aadsts.resourceNotFound(requested, tenant.name ?? tenant.id);
    return void sendJson(res, 400, aadstsBody(err, randomUUID()));
  }
  const signed = await signEntraToken(
    ctx.keys,
    {
      baseUrl: ctx.baseUrl,
      tenantId: tenant.id,
      clientId: identity.clientId,
      objectId: identity.objectId,
      clientAuth: '2',
      requestedResource: requested,
      resourceClientId: resource.clientId,
      version: resource.accessTokenAcceptedVersion,
      roles: rolesOn(resource, identity.appRoleAssignments),
      idtyp: resource.idtypOptionalClaim,
      lifetimeSeconds: MANAGED_IDENTITY_LIFETIME,
      managedIdentityResourceId: identity.resourceId,
    },
    ctx.now(),
  );
  return { signed, resource: requested, clientId: identity.clientId };
}

function badRequest(res: ServerResponse, description: string): void {
  sendJson(res, 400, { error: 'invalid_request', error_description: description });
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
