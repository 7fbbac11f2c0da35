/** Small HTTP helpers shared by the emulator's routes (plain node:http, so every byte on the wire is ours). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntraConfig } from './config.ts';
import type { IssuerKeyFetcher } from './federation.ts';
import type { KeyStore } from './keys.ts';

export interface EmulatorContext {
  config: EntraConfig;
  /** `https://localhost:PORT`: the authority host. */
  baseUrl: string;
  keys: KeyStore;
  issuers: IssuerKeyFetcher;
  /** Request counters by route, for tests (`GET /_emulator/stats`). */
  stats: Record<string, number>;
  now(): number;
}

export class BodyTooLargeError extends Error {
  static readonly code = 'ERR_ENTRA_EMULATOR_BODY_TOO_LARGE';
  readonly code = BodyTooLargeError.code;
  override name = 'BodyTooLargeError';
}

export const MAX_BODY_BYTES = 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Past the limit, keep draining (up to 8×) without storing, so the client
  // reads the 413 instead of a reset connection; beyond that, hang up.
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 8 * limit) break;
    if (size <= limit) chunks.push(chunk as Buffer);
  }
  if (size > limit) throw new BodyTooLargeError(`request body over ${limit} bytes`);
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function notFound(res: ServerResponse, path: string): void {
  sendJson(res, 404, { error: 'not_found', error_description: `no such endpoint: ${path.slice(0, 200)}` });
}

export function count(ctx: EmulatorContext, key: string): void {
  ctx.stats[key] = (ctx.stats[key] ?? 0) + 1;
}
