#!/usr/bin/env node
// `npm run build` (after tsc): the self-contained pipeline client,
// dist/tanuki-sts-client.mjs — src/cli/client-main.ts and its dependencies
// (commander, @azure/identity…) in one ES module that plain `node` runs in an
// empty folder. The STS serves these bytes at /client/tanuki-sts.mjs. The
// esbuild options live in src/service/client-bundle.ts, shared with the
// in-memory build `serve` does in a checkout without dist/: same sources, same
// bytes. Usage: node scripts/build-client.mjs [--out FILE]
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const { buildClient, CLIENT_BUNDLE_FILE } = await import('../src/service/client-bundle.ts');

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const at = process.argv.indexOf('--out');
const out = at > 0 && process.argv[at + 1] ? resolve(process.argv[at + 1]) : join(root, CLIENT_BUNDLE_FILE);
try {
  const started = performance.now();
  const { bytes } = await buildClient(root);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const ms = Math.round(performance.now() - started);
  process.stdout.write(`${out}: ${bytes.length} bytes, sha256 ${sha256} (${ms} ms)\n`);
} catch (err) {
  // esbuild's errors name the file and line; no stack trace.
  process.stderr.write(`build-client: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
