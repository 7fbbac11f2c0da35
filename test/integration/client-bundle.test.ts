/**
 * The self-contained pipeline client (dist/tanuki-sts-client.mjs, served as
 * /client/tanuki-sts.mjs), built from this checkout: what went in (client
 * code, commander and @azure/identity — no server code), its size, that the
 * same sources give the same bytes whichever way it is built, and that it runs
 * with plain `node` alone in an empty folder outside the repository, where no
 * node_modules can be found.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../src/cli/program.ts';
import { type BuiltClient, buildClient, bundledPackages } from '../../src/service/client-bundle.ts';
import { startFakeSts } from '../helpers/fake-sts.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const MAX_BYTES = 5 * 1024 * 1024;

/** The only source files of ours the client may contain: the client, src/util, and its own CLI wiring. */
const OUR_FILES =
  /^src\/(client\/[a-z-]+\.ts|util\/[a-z-]+\.ts|cli\/(client-main|client-program|program|commands\/client)\.ts)$/;
/** Server code that must never be in it (a wrong import would pull these in). */
const SERVER_PACKAGES =
  /node_modules\/(fastify|@fastify|better-sqlite3|pino|prom-client|pg|yaml|zod|jose|undici|esbuild|tsx|@azure\/keyvault-secrets|@peculiar)\//;

describe('the pipeline client bundle', () => {
  let built: BuiltClient;
  let dir: string;
  let file: string;
  before(async () => {
    built = await buildClient(ROOT);
    dir = mkdtempSync(join(tmpdir(), 'tanuki-client-alone-'));
    file = join(dir, 'tanuki-sts.mjs');
    writeFileSync(file, built.bytes);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`is at most 5 MB`, () => {
    assert.ok(built.bytes.length > 100_000, `${built.bytes.length} bytes: too small to hold @azure/identity`);
    assert.ok(built.bytes.length <= MAX_BYTES, `${built.bytes.length} bytes`);
  });

  it('holds the client, commander and @azure/identity, and no server code', () => {
    const inputs = Object.keys(built.metafile.inputs);
    const ours = inputs.filter((p) => !p.startsWith('node_modules/'));
    assert.deepEqual(
      ours.filter((p) => !OUR_FILES.test(p)),
      [],
      'only src/client, src/util and the client CLI wiring',
    );
    assert.deepEqual(
      inputs.filter(
        (p) =>
          SERVER_PACKAGES.test(p) ||
          /^src\/(service|ledger|config|identity|policy|gitlab|emulators)\//.test(p),
      ),
      [],
    );
    assert.ok(inputs.includes('src/cli/client-main.ts'));
    assert.ok(inputs.some((p) => p.startsWith('node_modules/@azure/identity/')));
    assert.ok(inputs.some((p) => p.startsWith('node_modules/@azure/msal-node/')));
    assert.ok(inputs.some((p) => p.startsWith('node_modules/commander/')));
  });

  it('ends with the licence of every bundled package (name, version, licence, its text)', () => {
    const text = built.bytes.toString('utf8');
    const notices = text.slice(text.lastIndexOf('/*! Third-party packages bundled in this file'));
    assert.match(notices, /\*\/\n$/);
    const packages = bundledPackages(built.metafile);
    assert.ok(packages.length >= 10, packages.join(' '));
    for (const dir of packages) {
      const pkg = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Record<string, string>;
      assert.ok(notices.includes(`${pkg.name}@${pkg.version} (${pkg.license})`), dir);
    }
    assert.ok(notices.includes('@azure/msal-node@'));
    assert.match(notices, /Permission is hereby granted/);
    assert.equal(notices.indexOf('*/'), notices.length - 3, 'one comment, not ended early');
  });

  it('imports nothing at run time but Node built-ins (static, dynamic or require)', () => {
    const outputs = Object.values(built.metafile.outputs);
    assert.equal(outputs.length, 1);
    const imports = outputs[0]?.imports ?? [];
    assert.ok(imports.length > 0);
    const builtins = new Set(builtinModules);
    assert.deepEqual(
      imports.filter((i) => !i.external || !builtins.has(i.path.replace(/^node:/, ''))),
      [],
      'every import left in the bundle is an external Node built-in',
    );
  });

  it('the same sources give the same bytes: twice in memory, and scripts/build-client.mjs (npm run build)', () => {
    const out = join(dir, 'by-script.mjs');
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-client.mjs'), '--out', out], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /by-script\.mjs: \d+ bytes, sha256 [0-9a-f]{64} \(\d+ ms\)\n$/);
    assert.deepEqual(readFileSync(out), built.bytes);
    rmSync(out);
  });

  it('names no path of this machine (a checkout elsewhere gives the same bytes)', () => {
    const text = built.bytes.toString('utf8');
    assert.equal(text.includes(ROOT), false);
    assert.equal(text.includes(tmpdir()), false);
  });

  describe('alone in an empty folder, with plain node', () => {
    const env = (extra: Record<string, string>) => ({ PATH: process.env.PATH ?? '', HOME: dir, ...extra });
    const node = (args: string[], extra: Record<string, string> = {}) =>
      spawnSync(process.execPath, [file, ...args], {
        cwd: dir,
        encoding: 'utf8',
        env: env(extra),
        timeout: 30_000,
      });
    /** The same, without blocking this process (which serves the fake STS). */
    const nodeAsync = (args: string[], extra: Record<string, string>) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        execFile(
          process.execPath,
          [file, ...args],
          { cwd: dir, env: env(extra), timeout: 30_000, encoding: 'utf8' },
          (err, stdout, stderr) =>
            done({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
        );
      });

    it('the folder is outside the repository and no node_modules is reachable from it', () => {
      assert.ok(!dir.startsWith(ROOT), dir);
      for (let d = dir; ; d = dirname(d)) {
        assert.equal(existsSync(join(d, 'node_modules')), false, `${d}/node_modules`);
        if (dirname(d) === d) break;
      }
    });

    it('--version prints the version (package.json)', () => {
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      assert.equal(VERSION, pkg.version);
      const r = node(['--version']);
      assert.deepEqual(
        { code: r.status, stdout: r.stdout, stderr: r.stderr },
        { code: 0, stdout: `${VERSION}\n`, stderr: '' },
      );
    });

    it('--help lists the four client commands and nothing of the server', () => {
      const r = node(['--help']);
      assert.equal(r.status, 0, r.stderr);
      for (const c of ['token', 'exec', 'git-credential', 'revoke'])
        assert.match(r.stdout, new RegExp(`\\n  ${c} `));
      for (const c of ['serve', 'dev', 'emulate', 'policy', 'check-config'])
        assert.doesNotMatch(r.stdout, new RegExp(`\\n  ${c}\\b`));
    });

    it('each command has its help', () => {
      for (const c of ['token', 'exec', 'git-credential', 'revoke']) {
        const r = node([c, '--help']);
        assert.equal(r.status, 0, `${c}: ${r.stderr}`);
        assert.match(r.stdout, /--sts <url>/);
      }
    });

    it('usage errors exit 2, one message, no stack trace', () => {
      for (const [args, pattern] of [
        [['serve'], /unknown command 'serve'/],
        [['token'], /no STS given/],
        [['token', '--format', 'nope'], /Allowed choices are/],
      ] as const) {
        const r = node([...args]);
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, pattern);
        assert.doesNotMatch(r.stderr, /^\s+at /m);
      }
    });

    it('@azure/identity loads and runs from the bundle (azure-cli with no `az`: its own message, exit 3)', async () => {
      const sts = await startFakeSts();
      try {
        // PATH is the empty folder: no `az` to find, so the credential fails inside @azure/identity, offline.
        const r = await nodeAsync(
          [
            'token',
            '--sts',
            sts.url,
            '--resource',
            'group/project',
            '--azure-auth',
            'azure-cli',
            '--retries',
            '0',
          ],
          { PATH: dir, TANUKI_AZURE_SCOPE: 'api://2f5b4a0e-1c3d-4e5f-8a9b-0c1d2e3f4a5b/.default' },
        );
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /Azure sign-in failed \(azure-cli/);
        assert.match(r.stderr, /Azure CLI could not be found/, "@azure/identity's own text");
        assert.doesNotMatch(r.stderr, /^\s+at /m);
        assert.equal(r.stdout, '');
        assert.deepEqual(
          sts.requests.map((q) => `${q.method} ${q.path}`),
          ['GET /.well-known/oauth-authorization-server'],
          'nothing exchanged',
        );
      } finally {
        await sts.close();
      }
    });
  });
});
