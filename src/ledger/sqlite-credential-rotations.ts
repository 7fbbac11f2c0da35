/**
 * CredentialRotationStore on SQLite: a connection of its own to the ledger file
 * (the table comes with the ledger's migrations, sqlite.ts), so that the serving
 * process and `tanuki-sts credential rotate` (another process; the ledger lock
 * is for serving processes) share it. Every write is one statement, committed
 * and fsynced (`synchronous=FULL`) before it returns: the sealed new token is on
 * disk before the rotation goes on.
 */
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  type CredentialRotation,
  CredentialRotationBusyError,
  type CredentialRotationState,
  type CredentialRotationStore,
} from './credential-rotations.ts';
import { migrateSqliteDb } from './sqlite.ts';
import { configureConnection } from './sqlite-exchange-writes.ts';
import { ensurePrivateDbFile, ensurePrivateDir } from './sqlite-files.ts';

interface Row {
  id: string;
  state: CredentialRotationState;
  started_at: number;
  owner: string;
  old_sha256: string;
  old_token_id: number | null;
  new_sha256: string | null;
  new_token_id: number | null;
  new_expires_at: string | null;
  sealed: string | null;
  written_at: number | null;
  finished_at: number | null;
  reason: string | null;
}

/** A row as the interface's record: optional fields absent, not null (both stores compare equal). */
export function toRotation(r: Row): CredentialRotation {
  const out: CredentialRotation = {
    id: r.id,
    state: r.state,
    startedAt: Number(r.started_at),
    owner: r.owner,
    oldSha256: r.old_sha256,
  };
  if (r.old_token_id !== null) out.oldTokenId = Number(r.old_token_id);
  if (r.new_sha256 !== null) out.newSha256 = r.new_sha256;
  if (r.new_token_id !== null) out.newTokenId = Number(r.new_token_id);
  if (r.new_expires_at !== null) out.newExpiresAt = r.new_expires_at;
  if (r.sealed !== null) out.sealed = r.sealed;
  if (r.written_at !== null) out.writtenAt = Number(r.written_at);
  if (r.finished_at !== null) out.finishedAt = Number(r.finished_at);
  if (r.reason !== null) out.reason = r.reason;
  return out;
}

export function openSqliteCredentialRotations(path: string): CredentialRotationStore {
  if (path !== ':memory:') {
    ensurePrivateDir(dirname(path));
    ensurePrivateDbFile(path);
  }
  const db = new Database(path);
  try {
    configureConnection(db, 5000);
    migrateSqliteDb(db);
  } catch (err) {
    db.close();
    throw err;
  }
  const st = {
    begin: db.prepare(
      `INSERT INTO credential_rotations (id, state, started_at, owner, old_sha256, old_token_id)
       VALUES (@id, 'pending', @startedAt, @owner, @oldSha256, @oldTokenId)`,
    ),
    record: db.prepare(
      `UPDATE credential_rotations SET new_sha256 = @newSha256, new_token_id = @newTokenId,
         new_expires_at = @newExpiresAt, sealed = @sealed
       WHERE id = @id AND state = 'pending'`,
    ),
    written: db.prepare(`UPDATE credential_rotations SET written_at = ? WHERE id = ? AND state = 'pending'`),
    finish: db.prepare(
      `UPDATE credential_rotations SET state = @state, finished_at = @at, reason = @reason, sealed = NULL
       WHERE id = @id AND state = 'pending'`,
    ),
    pending: db.prepare<[], Row>(`SELECT * FROM credential_rotations WHERE state = 'pending'`),
    lastDone: db.prepare<[], Row>(
      `SELECT * FROM credential_rotations WHERE state = 'done' ORDER BY finished_at DESC LIMIT 1`,
    ),
  };
  let closed = false;
  const open = () => {
    if (closed) throw new Error('ledger is closed');
  };
  return {
    async begin(r) {
      open();
      try {
        st.begin.run({ ...r, oldTokenId: r.oldTokenId ?? null });
      } catch (err) {
        if (String((err as { code?: string }).code).startsWith('SQLITE_CONSTRAINT')) {
          throw new CredentialRotationBusyError();
        }
        throw err;
      }
    },
    async recordNewToken(id, v) {
      open();
      st.record.run({ id, ...v, newExpiresAt: v.newExpiresAt ?? null });
    },
    async markWritten(id, at) {
      open();
      st.written.run(at, id);
    },
    async finish(id, v) {
      open();
      st.finish.run({ id, state: v.state, at: v.at, reason: v.reason ?? null });
    },
    async pending() {
      open();
      const r = st.pending.get();
      return r ? toRotation(r) : undefined;
    },
    async lastDone() {
      open();
      const r = st.lastDone.get();
      return r ? toRotation(r) : undefined;
    },
    async close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
