/**
 * One serving process per SQLite ledger.
 *
 * The STS treats every grant still `minting` when it starts as orphaned by a
 * process that died mid-mint, and fails it at once so the reconciler revokes
 * its token within one interval (instead of waiting out the stale-minting
 * deadline). That is only true if no other live process is minting from the
 * same file, so `serve` holds this lock for its lifetime.
 *
 * The lock is an EXCLUSIVE transaction on a small sidecar SQLite file
 * (`<ledger>.lock`): SQLite's POSIX locks are dropped by the kernel when the
 * process dies, SIGKILL included, so a crash never leaves a stale lock behind
 * (unlike a PID file). The ledger itself stays open to readers (the CLI).
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateDbFile, ensurePrivateDir } from './sqlite-files.ts';
import { LedgerLockedError } from './types.ts';

/**
 * Held locks, referenced from module scope: a better-sqlite3 connection that
 * nobody references is closed when it is garbage-collected, and the lock with it.
 */
const held = new Set<Database.Database>();

export interface ProcessLock {
  release(): void;
}

export function acquireLedgerLock(ledgerPath: string): ProcessLock {
  if (ledgerPath === ':memory:') return { release() {} };
  // One lock file per ledger file, however the path was spelt (symlinks, `..`).
  ensurePrivateDir(dirname(ledgerPath));
  const lockPath = join(realpathSync(dirname(ledgerPath)), `${basename(ledgerPath)}.lock`);
  ensurePrivateDbFile(lockPath);
  const db = new Database(lockPath, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) throw new LedgerLockedError(ledgerPath);
    throw err;
  }
  held.add(db);
  return {
    release() {
      if (!held.delete(db)) return;
      try {
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    },
  };
}
