/**
 * The one way this module reaches the network: GET a JSON document from a
 * configured issuer (discovery or JWKS). https only, except loopback hosts
 * (`isAllowedUrl`); the issuer's own CA when `caFile` is set; no redirects
 * followed; a whole-request deadline; a response size cap. Only URLs derived
 * from configuration or from a configured issuer's discovery document are ever
 * passed here, never a URL a token names (CVE-2025-52477).
 */
import { readFileSync } from 'node:fs';
import { Agent, fetch } from 'undici';
import { isAllowedUrl } from '../util/url.ts';
import { parseStrictJson } from './strict-json.ts';

export type FetchJson = (url: string, opts: { caFile?: string; timeoutMs: number }) => Promise<unknown>;

/** Largest discovery or JWKS document read (Entra's JWKS is about 10 KiB). */
export const MAX_RESPONSE_BYTES = 256 * 1024;
export const DEFAULT_FETCH_TIMEOUT_MS = 5_000;

export class FetchJsonError extends Error {
  readonly code = 'ERR_FETCH_JSON';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FetchJsonError';
  }
}

export interface JsonFetcher {
  fetchJson: FetchJson;
  close(): Promise<void>;
}

/** The default fetcher: one undici Agent per CA file (the default trust store when none). */
export function createJsonFetcher(): JsonFetcher {
  const agents = new Map<string, Agent>();
  const agentFor = (caFile: string | undefined, timeoutMs: number): Agent => {
    const key = caFile ?? '';
    let agent = agents.get(key);
    if (!agent) {
      let ca: Buffer | undefined;
      if (caFile) {
        try {
          ca = readFileSync(caFile);
        } catch (cause) {
          throw new FetchJsonError(`cannot read caFile ${caFile}`, { cause });
        }
      }
      agent = new Agent({
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        connect: { timeout: timeoutMs, ...(ca ? { ca } : {}) },
      });
      agents.set(key, agent);
    }
    return agent;
  };

  const fetchJson: FetchJson = async (url, { caFile, timeoutMs }) => {
    if (!isAllowedUrl(url))
      throw new FetchJsonError(`refusing to fetch ${url}: https only (http for loopback)`);
    const dispatcher = agentFor(caFile, timeoutMs);
    const signal = AbortSignal.timeout(timeoutMs);
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      res = await fetch(url, {
        dispatcher,
        signal,
        redirect: 'manual',
        headers: { accept: 'application/json', 'user-agent': 'tanuki-sts' },
      });
    } catch (cause) {
      throw new FetchJsonError(`GET ${url} failed: ${describe(cause)}`, { cause });
    }
    try {
      if (res.status !== 200) throw new FetchJsonError(`GET ${url}: HTTP ${res.status}`);
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > MAX_RESPONSE_BYTES)
        throw new FetchJsonError(`GET ${url}: ${declared} bytes is over the limit`);
      const text = await readCapped(res.body, url);
      try {
        return parseStrictJson(text, 32);
      } catch (cause) {
        throw new FetchJsonError(`GET ${url}: not JSON: ${(cause as Error).message}`, { cause });
      }
    } finally {
      // Drop whatever is left of the body so the connection is not held.
      if (res.body && !res.bodyUsed) await res.body.cancel().catch(() => {});
    }
  };

  return {
    fetchJson,
    async close() {
      const all = [...agents.values()];
      agents.clear();
      await Promise.all(all.map((a) => a.close().catch(() => {})));
    },
  };
}

async function readCapped(body: ReadableStream<Uint8Array> | null, url: string): Promise<string> {
  if (!body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_RESPONSE_BYTES)
        throw new FetchJsonError(`GET ${url}: response over ${MAX_RESPONSE_BYTES} bytes`);
      chunks.push(value);
    }
  } catch (cause) {
    if (cause instanceof FetchJsonError) throw cause;
    throw new FetchJsonError(`GET ${url}: reading the body failed: ${(cause as Error).message}`, { cause });
  } finally {
    await reader.cancel().catch(() => {});
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch (cause) {
    throw new FetchJsonError(`GET ${url}: body is not UTF-8`, { cause });
  }
}

/** undici reports "fetch failed" with the useful part (ECONNREFUSED, certificate errors) in `cause`. */
function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const inner = e.cause?.code ?? e.cause?.message;
  return inner ? `${e.message ?? 'error'} (${inner})` : (e.message ?? String(err));
}
