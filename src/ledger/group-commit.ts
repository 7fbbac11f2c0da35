/**
 * Group commit for the SQLite ledger.
 *
 * With synchronous=FULL every commit costs an fsync, and better-sqlite3 runs it
 * on the event loop. The exchange path writes twice per request (insertMinting
 * before GitLab is called, markActive before the token is handed out), so under
 * load the loop spent most of its time blocked in fsync. Here the writes queued
 * during one turn of the event loop share one transaction and one fsync; every
 * caller's promise settles only after that commit, so durability is unchanged:
 * nobody proceeds on a write that is not on disk.
 *
 * Each queued operation is one statement (or a few) that may throw on its own
 * (a duplicate id): SQLite undoes just that statement and the transaction goes
 * on, so one caller's error does not fail the others. If an error ends the
 * transaction itself (I/O error, disk full), that operation and everything after
 * it in the batch are rejected, and so is the batch when COMMIT fails.
 */
import type Database from 'better-sqlite3';

interface Pending {
  op: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommit {
  /** Runs `op` inside the next shared transaction; settles after the commit. */
  run<T>(op: () => T): Promise<T>;
  /** Commits whatever is queued, now (before the database is closed). */
  flush(): void;
}

export function createGroupCommit(db: Database.Database): GroupCommit {
  let queue: Pending[] = [];
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    let aborted: unknown;
    for (const p of batch) {
      if (aborted !== undefined) {
        outcomes.push({ ok: false, error: aborted });
        continue;
      }
      try {
        outcomes.push({ ok: true, value: p.op() });
      } catch (error) {
        outcomes.push({ ok: false, error });
        if (!db.inTransaction) aborted = error;
      }
    }
    if (!db.inTransaction) {
      for (const p of batch) p.reject(aborted ?? new Error('the ledger transaction ended early'));
      return;
    }
    try {
      db.exec('COMMIT');
    } catch (err) {
      try {
        if (db.inTransaction) db.exec('ROLLBACK');
      } catch {
        // The commit's error is the one to report.
      }
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i];
      if (o?.ok) p.resolve(o.value);
      else p.reject(o?.error);
    });
  }

  return {
    run<T>(op: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
        if (!scheduled) {
          scheduled = true;
          // setImmediate, not a microtask: requests whose I/O completes in the same
          // loop turn join this batch.
          setImmediate(flush);
        }
      });
    },
    flush,
  };
}
