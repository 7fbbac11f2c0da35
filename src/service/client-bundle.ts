/**
 * The self-contained pipeline client the STS serves at
 * `GET /client/tanuki-sts.mjs` (app.ts), and how it is produced: one esbuild
 * configuration for `npm run build` (scripts/build-client.mjs writes
 * `dist/tanuki-sts-client.mjs`) and for the in-memory build at start-up, so
 * both give the same bytes for the same sources.
 *
 * At start-up (`resolveClientBundle`): the file `server.clientBundle` names,
 * else `dist/tanuki-sts-client.mjs` of this installation (unless sources beside
 * it are newer), else a build in memory from the sources when they are here
 * (a checkout: `npm start`), else
 * nothing — then the route answers 404 and the metadata omits `client_uri`
 * and `client_sha256`. esbuild is loaded only for that build.
 */
import { hash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildOptions, Metafile } from 'esbuild';
import type { Logger } from 'pino';

/** The installation's root: `src/service/` (tsx) and `dist/service/` (`npm run build`) are both two levels down. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The client's entry point, relative to the root. */
export const CLIENT_ENTRY = 'src/cli/client-main.ts';
/** What `npm run build` writes, relative to the root. */
export const CLIENT_BUNDLE_FILE = 'dist/tanuki-sts-client.mjs';
/** The one path it is served at. */
export const CLIENT_ROUTE = '/client/tanuki-sts.mjs';

/**
 * ESM cannot `require`; bundled CommonJS dependencies (MSAL, jsonwebtoken…)
 * require Node's built-ins, so the bundle gets a real `require` first.
 */
const BANNER = [
  '// tanuki-sts pipeline client (Apache-2.0): self-contained bundle, `node tanuki-sts.mjs --help`. See docs/pipelines.md.',
  '// The licences of the bundled packages are at the end of this file.',
  "import { createRequire as __tanukiCreateRequire } from 'node:module';",
  'const require = __tanukiCreateRequire(import.meta.url);',
].join('\n');

/**
 * The esbuild options, shared by both builds. Deterministic: every path in the
 * output is relative to `root` (absWorkingDir), nothing depends on time or
 * place, so anyone can rebuild the served bytes from a checkout and compare
 * digests — that, not reading minified code, is how the bundle is reviewed.
 * Minified (0.5 MB instead of 1.3 MB; Node parses it about a fifth faster:
 * docs/performance.md, client_start_ratio), names kept (error names and
 * `constructor.name` stay true). Licence comments kept inline; the licence of
 * every bundled package is appended by `buildClient` (most carry none in
 * their code).
 */
export function clientBuildOptions(root: string = PACKAGE_ROOT): BuildOptions {
  return {
    absWorkingDir: root,
    entryPoints: [CLIENT_ENTRY],
    outfile: CLIENT_BUNDLE_FILE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: BANNER },
    minify: true,
    keepNames: true,
    legalComments: 'inline',
    charset: 'ascii',
    metafile: true,
    logLevel: 'silent',
  };
}

export interface BuiltClient {
  bytes: Buffer;
  /** Every input file, relative to the root (the bundle test checks no server code is among them). */
  metafile: Metafile;
}

/** In-memory builds of this process, per root: an STS restarted in the same process (tests) builds once. */
const built = new Map<string, Promise<BuiltClient>>();

function buildOnce(root: string): Promise<BuiltClient> {
  let pending = built.get(root);
  if (!pending) {
    pending = buildClient(root);
    built.set(root, pending);
    pending.catch(() => built.delete(root));
  }
  return pending;
}

let building = 0;

/** Bundles the client from the sources under `root`; writes nothing. */
export async function buildClient(root: string = PACKAGE_ROOT): Promise<BuiltClient> {
  const esbuild = await import('esbuild');
  building += 1;
  let result: Awaited<ReturnType<typeof esbuild.build>>;
  try {
    result = await esbuild.build({ ...clientBuildOptions(root), write: false });
  } finally {
    // esbuild's service is a child process that would idle beside the STS for its whole life.
    building -= 1;
    if (building === 0) await esbuild.stop();
  }
  const out = result.outputFiles?.find((f) => f.path.endsWith('.mjs'));
  if (!out || !result.metafile) throw new Error('esbuild produced no bundle');
  const notices = Buffer.from(licenceNotices(root, result.metafile), 'utf8');
  return { bytes: Buffer.concat([out.contents, notices]), metafile: result.metafile };
}

/** The packages (`node_modules/[@scope/]name`, nested ones too) the bundle holds code of, sorted. */
export function bundledPackages(metafile: Metafile): string[] {
  const dirs = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m?.[1]) dirs.add(m[1]);
  }
  return [...dirs].sort();
}

/**
 * One comment at the end: each bundled package's name, version, licence and
 * licence files, as the MIT, ISC, BSD and Apache licences ask of copies.
 * Sorted, line endings normalised: the same for the same dependencies.
 */
function licenceNotices(root: string, metafile: Metafile): string {
  const packages = bundledPackages(metafile);
  if (packages.length === 0) return '';
  const parts = packages.map((dir) => {
    const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as {
      name?: string;
      version?: string;
      license?: unknown;
    };
    const texts = readdirSync(join(root, dir))
      .filter((f) => /^(licen[cs]e|copying|notice)(\.|$)/i.test(f))
      .sort()
      .map((f) =>
        readFileSync(join(root, dir, f), 'utf8')
          .replace(/\r\n?/g, '\n')
          .trim(),
      );
    const licence = typeof pkg.license === 'string' ? pkg.license : 'see the package';
    return [`${pkg.name}@${pkg.version} (${licence})`, ...texts].join('\n\n');
  });
  // A licence text must not end the comment early.
  const body = parts.join('\n\n-----\n\n').replaceAll('*/', '* /');
  return `\n/*! Third-party packages bundled in this file, and their licences:\n\n${body}\n*/\n`;
}

/** The bundle as served. */
export interface ClientBundle {
  bytes: Buffer;
  /** Lower-case hex SHA-256 of `bytes`: the metadata's `client_sha256`. */
  sha256: string;
  /** Strong entity tag: the SHA-256, quoted. */
  etag: string;
  /** Where it came from (start-up log). */
  source: 'config' | 'dist' | 'built';
}

export function clientBundleOf(bytes: Buffer, source: ClientBundle['source']): ClientBundle {
  const sha256 = hash('sha256', bytes, 'hex');
  return { bytes, sha256, etag: `"${sha256}"`, source };
}

export class ClientBundleError extends Error {
  override name = 'ClientBundleError';
}

export interface ResolveOptions {
  /** `server.clientBundle`: a path (absolute), `false` (never served), or unset. */
  setting: string | false | undefined;
  log: Logger;
  /** The installation to look in (tests). */
  root?: string;
}

/**
 * The bundle to serve, found or built at start-up; undefined when there is
 * none (logged as a warning, unless `server.clientBundle: false`). A configured
 * file that cannot be read stops the start (ClientBundleError): an operator who
 * names a file means it.
 */
export async function resolveClientBundle(options: ResolveOptions): Promise<ClientBundle | undefined> {
  const { setting, log } = options;
  const root = options.root ?? PACKAGE_ROOT;
  if (setting === false) {
    log.info('pipeline client not served (server.clientBundle: false)');
    return undefined;
  }
  let bundle: ClientBundle | undefined;
  const started = performance.now();
  if (setting !== undefined) {
    bundle = clientBundleOf(readConfigured(setting), 'config');
  } else if (distIsCurrent(root)) {
    bundle = clientBundleOf(readFileSync(join(root, CLIENT_BUNDLE_FILE)), 'dist');
  } else if (existsSync(join(root, CLIENT_ENTRY))) {
    if (existsSync(join(root, CLIENT_BUNDLE_FILE)))
      log.info(`${CLIENT_BUNDLE_FILE} is older than the sources: building the client from them instead`);
    try {
      bundle = clientBundleOf((await buildOnce(root)).bytes, 'built');
    } catch (err) {
      log.warn(
        { err: err instanceof Error ? err.message.split('\n')[0] : String(err) },
        `pipeline client not served: building it from the sources failed (GET ${CLIENT_ROUTE} answers 404)`,
      );
      return undefined;
    }
  } else {
    log.warn(
      `pipeline client not served: no ${CLIENT_BUNDLE_FILE} and no sources to build it from; run \`npm run build\` or set server.clientBundle (GET ${CLIENT_ROUTE} answers 404)`,
    );
    return undefined;
  }
  log.info(
    {
      source: bundle.source,
      bytes: bundle.bytes.length,
      sha256: bundle.sha256,
      ms: Math.round(performance.now() - started),
    },
    'pipeline client ready',
  );
  return bundle;
}

/**
 * dist/'s bundle, unless the sources beside it changed since it was built: a
 * checkout built once and edited since serves what it runs (bin/tanuki-sts.js
 * makes the same choice for the server's code). A stat per source file.
 */
function distIsCurrent(root: string): boolean {
  const file = join(root, CLIENT_BUNDLE_FILE);
  if (!existsSync(file)) return false;
  if (!existsSync(join(root, CLIENT_ENTRY))) return true;
  return statSync(file).mtimeMs >= newestSource(join(root, 'src'));
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function readConfigured(path: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new ClientBundleError(
      `server.clientBundle: cannot read ${path}${typeof code === 'string' ? ` (${code})` : ''}`,
    );
  }
  if (bytes.length === 0) throw new ClientBundleError(`server.clientBundle: ${path} is empty`);
  return bytes;
}
