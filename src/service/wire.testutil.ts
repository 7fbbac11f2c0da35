/**
 * Exact-wire assertions for the service tests (as node-oidc-provider's tests
 * do: the whole JSON body). `request_id` varies: it must be a UUID, the
 * same as the X-Request-Id header; everything else is compared exactly.
 */
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const FORM = 'application/x-www-form-urlencoded';
// Literals on purpose, not imports of the STS's constants: these tests pin the wire.
export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** The generic descriptions a caller sees (src/service/errors.ts and app.ts), by cause. */
export const DESCRIPTIONS = {
  notForm: 'the request body must be application/x-www-form-urlencoded',
  notAscii: 'the request body must be form-urlencoded ASCII',
  badPercent: 'the request body is not valid form-urlencoded UTF-8',
  duplicate: 'a parameter was given more than once',
  tooMany: 'too many parameters',
  tooLarge: 'the request body is too large',
  malformed: 'the request is malformed',
  subjectToken: 'the subject token is invalid or not accepted',
  target: 'the requested resource is unknown or not granted to this caller',
  /** No policy grants it: names neither the policy nor what it grants. */
  scope: 'scope not granted',
  malformedScope: 'scope must be GitLab scope names separated by spaces, each once',
  unavailable: 'the service is temporarily unavailable; retry later',
  keysUnavailable: 'the subject token cannot be verified right now; retry later',
  server: 'the request could not be completed',
  /** No resource/audience, and the caller may get more than one target (or from more than one policy). */
  nameTarget: 'name the GitLab project or group: resource=<its URL on GitLab> (or audience=<its path>)',
  /** 401, whatever failed: unknown client, wrong secret, malformed header, two methods. */
  invalidClient: 'client authentication failed',
} as const;

/** The challenge a 401 invalid_client carries (RFC 6749 §5.2). */
export const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="tanuki-sts"' } as const;

/** Headers on every JSON answer of the STS (app.ts `commonHeaders`), X-Request-Id aside. */
export const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'x-content-type-options': 'nosniff',
} as const;

/** Transport headers, not ours to pin; x-request-id is checked against the body. */
const TRANSPORT = new Set(['content-length', 'date', 'connection', 'keep-alive', 'x-request-id']);

/** The answer's headers, less transport ones; X-Request-Id must be a UUID. */
export function headersOf(res: LightMyRequestResponse): Record<string, unknown> {
  assert.match(String(res.headers['x-request-id']), UUID, 'X-Request-Id');
  return Object.fromEntries(Object.entries(res.headers).filter(([k]) => !TRANSPORT.has(k)));
}

/**
 * Exactly this status, `{error, error_description, request_id}` body and header set
 * (JSON_HEADERS plus `extraHeaders`, nothing else). Returns the request id.
 */
export function assertErrorWire(
  res: LightMyRequestResponse,
  status: number,
  error: string,
  description: string,
  extraHeaders: Record<string, string> = {},
): string {
  const { request_id: requestId, ...rest } = res.json() as Record<string, unknown>;
  assert.deepEqual(
    { status: res.statusCode, body: rest },
    { status, body: { error, error_description: description } },
    res.body,
  );
  assert.match(String(requestId), UUID, 'request_id');
  assert.equal(res.headers['x-request-id'], requestId, 'X-Request-Id is the request_id');
  assert.deepEqual(headersOf(res), { ...JSON_HEADERS, ...extraHeaders });
  return String(requestId);
}

export function formBody(params: Record<string, string | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) p.append(k, v);
  return p.toString();
}
