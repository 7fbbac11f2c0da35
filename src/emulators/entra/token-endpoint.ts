/**
 * `POST /{tenant}/oauth2/v2.0/token` and `POST /{tenant}/oauth2/token` (v1),
 * grant `client_credentials` only (v2-oauth2-client-creds-grant-flow.md).
 *
 * Checks in this order: tenant (90002), grant type (900144, 70003), client ID
 * (900144, 700016), scope or resource syntax (900144, 70011), client
 * credential (7000216, 7000215, 700024, 700027, 70021), resource (500011).
 * Unknown parameters (MSAL's `client-request-id`, `x-client-SKU`, `claims`, …)
 * are ignored. The token version follows the resource's
 * `accessTokenAcceptedVersion`, not the endpoint; the v1 response carries
 * string values plus `expires_on`, `not_before` and `resource`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticateClient, requestClientId } from './client-auth.ts';
import { findApp, findResource, findTenant, rolesOn } from './directory.ts';
import { aadsts } from './errors.ts';
import { count, type EmulatorContext, readBody, sendJson } from './http.ts';
import { CLIENT_CREDENTIALS_LIFETIME, signEntraToken } from './tokens.ts';

export const NO_CACHE = { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' };

/** Scope values Entra adds for OIDC and ignores for client credentials. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

export async function handleTokenRequest(
  ctx: EmulatorContext,
  req: IncomingMessage,
  res: ServerResponse,
  tenantId: string,
  endpoint: 1 | 2,
): Promise<void> {
  count(ctx, endpoint === 2 ? 'token_v2' : 'token_v1');
  if (req.method !== 'POST') throw aadsts.postOnly(req.method ?? '?');
  const tenant = findTenant(ctx.config, tenantId);
  if (!tenant) throw aadsts.tenantNotFound(tenantId);
  const form = new URLSearchParams(await readBody(req));

  const grantType = form.get('grant_type');
  if (!grantType) throw aadsts.missingParameter('grant_type');
  if (grantType !== 'client_credentials') throw aadsts.unsupportedGrantType(grantType);

  const clientId = requestClientId(form, req.headers.authorization);
  if (!findApp(tenant, clientId)) throw aadsts.appNotFound(clientId, tenant.name ?? tenant.id);

  const requested = endpoint === 2 ? resourceFromScope(form.get('scope')) : form.get('resource');
  if (!requested) throw aadsts.missingParameter('resource');

  const base = `${ctx.baseUrl}/${tenant.id}`;
  const { app, method, via } = await authenticateClient({
    tenant,
    form,
    authorization: req.headers.authorization,
    tokenEndpoints: [`${base}/oauth2/v2.0/token`, `${base}/oauth2/token`],
    issuers: ctx.issuers,
    nowSeconds: Math.floor(ctx.now() / 1000),
  });

  count(ctx, `client_auth_${via}`);
  const resource = findResource(tenant, requested);
  if (!resource) throw aadsts.resourceNotFound(requested, tenant.name ?? tenant.id);

  const signed = await signEntraToken(
    ctx.keys,
    {
      baseUrl: ctx.baseUrl,
      tenantId: tenant.id,
      clientId: app.clientId,
      objectId: app.objectId,
      clientAuth: method,
      requestedResource: requested,
      resourceClientId: resource.clientId,
      version: resource.accessTokenAcceptedVersion,
      roles: rolesOn(resource, app.appRoleAssignments),
      idtyp: resource.idtypOptionalClaim,
      lifetimeSeconds: CLIENT_CREDENTIALS_LIFETIME,
    },
    ctx.now(),
  );
  const lifetime = String(CLIENT_CREDENTIALS_LIFETIME);
  const body =
    endpoint === 2
      ? {
          token_type: 'Bearer',
          expires_in: CLIENT_CREDENTIALS_LIFETIME,
          ext_expires_in: CLIENT_CREDENTIALS_LIFETIME,
          access_token: signed.token,
        }
      : {
          token_type: 'Bearer',
          expires_in: lifetime,
          ext_expires_in: lifetime,
          expires_on: String(signed.exp),
          not_before: String(signed.nbf),
          resource: requested,
          access_token: signed.token,
        };
  sendJson(res, 200, body, NO_CACHE);
}

/** `X/.default` → X. One resource only; anything else is AADSTS70011. */
function resourceFromScope(scope: string | null): string {
  if (scope === null || scope.trim() === '') throw aadsts.missingParameter('scope');
  const scopes = scope.split(/\s+/).filter((s) => s && !OIDC_SCOPES.has(s));
  const only = scopes[0];
  if (scopes.length !== 1 || !only?.endsWith('/.default') || only.length <= '/.default'.length) {
    throw aadsts.invalidScope(scope);
  }
  return only.slice(0, -'/.default'.length);
}
