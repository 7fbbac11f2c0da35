/**
 * The PostgreSQL ledger's schema, versioned. `schema_version` holds one row
 * per applied migration; each migration runs in a transaction with its row.
 *
 * Migrations run under a session advisory lock on the schema's name, so that
 * replicas starting together (a rolling deploy, a scale-up) migrate once: the
 * first takes the lock and migrates, the others wait for it, then find
 * nothing left to do. A schema newer than this code is refused
 * (LedgerSchemaError): an older tanuki-sts never runs on a ledger it does not
 * understand. Migrations only add (tables, nullable columns, indexes,
 * functions), so replicas of the previous version keep running while a new one
 * migrates (docs/deployment.md, "Upgrades").
 *
 * Times are epoch milliseconds (bigint), as in SQLite, so both stores compare
 * and order them the same way; the replicas' heartbeats use the database's
 * clock (`now()`), so replicas' clocks never decide who is alive.
 */
import type pg from 'pg';
import { LedgerSchemaError } from './types.ts';

/** `"schema".name`; the schema was checked (checkSchemaName) before it gets here. */
export const qualified = (schema: string, name: string): string => `"${schema}".${name}`;

/** Migration n (1-based) is PG_MIGRATIONS[n - 1], given the schema's name. */
export const PG_MIGRATIONS: Array<(schema: string) => string> = [
  // 1: grants (as SQLite schema 3), replicas' heartbeats, and the counted insert.
  (s) => {
    const grants = qualified(s, 'grants');
    return `
    CREATE TABLE ${grants} (
      id text PRIMARY KEY,
      state text NOT NULL CHECK (state IN ('minting','active','revoking','revoked','failed')),
      request_id text NOT NULL,
      issuer text NOT NULL,
      identity_key text NOT NULL,
      subject text NOT NULL,
      tenant text,
      client_id text,
      object_id text,
      policy text NOT NULL,
      target_kind text NOT NULL CHECK (target_kind IN ('project','group')),
      target_ref text NOT NULL,
      target_id bigint,
      scopes text[] NOT NULL,
      access_level integer NOT NULL,
      created_at bigint NOT NULL,
      expires_at bigint NOT NULL,
      gitlab_expires_at text NOT NULL,
      gitlab_token_id bigint,
      gitlab_user_id bigint,
      token_sha256 text,
      revoke_requested_at bigint,
      revoked_at bigint,
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at bigint,
      last_error text,
      owner text
    );
    CREATE UNIQUE INDEX grants_token_sha256 ON ${grants} (token_sha256) WHERE token_sha256 IS NOT NULL;
    -- The cap's count, the reaper's claim and wake-up, the stale and orphan sweeps, the reconciler.
    CREATE INDEX grants_identity_live ON ${grants} (identity_key) WHERE state IN ('minting','active','revoking');
    CREATE INDEX grants_due ON ${grants} (next_attempt_at) WHERE state IN ('active','revoking');
    CREATE INDEX grants_minting ON ${grants} (created_at) WHERE state = 'minting';
    CREATE INDEX grants_overdue ON ${grants} (expires_at) WHERE state IN ('active','revoking');
    CREATE INDEX grants_targets ON ${grants} (target_kind, target_id, target_ref);

    CREATE TABLE ${qualified(s, 'replicas')} (
      id text PRIMARY KEY,
      started_at timestamptz NOT NULL DEFAULT now(),
      heartbeat_at timestamptz NOT NULL DEFAULT now()
    );

    -- Record a minting grant, unless its identity already holds max_active live grants. One
    -- identity's inserts queue on a transaction-level advisory lock, so the count and the insert
    -- are exact across every replica; each statement of a (volatile) function sees what committed
    -- before it began, so the count sees the previous holder's row. Returns 1, or 0 at the cap.
    CREATE FUNCTION ${qualified(s, 'insert_minting')}(
      p_id text, p_request_id text, p_issuer text, p_identity_key text, p_subject text,
      p_tenant text, p_client_id text, p_object_id text, p_policy text, p_target_kind text,
      p_target_ref text, p_target_id bigint, p_scopes text[], p_access_level integer,
      p_created_at bigint, p_expires_at bigint, p_gitlab_expires_at text, p_attempts integer,
      p_owner text, p_max_active integer
    ) RETURNS integer LANGUAGE plpgsql AS $fn$
    BEGIN
      IF p_max_active > 0 THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('tanuki-sts/cap/${s}/' || p_identity_key, 0));
        IF (SELECT count(*) FROM ${grants}
            WHERE identity_key = p_identity_key AND state IN ('minting','active','revoking')) >= p_max_active THEN
          RETURN 0;
        END IF;
      END IF;
      INSERT INTO ${grants} (id, state, request_id, issuer, identity_key, subject, tenant, client_id,
        object_id, policy, target_kind, target_ref, target_id, scopes, access_level, created_at,
        expires_at, gitlab_expires_at, attempts, owner)
      VALUES (p_id, 'minting', p_request_id, p_issuer, p_identity_key, p_subject, p_tenant, p_client_id,
        p_object_id, p_policy, p_target_kind, p_target_ref, p_target_id, p_scopes, p_access_level,
        p_created_at, p_expires_at, p_gitlab_expires_at, p_attempts, p_owner);
      RETURN 1;
    END
    $fn$;`;
  },
  // 2: rotations of the STS's own GitLab token (credential-rotations.ts); one pending at a time.
  (s) => {
    const t = qualified(s, 'credential_rotations');
    return `
    CREATE TABLE ${t} (
      id text PRIMARY KEY,
      state text NOT NULL CHECK (state IN ('pending','done','abandoned','lost')),
      started_at bigint NOT NULL,
      owner text NOT NULL,
      old_sha256 text NOT NULL,
      old_token_id bigint,
      new_sha256 text,
      new_token_id bigint,
      new_expires_at text,
      sealed text,
      written_at bigint,
      finished_at bigint,
      reason text
    );
    CREATE UNIQUE INDEX credential_rotations_one_pending ON ${t} (state) WHERE state = 'pending';
    CREATE INDEX credential_rotations_finished ON ${t} (state, finished_at);`;
  },
  // 3: what a grant minted (a policy's `grant.via`; every earlier grant is an access token) and a
  // deploy token's username (as SQLite schema 5), and insert_minting with the kind. The 20-argument
  // insert_minting stays: replicas of the previous version keep calling it (their grants are access
  // tokens, the column's default).
  (s) => {
    const grants = qualified(s, 'grants');
    return `
    ALTER TABLE ${grants} ADD COLUMN token_kind text NOT NULL DEFAULT 'access-token'
      CHECK (token_kind IN ('access-token','deploy-token'));
    ALTER TABLE ${grants} ADD COLUMN gitlab_username text;

    CREATE FUNCTION ${qualified(s, 'insert_minting')}(
      p_id text, p_request_id text, p_issuer text, p_identity_key text, p_subject text,
      p_tenant text, p_client_id text, p_object_id text, p_policy text, p_target_kind text,
      p_target_ref text, p_target_id bigint, p_scopes text[], p_access_level integer,
      p_created_at bigint, p_expires_at bigint, p_gitlab_expires_at text, p_attempts integer,
      p_owner text, p_max_active integer, p_token_kind text
    ) RETURNS integer LANGUAGE plpgsql AS $fn$
    BEGIN
      IF p_max_active > 0 THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('tanuki-sts/cap/${s}/' || p_identity_key, 0));
        IF (SELECT count(*) FROM ${grants}
            WHERE identity_key = p_identity_key AND state IN ('minting','active','revoking')) >= p_max_active THEN
          RETURN 0;
        END IF;
      END IF;
      INSERT INTO ${grants} (id, state, request_id, issuer, identity_key, subject, tenant, client_id,
        object_id, policy, target_kind, target_ref, target_id, scopes, access_level, created_at,
        expires_at, gitlab_expires_at, attempts, owner, token_kind)
      VALUES (p_id, 'minting', p_request_id, p_issuer, p_identity_key, p_subject, p_tenant, p_client_id,
        p_object_id, p_policy, p_target_kind, p_target_ref, p_target_id, p_scopes, p_access_level,
        p_created_at, p_expires_at, p_gitlab_expires_at, p_attempts, p_owner, p_token_kind);
      RETURN 1;
    END
    $fn$;`;
  },
];

export interface MigrationResult {
  /** The version found (0: a fresh schema). */
  from: number;
  /** The version now (PG_MIGRATIONS.length). */
  to: number;
}

/**
 * Bring `schema` to the newest version, on `client` (a connection of its own:
 * the advisory lock belongs to its session). Throws LedgerSchemaError on a
 * schema newer than this code.
 */
export async function migratePostgres(client: pg.ClientBase, schema: string): Promise<MigrationResult> {
  const lock = `tanuki-sts/migrate/${schema}`;
  await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [lock]);
  try {
    // Created only when missing: a schema prepared by a DBA needs no CREATE right on the database.
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA "${schema}"`);
    const versions = qualified(schema, 'schema_version');
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${versions} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const row = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${versions}`);
    const from = row.rows[0]?.v ?? 0;
    if (from > PG_MIGRATIONS.length) {
      throw new LedgerSchemaError(`schema "${schema}"`, from, PG_MIGRATIONS.length);
    }
    for (let v = from; v < PG_MIGRATIONS.length; v++) {
      await client.query('BEGIN');
      try {
        await client.query((PG_MIGRATIONS[v] as (s: string) => string)(schema));
        await client.query(`INSERT INTO ${versions} (version) VALUES ($1)`, [v + 1]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }
    return { from, to: PG_MIGRATIONS.length };
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lock]).catch(() => {});
  }
}
