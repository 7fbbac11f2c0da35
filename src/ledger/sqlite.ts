/**
 * LedgerStore on SQLite (better-sqlite3).
 *
 * - WAL journal: readers never block the writer, and a commit is one append.
 * - synchronous=FULL: every commit is fsynced before it returns, so a grant
 *   recorded as `minting`, then `active`, survives a power cut, not just a
 *   process crash. (NORMAL could lose the last commits on power loss; a lost
 *   `active` write would make the reconciler revoke a token a client holds.)
 *   The cost is one fsync per commit; the reaper batches its writes
 *   (markRevokedMany) so that stays cheap at hundreds of revocations a second.
 * - busy_timeout: another connection on the same file (the writer thread,
 *   the CLI) waits for the lock instead of failing at once.
 * - Schema versioned in `schema_version`; migrations run in a transaction.
 * - The two writes of the exchange path (insertMinting, markActive) run on a
 *   writer thread with its own connection and are group-committed: the writes
 *   queued meanwhile share one transaction and one fsync, each caller resumes
 *   only after its commit, and the event loop never waits for the disk
 *   (sqlite-writer.ts, group-commit.ts). Everything else runs here.
 *
 * better-sqlite3 is synchronous; the methods are async to fit the interface
 * (postgres.ts implements it too). Each statement is short and indexed.
 * SQLite serves one process (sqlite-lock.ts): a minting grant another process
 * recorded is an orphan (failOrphanedMinting).
 */
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { TargetKind } from '../util/target-kind.ts';
import type { TokenKind } from '../util/token-kind.ts';
import { grantFilterClause } from './grant-filter.ts';
import { configureConnection } from './sqlite-exchange-writes.ts';
import { ensurePrivateDbFile, ensurePrivateDir } from './sqlite-files.ts';
import { inlineWriter, startWriterThread } from './sqlite-writer.ts';
import {
  ActiveGrantCapError,
  DuplicateGrantError,
  type Grant,
  GrantNotFoundError,
  type GrantState,
  GrantStateError,
  LedgerSchemaError,
  type LedgerStore,
  type LedgerTarget,
} from './types.ts';

/** Exported for the upgrade test only. */
export const MIGRATIONS: string[] = [
  // 1: grants
  `CREATE TABLE grants (
     id TEXT PRIMARY KEY,
     state TEXT NOT NULL CHECK (state IN ('minting','active','revoking','revoked','failed')),
     request_id TEXT NOT NULL,
     issuer TEXT NOT NULL,
     identity_key TEXT NOT NULL,
     subject TEXT NOT NULL,
     tenant TEXT,
     client_id TEXT,
     object_id TEXT,
     policy TEXT NOT NULL,
     target_kind TEXT NOT NULL CHECK (target_kind IN ('project','group')),
     target_ref TEXT NOT NULL,
     scopes TEXT NOT NULL,
     access_level INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     gitlab_expires_at TEXT NOT NULL,
     gitlab_token_id INTEGER,
     token_sha256 TEXT,
     revoke_requested_at INTEGER,
     revoked_at INTEGER,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER,
     last_error TEXT
   ) STRICT;
   CREATE INDEX grants_state_expires ON grants (state, expires_at);
   CREATE INDEX grants_state_next_attempt ON grants (state, next_attempt_at);
   CREATE UNIQUE INDEX grants_token_sha256 ON grants (token_sha256) WHERE token_sha256 IS NOT NULL;
   CREATE INDEX grants_identity ON grants (identity_key, state, expires_at);
   CREATE INDEX grants_targets ON grants (gitlab_expires_at, target_kind, target_ref);`,
  // 2: the target's numeric id (mint, revoke and reconcile by id, never by a path GitLab may
  // redirect) and the token's bot user.
  `ALTER TABLE grants ADD COLUMN target_id INTEGER;
   ALTER TABLE grants ADD COLUMN gitlab_user_id INTEGER;
   DROP INDEX grants_targets;
   CREATE INDEX grants_targets ON grants (target_kind, target_id, target_ref);`,
  // 3: the process that recorded a minting grant (failOrphanedMinting spares its own).
  `ALTER TABLE grants ADD COLUMN owner TEXT;`,
  // 4: rotations of the STS's own GitLab token (credential-rotations.ts); one pending at a time.
  `CREATE TABLE credential_rotations (
     id TEXT PRIMARY KEY,
     state TEXT NOT NULL CHECK (state IN ('pending','done','abandoned','lost')),
     started_at INTEGER NOT NULL,
     owner TEXT NOT NULL,
     old_sha256 TEXT NOT NULL,
     old_token_id INTEGER,
     new_sha256 TEXT,
     new_token_id INTEGER,
     new_expires_at TEXT,
     sealed TEXT,
     written_at INTEGER,
     finished_at INTEGER,
     reason TEXT
   ) STRICT;
   CREATE UNIQUE INDEX credential_rotations_one_pending ON credential_rotations (state) WHERE state = 'pending';
   CREATE INDEX credential_rotations_finished ON credential_rotations (state, finished_at);`,
  // 5: what a grant minted (a policy's `grant.via`; every earlier grant is an access token) and a
  // deploy token's username.
  `ALTER TABLE grants ADD COLUMN token_kind TEXT NOT NULL DEFAULT 'access-token'
     CHECK (token_kind IN ('access-token','deploy-token'));
   ALTER TABLE grants ADD COLUMN gitlab_username TEXT;`,
];

interface Row {
  id: string;
  state: GrantState;
  request_id: string;
  issuer: string;
  identity_key: string;
  subject: string;
  tenant: string | null;
  client_id: string | null;
  object_id: string | null;
  policy: string;
  target_kind: TargetKind;
  target_ref: string;
  target_id: number | null;
  scopes: string;
  access_level: number;
  created_at: number;
  expires_at: number;
  gitlab_expires_at: string;
  gitlab_token_id: number | null;
  gitlab_user_id: number | null;
  token_kind: TokenKind;
  gitlab_username: string | null;
  token_sha256: string | null;
  revoke_requested_at: number | null;
  revoked_at: number | null;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
}

function toGrant(r: Row): Grant {
  const g: Grant = {
    id: r.id,
    state: r.state,
    requestId: r.request_id,
    issuer: r.issuer,
    identityKey: r.identity_key,
    subject: r.subject,
    policy: r.policy,
    targetKind: r.target_kind,
    targetRef: r.target_ref,
    scopes: JSON.parse(r.scopes) as string[],
    accessLevel: r.access_level,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    gitlabExpiresAt: r.gitlab_expires_at,
    attempts: r.attempts,
  };
  // Optional fields are absent, not null, so grants compare equal across backends.
  if (r.tenant !== null) g.tenant = r.tenant;
  if (r.client_id !== null) g.clientId = r.client_id;
  if (r.object_id !== null) g.objectId = r.object_id;
  if (r.target_id !== null) g.targetId = r.target_id;
  if (r.gitlab_token_id !== null) g.gitlabTokenId = r.gitlab_token_id;
  if (r.gitlab_user_id !== null) g.gitlabUserId = r.gitlab_user_id;
  // An access token (the default kind) leaves it absent, as in every grant before schema 5.
  if (r.token_kind === 'deploy-token') g.tokenKind = r.token_kind;
  if (r.gitlab_username !== null) g.gitlabUsername = r.gitlab_username;
  if (r.token_sha256 !== null) g.tokenSha256 = r.token_sha256;
  if (r.revoke_requested_at !== null) g.revokeRequestedAt = r.revoke_requested_at;
  if (r.revoked_at !== null) g.revokedAt = r.revoked_at;
  if (r.next_attempt_at !== null) g.nextAttemptAt = r.next_attempt_at;
  if (r.last_error !== null) g.lastError = r.last_error;
  return g;
}

const MAX_ERROR_CHARS = 500;

/** Open (creating the folder and schema if needed) a ledger at `path`, or `:memory:`. */
export function openSqliteLedger(
  path: string,
  opts: {
    busyTimeoutMs?: number;
    /** false: write in this thread (default: a writer thread for files). */
    writerThread?: boolean;
    /** The writer thread stopped unexpectedly: every later write fails (fail closed). */
    onWriterStopped?: (err: Error) => void;
  } = {},
): LedgerStore {
  if (path !== ':memory:') {
    // 0700 folder, 0600 file before SQLite opens it: its -wal and -shm inherit the mode (sqlite-files.ts).
    ensurePrivateDir(dirname(path));
    ensurePrivateDbFile(path);
  }
  const db = new Database(path);
  const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
  try {
    configureConnection(db, busyTimeoutMs);
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }

  const st = {
    get: db.prepare<[string], Row>('SELECT * FROM grants WHERE id = ?'),
    markFailed: db.prepare(
      `UPDATE grants SET state = 'failed', last_error = ? WHERE id = ? AND state = 'minting'`,
    ),
    bySha: db.prepare<[string], Row>(
      `SELECT * FROM grants WHERE token_sha256 = ? AND state IN ('active', 'revoking')`,
    ),
    // First request: due now. Later ones keep the reaper's backoff (a client retrying /revoke must not hammer GitLab).
    requestRevoke: db.prepare<[{ now: number; id: string }]>(
      `UPDATE grants SET state = 'revoking', revoke_requested_at = @now,
         next_attempt_at = CASE WHEN state = 'active' THEN @now ELSE next_attempt_at END
       WHERE id = @id AND state IN ('active', 'revoking')`,
    ),
    countActive: db.prepare<[string], { n: number }>(
      `SELECT count(*) AS n FROM grants WHERE identity_key = ? AND state IN ('minting', 'active', 'revoking')`,
    ),
    countAll: db.prepare<[], { n: number }>(
      `SELECT count(*) AS n FROM grants WHERE state IN ('active', 'revoking')`,
    ),
    claim: db.prepare<[{ now: number; limit: number; lease: number }], Row>(
      `UPDATE grants SET next_attempt_at = @now + @lease
       WHERE id IN (SELECT id FROM grants WHERE state IN ('active', 'revoking') AND next_attempt_at <= @now
                    ORDER BY next_attempt_at LIMIT @limit)
       RETURNING *`,
    ),
    markRevoked: db.prepare(
      `UPDATE grants SET state = 'revoked', revoked_at = ?, next_attempt_at = NULL WHERE id = ? AND state != 'revoked'`,
    ),
    failure: db.prepare(
      `UPDATE grants SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
       WHERE id = ? AND state IN ('active', 'revoking')`,
    ),
    reschedule: db.prepare(
      `UPDATE grants SET next_attempt_at = ? WHERE id = ? AND state IN ('active', 'revoking')`,
    ),
    failOrphans: db.prepare<[string], Row>(
      `UPDATE grants SET state = 'failed', last_error = 'orphan-suspect: the process minting it stopped'
       WHERE state = 'minting' AND (owner IS NULL OR owner != ?) RETURNING *`,
    ),
    failStale: db.prepare<[number], { id: string }>(
      `UPDATE grants SET state = 'failed', last_error = 'orphan-suspect: its mint never finished'
       WHERE state = 'minting' AND created_at < ? RETURNING id`,
    ),
    // One row per target: by id where known (a renamed target keeps its id), by path for
    // grants recorded before schema 2.
    // …and once per kind of token minted there (a target's deploy tokens are listed apart).
    targets: db.prepare<[], LedgerTarget & { token_kind: TokenKind }>(
      `SELECT target_kind AS kind, coalesce(CAST(target_id AS TEXT), target_ref) AS ref, max(target_ref) AS path,
         token_kind
       FROM grants GROUP BY 1, 2, 4 ORDER BY 1, 2, 4`,
    ),
    oldestOverdue: db.prepare<[{ now: number }], { t: number | null }>(
      `SELECT min(CASE WHEN state = 'revoking' AND revoke_requested_at < expires_at THEN revoke_requested_at
                       ELSE expires_at END) AS t
       FROM grants WHERE state IN ('active', 'revoking') AND (expires_at <= @now OR state = 'revoking')`,
    ),
    nextDue: db.prepare<[], { t: number | null }>(
      `SELECT min(next_attempt_at) AS t FROM grants WHERE state IN ('active', 'revoking')`,
    ),
  };

  const markRevokedMany = db.transaction((ids: string[], now: number) => {
    for (const id of ids) st.markRevoked.run(now, id);
  });
  const rescheduleMany = db.transaction((ids: string[], at: number) => {
    for (const id of ids) st.reschedule.run(at, id);
  });

  // The exchange path's writes: on a writer thread for files (the fsync stays off the event
  // loop), in this thread for :memory:. Both group-commit (group-commit.ts).
  const writer =
    path === ':memory:' || opts.writerThread === false
      ? inlineWriter(db)
      : startWriterThread(path, busyTimeoutMs, opts.onWriterStopped);
  // This process's mark on its minting grants (failOrphanedMinting spares them).
  const owner = randomUUID();
  let closed = false;
  const open = (): void => {
    if (closed) throw new Error('ledger is closed');
  };

  return {
    async insertMinting(g, cap) {
      open();
      const row = {
        id: g.id,
        requestId: g.requestId,
        issuer: g.issuer,
        identityKey: g.identityKey,
        subject: g.subject,
        tenant: g.tenant ?? null,
        clientId: g.clientId ?? null,
        objectId: g.objectId ?? null,
        policy: g.policy,
        targetKind: g.targetKind,
        targetRef: g.targetRef,
        targetId: g.targetId ?? null,
        tokenKind: g.tokenKind ?? 'access-token',
        scopes: JSON.stringify(g.scopes),
        accessLevel: g.accessLevel,
        createdAt: g.createdAt,
        expiresAt: g.expiresAt,
        gitlabExpiresAt: g.gitlabExpiresAt,
        attempts: g.attempts ?? 0,
        owner,
      };
      const maxActive = cap && cap.maxActive > 0 ? Math.floor(cap.maxActive) : 0;
      let inserted: number;
      try {
        inserted = await writer.insertMinting(row, { maxActive, now: cap?.now ?? 0 });
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
          throw new DuplicateGrantError(g.id);
        throw err;
      }
      if (inserted !== 1) throw new ActiveGrantCapError(maxActive);
    },
    async markActive(id, v) {
      open();
      const changed = await writer.markActive(
        id,
        v.gitlabTokenId,
        v.tokenSha256,
        v.gitlabUserId ?? null,
        v.gitlabUsername ?? null,
      );
      if (changed === 1) return;
      const g = st.get.get(id);
      if (!g) throw new GrantNotFoundError(id);
      throw new GrantStateError(id, g.state, 'minting');
    },
    async markFailed(id, reason) {
      open();
      if (st.markFailed.run(reason.slice(0, MAX_ERROR_CHARS), id).changes === 0 && !st.get.get(id)) {
        throw new GrantNotFoundError(id);
      }
    },
    async findActiveByTokenSha(sha) {
      open();
      const r = st.bySha.get(sha);
      return r ? toGrant(r) : undefined;
    },
    async requestRevoke(id, now) {
      open();
      st.requestRevoke.run({ now, id });
    },
    async countActive(identityKey) {
      open();
      return st.countActive.get(identityKey)?.n ?? 0;
    },
    async countAllActive() {
      open();
      return st.countAll.get()?.n ?? 0;
    },
    async claimDue(now, limit, leaseMs) {
      open();
      if (limit <= 0) return [];
      return st.claim
        .all({ now, limit, lease: leaseMs })
        .map(toGrant)
        .sort((a, b) => a.expiresAt - b.expiresAt);
    },
    async markRevoked(id, now) {
      open();
      st.markRevoked.run(now, id);
    },
    async markRevokedMany(ids, now) {
      open();
      if (ids.length > 0) markRevokedMany(ids, now);
    },
    async recordRevokeFailure(id, error, nextAttemptAt) {
      open();
      st.failure.run(error.slice(0, MAX_ERROR_CHARS), nextAttemptAt, id);
    },
    async reschedule(ids, nextAttemptAt) {
      open();
      if (ids.length > 0) rescheduleMany(ids, nextAttemptAt);
    },
    async failStaleMinting(olderThan) {
      open();
      return st.failStale.all(olderThan).map((r) => r.id);
    },
    async failOrphanedMinting() {
      open();
      return st.failOrphans.all(owner).map(toGrant);
    },
    async knownTargets() {
      open();
      return st.targets.all().map((r) => ({
        kind: r.kind,
        ref: r.ref,
        path: r.path,
        ...(r.token_kind === 'deploy-token' ? { tokenKind: r.token_kind } : {}),
      }));
    },
    async getById(id) {
      open();
      const r = st.get.get(id);
      return r ? toGrant(r) : undefined;
    },
    async listGrants(filter) {
      open();
      const values: unknown[] = [];
      const clause = grantFilterClause(filter, {
        bind: (v) => {
          values.push(v);
          return '?';
        },
        // SQLite's lower() folds ASCII only (no ICU).
        asciiLower: (col) => `lower(${col})`,
        id: 'id',
      });
      return db
        .prepare<unknown[], Row>(`SELECT * FROM grants ${clause}`)
        .all(...values)
        .map(toGrant);
    },
    async oldestOverdue(now) {
      open();
      return st.oldestOverdue.get({ now })?.t ?? undefined;
    },
    async nextDueAt() {
      open();
      return st.nextDue.get()?.t ?? undefined;
    },
    writable: () => !closed && writer.stopped() === undefined,
    async close() {
      if (closed) return;
      closed = true;
      await writer.close();
      db.close();
    },
  };
}

/** Bring a ledger file up to date and return (`tanuki-sts migrate`); creates it if missing. */
export function migrateSqliteLedger(path: string): { from: number; to: number } {
  if (path !== ':memory:') {
    ensurePrivateDir(dirname(path));
    ensurePrivateDbFile(path);
  }
  const db = new Database(path);
  try {
    configureConnection(db, 5000);
    return migrate(db);
  } finally {
    db.close();
  }
}

/** Bring an open connection's schema up to date (a `:memory:` database is one per connection). */
export function migrateSqliteDb(db: Database.Database): { from: number; to: number } {
  return migrate(db);
}

function migrate(db: Database.Database): { from: number; to: number } {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const run = db.transaction((): { from: number; to: number } => {
    const row = db
      .prepare<[], { version: number }>('SELECT max(version) AS version FROM schema_version')
      .get();
    const current = row?.version ?? 0;
    if (current > MIGRATIONS.length) throw new LedgerSchemaError('file', current, MIGRATIONS.length);
    for (let v = current; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v] as string);
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v + 1);
    }
    return { from: current, to: MIGRATIONS.length };
  });
  // IMMEDIATE: two processes opening a fresh file at once do not both migrate.
  return run.immediate();
}
