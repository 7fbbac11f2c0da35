/**
 * Attacks on GET /client/tanuki-sts.mjs, the pipeline client the STS serves
 * (docs/security.md rows 80–84). Pipelines run what this route answers, with
 * their cloud identity in the environment, after checking it against the
 * metadata's `client_sha256`: so the route must serve exactly one file, the
 * bytes that digest names, whatever the request says, and never anything
 * else. A real STS (startSts, emulators) with `server.clientBundle` pointing
 * at a file beside which a secret lies; requests are raw HTTP, so dot
 * segments reach the server as sent (fetch would normalise them).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StsConfig } from '../../src/config/index.ts';
import { ClientBundleError } from '../../src/service/client-bundle.ts';
import { startSts } from '../../src/service/server.ts';
import { type Stack, startStack } from '../helpers/stack.ts';

const BUNDLE = "// the client\nconsole.log('tanuki');\n";
const SHA = createHash('sha256').update(BUNDLE).digest('hex');
const SECRET = 'glpat-SECRETbesideTheBundle0123';
const PATH = '/client/tanuki-sts.mjs';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request with the path exactly as given (no normalisation) and any headers. */
function raw(
  base: string,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const u = new URL(base);
  return new Promise<Raw>((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: o.method ?? 'GET',
        // Node sends a DELETE or OPTIONS body without a length unless told.
        headers:
          o.body === undefined
            ? o.headers
            : { ...o.headers, 'content-length': String(Buffer.byteLength(o.body)) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const metadata = async (base: string) =>
  JSON.parse((await raw(base, '/.well-known/oauth-authorization-server')).body.toString()) as Record<
    string,
    unknown
  >;

describe('GET /client/tanuki-sts.mjs under attack', () => {
  let stack: Stack;
  let base: string;
  let folder: string;
  let bundlePath: string;

  before(async () => {
    stack = await startStack({
      tweak: (cfg) => {
        folder = join(String(cfg.store.sqlite), '..', 'client');
        mkdirSync(folder, { recursive: true });
        bundlePath = join(folder, 'tanuki-sts.mjs');
        writeFileSync(bundlePath, BUNDLE);
        writeFileSync(join(folder, 'secret.txt'), SECRET);
        writeFileSync(join(folder, 'tanuki-sts.mjs.map'), SECRET);
        cfg.server.clientBundle = bundlePath;
      },
    });
    base = stack.sts.url;
  });
  after(() => stack?.close());

  it('baseline: the file, and its digest in the metadata', async () => {
    const r = await raw(base, PATH);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), BUNDLE);
    assert.equal((await metadata(base)).client_sha256, SHA);
  });

  describe('80. another file: traversal, siblings, encodings', () => {
    for (const path of [
      '/client/../package.json',
      '/client/../../../../etc/passwd',
      '/client/%2e%2e/%2e%2e/package.json',
      '/client/..%2f..%2fpackage.json',
      '/client/..%5c..%5cpackage.json',
      '/client/tanuki-sts.mjs/../secret.txt',
      '/client/./secret.txt',
      '/client/secret.txt',
      '/client/tanuki-sts.mjs.map',
      '/client/tanuki-sts.mjs%00.map',
      '/client/tanuki-sts.mjs%2f..%2fsecret.txt',
      '/client/',
      '/client',
      '//client/secret.txt',
      '/client/%2fetc%2fpasswd',
      '/client/tanuki-sts-client.mjs',
      '/dist/tanuki-sts-client.mjs',
      '/src/cli/client-main.ts',
    ]) {
      it(`${path}: 404, neither the bundle nor a file's content`, async () => {
        const r = await raw(base, path);
        assert.ok(r.status === 404 || r.status === 400, `${r.status}`);
        const text = r.body.toString();
        assert.equal(text.includes(SECRET), false);
        assert.equal(text.includes('tanuki'), false, text);
        assert.equal(text.includes('root:'), false);
        assert.match(String(r.headers['content-type']), /^application\/json/);
        assert.equal(r.headers['cache-control'], 'no-store');
      });
    }
  });

  describe('81. the file changes on disk after start-up', () => {
    it('replaced, then deleted: the STS keeps serving the bytes it hashed, matching the metadata', async () => {
      writeFileSync(bundlePath, "console.log('swapped by an attacker');\n");
      let r = await raw(base, PATH);
      assert.equal(r.body.toString(), BUNDLE);
      assert.equal(createHash('sha256').update(r.body).digest('hex'), (await metadata(base)).client_sha256);
      unlinkSync(bundlePath);
      r = await raw(base, PATH);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), BUNDLE);
      writeFileSync(bundlePath, BUNDLE);
    });

    it('HEAD announces the length of exactly those bytes', async () => {
      const r = await raw(base, PATH, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(Buffer.byteLength(BUNDLE)));
      assert.equal(r.headers.etag, `"${SHA}"`);
    });
  });

  describe('82. the answer taken from the request: Host header, query, sniffing', () => {
    it('a forged Host or X-Forwarded-Host does not change client_uri (it is built from server.publicUrl)', async () => {
      const forged = await raw(base, '/.well-known/oauth-authorization-server', {
        headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' },
      });
      const meta = JSON.parse(forged.body.toString()) as Record<string, unknown>;
      assert.equal(meta.client_uri, 'http://127.0.0.1:8600/client/tanuki-sts.mjs');
      assert.equal(JSON.stringify(meta).includes('evil.example'), false);
    });

    it('a query string or forged headers get the same bytes and ETag, with nothing reflected', async () => {
      for (const [path, headers] of [
        [`${PATH}?v=<script>alert(1)</script>`, {}],
        [`${PATH}?../../secret.txt`, {}],
        [PATH, { host: 'evil.example', accept: 'text/html', 'accept-encoding': 'gzip, br' }],
        [PATH, { range: 'bytes=0-3' }],
      ] as const) {
        const r = await raw(base, path, { headers });
        assert.equal(r.status, 200, path);
        assert.equal(r.body.toString(), BUNDLE, path);
        assert.equal(r.headers.etag, `"${SHA}"`);
        assert.equal(r.headers['content-encoding'], undefined);
      }
    });

    it('served as JavaScript that browsers must not sniff as anything else', async () => {
      const r = await raw(base, PATH);
      assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['cache-control'], 'public, max-age=300');
    });
  });

  describe('83. methods and conditional headers', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      it(`${method} ${PATH} with a body: 404, the served bytes unchanged`, async () => {
        const r = await raw(base, PATH, {
          method,
          headers: { 'content-type': 'text/javascript' },
          body: "console.log('replaced');",
        });
        assert.equal(r.status, 404, r.body.toString());
        assert.equal((await raw(base, PATH)).body.toString(), BUNDLE);
      });
    }

    for (const [name, value, status] of [
      [
        'a 1,500-entry list without the ETag',
        Array.from({ length: 1500 }, (_, i) => `"${i}"`).join(','),
        200,
      ],
      ['a list over the length read', `${'"x",'.repeat(1200)}"${SHA}"`, 200],
      ['garbage', 'W/ W/ "" , ,', 200],
      ['the ETag with a prefix', `"x${SHA}"`, 200],
      ['the ETag unquoted', SHA, 200],
    ] as const) {
      it(`If-None-Match ${name}: ${status}, the bytes or nothing, never another answer`, async () => {
        const r = await raw(base, PATH, { headers: { 'if-none-match': value } });
        assert.equal(r.status, status);
        assert.equal(r.body.toString(), status === 200 ? BUNDLE : '');
      });
    }

    it('a 64 KB If-None-Match is refused by the HTTP parser (431) and the STS keeps serving', async () => {
      const r = await raw(base, PATH, { headers: { 'if-none-match': `"${'a'.repeat(64 * 1024)}"` } }).catch(
        () => ({ status: 0 }) as Raw,
      );
      assert.ok(r.status === 431 || r.status === 0, `${r.status}`);
      assert.equal((await raw(base, PATH)).body.toString(), BUNDLE);
    });
  });

  describe('84. a bundle that is not there', () => {
    /** The stack's configuration with another bundle setting and a ledger of its own. */
    const configWith = (clientBundle: string | false, sqlite: string): StsConfig => ({
      ...stack.config,
      server: { ...stack.config.server, clientBundle },
      store: { sqlite },
    });

    it('server.clientBundle names a missing file: the STS does not start (no other bundle instead), and frees the ledger', async () => {
      const sqlite = join(folder, 'other.db');
      await assert.rejects(
        startSts({
          config: configWith(join(folder, 'missing.mjs'), sqlite),
          logger: false,
          background: false,
        }),
        (err: Error) =>
          err instanceof ClientBundleError &&
          /^server\.clientBundle: cannot read .*missing\.mjs \(ENOENT\)$/.test(err.message),
      );
      const sts = await startSts({
        config: configWith(bundlePath, sqlite),
        logger: false,
        background: false,
      });
      try {
        assert.equal((await raw(sts.url, PATH)).body.toString(), BUNDLE);
      } finally {
        await sts.close();
        rmSync(sqlite, { force: true });
      }
    });

    it('server.clientBundle: false: 404, and the metadata names neither a client nor a digest', async () => {
      const sqlite = join(folder, 'off.db');
      const sts = await startSts({ config: configWith(false, sqlite), logger: false, background: false });
      try {
        assert.equal((await raw(sts.url, PATH)).status, 404);
        const meta = await metadata(sts.url);
        assert.equal('client_uri' in meta, false);
        assert.equal('client_sha256' in meta, false);
      } finally {
        await sts.close();
      }
    });
  });
});
