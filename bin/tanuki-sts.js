#!/usr/bin/env node
// Entry point of the `tanuki-sts` binary. It runs the compiled JavaScript under
// dist/ (`npm run build`; what the container image ships) and, in a checkout
// without a build, the TypeScript sources through tsx, so that `npm ci && npm
// start` works with no build step.
//
// A checkout that was built once and edited since must not run yesterday's
// code: when src/ exists beside dist/, dist/ is used only if no source file is
// newer than its build (a stat of each source, a few milliseconds).
// TANUKI_RUN_FROM=src|dist forces one or the other.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'main.js');
const sources = join(root, 'src');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function useCompiled() {
  const forced = process.env.TANUKI_RUN_FROM;
  if (forced === 'dist') return true;
  if (forced === 'src') return false;
  if (!existsSync(compiled)) return false;
  if (!existsSync(sources)) return true;
  return statSync(compiled).mtimeMs >= newestMtime(sources);
}

let main;
if (useCompiled()) {
  ({ main } = await import('../dist/cli/main.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
await main(process.argv);
