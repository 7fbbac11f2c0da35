/**
 * Child processes of the bench and what the kernel says about them: CPU time
 * (utime + stime from /proc/<pid>/stat) and resident memory (VmRSS).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = dirname(BENCH_DIR);
export const CLI = join(ROOT, 'bin', 'tanuki-sts.js');

let ticksPerSecond = 100;
try {
  // CLK_TCK is 100 on every Linux we care about; `getconf` would cost a process.
  ticksPerSecond = Number(process.env.BENCH_CLK_TCK ?? 100) || 100;
} catch {
  /* keep 100 */
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / ticksPerSecond;
}

/** Resident set size of a process, in MiB. */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Everything the process printed (kept for error messages). */
  output(): string;
  /** Resolves with the first stdout line matching the pattern (its match). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

function wrap(name: string, child: ChildProcess): Proc {
  let out = '';
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  let exited = false;
  let exitInfo = '';
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
    for (const w of [...waiters]) {
      const m = w.re.exec(out);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      exitInfo = `exited (code ${code}, signal ${signal})`;
      resolve();
    });
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start`);
  return {
    name,
    child,
    pid: child.pid,
    output: () => out,
    waitFor(re, timeoutMs = 30_000) {
      const m = re.exec(out);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${name}: no ${re} within ${timeoutMs} ms; output:\n${out.slice(-2000)}`)),
          timeoutMs,
        );
        void exitedP.then(() => {
          clearTimeout(timer);
          reject(new Error(`${name} ${exitInfo} before ${re}; output:\n${out.slice(-2000)}`));
        });
        waiters.push({
          re,
          resolve: (mm) => {
            clearTimeout(timer);
            resolve(mm);
          },
        });
      });
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedP;
      clearTimeout(t);
    },
  };
}

/** `node bin/tanuki-sts.js <args>` (the real CLI, as an operator runs it). */
export function spawnCli(name: string, args: string[], env: NodeJS.ProcessEnv = {}, argv = [CLI]): Proc {
  const child = spawn(process.execPath, [...argv, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return wrap(name, child);
}

/** A bench script (TypeScript through tsx) with an IPC channel. */
export function forkScript(name: string, script: string, args: string[] = []): Proc {
  const child = fork(join(BENCH_DIR, script), args, {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  return wrap(name, child);
}

/** Request/response over a forked child's IPC channel (one message at a time is enough here). */
export function ask<T>(proc: Proc, message: Record<string, unknown>, timeoutMs = 600_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${proc.name}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: unknown) => {
      cleanup();
      const msg = m as { error?: string };
      if (msg && typeof msg === 'object' && typeof msg.error === 'string')
        reject(new Error(`${proc.name}: ${msg.error}`));
      else resolve(m as T);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${proc.name} exited (code ${code}); output:\n${proc.output().slice(-2000)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      proc.child.off('exit', onExit);
    };
    proc.child.on('message', onMessage);
    proc.child.on('exit', onExit);
    proc.child.send(message);
  });
}
