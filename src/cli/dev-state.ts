/**
 * One dev stack per state dir, decided before anything in it is touched.
 *
 * A running stack holds `<stateDir>/dev.lock` for its lifetime (the ledger's
 * process lock: a SQLite lock the kernel drops when the process dies, SIGKILL
 * included, so a crash never leaves a stale lock) and writes its pid to
 * `dev.pid` and `dev.json`. A new start takes that lock first; if it cannot,
 * a stack runs there and the start is refused without writing anything. It
 * then checks that no other tanuki-sts process serves the state dir's ledger
 * and that every port is free, and only then creates the folder, replaces a
 * stale `dev.json` (one whose stack is gone: the lock was free) and writes
 * its own pid.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireLedgerLock, LedgerLockedError, type ProcessLock } from '../ledger/index.ts';
import { firstUnavailablePort } from './dev-ports.ts';

export class DevStackError extends Error {
  readonly code: 'ERR_DEV_RUNNING' | 'ERR_DEV_PORT' | 'ERR_DEV_PORT_BASE';
  constructor(code: DevStackError['code'], message: string) {
    super(message);
    this.name = 'DevStackError';
    this.code = code;
  }
}

export interface StateDirClaim {
  /** Removes dev.pid and releases the lock (the caller has removed dev.json). */
  release(): void;
}

export function writeAtomic(path: string, content: string, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}

function tryLock(dir: string): ProcessLock | undefined {
  try {
    return acquireLedgerLock(join(dir, 'dev'));
  } catch (err) {
    if (err instanceof LedgerLockedError) return undefined;
    throw err;
  }
}

/** The pid a stack recorded in the state dir (dev.json, else dev.pid). */
export function recordedPid(dir: string): number | undefined {
  try {
    const pid = (JSON.parse(readFileSync(join(dir, 'dev.json'), 'utf8')) as { pid?: unknown }).pid;
    if (Number.isInteger(pid) && (pid as number) > 0) return pid as number;
  } catch {
    // no dev.json (a stack still starting) or not ours: try dev.pid
  }
  try {
    const pid = Number(readFileSync(join(dir, 'dev.pid'), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0) return pid;
  } catch {
    // none
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function runningError(label: string, pid: number | undefined): DevStackError {
  return new DevStackError(
    'ERR_DEV_RUNNING',
    `a dev stack already runs from ${label} (pid ${pid ?? 'unknown'}); stop it or use --state-dir`,
  );
}

/**
 * Claims `dir` for a new stack, or throws a `DevStackError` having changed
 * nothing. `label` is the state dir as the user gave it (for messages);
 * `portBase` undefined: any free ports (nothing to check).
 */
export async function claimStateDir(o: {
  dir: string;
  label: string;
  portBase?: number;
  notice?: (line: string) => void;
}): Promise<StateDirClaim> {
  const { dir, label } = o;
  let lock: ProcessLock | undefined;
  const fail = (err: Error): never => {
    lock?.release();
    throw err;
  };
  if (existsSync(dir)) {
    lock = tryLock(dir);
    if (!lock) throw runningError(label, recordedPid(dir));
    // A stack of an older version, or `serve` on the dev config, holds the ledger without dev.lock.
    if (existsSync(join(dir, 'tanuki-sts.db.lock'))) {
      try {
        acquireLedgerLock(join(dir, 'tanuki-sts.db')).release();
      } catch (err) {
        if (!(err instanceof LedgerLockedError)) fail(err as Error);
        fail(
          new DevStackError(
            'ERR_DEV_RUNNING',
            `a tanuki-sts process already serves the ledger in ${label} (tanuki-sts.db); stop it or use --state-dir`,
          ),
        );
      }
    }
  }
  if (o.portBase !== undefined) {
    const problem = await firstUnavailablePort(o.portBase);
    if (problem) fail(new DevStackError('ERR_DEV_PORT', problem));
  }
  if (!lock) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    lock = tryLock(dir);
    if (!lock) throw runningError(label, recordedPid(dir)); // another start won the race
  }
  const claimed = lock;
  try {
    const devJson = join(dir, 'dev.json');
    if (existsSync(devJson)) {
      // The lock was free, so the stack this file describes is gone (SIGKILL, power cut).
      const pid = recordedPid(dir);
      const why =
        pid === undefined
          ? 'its stack no longer runs'
          : isAlive(pid)
            ? `pid ${pid} no longer runs a dev stack here`
            : `pid ${pid} is not running`;
      o.notice?.(`ignoring a stale ${join(label, 'dev.json')} (${why})`);
      rmSync(devJson, { force: true });
    }
    writeAtomic(join(dir, 'dev.pid'), `${process.pid}\n`);
  } catch (err) {
    claimed.release();
    throw err;
  }
  return {
    release() {
      rmSync(join(dir, 'dev.pid'), { force: true });
      claimed.release();
    },
  };
}
