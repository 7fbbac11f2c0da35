/**
 * The STS's HTTP surface (fastify). Routes: POST /token (RFC 8693; also
 * POST /oauth/token, where the request people write for GitLab's own token
 * endpoint goes; the metadata advertises /token),
 * POST /revoke (RFC 7009), GET /.well-known/oauth-authorization-server
 * (RFC 8414), GET /client/tanuki-sts.mjs (the pipeline client, client-bundle.ts),
 * /healthz, /readyz. No /metrics here: metrics have a listener of
 * their own (metrics.ts, `server.metricsListen`). One error handler shapes every
 * error as RFC 6749 §5.2 JSON; nothing unexpected ever shows a stack trace.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { GRANT_SCOPES } from '../policy/index.ts';
import { sha256Hex } from '../util/hash.ts';
import { GRANT_TYPE_TOKEN_EXCHANGE } from '../util/oauth-urns.ts';
import { CLIENT_ROUTE, type ClientBundle } from './client-bundle.ts';
import type { StsContext } from './context.ts';
import { CLIENT_AUTH_REALM, InvalidRequestError, refusalReason, StsError } from './errors.ts';
import { exchangeToken } from './exchange.ts';
import { parseForm } from './form.ts';
import { revokeToken } from './revoke.ts';
import { UNEXPECTED_OUTCOME, unexpectedError } from './unexpected.ts';

const FORM = 'application/x-www-form-urlencoded';

export interface BuildAppOptions {
  logger?: Logger | false;
  /**
   * The context a request starting now uses (reload.ts swaps it); default: always `sts`. Each
   * request reads it once, so it finishes under the configuration it started with. The server's
   * own settings (body limit, timeouts, TLS, proxy trust) are `sts`'s: restart-only.
   */
  current?: () => StsContext;
}

export function buildApp(sts: StsContext, options: BuildAppOptions = {}): FastifyInstance {
  const { server } = sts.config;
  const current = options.current ?? (() => sts);
  // Node only enforces requestTimeout (a whole request, drip-fed body included) when it
  // is given to http.createServer itself and its connection check runs often enough;
  // setting it on the server afterwards, as Fastify does, is not enough on Node 20.
  const slowClientLimits = {
    requestTimeout: server.requestTimeout * 1000,
    headersTimeout: server.requestTimeout * 1000,
    connectionsCheckingInterval: 1000,
  };
  // Fastify hands `http` to http.createServer and `https` to https.createServer.
  const transport = server.tls
    ? {
        https: {
          ...slowClientLimits,
          cert: readFileSync(server.tls.cert),
          key: readFileSync(server.tls.key),
        },
      }
    : { http: slowClientLimits };
  const app = Fastify({
    ...(transport as object),
    loggerInstance: options.logger || undefined,
    logger: options.logger ? undefined : false,
    // Fastify's own request logging would print URLs; ours logs less.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: server.bodyLimit,
    trustProxy: server.trustProxy,
    requestTimeout: server.requestTimeout * 1000,
    connectionTimeout: server.requestTimeout * 1000,
    return503OnClosing: true,
    genReqId: () => randomUUID(),
    // Errors Fastify raises before routing (a URL that does not decode: `/%`) get our
    // shape too, rather than Fastify's default body echoing the path. No hook runs for
    // these, so the common headers are set here.
    frameworkErrors: (err, request, reply) => {
      commonHeaders(request, reply);
      return sendError(err, request, reply, current(), true);
    },
  }) as unknown as FastifyInstance;

  // Bodies are read as text up to bodyLimit (413 beyond it, before anything else);
  // the routes check the content type themselves so that every refusal has our shape.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.addHook('onSend', async (request, reply) => {
    commonHeaders(request, reply);
  });

  app.setErrorHandler((err, request, reply) => sendError(err, request, reply, current(), true));
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send({ error: 'not_found', error_description: 'no such endpoint', request_id: request.id });
  });

  // Refusals are answered here rather than thrown on through Fastify's error
  // path (a rejected handler promise, onError hooks, the error handler): under a
  // flood of bad tokens refusing is this route's common case (docs/performance.md).
  // /oauth/token: GitLab's token endpoint path, so the request people already write for GitLab
  // works with the host name changed (client_id/client_secret included: client-auth.ts).
  const token = async (request: FastifyRequest, reply: FastifyReply) => {
    const ctx = current();
    try {
      const params = auditedForm(request, ctx, 'exchange');
      const body = await exchangeToken(ctx, params, {
        requestId: request.id,
        clientIp: request.ip,
        authorization: request.headers.authorization,
      });
      return reply.code(200).type('application/json').send(body);
    } catch (err) {
      return sendError(err, request, reply, ctx);
    }
  };
  app.post('/token', token);
  app.post('/oauth/token', token);

  app.post('/revoke', async (request, reply) => {
    const ctx = current();
    try {
      const params = auditedForm(request, ctx, 'revoke');
      await revokeToken(ctx, params, { requestId: request.id, clientIp: request.ip });
      return reply.code(200).type('application/json').send({});
    } catch (err) {
      return sendError(err, request, reply, ctx);
    }
  });

  for (const path of ['/token', '/oauth/token', '/revoke']) {
    app.route({
      method: ['GET', 'PUT', 'DELETE', 'PATCH'],
      url: path,
      handler: async (_req, reply) =>
        reply
          .code(405)
          .header('Allow', 'POST')
          .send({ error: 'invalid_request', error_description: 'use POST' }),
    });
  }

  app.get('/.well-known/oauth-authorization-server', async () => metadata(current()));
  // HEAD too: Fastify answers HEAD for every GET route (exposeHeadRoutes), headers without the body.
  const bundle = sts.clientBundle;
  if (bundle) app.get(CLIENT_ROUTE, async (request, reply) => sendClient(bundle, request, reply));
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const checks = await readiness(current());
    const ok = Object.values(checks).every(Boolean);
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks });
  });
  return app;
}

/**
 * On every answer: the request id, and never cached (RFC 6749 §5.1 for /token) unless the
 * route said otherwise — only the pipeline client's successful answers do.
 */
function commonHeaders(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('X-Request-Id', request.id);
  if (!reply.hasHeader('Cache-Control')) {
    reply.header('Cache-Control', 'no-store');
    reply.header('Pragma', 'no-cache');
  }
  reply.header('X-Content-Type-Options', 'nosniff');
}

/**
 * How long a cache may reuse the client without asking again. Short: a new bundle (a new
 * release of the STS) reaches pipelines within minutes; revalidation is a 304 without the body.
 */
const CLIENT_CACHE_CONTROL = 'public, max-age=300';

/** The pipeline client: the same bytes every time (client_sha256), a strong ETag, 304 on a match. */
function sendClient(bundle: ClientBundle, request: FastifyRequest, reply: FastifyReply) {
  reply.header('ETag', bundle.etag).header('Cache-Control', CLIENT_CACHE_CONTROL);
  if (etagMatches(request.headers['if-none-match'], bundle.etag)) return reply.code(304).send();
  return reply.code(200).type('text/javascript; charset=utf-8').send(bundle.bytes);
}

/**
 * RFC 9110 §13.1.2: If-None-Match is `*` or a list of entity tags, compared weakly
 * (`W/"x"` matches `"x"`); an entry is compared whole (an unquoted or otherwise altered
 * tag matches nothing). Over 4 KiB the header is not read: no match, the full answer.
 */
export function etagMatches(header: string | string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value.length > 4096) return false;
  if (value.trim() === '*') return true;
  return value.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

function formBody(request: FastifyRequest): string {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type !== FORM) {
    // Quoted only when it looks like a media type: the header is caller input.
    const shown = MEDIA_TYPE.test(type) ? type : `sha256:${sha256Hex(type).slice(0, 16)}`;
    throw new InvalidRequestError(`the request body must be ${FORM}`, `content type ${shown}`);
  }
  return typeof request.body === 'string' ? request.body : '';
}

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,40}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,40}$/;

/**
 * The form of a /token or /revoke request. A request refused here (content
 * type, encoding, duplicate parameters) never reaches the handlers, which audit
 * everything else, so it is audited here: every outcome is audited once.
 */
function auditedForm(request: FastifyRequest, sts: StsContext, event: 'exchange' | 'revoke') {
  try {
    return parseForm(formBody(request));
  } catch (err) {
    if (err instanceof StsError) {
      sts.audit.write({
        event,
        requestId: request.id,
        clientIp: request.ip,
        outcome: err.error,
        reason: err.reason,
      });
      if (event === 'exchange') {
        sts.metrics.exchanges.inc({ outcome: err.error, policy: '' });
        sts.metrics.refusals.inc({ reason: refusalReason(err) });
      }
    }
    throw err;
  }
}

/**
 * Every error answer, shaped as RFC 6749 §5.2 JSON. An StsError is answered as
 * it says. Otherwise, from the error handler only (`framework`), a 4xx Fastify
 * raised before a handler ran (body too large, bad Content-Length, a broken
 * body stream) is `invalid_request`; anything else is a bug: `server_error`,
 * its stack to the log, audited as `error` (unexpected.ts).
 */
function sendError(
  err: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  sts: StsContext,
  framework = false,
) {
  let e: StsError;
  if (err instanceof StsError) {
    e = err;
  } else {
    const fe = (typeof err === 'object' && err !== null ? err : {}) as {
      statusCode?: unknown;
      code?: unknown;
    };
    const status = typeof fe.statusCode === 'number' ? fe.statusCode : 0;
    const code = typeof fe.code === 'string' ? fe.code : undefined;
    let outcome: string;
    if (framework && (status === 413 || code === 'FST_ERR_CTP_BODY_TOO_LARGE')) {
      e = new StsError(413, 'invalid_request', 'the request body is too large', code);
      outcome = e.error;
    } else if (framework && status >= 400 && status < 500) {
      e = new StsError(status, 'invalid_request', 'the request is malformed', code ?? 'client error');
      outcome = e.error;
    } else {
      const route = request.routeOptions?.url ?? '(no route)';
      e = unexpectedError(sts.log, err, { requestId: request.id, during: `${request.method} ${route}` });
      outcome = UNEXPECTED_OUTCOME;
    }
    // Errors raised before our handlers ran are audited here so none goes unrecorded.
    const tokenRoute = request.url.startsWith('/token') || request.url.startsWith('/oauth/token');
    if (tokenRoute || request.url.startsWith('/revoke')) {
      sts.audit.write({
        event: tokenRoute ? 'exchange' : 'revoke',
        requestId: request.id,
        clientIp: request.ip,
        outcome,
        reason: e.reason,
      });
    }
  }
  if (e.retryAfterSeconds !== undefined) reply.header('Retry-After', String(Math.ceil(e.retryAfterSeconds)));
  // RFC 6749 §5.2: a 401 invalid_client carries the challenge of the scheme the client may use.
  if (e.status === 401) reply.header('WWW-Authenticate', `Basic realm="${CLIENT_AUTH_REALM}"`);
  return reply
    .code(e.status)
    .type('application/json')
    .send({ error: e.error, error_description: e.description, request_id: request.id });
}

function metadata(sts: StsContext) {
  const base = sts.config.server.publicUrl.replace(/\/+$/, '');
  const azureScopes: Record<string, string> = {};
  for (const iss of Object.values(sts.config.issuers)) {
    if (iss.kind !== 'entra') continue;
    // Prefer the App ID URI (api://…) the caller can name; fall back to the client ID.
    const aud = iss.audiences.find((a) => a.includes('://')) ?? iss.audiences[0];
    if (aud) azureScopes[iss.name] = `${aud.replace(/\/+$/, '')}/.default`;
  }
  return {
    issuer: base,
    token_endpoint: `${base}/token`,
    revocation_endpoint: `${base}/revoke`,
    grant_types_supported: [GRANT_TYPE_TOKEN_EXCHANGE],
    response_types_supported: [],
    // Client authentication is optional (clients.ts in src/config): public callers send none.
    token_endpoint_auth_methods_supported:
      sts.clients.digests.size > 0 ? ['none', 'client_secret_basic', 'client_secret_post'] : ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    scopes_supported: [...GRANT_SCOPES],
    // Extension: the Entra ID scope a pipeline requests before calling us, per issuer.
    azure_scopes: azureScopes,
    azure_scope: Object.values(azureScopes)[0],
    gitlab_url: sts.config.gitlab.url,
    // Extension: the self-contained pipeline client, and the digest of exactly its bytes.
    ...(sts.clientBundle
      ? { client_uri: `${base}${CLIENT_ROUTE}`, client_sha256: sts.clientBundle.sha256 }
      : {}),
  };
}

async function readiness(sts: StsContext): Promise<Record<string, boolean>> {
  const storeOk =
    (sts.store.writable?.() ?? true) &&
    (await sts.store
      .countAllActive()
      .then(() => true)
      .catch(() => false));
  const last = sts.gitlab.lastStatus();
  return {
    store: storeOk,
    keys: sts.validator.ready(),
    gitlab: last === undefined || last.ok,
    // The STS's own token: expired, or under 24 h left while its rotation fails (src/credential/manager.ts).
    ...(sts.credential ? { credential: sts.credential.ready() } : {}),
  };
}
