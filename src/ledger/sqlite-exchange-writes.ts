/**
 * The two writes of the exchange path (a grant recorded as `minting` before
 * GitLab is called, then `active` before the token is handed out), shared by
 * the in-thread ledger and the writer thread (sqlite-writer.worker.ts) so the
 * SQL exists once.
 */
import type Database from 'better-sqlite3';

/** A grant row as bound to the INSERT (named parameters). */
export interface MintingRow {
  id: string;
  requestId: string;
  issuer: string;
  identityKey: string;
  subject: string;
  tenant: string | null;
  clientId: string | null;
  objectId: string | null;
  policy: string;
  targetKind: string;
  targetRef: string;
  scopes: string;
  accessLevel: number;
  createdAt: number;
  expiresAt: number;
  gitlabExpiresAt: string;
  attempts: number;
}

export interface ExchangeWrites {
  insertMinting(row: MintingRow): void;
  /** Rows changed: 1, or 0 when the grant is missing or no longer `minting`. */
  markActive(id: string, gitlabTokenId: number, tokenSha256: string): number;
}

export function prepareExchangeWrites(db: Database.Database): ExchangeWrites {
  const insert = db.prepare(
    `INSERT INTO grants (id, state, request_id, issuer, identity_key, subject, tenant, client_id, object_id, policy,
       target_kind, target_ref, scopes, access_level, created_at, expires_at, gitlab_expires_at, attempts)
     VALUES (@id, 'minting', @requestId, @issuer, @identityKey, @subject, @tenant, @clientId, @objectId, @policy,
       @targetKind, @targetRef, @scopes, @accessLevel, @createdAt, @expiresAt, @gitlabExpiresAt, @attempts)`,
  );
  const markActive = db.prepare(
    `UPDATE grants SET state = 'active', gitlab_token_id = ?, token_sha256 = ?, next_attempt_at = expires_at
     WHERE id = ? AND state = 'minting'`,
  );
  return {
    insertMinting(row) {
      insert.run(row);
    },
    markActive(id, gitlabTokenId, tokenSha256) {
      return markActive.run(gitlabTokenId, tokenSha256, id).changes;
    },
  };
}

/** The connection settings every ledger connection uses (see sqlite.ts for why). */
export function configureConnection(db: Database.Database, busyTimeoutMs: number): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
}
