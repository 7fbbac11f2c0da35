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
import Database from 'better-sqlite3';
import { LedgerLockedError } from './types.ts';

export interface ProcessLock {
  release(): void;
}

export function acquireLedgerLock(ledgerPath: string): ProcessLock {
  if (ledgerPath === ':memory:') return { release() {} };
  const lockPath = `${ledgerPath}.lock`;
  const db = new Database(lockPath, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) throw new LedgerLockedError(ledgerPath);
    throw err;
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      try {
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    },
  };
}
