/**
 * The pipeline templates (templates/) as the CI systems read and run them, for
 * test/templates/: GitLab CI YAML with `!reference` and `extends` resolved the
 * way GitLab resolves them, a job's `before_script` + `script` and its
 * `after_script` run in bash the way GitLab Runner's bash shell runs them
 * (shells/bash.go: `set -o errexit`, pipefail, the whole stage `eval`ed with
 * empty stdin, after_script in a shell of its own), and the Azure Pipelines
 * step template with `${{ parameters.x }}` expanded. Also a fake STS that
 * serves a client and its metadata however a test wants, and a preload that
 * records every outbound request of a job's Node processes.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, type YAMLSeq } from 'yaml';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const GITLAB_TEMPLATE = join(REPO_ROOT, 'templates', 'gitlab-ci', 'tanuki-sts.yml');
export const AZURE_TEMPLATE = join(REPO_ROOT, 'templates', 'azure-pipelines', 'tanuki-sts.yml');
export const SCHEMAS = join(REPO_ROOT, 'test', 'fixtures', 'schemas');
/** Preloaded with NODE_OPTIONS=--import: one line per outbound request to $TANUKI_TEST_NET_LOG. */
export const NETWATCH = join(REPO_ROOT, 'test', 'helpers', 'netwatch-preload.mjs');

export type Yaml = any;

// ---------------------------------------------------------------- GitLab CI YAML

/** A `!reference [job, key, …]` tag, kept as written until it is resolved. */
export class GitlabReference {
  constructor(readonly path: string[]) {}
}

/**
 * Parses GitLab CI YAML. `!reference` becomes a GitlabReference (`as: 'references'`) or the plain
 * string array it is written as (`as: 'arrays'`, what a JSON Schema validator of the file sees).
 */
export function parseGitlabYaml(text: string, as: 'references' | 'arrays' = 'references'): Yaml {
  return parse(text, {
    customTags: [
      {
        tag: '!reference',
        collection: 'seq',
        resolve: (seq: YAMLSeq) => {
          const path = seq.toJSON() as unknown[];
          if (!path.every((p) => typeof p === 'string')) throw new Error('!reference takes strings');
          return as === 'arrays' ? path : new GitlabReference(path as string[]);
        },
      },
    ],
  });
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof GitlabReference);

/** `!reference` tags replaced by what they point at in the file as written (GitLab resolves them before `extends`). */
export function resolveReferences(doc: Yaml, value: unknown = doc, depth = 0): unknown {
  if (depth > 10) throw new Error('!reference nested more than 10 levels');
  if (value instanceof GitlabReference) {
    let target: unknown = doc;
    for (const key of value.path) {
      if (!isPlainObject(target) || !(key in target)) throw new Error(`!reference [${value.path}] not found`);
      target = target[key];
    }
    return resolveReferences(doc, target, depth + 1);
  }
  if (Array.isArray(value)) return value.map((v) => resolveReferences(doc, v, depth));
  if (isPlainObject(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveReferences(doc, v, depth)]));
  return value;
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : v;
  return out;
}

/** A job with `extends` applied as GitLab does: hashes merged deeply, arrays and scalars replaced. */
export function resolveJob(doc: Yaml, name: string, seen: string[] = []): Record<string, any> {
  if (seen.includes(name)) throw new Error(`extends loop: ${[...seen, name].join(' → ')}`);
  const job = doc[name];
  if (!isPlainObject(job)) throw new Error(`no job ${name}`);
  const parents = job.extends === undefined ? [] : ([] as string[]).concat(job.extends as string | string[]);
  let merged: unknown = {};
  for (const p of parents) merged = deepMerge(merged, resolveJob(doc, p, [...seen, name]));
  const { extends: _parents, ...own } = job;
  return deepMerge(merged, own) as Record<string, any>;
}

/** script / before_script / after_script as the runner gets them: one string per command, nested arrays flattened. */
export function scriptLines(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap((v) => scriptLines(v));
  throw new Error(`not a script: ${JSON.stringify(value)}`);
}

/** Variables as strings (GitLab accepts numbers and booleans in YAML) from `variables:` maps. */
export function yamlVariables(vars: unknown): Record<string, string> {
  if (!isPlainObject(vars)) return {};
  return Object.fromEntries(
    Object.entries(vars).map(([k, v]) => [k, isPlainObject(v) ? String(v.value ?? '') : String(v)]),
  );
}

const VAR_REF = /\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** `$VAR` / `${VAR}` in variable values expanded against each other (unknown: empty; `$$`: `$`), as GitLab does. */
export function expandVariables(vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const busy = new Set<string>();
  const get = (name: string): string => {
    if (name in out) return out[name]!;
    if (!(name in vars) || busy.has(name)) return '';
    busy.add(name);
    out[name] = expandWith(vars[name]!, get);
    busy.delete(name);
    return out[name]!;
  };
  for (const name of Object.keys(vars)) get(name);
  return out;
}

export function expandWith(text: string, get: (name: string) => string): string {
  return text.replace(VAR_REF, (_m, dollar: string, braced?: string, bare?: string) =>
    dollar === '$' ? '$' : get((braced ?? bare)!),
  );
}

// ---------------------------------------------------------------- running a stage as GitLab Runner does

export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The script GitLab Runner's bash shell writes for one stage (shells/bash.go, `Finish` and
 * `writeUserScript`): variables exported, `cd` into the project folder, each command echoed
 * then run, the whole body `eval`ed under errexit/pipefail with empty stdin.
 */
export function runnerScript(
  commands: string[],
  variables: Record<string, string>,
  projectDir: string,
): string {
  const body = [
    ...Object.entries(variables).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    `cd ${shellQuote(projectDir)}`,
    ...commands.flatMap((c) => {
      const first = c.split('\n')[0] ?? '';
      const shown = c.includes('\n') ? `${first} # collapsed multi-line command` : first;
      return [`echo ${shellQuote(`$ ${shown}`)}`, c];
    }),
  ].join('\n');
  return [
    'trap exit 1 TERM',
    'if set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit',
    'set +o noclobber',
    `: | eval ${shellQuote(body)}`,
    'exit 0',
    '',
  ].join('\n');
}

export interface StageResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a script file with bash and the given process environment (nothing inherited). */
export function runBash(
  scriptFile: string,
  env: Record<string, string>,
  opts: { cwd: string; timeoutMs?: number },
): Promise<StageResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('bash', [scriptFile], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

export interface JobRun {
  /** before_script + script, one shell. */
  main: StageResult;
  /** after_script, a shell of its own; run whatever `main` did, when the job has one. */
  after?: StageResult;
  /** Everything the job printed, for leak checks. */
  log: string;
}

/**
 * One GitLab CI job as a runner runs it: before_script + script in one shell, then after_script
 * (even when the first failed) in another, both with the job's variables exported.
 */
export async function runGitlabJob(opts: {
  job: Record<string, any>;
  variables: Record<string, string>;
  /** The runner host's own environment (PATH, HOME…), what the shell starts with. */
  hostEnv: Record<string, string>;
  projectDir: string;
  scriptDir: string;
  /** Commands appended to `script` (e.g. a failing one). */
  extraScript?: string[];
}): Promise<JobRun> {
  mkdirSync(opts.scriptDir, { recursive: true });
  const main = [
    ...scriptLines(opts.job.before_script),
    ...scriptLines(opts.job.script),
    ...(opts.extraScript ?? []),
  ];
  const mainFile = join(opts.scriptDir, 'step_script.sh');
  writeFileSync(mainFile, runnerScript(main, opts.variables, opts.projectDir), { mode: 0o700 });
  const first = await runBash(mainFile, opts.hostEnv, { cwd: opts.projectDir });
  const afterLines = scriptLines(opts.job.after_script);
  let after: StageResult | undefined;
  if (afterLines.length > 0) {
    const afterFile = join(opts.scriptDir, 'after_script.sh');
    writeFileSync(afterFile, runnerScript(afterLines, opts.variables, opts.projectDir), { mode: 0o700 });
    after = await runBash(afterFile, opts.hostEnv, { cwd: opts.projectDir });
  }
  const log = [first.stdout, first.stderr, after?.stdout ?? '', after?.stderr ?? ''].join('\n');
  return { main: first, after, log };
}

/**
 * Commands on the job's PATH in front of the system's: `npm`/`npx` that fail and leave a mark (the
 * templates must not use them), and any extra stubs a test gives (name → script body).
 */
export function writeStubs(
  dir: string,
  extra: Record<string, string> = {},
): { dir: string; npmMarker: string } {
  mkdirSync(dir, { recursive: true });
  const npmMarker = join(dir, 'npm-was-called');
  const stubs: Record<string, string> = {
    npm: `#!/bin/sh\necho "npm must not be used by the templates" >&2\ntouch ${shellQuote(npmMarker)}\nexit 127\n`,
    npx: `#!/bin/sh\necho "npx must not be used by the templates" >&2\ntouch ${shellQuote(npmMarker)}\nexit 127\n`,
    ...extra,
  };
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(dir, name), body);
    chmodSync(join(dir, name), 0o755);
  }
  return { dir, npmMarker };
}

/** A PATH with the stubs, the directory of the `node` running the tests, and the system's: no repository folder. */
export function jobPath(stubDir: string): string {
  return [stubDir, dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
}

/** The `tanuki-sts` install step of the GitLab template, and the Node program in it. */
export function gitlabInstallStep(): string {
  const doc = parseGitlabYaml(readFileSync(GITLAB_TEMPLATE, 'utf8'));
  const lines = scriptLines(doc['.tanuki-sts'].before_script);
  if (lines.length !== 1) throw new Error('.tanuki-sts before_script: expected one install step');
  return lines[0]!;
}

/** The installer program between the heredoc markers of a script. */
export function installerProgram(script: string): string {
  const start = script.indexOf("<<'TANUKI_STS_INSTALL'\n");
  const end = script.indexOf('\nTANUKI_STS_INSTALL\n');
  if (start < 0 || end < start) throw new Error('no TANUKI_STS_INSTALL heredoc in the script');
  return script.slice(start + "<<'TANUKI_STS_INSTALL'\n".length, end);
}

// ---------------------------------------------------------------- Azure Pipelines

/** `${{ parameters.name }}` replaced by the value given, else the parameter's default (template expressions). */
export function expandAzureParameters(doc: Yaml, given: Record<string, string>): Yaml {
  const params: Record<string, string> = {};
  for (const p of doc.parameters as Array<{ name: string; default?: unknown }>) {
    const v = given[p.name] ?? (p.default === undefined ? undefined : String(p.default));
    if (v === undefined) throw new Error(`required parameter ${p.name} not given`);
    params[p.name] = v;
  }
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string')
      return v.replace(/\$\{\{\s*parameters\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_m, n: string) => {
        if (!(n in params)) throw new Error(`unknown parameter ${n}`);
        return params[n]!;
      });
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return { ...doc, steps: walk(doc.steps) };
}

// ---------------------------------------------------------------- a fake STS for the installer

export interface ClientHost {
  url: string;
  /** Every request: method and path. */
  requests: string[];
  /** What GET /.well-known/oauth-authorization-server answers (a function of the base URL). */
  metadata: (base: string) => unknown;
  /** What the client route answers. */
  client: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

export const sha256Hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A loopback HTTP server standing for the STS's metadata and client route; tests replace the answers. */
export async function startClientHost(clientBytes: Buffer): Promise<ClientHost> {
  const host: ClientHost = {
    url: '',
    requests: [],
    metadata: (base) => ({
      issuer: base,
      client_uri: `${base}/client/tanuki-sts.mjs`,
      client_sha256: sha256Hex(clientBytes),
    }),
    client: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(clientBytes);
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
  const server = createServer((req, res) => {
    host.requests.push(`${req.method} ${req.url}`);
    if (req.url === '/.well-known/oauth-authorization-server') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(host.metadata(host.url)));
    } else if (req.url === '/client/tanuki-sts.mjs') {
      host.client(req, res);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  host.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return host;
}
