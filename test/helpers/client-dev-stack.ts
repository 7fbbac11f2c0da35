/**
 * Helpers for the client's end-to-end tests (test/e2e/client-*.test.ts):
 * start `tanuki-sts dev` once per file, run the CLI as a user would (child
 * processes with NODE_EXTRA_CA_CERTS and a throwaway HOME), and record every
 * child's output so a test can prove no token leaked (src/util/token-patterns.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';
import type { DevJson } from '../../src/cli/dev-stack.ts';
import { findToken } from '../../src/util/token-patterns.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BIN = join(REPO_ROOT, 'bin', 'tanuki-sts.js');

export interface Stack {
  dir: string;
  home: string;
  dev: DevJson;
  stop(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-client-e2e-'));
  const home = join(dir, 'home');
  mkdirSync(home);
  // --port-base 0: any free ports, so test files run in parallel and never need the default ports.
  const args = [BIN, 'dev', '--state-dir', join(dir, 'state'), '--quiet', '--port-base', '0'];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: home, TANUKI_TEST: '1' },
  });
  let log = '';
  child.stdout?.on('data', (d) => {
    log += d;
  });
  child.stderr?.on('data', (d) => {
    log += d;
  });
  const devJsonPath = join(dir, 'state', 'dev.json');
  const deadline = Date.now() + 45_000;
  while (!existsSync(devJsonPath)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`tanuki-sts dev did not become ready: ${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const dev = JSON.parse(readFileSync(devJsonPath, 'utf8')) as DevJson;
  return {
    dir,
    home,
    dev,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Recorded extends RunResult {
  args: string[];
  /** stdout is the requested token (the one place a token may appear). */
  tokenOnStdout: boolean;
}

/** Every child's output, for the final no-leak scan. */
export const recorded: Recorded[] = [];

/** The environment a pipeline job would have: trust the emulator CA, a throwaway HOME, no system git config. */
export function baseEnv(
  stack: Stack,
  extra: Record<string, string | undefined> = {},
): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: stack.home,
    NODE_EXTRA_CA_CERTS: stack.dev.caFile,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    TANUKI_STS_URL: stack.dev.sts.url,
    TANUKI_RETRIES: '0',
    TANUKI_CACHE_DIR: join(stack.dir, 'cache'),
    AZURE_AUTHORITY_HOST: stack.dev.entra.authorityHost,
    AZURE_TENANT_ID: stack.dev.entra.tenantId,
    AZURE_CLIENT_ID: stack.dev.entra.clientId,
    ...extra,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export interface RunOptions {
  env: Record<string, string>;
  input?: string;
  cwd?: string;
  tokenOnStdout?: boolean;
  timeoutMs?: number;
  /** Called once the child is running (e.g. to signal it). */
  onSpawn?: (child: ChildProcess) => void;
}

/** Runs a command (default: the tanuki-sts CLI) and records its output. */
export function run(args: string[], opts: RunOptions, file: string = process.execPath): Promise<RunResult> {
  const argv = file === process.execPath ? [BIN, ...args] : args;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, argv, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const r = { code, signal, stdout, stderr };
      recorded.push({ ...r, args, tokenOnStdout: opts.tokenOnStdout ?? false });
      resolvePromise(r);
    });
    child.stdin.end(opts.input ?? '');
    opts.onSpawn?.(child);
  });
}

export function git(args: string[], opts: RunOptions): Promise<RunResult> {
  return run(args, opts, 'git');
}

/** Outputs that show a token, or one of the given secrets, where none may appear. */
export function leaks(secrets: string[]): string[] {
  const found: string[] = [];
  for (const r of recorded) {
    const places: Array<[string, string]> = [['stderr', r.stderr]];
    if (!r.tokenOnStdout) places.push(['stdout', r.stdout]);
    for (const [where, text] of places) {
      if (findToken(text) !== undefined) found.push(`${r.args.join(' ')}: ${where} has a token`);
      for (const s of secrets)
        if (s && text.includes(s)) found.push(`${r.args.join(' ')}: ${where} has a secret`);
    }
  }
  return found;
}

export async function closedPort(): Promise<number> {
  return new Promise((resolvePort) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolvePort(typeof addr === 'object' && addr ? addr.port : 1));
    });
  });
}

/** Mints an OIDC test-issuer token at the Entra emulator (a GitLab-CI-style id_token). */
export async function emulatorIdToken(stack: Stack, claims: Record<string, unknown>): Promise<string> {
  // This process started before the CA existed, so trust it per request rather than via NODE_EXTRA_CA_CERTS.
  const dispatcher = new Agent({ connect: { ca: readFileSync(stack.dev.caFile, 'utf8') } });
  try {
    const res = await undiciFetch(`${stack.dev.entra.authorityHost}/_emulator/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ claims }),
      dispatcher,
    });
    if (!res.ok) throw new Error(`minting an emulator id_token failed: HTTP ${res.status}`);
    return ((await res.json()) as { token: string }).token;
  } finally {
    await dispatcher.close();
  }
}

export interface EmulatorToken {
  id?: number;
  active?: boolean;
  revoked?: boolean;
  [k: string]: unknown;
}

/** The GitLab emulator's view of every token it issued. */
export async function gitlabTokens(stack: Stack): Promise<EmulatorToken[]> {
  const res = await fetch(`${stack.dev.gitlab.url}/_emulator/tokens`, {
    headers: { 'PRIVATE-TOKEN': stack.dev.gitlab.adminToken },
  });
  if (!res.ok) throw new Error(`GET /_emulator/tokens: HTTP ${res.status}`);
  const body = (await res.json()) as EmulatorToken[] | { tokens: EmulatorToken[] };
  return Array.isArray(body) ? body : body.tokens;
}

export function activeCount(tokens: EmulatorToken[]): number {
  return tokens.filter((t) => t.active === true && t.revoked !== true).length;
}
