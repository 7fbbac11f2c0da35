/**
 * Operator controls for tests, under `/_emulator/` (no Entra API lives there):
 *
 * - `POST /_emulator/rotate-keys` `{graceSeconds?}`: a new signing key (new kid) signs from now on;
 *   the old one stays in the JWKS for the grace period (default: config `signingKeyGraceSeconds`, 1 h).
 * - `GET  /_emulator/oidc/.well-known/openid-configuration`, `GET /_emulator/oidc/jwks`: the built-in
 *   OIDC test issuer (`{url}/_emulator/oidc`), with an RSA (RS256) and an EC (ES256) key.
 * - `POST /_emulator/tokens` `{claims?, header?, lifetimeSeconds?, alg?}`: a test-issuer token → `{token}`.
 * - `POST /_emulator/tokens` `{entra: {tenant?, clientId?, resource?, version?, roles?, extraClaims?, header?, lifetimeSeconds?}}`:
 *   an Entra access token signed with the current Entra key → `{token}`.
 * - `GET  /_emulator/stats`: request counters by route.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FEDERATION_AUDIENCE } from './dev-seed.ts';
import { findApp, findResource, findTenant, rolesOn } from './directory.ts';
import { testIssuerConfiguration, testIssuerJwks } from './discovery.ts';
import { count, type EmulatorContext, notFound, readBody, sendJson } from './http.ts';
import { CLIENT_CREDENTIALS_LIFETIME, signEntraToken, signTestIssuerToken } from './tokens.ts';

export class AdminRequestError extends Error {
  static readonly code = 'ERR_ENTRA_EMULATOR_ADMIN_REQUEST';
  readonly code = AdminRequestError.code;
  override name = 'AdminRequestError';
}

export async function handleAdminRequest(
  ctx: EmulatorContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const route = `${req.method} ${path.replace(/\/+$/, '')}`;
  switch (route) {
    case 'POST /_emulator/rotate-keys': {
      const body = await jsonBody(req);
      const grace = body.graceSeconds ?? ctx.config.signingKeyGraceSeconds;
      if (typeof grace !== 'number' || grace < 0)
        throw new AdminRequestError('graceSeconds must be a number ≥ 0');
      const rotated = await ctx.keys.rotateEntraKey(grace);
      const published = ctx.keys.publishedEntraKeys().map((k) => k.kid);
      return sendJson(res, 200, { ...rotated, published });
    }
    case 'GET /_emulator/oidc/.well-known/openid-configuration':
      count(ctx, 'test_issuer_discovery');
      return sendJson(res, 200, testIssuerConfiguration(ctx.config.testIssuer));
    case 'GET /_emulator/oidc/jwks':
      count(ctx, 'test_issuer_jwks');
      return sendJson(res, 200, testIssuerJwks(ctx.keys));
    case 'POST /_emulator/tokens': {
      const body = await jsonBody(req);
      const token =
        body.entra === undefined
          ? await mintTestIssuerToken(ctx, body)
          : await mintEntraToken(ctx, body.entra);
      return sendJson(res, 200, { token }, { 'cache-control': 'no-store' });
    }
    case 'GET /_emulator/stats':
      return sendJson(res, 200, { ...ctx.stats });
    default:
      return notFound(res, path);
  }
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new AdminRequestError('the body must be JSON');
  }
  if (!isObject(v)) throw new AdminRequestError('the body must be a JSON object');
  return v;
}

async function mintTestIssuerToken(ctx: EmulatorContext, body: Record<string, unknown>): Promise<string> {
  const claims = optionalObject(body.claims, 'claims');
  const header = { ...optionalObject(body.header, 'header') };
  if (body.alg !== undefined) header.alg = body.alg;
  const lifetimeSeconds = optionalNumber(body.lifetimeSeconds, 'lifetimeSeconds');
  try {
    const signed = await signTestIssuerToken(
      ctx.keys,
      { issuer: ctx.config.testIssuer, claims, header, lifetimeSeconds },
      FEDERATION_AUDIENCE,
      ctx.now(),
    );
    return signed.token;
  } catch (err) {
    throw new AdminRequestError(`cannot sign: ${(err as Error).message}`);
  }
}

/**
 * An Entra access token without a token request: defaults are the first
 * tenant, its first app and its first resource's first identifier URI. Any
 * value is accepted (an unknown tenant or client makes a token that names
 * it), so security tests can build tokens Entra would never issue, signed by
 * the real key.
 */
async function mintEntraToken(ctx: EmulatorContext, raw: unknown): Promise<string> {
  const spec = optionalObject(raw, 'entra') ?? {};
  const first = ctx.config.tenants[0];
  const tenantId = optionalString(spec.tenant, 'entra.tenant') ?? first?.id ?? randomUUID();
  const tenant = findTenant(ctx.config, tenantId);
  const clientId =
    optionalString(spec.clientId, 'entra.clientId') ?? tenant?.apps[0]?.clientId ?? randomUUID();
  const requested =
    optionalString(spec.resource, 'entra.resource') ??
    tenant?.resources[0]?.identifierUris[0] ??
    tenant?.resources[0]?.clientId ??
    'api://unknown';
  const resource = tenant ? findResource(tenant, requested) : undefined;
  const principal =
    (tenant && findApp(tenant, clientId)) ??
    tenant?.managedIdentities.find((m) => m.clientId.toLowerCase() === clientId.toLowerCase());
  const version = parseVersion(spec.version) ?? resource?.accessTokenAcceptedVersion ?? 1;
  const roles = spec.roles ?? (resource && principal ? rolesOn(resource, principal.appRoleAssignments) : []);
  if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string'))
    throw new AdminRequestError('entra.roles must be strings');
  try {
    const signed = await signEntraToken(
      ctx.keys,
      {
        baseUrl: ctx.baseUrl,
        tenantId,
        clientId,
        objectId: principal?.objectId ?? randomUUID(),
        clientAuth: '1',
        requestedResource: requested,
        resourceClientId: resource?.clientId ?? requested,
        version,
        roles: roles as string[],
        idtyp: resource?.idtypOptionalClaim ?? false,
        lifetimeSeconds:
          optionalNumber(spec.lifetimeSeconds, 'entra.lifetimeSeconds') ?? CLIENT_CREDENTIALS_LIFETIME,
        extraClaims: optionalObject(spec.extraClaims, 'entra.extraClaims'),
        header: optionalObject(spec.header, 'entra.header'),
      },
      ctx.now(),
    );
    return signed.token;
  } catch (err) {
    throw new AdminRequestError(`cannot sign: ${(err as Error).message}`);
  }
}

function parseVersion(v: unknown): 1 | 2 | undefined {
  if (v === undefined) return undefined;
  if (v === 1 || v === '1' || v === '1.0') return 1;
  if (v === 2 || v === '2' || v === '2.0') return 2;
  throw new AdminRequestError('entra.version must be 1, 2, "1.0" or "2.0"');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalObject(v: unknown, name: string): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw new AdminRequestError(`${name} must be an object`);
  return v;
}

function optionalString(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new AdminRequestError(`${name} must be a non-empty string`);
  return v;
}

function optionalNumber(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new AdminRequestError(`${name} must be a number`);
  return v;
}
