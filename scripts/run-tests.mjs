#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node:test (through tsx).
// Node 20's --test does not expand globs, so the files are listed here.
// Usage: npm test [-- <substring filter of paths>...]
//        npm run test:chaos   (the long fault tests, *.chaos.ts, which npm test skips)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out;
}

const chaos = process.argv.includes('--chaos');
const suffix = chaos ? '.chaos.ts' : '.test.ts';
const filters = process.argv.slice(2).filter((a) => a !== '--chaos');
const files = ['src', 'test']
  .flatMap((d) => walk(d, []))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  // The chaos run waits out its grants' TTL (at least the 60 s minimum) after the kill cycles.
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=3',
    `--test-timeout=${chaos ? 600000 : 300000}`,
    ...files,
  ],
  {
    stdio: 'inherit',
    // TANUKI_RUN_FROM=src: the CLI processes tests start run the sources under test, never a
    // dist/ left by an earlier `npm run build` (bin/tanuki-sts.js).
    env: { ...process.env, TANUKI_TEST: '1', TANUKI_RUN_FROM: 'src' },
  },
);
process.exit(r.status ?? 1);
