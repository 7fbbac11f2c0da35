/**
 * `tanuki-sts dev` as a child process, for the tests of the dev stack itself
 * (test/e2e/dev-stack.test.ts): start it with any arguments, wait until it
 * prints its ready line (`--quiet`) or exits, signal it, read what it printed.
 * Tests pass `--port-base 0` (any free ports) unless they test the ports.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DevJson } from '../../src/cli/dev-stack.ts';
import { BIN, REPO_ROOT } from './client-dev-stack.ts';

export interface DevProcess {
  child: ChildProcess;
  pid: number;
  stateDir: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code or signal (once it has exited). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits for `ready: …/dev.json` and returns dev.json; rejects if the process exits first. */
  ready(timeoutMs?: number): Promise<DevJson>;
  /** Signals the process (SIGKILL after 10 s) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnDev(stateDir: string, args: string[] = [], home?: string): DevProcess {
  const child = spawn(process.execPath, [BIN, 'dev', '--quiet', '--state-dir', stateDir, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: home ?? stateDir, TANUKI_TEST: '1' },
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const devJsonPath = join(stateDir, 'dev.json');
  return {
    child,
    pid: child.pid ?? 0,
    stateDir,
    stdout: () => out,
    stderr: () => err,
    exited,
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!out.includes(`ready: ${devJsonPath}`)) {
        if (hasExited) throw new Error(`tanuki-sts dev exited before it was ready: ${err.slice(-2000)}`);
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(`tanuki-sts dev was not ready in time: ${err.slice(-2000)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      return JSON.parse(readFileSync(devJsonPath, 'utf8')) as DevJson;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!hasExited) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/**
 * Waits until `p` either exits (its result) or becomes ready (then stops it
 * and returns `'started'`): for starts that must be refused, without hanging
 * the test when the code under test starts a stack after all.
 */
export async function refusedOrStarted(
  p: DevProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'started'> {
  const outcome = await Promise.race([
    p.exited,
    p.ready().then(
      () => 'started' as const,
      () => p.exited,
    ),
  ]);
  if (outcome === 'started') await p.stop();
  return outcome;
}
