/** The default fetcher: URL rule, CA, size cap, redirects, status, timeout, strict JSON. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureLocalCa, type LocalCa } from '../emulators/tls.ts';
import { createJsonFetcher, FetchJsonError, type JsonFetcher, MAX_RESPONSE_BYTES } from './fetch-json.ts';

const routes: RequestListener = (req, res) => {
  hits++;
  switch (req.url) {
    case '/ok':
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
      return;
    case '/big':
      res.writeHead(200).end(`{"x":"${'a'.repeat(MAX_RESPONSE_BYTES)}"}`);
      return;
    case '/big-chunked':
      res.writeHead(200);
      for (let i = 0; i < 40; i++) res.write('a'.repeat(8192));
      res.end();
      return;
    case '/redirect':
      res.writeHead(302, { location: '/ok' }).end();
      return;
    case '/dup':
      res.writeHead(200).end('{"issuer":"a","issuer":"b"}');
      return;
    case '/text':
      res.writeHead(200).end('<html>');
      return;
    case '/slow':
      return; // never answers
    default:
      res.writeHead(404).end();
  }
};

let hits = 0;
let http: Server;
let https: Server;
let base: string;
let httpsBase: string;
let ca: LocalCa;
let dir: string;
let fetcher: JsonFetcher;

const listen = async (s: Server) => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'identity-fetch-'));
  ca = await ensureLocalCa(dir);
  http = createHttpServer(routes);
  https = createHttpsServer({ cert: ca.certPem, key: ca.keyPem }, routes);
  base = `http://127.0.0.1:${await listen(http)}`;
  httpsBase = `https://127.0.0.1:${await listen(https)}`;
  fetcher = createJsonFetcher();
});

after(async () => {
  await fetcher.close();
  for (const s of [http, https]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

const opts = { timeoutMs: 2000 };
const fails = (p: Promise<unknown>, re: RegExp) =>
  assert.rejects(p, (e: unknown) => e instanceof FetchJsonError && re.test(e.message));

describe('createJsonFetcher', () => {
  it('fetches JSON over loopback http and over https with the issuer CA', async () => {
    assert.deepEqual(await fetcher.fetchJson(`${base}/ok`, opts), { keys: [] });
    assert.deepEqual(await fetcher.fetchJson(`${httpsBase}/ok`, { ...opts, caFile: ca.caFile }), {
      keys: [],
    });
  });

  it('refuses https with a certificate outside the trust store (no caFile)', async () => {
    await assert.rejects(fetcher.fetchJson(`${httpsBase}/ok`, opts), FetchJsonError);
  });

  it('refuses http to a non-loopback host, credentials and fragments, without a request', async () => {
    const before = hits;
    for (const url of [
      'http://example.com/keys',
      'http://169.254.169.254/metadata',
      'ftp://127.0.0.1/x',
      `http://user:pw@127.0.0.1:${new URL(base).port}/ok`,
      `${base}/ok#frag`,
      'not a url',
    ]) {
      await fails(fetcher.fetchJson(url, opts), /refusing/);
    }
    assert.equal(hits, before);
  });

  it('refuses bodies over the size cap (declared and streamed)', async () => {
    await fails(fetcher.fetchJson(`${base}/big`, opts), /over/);
    await fails(fetcher.fetchJson(`${base}/big-chunked`, opts), /over/);
  });

  it('does not follow redirects; refuses non-200, non-JSON and duplicate members', async () => {
    await fails(fetcher.fetchJson(`${base}/redirect`, opts), /HTTP 302/);
    await fails(fetcher.fetchJson(`${base}/missing`, opts), /HTTP 404/);
    await fails(fetcher.fetchJson(`${base}/text`, opts), /not JSON/);
    await fails(fetcher.fetchJson(`${base}/dup`, opts), /duplicate/);
  });

  it('gives up after the timeout', async () => {
    const started = Date.now();
    await assert.rejects(fetcher.fetchJson(`${base}/slow`, { timeoutMs: 100 }), FetchJsonError);
    assert.ok(Date.now() - started < 1500);
  });

  it('a missing caFile is an error, not a silent fallback to the default trust store', async () => {
    await fails(fetcher.fetchJson(`${base}/ok`, { ...opts, caFile: join(dir, 'nope.pem') }), /caFile/);
  });
});
