/** Small HTTP helpers (plain node:http, so every byte on the wire is the emulator's own). */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MalformedRequestError } from './errors.ts';

export const MAX_BODY_BYTES = 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new MalformedRequestError(413, { message: '413 Request Entity Too Large' });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Request parameters merged from the query string and the body (JSON or
 * form), as Grape does. Form/query arrays use `scopes[]=a&scopes[]=b`.
 */
export class Params {
  private readonly values = new Map<string, unknown>();

  static async from(req: IncomingMessage, query: URLSearchParams): Promise<Params> {
    const p = new Params();
    p.addSearch(query);
    if (req.method === 'GET' || req.method === 'HEAD') return p;
    const body = await readBody(req);
    if (body.length === 0) return p;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type === 'application/json') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        throw new MalformedRequestError(400, {
          message: '400 Bad request - the request body is not valid JSON',
        });
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new MalformedRequestError(400, {
          message: '400 Bad request - the request body must be a JSON object',
        });
      }
      for (const [k, v] of Object.entries(parsed)) p.values.set(k, v);
    } else if (type === 'application/x-www-form-urlencoded' || type === '') {
      p.addSearch(new URLSearchParams(body.toString('utf8')));
    } else {
      throw new MalformedRequestError(415, { message: '415 Unsupported Media Type' });
    }
    return p;
  }

  private addSearch(search: URLSearchParams): void {
    const arrays = new Map<string, string[]>();
    for (const [k, v] of search) {
      if (k.endsWith('[]')) {
        const name = k.slice(0, -2);
        const list = arrays.get(name) ?? [];
        list.push(v);
        arrays.set(name, list);
      } else {
        this.values.set(k, v);
      }
    }
    for (const [k, list] of arrays) this.values.set(k, list);
  }

  has(name: string): boolean {
    const v = this.values.get(name);
    return v !== undefined && v !== null;
  }

  /** A scalar as a string; arrays and objects give `invalid`. */
  string(name: string): string | undefined | typeof INVALID {
    const v = this.values.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return INVALID;
  }

  /** An array of strings; a single string counts as a one-element array. */
  array(name: string): string[] | undefined | typeof INVALID {
    const v = this.values.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    return INVALID;
  }
}

export const INVALID = Symbol('invalid');

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  /** The body already serialised (when the headers needed it). */
  text: string = JSON.stringify(body),
): void {
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendNoContent(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(204, headers);
  res.end();
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A request id as GitLab's correlation ids look: a ULID (26 Crockford base-32 characters, time first). */
export function newRequestId(nowMs = Date.now()): string {
  let time = '';
  for (let t = nowMs, i = 0; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  let rand = '';
  for (const b of randomBytes(16)) rand += CROCKFORD[b % 32];
  return time + rand;
}

/**
 * Headers GitLab sends on every REST API answer, as the recordings of 17.11–19.1
 * show them (`ilijamt/vault-plugin-secrets-gitlab`, `tests/integration/testdata/`):
 * `X-Request-Id` and `X-Gitlab-Meta` (the correlation id), `Vary: Origin`,
 * `X-Content-Type-Options: nosniff`, `X-Frame-Options: SAMEORIGIN`; a success
 * with a body gets `Cache-Control: max-age=0, private, must-revalidate` and Rack's
 * weak `ETag` (the first 32 hex digits of the body's SHA-256), every other answer
 * (204, errors, redirects, 429) `Cache-Control: no-cache`; successes also carry
 * `Referrer-Policy: strict-origin-when-cross-origin`.
 */
export function apiAnswerHeaders(
  requestId: string,
  status: number,
  payload?: string | Buffer,
): Record<string, string> {
  const ok = status >= 200 && status < 300;
  const cacheable = ok && status !== 204 && payload !== undefined;
  return {
    'cache-control': cacheable ? 'max-age=0, private, must-revalidate' : 'no-cache',
    ...(cacheable ? { etag: `W/"${createHash('sha256').update(payload).digest('hex').slice(0, 32)}"` } : {}),
    ...(ok ? { 'referrer-policy': 'strict-origin-when-cross-origin' } : {}),
    vary: 'Origin',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'SAMEORIGIN',
    'x-gitlab-meta': JSON.stringify({ correlation_id: requestId, version: '1' }),
    'x-request-id': requestId,
  };
}

/** A JSON answer of the REST API with GitLab's headers (`apiAnswerHeaders`). */
export function sendApiJson(
  res: ServerResponse,
  requestId: string,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  sendJson(res, status, body, { ...headers, ...apiAnswerHeaders(requestId, status, text) }, text);
}
