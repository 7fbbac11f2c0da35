/** Small HTTP helpers (plain node:https, so every byte on the wire is the emulator's own). */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { kvErrors } from './errors.ts';

export const MAX_BODY_BYTES = 256 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Past the limit keep draining (up to 8×) without storing, so the client reads the 413.
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 8 * limit) break;
    if (size <= limit) chunks.push(chunk as Buffer);
  }
  if (size > limit) throw kvErrors.bodyTooLarge(limit);
  return Buffer.concat(chunks).toString('utf8');
}

/** A JSON object body, or a `400 BadParameter`. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw kvErrors.badParameter('The request body is not valid JSON (emulator).');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw kvErrors.badParameter('The request body must be a JSON object (emulator).');
  }
  return v as Record<string, unknown>;
}

/**
 * Headers Key Vault sends on every answer (as the responses quoted in Azure/azure-sdk-for-js#31094
 * show them): `Cache-Control: no-cache`, `Pragma: no-cache`, `Expires: -1`, `x-ms-keyvault-region`,
 * `x-ms-request-id`, the client's `x-ms-client-request-id` echoed, `x-ms-keyvault-service-version`,
 * `x-ms-keyvault-network-info`, `X-Content-Type-Options: nosniff`, `Strict-Transport-Security`.
 */
export function keyVaultHeaders(req: IncomingMessage, location: string): Record<string, string> {
  const clientRequestId = req.headers['x-ms-client-request-id'];
  const echo =
    typeof clientRequestId === 'string' && /^[A-Za-z0-9-]{1,64}$/.test(clientRequestId)
      ? clientRequestId
      : undefined;
  const addr = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  return {
    'cache-control': 'no-cache',
    pragma: 'no-cache',
    expires: '-1',
    'x-ms-keyvault-region': location,
    'x-ms-request-id': randomUUID(),
    ...(echo ? { 'x-ms-client-request-id': echo } : {}),
    'x-ms-keyvault-service-version': '1.9.0.0-emulator',
    'x-ms-keyvault-network-info': `conn_type=${addr.includes(':') ? 'Ipv6' : 'Ipv4'};addr=${addr};act_addr_fam=${addr.includes(':') ? 'InterNetworkV6' : 'InterNetwork'};`,
    'x-content-type-options': 'nosniff',
    'strict-transport-security': 'max-age=31536000;includeSubDomains',
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}
