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
  targetId: number | null;
  /** `access-token` or `deploy-token` (schema 5). */
  tokenKind: string;
  scopes: string;
  accessLevel: number;
  createdAt: number;
  expiresAt: number;
  gitlabExpiresAt: string;
  attempts: number;
  /** The recording process (sqlite.ts: failOrphanedMinting). */
  owner: string | null;
}

/** The per-identity cap as bound to the counted INSERT: `maxActive` 0 = no cap. */
export interface CapRow {
  maxActive: number;
  now: number;
}

export interface ExchangeWrites {
  /** Rows inserted: 1, or 0 when the identity's cap is reached (nothing written). */
  insertMinting(row: MintingRow, cap: CapRow): number;
  /** Rows changed: 1, or 0 when the grant is missing or no longer `minting`. */
  markActive(
    id: string,
    gitlabTokenId: number,
    tokenSha256: string,
    gitlabUserId: number | null,
    gitlabUsername: string | null,
  ): number;
}

export function prepareExchangeWrites(db: Database.Database): ExchangeWrites {
  // The cap is counted in the INSERT itself: SQLite runs one statement at a time per database,
  // so no other insert can land between the count and the write (a separate SELECT first let 60
  // parallel requests past a cap of 20). Every grant whose token may still live counts, whatever
  // its TTL says: `revoking` (a client asked, GitLab has not confirmed) and `active` past its TTL
  // (the reaper has not got to it yet) hold live tokens as much as a fresh grant does.
  const insert = db.prepare(
    `INSERT INTO grants (id, state, request_id, issuer, identity_key, subject, tenant, client_id, object_id, policy,
       target_kind, target_ref, target_id, scopes, access_level, created_at, expires_at, gitlab_expires_at, attempts,
       owner, token_kind)
     SELECT @id, 'minting', @requestId, @issuer, @identityKey, @subject, @tenant, @clientId, @objectId, @policy,
       @targetKind, @targetRef, @targetId, @scopes, @accessLevel, @createdAt, @expiresAt, @gitlabExpiresAt, @attempts,
       @owner, @tokenKind
     WHERE @maxActive = 0 OR (SELECT count(*) FROM grants WHERE identity_key = @identityKey
                                AND state IN ('minting', 'active', 'revoking')) < @maxActive`,
  );
  const markActive = db.prepare(
    `UPDATE grants SET state = 'active', gitlab_token_id = ?, token_sha256 = ?, gitlab_user_id = ?,
       gitlab_username = ?, next_attempt_at = expires_at
     WHERE id = ? AND state = 'minting'`,
  );
  return {
    insertMinting(row, cap) {
      return insert.run({ ...row, maxActive: cap.maxActive, now: cap.now }).changes;
    },
    markActive(id, gitlabTokenId, tokenSha256, gitlabUserId, gitlabUsername) {
      return markActive.run(gitlabTokenId, tokenSha256, gitlabUserId, gitlabUsername, id).changes;
    },
  };
}

/** The connection settings every ledger connection uses (see sqlite.ts for why). */
export function configureConnection(db: Database.Database, busyTimeoutMs: number): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
}
