/**
 * The Entra ID emulator: HTTPS authority (discovery, JWKS, v1/v2 token
 * endpoints, operator controls under /_emulator) on 127.0.0.1 and ::1 with the
 * same port, and managed identity endpoints (IMDS, App Service) on a separate
 * plain-HTTP loopback port. Shares no code with the product. See README.md.
 *
 * @example
 * const entra = await startEntraEmulator({ stateDir: '.tanuki-dev/entra' });
 * // child processes: NODE_EXTRA_CA_CERTS=entra.caFile, authorityHost = entra.url
 * await entra.close();
 */

import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { dirname, resolve } from 'node:path';
import { ensureLocalCa } from '../tls.ts';
import { AdminRequestError, handleAdminRequest } from './admin.ts';
import { type EntraConfig, loadEntraConfigFile, parseEntraConfig, type RawEntraConfig } from './config.ts';
import { defaultEntraConfig } from './dev-seed.ts';
import { findTenant } from './directory.ts';
import { entraJwks, openidConfiguration } from './discovery.ts';
import { AadstsError, aadsts, aadstsBody } from './errors.ts';
import { IssuerKeyFetcher } from './federation.ts';
import { BodyTooLargeError, count, type EmulatorContext, notFound, sendJson } from './http.ts';
import { KeyStore } from './keys.ts';
import { handleManagedIdentityRequest } from './managed-identity.ts';
import { resolveEntraConfig } from './resolve.ts';
import { handleTokenRequest, NO_CACHE } from './token-endpoint.ts';
import { entraIssuer } from './tokens.ts';

export type {
  AppConfig,
  ClientCertificateConfig,
  EntraConfig,
  ManagedIdentityConfig,
  ResourceConfig,
  TenantConfig,
} from './config.ts';

export interface EntraEmulatorOptions {
  /** HTTPS port (0 or absent = any free port). */
  port?: number;
  /** Plain-HTTP managed identity port (0 or absent = any free port). */
  imdsPort?: number;
  /** YAML config (default: the built-in dev seed, dev-seed.ts). */
  configFile?: string;
  /** A parsed config object; overrides configFile. */
  config?: unknown;
  /** Where the CA, keys, generated secrets and client certificates are kept. */
  stateDir: string;
}

export interface EntraEmulatorHandle {
  /** `https://localhost:PORT`: the authorityHost. */
  url: string;
  port: number;
  /** `http://127.0.0.1:IMDSPORT`: AZURE_POD_IDENTITY_AUTHORITY_HOST; App Service IDENTITY_ENDPOINT is `{imdsUrl}/msi/token`. */
  imdsUrl: string;
  /** Absolute path of the CA PEM (for NODE_EXTRA_CA_CERTS / caFile). */
  caFile: string;
  /** The resolved config, generated secrets and certificate paths included. */
  config: EntraConfig;
  rotateSigningKey(): Promise<void>;
  close(): Promise<void>;
}

export async function startEntraEmulator(o: EntraEmulatorOptions): Promise<EntraEmulatorHandle> {
  // Validate first, so a config error leaves no socket behind.
  const raw: RawEntraConfig =
    o.config !== undefined
      ? parseEntraConfig(o.config)
      : o.configFile
        ? loadEntraConfigFile(o.configFile)
        : parseEntraConfig(defaultEntraConfig(), 'dev seed');
  const stateDir = resolve(o.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const ca = await ensureLocalCa(stateDir);
  const keys = await KeyStore.open(stateDir);
  const issuers = new IssuerKeyFetcher(ca.caCertPem);

  let ctx: EmulatorContext | undefined;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (!ctx) return sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'starting' });
    void route(ctx, req, res).catch((err) => sendError(res, err, correlationIdOf(req)));
  };
  const onManagedIdentity = (req: IncomingMessage, res: ServerResponse) => {
    if (!ctx) return sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'starting' });
    void handleManagedIdentityRequest(ctx, req, res).catch((err) =>
      sendError(res, err, correlationIdOf(req)),
    );
  };

  const servers: Server[] = [];
  try {
    const https = await listenDual(
      () => createHttpsServer({ key: ca.keyPem, cert: ca.certPem }, onRequest),
      o.port ?? 0,
    );
    servers.push(...https.servers);
    const imds = createHttpServer(onManagedIdentity);
    await listen(imds, o.imdsPort ?? 0, '127.0.0.1');
    servers.push(imds);
    const url = `https://localhost:${https.port}`;
    const imdsPort = portOf(imds);
    const baseDir = o.config === undefined && o.configFile ? dirname(resolve(o.configFile)) : process.cwd();
    const config = await resolveEntraConfig(raw, { stateDir, emulatorUrl: url, baseDir });
    ctx = { config, baseUrl: url, keys, issuers, stats: {}, now: Date.now };
    const live = ctx;
    let closed: Promise<void> | undefined;
    return {
      url,
      port: https.port,
      imdsUrl: `http://127.0.0.1:${imdsPort}`,
      caFile: ca.caFile,
      config,
      async rotateSigningKey() {
        await live.keys.rotateEntraKey(live.config.signingKeyGraceSeconds);
      },
      close() {
        closed ??= (async () => {
          await Promise.all(servers.map(closeServer));
          await issuers.close();
        })();
        return closed;
      },
    };
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    await issuers.close();
    throw err;
  }
}

const TENANT_ROUTE =
  /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|\.well-known\/openid-configuration|discovery\/v2\.0\/keys|discovery\/keys|oauth2\/v2\.0\/token|oauth2\/token)\/?$/;

async function route(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', ctx.baseUrl).pathname;
  if (path === '/_emulator' || path.startsWith('/_emulator/')) return handleAdminRequest(ctx, req, res, path);
  const m = TENANT_ROUTE.exec(path);
  if (!m?.[1] || !m[2]) return notFound(res, path);
  const tenantId = decodeURIComponent(m[1]);
  const what = m[2];
  if (what === 'oauth2/v2.0/token') return handleTokenRequest(ctx, req, res, tenantId, 2);
  if (what === 'oauth2/token') return handleTokenRequest(ctx, req, res, tenantId, 1);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendJson(res, 405, { error: 'invalid_request', error_description: 'GET only' });
  }
  const tenant = findTenant(ctx.config, tenantId);
  // Entra answers discovery for an unknown tenant with 400 invalid_tenant / AADSTS90002.
  if (!tenant) throw aadsts.tenantNotFound(tenantId, 'invalid_tenant');
  switch (what) {
    case 'v2.0/.well-known/openid-configuration':
      count(ctx, 'discovery_v2');
      return sendJson(res, 200, openidConfiguration(ctx.baseUrl, tenant.id, 2));
    case '.well-known/openid-configuration':
      count(ctx, 'discovery_v1');
      return sendJson(res, 200, openidConfiguration(ctx.baseUrl, tenant.id, 1));
    case 'discovery/v2.0/keys':
      count(ctx, 'jwks_v2');
      return sendJson(res, 200, entraJwks(ctx.keys, entraIssuer(ctx.baseUrl, tenant.id, 2)));
    default:
      count(ctx, 'jwks_v1');
      return sendJson(res, 200, entraJwks(ctx.keys));
  }
}

/** MSAL sends `client-request-id` as a header (and query parameter); Entra echoes it as the correlation ID. */
function correlationIdOf(req: IncomingMessage): string {
  const h = req.headers['client-request-id'];
  const v = typeof h === 'string' ? h : undefined;
  return v && /^[A-Za-z0-9-]{1,64}$/.test(v) ? v : randomUUID();
}

function sendError(res: ServerResponse, err: unknown, correlationId: string): void {
  if (res.headersSent) {
    res.destroy();
  } else if (err instanceof AadstsError) {
    const body = aadstsBody(err, correlationId);
    sendJson(res, err.status, body, {
      ...NO_CACHE,
      'client-request-id': correlationId,
      'x-ms-request-id': body.trace_id,
    });
  } else if (err instanceof BodyTooLargeError) {
    sendJson(res, 413, { error: 'invalid_request', error_description: err.message }, { connection: 'close' });
  } else if (err instanceof AdminRequestError) {
    sendJson(res, 400, { error: 'invalid_request', error_description: err.message });
  } else {
    // Never a stack trace on the wire; the message (no token or secret in it) goes to stderr.
    process.stderr.write(`entra emulator: internal error: ${(err as Error)?.message ?? String(err)}\n`);
    sendJson(res, 500, {
      error: 'server_error',
      error_description: 'internal error in the Entra ID emulator',
    });
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolveListen, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolveListen();
    });
  });
}

function portOf(server: Server): number {
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

/**
 * 127.0.0.1 first (port 0 = any), then ::1 on the same port so `localhost`
 * works whichever address it resolves to first. Without IPv6, 127.0.0.1 alone.
 * With an ephemeral port taken on ::1 by someone else, try another port.
 */
async function listenDual(make: () => Server, port: number): Promise<{ servers: Server[]; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const v4 = make();
    await listen(v4, port, '127.0.0.1');
    const chosen = portOf(v4);
    const v6 = make();
    try {
      await listen(v6, chosen, '::1');
      return { servers: [v4, v6], port: chosen };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' && port === 0 && attempt < 5) {
        await closeServer(v4);
        continue;
      }
      return { servers: [v4], port: chosen };
    }
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolveClose) => {
    if (!server.listening) return resolveClose();
    server.close(() => resolveClose());
    server.closeAllConnections();
  });
}
