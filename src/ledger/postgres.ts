/**
 * LedgerStore on PostgreSQL (`pg`, no ORM): the store several replicas share.
 *
 * - One pool per process (`poolSize`), every statement schema-qualified
 *   (`"<schema>".grants`), times in epoch milliseconds as in SQLite.
 * - Migrations at open, under an advisory lock (postgres-migrations.ts).
 * - The per-identity cap: `insert_minting()` counts and inserts in one
 *   transaction, serialised per identity by `pg_advisory_xact_lock`, so the cap
 *   holds exactly across replicas (one round trip).
 * - `claimDue` leases with `FOR UPDATE SKIP LOCKED`: two reapers never get the
 *   same grant.
 * - Ownership of minting rows: each process has an id (`instanceId`), writes
 *   it on the grants it starts minting, and heartbeats a `replicas` row every
 *   `heartbeatMs` (default 5 s, the database's clock). A replica whose
 *   heartbeat is older than `leaseMs` (default 30 s), or that closed its store,
 *   is gone: `failOrphanedMinting` fails its minting grants (the leader's
 *   reaper then revokes whatever GitLab created for them). A live replica's
 *   in-flight grants are never touched. If a replica thought dead was only cut
 *   off, its markActive finds the grant failed and it takes its token back.
 * - Losing the database: a statement that fails for want of a connection (or
 *   the heartbeat failing) marks the store unavailable. Every call then fails
 *   at once with LedgerUnavailableError (503 upstream, before any GitLab call;
 *   `writable()` false, so `/readyz` answers 503), and a probe tries the
 *   database every `probeMs` (1 s); the first answer makes the store available
 *   again. The pool reconnects by itself: nothing needs a restart.
 *   Reads and idempotent writes are retried once on a fresh connection first
 *   (a backend terminated under an idle pooled connection).
 * - `waitForDatabase` (serve): a database that cannot be reached at open is
 *   waited for (unavailable meanwhile, migrated when it answers) rather than
 *   an error, so a replica may start before its database.
 */
import pg from 'pg';
import type { TargetKind } from '../util/target-kind.ts';
import type { TokenKind } from '../util/token-kind.ts';
import { grantFilterClause } from './grant-filter.ts';
import type { LeaderChange, LeaderElection } from './leader.ts';
import {
  checkSchemaName,
  destroyClient,
  isConnectionError,
  newInstanceId,
  type PostgresConnectionOptions,
  pgClientConfig,
} from './postgres-connection.ts';
import { createPostgresLeaderElection, LEADER_SERVER_OPTIONS } from './postgres-leader.ts';
import { type MigrationResult, migratePostgres, qualified } from './postgres-migrations.ts';
import {
  ActiveGrantCapError,
  DuplicateGrantError,
  type Grant,
  GrantNotFoundError,
  type GrantState,
  GrantStateError,
  LedgerError,
  type LedgerLog,
  LedgerSchemaError,
  type LedgerStore,
  type LedgerTarget,
  LedgerUnavailableError,
} from './types.ts';

export interface PostgresLedgerOptions extends PostgresConnectionOptions {
  /** Database schema (default `tanuki_sts`); created with its tables if missing. */
  schema?: string;
  /** Pool connections (default 10). */
  poolSize?: number;
  /** Open even when the database cannot be reached; unavailable until it can (default false: throw). */
  waitForDatabase?: boolean;
  /** How often this process's heartbeat is written (default 5 s). */
  heartbeatMs?: number;
  /** A replica whose heartbeat is older than this is gone (default 30 s). */
  leaseMs?: number;
  /** How often an unavailable store tries the database again (default 1 s). */
  probeMs?: number;
  log?: LedgerLog;
  /** The database came back with a schema newer than this code (waitForDatabase): the store stays unavailable. */
  onSchemaError?: (err: LedgerSchemaError) => void;
}

export interface PostgresLedger extends LedgerStore {
  /** This process's id: owner of its minting grants, its heartbeat row, `application_name` `tanuki-sts/<id>`. */
  readonly instanceId: string;
  readonly schema: string;
  /** What opening migrated, once the database was reached. */
  migration(): MigrationResult | undefined;
  /** An election among the replicas of this ledger, on a connection of its own (postgres-leader.ts). */
  leaderElection(o: { onChange: LeaderChange; intervalMs?: number; log?: LedgerLog }): LeaderElection;
}

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
  scopes: string[];
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
    scopes: r.scopes,
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
  // An access token (the default kind) leaves it absent, as in every grant before schema 3.
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
const COLUMNS =
  'id, state, request_id, issuer, identity_key, subject, tenant, client_id, object_id, policy, target_kind, ' +
  'target_ref, target_id, scopes, access_level, created_at, expires_at, gitlab_expires_at, gitlab_token_id, ' +
  'gitlab_user_id, token_sha256, revoke_requested_at, revoked_at, attempts, next_attempt_at, last_error, ' +
  'token_kind, gitlab_username';

/** COLUMNS of the `grants g` alias (a join's RETURNING). */
const G_COLUMNS = COLUMNS.split(', ')
  .map((c) => `g.${c}`)
  .join(', ');

const noopLog: LedgerLog = { info() {}, warn() {}, error() {}, debug() {} };

/**
 * Bring the ledger's schema up to date and return (`tanuki-sts migrate`): one connection, the same
 * advisory lock as the replicas' start-up, nothing else touched.
 */
export async function migratePostgresLedger(
  o: PostgresConnectionOptions & { schema?: string },
): Promise<MigrationResult> {
  const schema = checkSchemaName(o.schema ?? 'tanuki_sts');
  const c = new pg.Client(pgClientConfig(o, `tanuki-sts/migrate`, { noTimeouts: true }));
  c.on('error', () => {});
  try {
    await c.connect();
    return await migratePostgres(c, schema);
  } finally {
    await c.end().catch(() => destroyClient(c));
  }
}

/** Open the ledger (migrating its schema). See the options for what happens when the database is down. */
export async function openPostgresLedger(o: PostgresLedgerOptions): Promise<PostgresLedger> {
  const schema = checkSchemaName(o.schema ?? 'tanuki_sts');
  const log = o.log ?? noopLog;
  const heartbeatMs = o.heartbeatMs ?? 5000;
  const leaseMs = o.leaseMs ?? 30_000;
  const probeMs = o.probeMs ?? 1000;
  const instanceId = newInstanceId();
  const appName = `tanuki-sts/${instanceId}`;
  // Built once: a bad caFile fails here, at open.
  const poolConfig = pgClientConfig(o, appName);
  const migrateConfig = pgClientConfig(o, `${appName}/migrate`, { noTimeouts: true });
  const leaderConfig = pgClientConfig(o, `${appName}/leader`, { serverOptions: LEADER_SERVER_OPTIONS });
  const pool = new pg.Pool({ ...poolConfig, max: o.poolSize ?? 10, idleTimeoutMillis: 30_000 });

  const T = {
    grants: qualified(schema, 'grants'),
    replicas: qualified(schema, 'replicas'),
    insert: qualified(schema, 'insert_minting'),
  };

  let closed = false;
  let migrated: MigrationResult | undefined;
  let available = false;
  let reason = 'not connected yet';
  let probeTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let probing: Promise<void> | undefined;
  let schemaError: LedgerSchemaError | undefined;

  /** An idle pooled connection died (terminated backend, restart): check the database now. */
  pool.on('error', (err) => {
    log.warn({ err: err.message }, 'ledger database connection lost; checking the database');
    kickProbe(0);
  });

  async function migrateOnce(): Promise<void> {
    const c = new pg.Client(migrateConfig);
    c.on('error', () => {});
    try {
      await c.connect();
      migrated = await migratePostgres(c, schema);
    } finally {
      await c.end().catch(() => destroyClient(c));
    }
    if (migrated.from !== migrated.to) {
      log.info({ schema, from: migrated.from, to: migrated.to }, 'ledger schema migrated');
    }
  }

  /** This process's heartbeat; retried once (a pooled connection whose backend was just terminated). */
  async function heartbeat(): Promise<void> {
    const beat = () =>
      pool.query(
        `INSERT INTO ${T.replicas} (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
        [instanceId],
      );
    await beat().catch((err) => {
      if (!isConnectionError(err)) throw err;
      return beat();
    });
  }

  function markUp(): void {
    if (available || closed || !migrated) return;
    available = true;
    if (probeTimer) clearTimeout(probeTimer);
    probeTimer = undefined;
    log.info({ schema }, 'ledger database available');
    scheduleHeartbeat();
  }

  function markDown(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    reason = message.slice(0, 200);
    if (available) {
      log.error({ err: reason }, 'ledger database unavailable: exchanges answer 503 until it is back');
    }
    available = false;
    if (heartbeatTimer) clearTimeout(heartbeatTimer);
    heartbeatTimer = undefined;
    kickProbe(probeMs);
  }

  function scheduleHeartbeat(): void {
    if (closed || heartbeatTimer) return;
    heartbeatTimer = setTimeout(() => {
      heartbeatTimer = undefined;
      heartbeat().then(
        () => scheduleHeartbeat(),
        (err: Error) => {
          if (isConnectionError(err)) return markDown(err);
          log.warn({ err: err.message }, 'ledger heartbeat failed');
          scheduleHeartbeat();
        },
      );
    }, heartbeatMs);
    heartbeatTimer.unref();
  }

  /** Try the database (migrating first if that never happened) after `delayMs`. */
  function kickProbe(delayMs: number): void {
    if (closed || probing) return;
    if (probeTimer) {
      if (delayMs > 0) return;
      clearTimeout(probeTimer);
    }
    probeTimer = setTimeout(() => {
      probeTimer = undefined;
      probing = probe().finally(() => {
        probing = undefined;
        // Still down: try again later.
        if (!available && !closed) kickProbe(probeMs);
      });
    }, delayMs);
    probeTimer.unref();
  }

  async function probe(): Promise<void> {
    try {
      if (!migrated) await migrateOnce();
      await heartbeat();
      markUp();
    } catch (err) {
      if (err instanceof LedgerSchemaError && !schemaError) {
        schemaError = err;
        log.error({ err: err.message }, 'ledger schema is newer than this tanuki-sts: not serving');
        o.onSchemaError?.(err);
      }
      markDown(err);
    }
  }

  // Open: migrate and write the first heartbeat, or (waitForDatabase) wait for the database.
  try {
    await migrateOnce();
    await heartbeat();
    markUp();
  } catch (err) {
    if (!o.waitForDatabase || !isConnectionError(err)) {
      closed = true;
      await pool.end().catch(() => {});
      throw err;
    }
    markDown(err);
    log.error({ err: reason, schema }, 'ledger database unavailable at start-up; waiting for it (not ready)');
  }

  /**
   * One store call. Refused at once while the database is known to be down. A statement
   * that fails for want of a connection marks it down (after one retry, for `retry` calls).
   */
  async function call<R>(fn: () => Promise<R>, retry = true): Promise<R> {
    if (closed) throw new LedgerError('ledger is closed');
    if (!available) throw new LedgerUnavailableError(reason);
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      if (retry && !closed) {
        try {
          return await fn();
        } catch (again) {
          if (!isConnectionError(again)) throw again;
          markDown(again);
          throw new LedgerUnavailableError(reason);
        }
      }
      markDown(err);
      throw new LedgerUnavailableError(reason);
    }
  }

  const rows = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> =>
    (await pool.query<R>(text, values)).rows;

  const getRow = async (id: string): Promise<Row | undefined> =>
    (await rows<Row>(`SELECT ${COLUMNS} FROM ${T.grants} WHERE id = $1`, [id]))[0];

  const store: PostgresLedger = {
    instanceId,
    schema,
    migration: () => migrated,
    leaderElection: (e) =>
      createPostgresLeaderElection({
        clientConfig: leaderConfig,
        schema,
        onChange: e.onChange,
        intervalMs: e.intervalMs,
        log: e.log ?? log,
      }),

    async insertMinting(g, cap) {
      const maxActive = cap && cap.maxActive > 0 ? Math.floor(cap.maxActive) : 0;
      // Not retried: the first attempt may have committed (a lost answer). The caller answers 503;
      // a grant recorded after all stays minting without a token and is swept as stale.
      let inserted: number;
      try {
        const r = await call(
          () =>
            rows<{ n: number }>(
              `SELECT ${T.insert}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) AS n`,
              [
                g.id,
                g.requestId,
                g.issuer,
                g.identityKey,
                g.subject,
                g.tenant ?? null,
                g.clientId ?? null,
                g.objectId ?? null,
                g.policy,
                g.targetKind,
                g.targetRef,
                g.targetId ?? null,
                g.scopes,
                g.accessLevel,
                g.createdAt,
                g.expiresAt,
                g.gitlabExpiresAt,
                g.attempts ?? 0,
                instanceId,
                maxActive,
                g.tokenKind ?? 'access-token',
              ],
            ),
          false,
        );
        inserted = r[0]?.n ?? 0;
      } catch (err) {
        const e = err as { code?: string; constraint?: string };
        if (e.code === '23505' && e.constraint === 'grants_pkey') throw new DuplicateGrantError(g.id);
        throw err;
      }
      if (inserted !== 1) throw new ActiveGrantCapError(maxActive);
    },

    async markActive(id, v) {
      await call(async () => {
        const r = await pool.query(
          `UPDATE ${T.grants} SET state = 'active', gitlab_token_id = $2, token_sha256 = $3, gitlab_user_id = $4,
             gitlab_username = $5, next_attempt_at = expires_at
           WHERE id = $1 AND state = 'minting'`,
          [id, v.gitlabTokenId, v.tokenSha256, v.gitlabUserId ?? null, v.gitlabUsername ?? null],
        );
        if (r.rowCount === 1) return;
        const g = await getRow(id);
        if (!g) throw new GrantNotFoundError(id);
        // A retry after a lost answer: the first attempt did it.
        if (
          g.state === 'active' &&
          g.token_sha256 === v.tokenSha256 &&
          g.gitlab_token_id === v.gitlabTokenId
        ) {
          return;
        }
        throw new GrantStateError(id, g.state, 'minting');
      });
    },

    async markFailed(id, reason) {
      await call(async () => {
        const r = await pool.query(
          `UPDATE ${T.grants} SET state = 'failed', last_error = $2 WHERE id = $1 AND state = 'minting'`,
          [id, reason.slice(0, MAX_ERROR_CHARS)],
        );
        if (r.rowCount === 0 && !(await getRow(id))) throw new GrantNotFoundError(id);
      });
    },

    async findActiveByTokenSha(sha) {
      const r = await call(() =>
        rows<Row>(
          `SELECT ${COLUMNS} FROM ${T.grants} WHERE token_sha256 = $1 AND state IN ('active', 'revoking')`,
          [sha],
        ),
      );
      return r[0] ? toGrant(r[0]) : undefined;
    },

    async requestRevoke(id, now) {
      // First request: due now. Later ones keep the reaper's backoff.
      await call(() =>
        pool.query(
          `UPDATE ${T.grants} SET state = 'revoking', revoke_requested_at = $2,
             next_attempt_at = CASE WHEN state = 'active' THEN $2 ELSE next_attempt_at END
           WHERE id = $1 AND state IN ('active', 'revoking')`,
          [id, now],
        ),
      );
    },

    async countActive(identityKey) {
      const r = await call(() =>
        rows<{ n: number }>(
          `SELECT count(*) AS n FROM ${T.grants} WHERE identity_key = $1 AND state IN ('minting', 'active', 'revoking')`,
          [identityKey],
        ),
      );
      return r[0]?.n ?? 0;
    },

    async countAllActive() {
      const r = await call(() =>
        rows<{ n: number }>(`SELECT count(*) AS n FROM ${T.grants} WHERE state IN ('active', 'revoking')`),
      );
      return r[0]?.n ?? 0;
    },

    async claimDue(now, limit, leaseMs) {
      if (closed) throw new LedgerError('ledger is closed');
      if (limit <= 0) return [];
      // SKIP LOCKED: a grant another reaper is claiming right now is skipped, not waited for; once
      // that claim commits, its lease keeps the grant out of this one (the row is re-checked). A CTE,
      // not `id IN (subquery … LIMIT)`: the planner may run such a subquery more than once.
      const r = await call(() =>
        rows<Row>(
          `WITH due AS (SELECT id FROM ${T.grants}
                        WHERE state IN ('active', 'revoking') AND next_attempt_at <= $1
                        ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           UPDATE ${T.grants} g SET next_attempt_at = $1::bigint + $3::bigint
           FROM due WHERE g.id = due.id
           RETURNING ${G_COLUMNS}`,
          [now, limit, leaseMs],
        ),
      );
      return r.map(toGrant).sort((a, b) => a.expiresAt - b.expiresAt);
    },

    async markRevoked(id, now) {
      await call(() =>
        pool.query(
          `UPDATE ${T.grants} SET state = 'revoked', revoked_at = $2, next_attempt_at = NULL
           WHERE id = $1 AND state != 'revoked'`,
          [id, now],
        ),
      );
    },

    async markRevokedMany(ids, now) {
      if (closed) throw new LedgerError('ledger is closed');
      if (ids.length === 0) return;
      await call(() =>
        pool.query(
          `UPDATE ${T.grants} SET state = 'revoked', revoked_at = $2, next_attempt_at = NULL
           WHERE id = ANY($1::text[]) AND state != 'revoked'`,
          [ids, now],
        ),
      );
    },

    async recordRevokeFailure(id, error, nextAttemptAt) {
      // Retried only if the first attempt surely failed to connect: it counts an attempt.
      await call(
        () =>
          pool.query(
            `UPDATE ${T.grants} SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3
             WHERE id = $1 AND state IN ('active', 'revoking')`,
            [id, error.slice(0, MAX_ERROR_CHARS), nextAttemptAt],
          ),
        false,
      );
    },

    async reschedule(ids, nextAttemptAt) {
      if (closed) throw new LedgerError('ledger is closed');
      if (ids.length === 0) return;
      await call(() =>
        pool.query(
          `UPDATE ${T.grants} SET next_attempt_at = $2 WHERE id = ANY($1::text[]) AND state IN ('active', 'revoking')`,
          [ids, nextAttemptAt],
        ),
      );
    },

    async failStaleMinting(olderThan) {
      const r = await call(() =>
        rows<{ id: string }>(
          `UPDATE ${T.grants} SET state = 'failed', last_error = 'orphan-suspect: its mint never finished'
           WHERE state = 'minting' AND created_at < $1 RETURNING id`,
          [olderThan],
        ),
      );
      return r.map((x) => x.id);
    },

    async failOrphanedMinting() {
      const r = await call(async () => {
        const failed = await rows<Row>(
          `UPDATE ${T.grants} SET state = 'failed', last_error = 'orphan-suspect: the replica minting it stopped'
           WHERE state = 'minting'
             AND (owner IS NULL
                  OR (owner <> $1 AND owner NOT IN (
                        SELECT id FROM ${T.replicas} WHERE heartbeat_at > now() - $2::bigint * interval '1 millisecond')))
           RETURNING ${COLUMNS}`,
          [instanceId, leaseMs],
        );
        // Rows of replicas gone long ago: nothing refers to them any more (their grants are settled).
        await pool.query(
          `DELETE FROM ${T.replicas} WHERE id <> $1 AND heartbeat_at < now() - $2::bigint * interval '1 millisecond'`,
          [instanceId, leaseMs * 10],
        );
        return failed;
      });
      return r.map(toGrant);
    },

    async knownTargets() {
      // Once per target and kind of token minted there (a target's deploy tokens are listed apart).
      const r = await call(() =>
        rows<LedgerTarget & { token_kind: TokenKind }>(
          `SELECT target_kind AS kind, coalesce(target_id::text, target_ref) AS ref, max(target_ref) AS path,
             token_kind
           FROM ${T.grants} GROUP BY 1, 2, 4 ORDER BY 1, 2, 4`,
        ),
      );
      return r.map((x) => ({
        kind: x.kind,
        ref: x.ref,
        path: x.path,
        ...(x.token_kind === 'deploy-token' ? { tokenKind: x.token_kind } : {}),
      }));
    },

    async getById(id) {
      const r = await call(() => getRow(id));
      return r ? toGrant(r) : undefined;
    },

    async listGrants(filter) {
      const values: unknown[] = [];
      const clause = grantFilterClause(filter, {
        bind: (v) => {
          values.push(v);
          return `$${values.length}`;
        },
        // lower() would also fold non-ASCII letters, which SQLite's does not: fold A-Z only.
        asciiLower: (col) => `translate(${col}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`,
        // Byte order, as SQLite's: the database's collation may order text otherwise.
        id: 'id COLLATE "C"',
      });
      const r = await call(() => rows<Row>(`SELECT ${COLUMNS} FROM ${T.grants} ${clause}`, values));
      return r.map(toGrant);
    },

    async oldestOverdue(now) {
      const r = await call(() =>
        rows<{ t: number | null }>(
          `SELECT min(CASE WHEN state = 'revoking' AND revoke_requested_at < expires_at THEN revoke_requested_at
                           ELSE expires_at END) AS t
           FROM ${T.grants} WHERE state IN ('active', 'revoking') AND (expires_at <= $1 OR state = 'revoking')`,
          [now],
        ),
      );
      return r[0]?.t ?? undefined;
    },

    async nextDueAt() {
      const r = await call(() =>
        rows<{ t: number | null }>(
          `SELECT min(next_attempt_at) AS t FROM ${T.grants} WHERE state IN ('active', 'revoking')`,
        ),
      );
      return r[0]?.t ?? undefined;
    },

    writable: () => !closed && available,

    async close() {
      if (closed) return;
      closed = true;
      if (probeTimer) clearTimeout(probeTimer);
      if (heartbeatTimer) clearTimeout(heartbeatTimer);
      await probing;
      if (available) {
        // Gone for good: the leader may settle whatever this process left minting, at once.
        await pool.query(`DELETE FROM ${T.replicas} WHERE id = $1`, [instanceId]).catch(() => {});
      }
      available = false;
      await pool.end().catch(() => {});
    },
  };
  return store;
}
