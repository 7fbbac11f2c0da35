/**
 * Where `serve` gets the pipeline client at start-up (resolveClientBundle), in
 * throwaway installation roots: the configured file, else dist/, else an
 * in-memory build of the sources, else nothing and a warning. The real bundle
 * (size, inputs, running it) is test/integration/client-bundle.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { ConfigError } from '../config/index.ts';
import {
  CLIENT_BUNDLE_FILE,
  CLIENT_ENTRY,
  ClientBundleError,
  clientBundleOf,
  resolveClientBundle,
} from './client-bundle.ts';
import { testConfig } from './context.testutil.ts';

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function capture() {
  const lines: Line[] = [];
  const log = pino({ level: 'info', base: null }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

const made: string[] = [];
function root(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-client-root-'));
  made.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('resolveClientBundle', () => {
  it('server.clientBundle: false — nothing served, no warning', async () => {
    const c = capture();
    const dir = root({ [CLIENT_BUNDLE_FILE]: 'built' });
    assert.equal(await resolveClientBundle({ setting: false, log: c.log, root: dir }), undefined);
    assert.deepEqual(c.warnings(), []);
    assert.match(c.lines[0]?.msg ?? '', /not served \(server\.clientBundle: false\)/);
  });

  it('a configured file wins over dist/: read as is, hashed, logged with its digest', async () => {
    const dir = root({ 'my/client.mjs': 'configured', [CLIENT_BUNDLE_FILE]: 'built' });
    const c = capture();
    const b = await resolveClientBundle({ setting: join(dir, 'my/client.mjs'), log: c.log, root: dir });
    assert.equal(b?.source, 'config');
    assert.equal(b?.bytes.toString(), 'configured');
    assert.equal(b?.sha256, sha('configured'));
    assert.equal(b?.etag, `"${sha('configured')}"`);
    const ready = c.lines.find((l) => l.msg === 'pipeline client ready');
    assert.deepEqual(
      { source: ready?.source, bytes: ready?.bytes, sha256: ready?.sha256 },
      { source: 'config', bytes: 10, sha256: sha('configured') },
    );
  });

  for (const [name, files, path, pattern] of [
    ['missing', {}, 'nope.mjs', /^server\.clientBundle: cannot read .*nope\.mjs \(ENOENT\)$/],
    ['a folder', { 'dir/x': '' }, 'dir', /^server\.clientBundle: cannot read .*dir \(EISDIR\)$/],
    ['empty', { 'empty.mjs': '' }, 'empty.mjs', /^server\.clientBundle: .*empty\.mjs is empty$/],
  ] as const) {
    it(`a configured file that is ${name} stops the start (nothing else served instead)`, async () => {
      const dir = root({ ...files, [CLIENT_BUNDLE_FILE]: 'built' });
      await assert.rejects(
        resolveClientBundle({ setting: join(dir, path), log: capture().log, root: dir }),
        (err: Error) => err instanceof ClientBundleError && pattern.test(err.message),
      );
    });
  }

  it('unset: dist/tanuki-sts-client.mjs, also beside sources no newer than it', async () => {
    const dir = root({ [CLIENT_ENTRY]: 'console.log(1);', [CLIENT_BUNDLE_FILE]: 'from dist' });
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(dir, CLIENT_ENTRY), past, past);
    const b = await resolveClientBundle({ setting: undefined, log: capture().log, root: dir });
    assert.equal(b?.source, 'dist');
    assert.equal(b?.bytes.toString(), 'from dist');
    const alone = root({ [CLIENT_BUNDLE_FILE]: 'from dist' });
    assert.equal(
      (await resolveClientBundle({ setting: undefined, log: capture().log, root: alone }))?.source,
      'dist',
    );
  });

  it('a dist/ bundle older than a source file beside it is not served: built from the sources instead', async () => {
    const dir = root({ [CLIENT_BUNDLE_FILE]: 'stale', [CLIENT_ENTRY]: "console.log('fresh');\n" });
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(dir, CLIENT_BUNDLE_FILE), past, past);
    const c = capture();
    const b = await resolveClientBundle({ setting: undefined, log: c.log, root: dir });
    assert.equal(b?.source, 'built');
    assert.match(b?.bytes.toString() ?? '', /console\.log\("fresh"\)/);
    assert.ok(c.lines.some((l) => l.msg.includes('is older than the sources')));
  });

  it('unset, no dist/: built in memory from the sources (banner first, the source inside), nothing written', async () => {
    const dir = root({
      [CLIENT_ENTRY]: "import { greet } from './greet.ts';\nconsole.log(greet('tanuki'));\n",
      'src/cli/greet.ts': "export const greet = (name: string): string => 'hello ' + name;\n",
    });
    const c = capture();
    const b = await resolveClientBundle({ setting: undefined, log: c.log, root: dir });
    assert.equal(b?.source, 'built');
    const text = b?.bytes.toString() ?? '';
    assert.match(text, /^\/\/ tanuki-sts pipeline client/);
    assert.match(text, /const require = __tanukiCreateRequire\(import\.meta\.url\);/);
    assert.match(text, /"hello "\+\w+/);
    assert.match(text, /"greet"/, 'names kept');
    assert.equal(text.includes('Third-party packages'), false, 'no packages, no licence section');
    assert.equal(b?.sha256, sha(b?.bytes ?? ''));
    assert.deepEqual(c.warnings(), []);
    const again = await resolveClientBundle({ setting: undefined, log: capture().log, root: dir });
    assert.deepEqual(again?.bytes, b?.bytes);
  });

  it('sources that do not build: not served, one warning, no throw', async () => {
    const dir = root({ [CLIENT_ENTRY]: "import { x } from './missing.ts';\nconsole.log(x);\n" });
    const c = capture();
    assert.equal(await resolveClientBundle({ setting: undefined, log: c.log, root: dir }), undefined);
    assert.deepEqual(c.warnings(), [
      'pipeline client not served: building it from the sources failed (GET /client/tanuki-sts.mjs answers 404)',
    ]);
  });

  it('neither dist/ nor sources: not served, a warning saying what to do', async () => {
    const c = capture();
    assert.equal(await resolveClientBundle({ setting: undefined, log: c.log, root: root() }), undefined);
    assert.deepEqual(c.warnings(), [
      'pipeline client not served: no dist/tanuki-sts-client.mjs and no sources to build it from; run `npm run build` or set server.clientBundle (GET /client/tanuki-sts.mjs answers 404)',
    ]);
  });
});

describe('server.clientBundle in the configuration', () => {
  const gitlab = 'https://gitlab.example.test';
  it('a relative path is resolved against the config folder; false stays false; unset stays unset', () => {
    assert.equal(
      testConfig(gitlab, { clientBundle: 'client/x.mjs' }).server.clientBundle,
      resolve('client/x.mjs'),
    );
    assert.equal(testConfig(gitlab, { clientBundle: '/srv/c.mjs' }).server.clientBundle, '/srv/c.mjs');
    assert.equal(testConfig(gitlab, { clientBundle: false }).server.clientBundle, false);
    assert.equal(testConfig(gitlab).server.clientBundle, undefined);
  });

  for (const bad of ['', true, 5, ['x']]) {
    it(`${JSON.stringify(bad)} is refused, naming the key`, () => {
      assert.throws(
        () => testConfig(gitlab, { clientBundle: bad }),
        (err: Error) => err instanceof ConfigError && /\n {2}- server\.clientBundle: /.test(err.message),
      );
    });
  }
});

describe('clientBundleOf', () => {
  it('the digest is lower-case hex of exactly the bytes; the ETag is it, quoted (strong)', () => {
    const bytes = Buffer.from([0, 1, 2, 0xff]);
    const b = clientBundleOf(bytes, 'dist');
    assert.equal(b.sha256, sha(bytes));
    assert.match(b.sha256, /^[0-9a-f]{64}$/);
    assert.equal(b.etag, `"${b.sha256}"`);
  });
});
