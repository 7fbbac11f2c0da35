/**
 * CredentialRotationStore on PostgreSQL: a small pool of its own (two
 * connections) on the ledger's schema, which the ledger's migrations create
 * (postgres-migrations.ts). Shared by every replica and `tanuki-sts credential
 * rotate`; the unique index on the pending row is the lock between them.
 */
import pg from 'pg';
import {
  type CredentialRotation,
  CredentialRotationBusyError,
  type CredentialRotationStore,
} from './credential-rotations.ts';
import { checkSchemaName, type PostgresConnectionOptions, pgClientConfig } from './postgres-connection.ts';
import { qualified } from './postgres-migrations.ts';
import { toRotation } from './sqlite-credential-rotations.ts';

export function openPostgresCredentialRotations(
  o: PostgresConnectionOptions & { schema?: string },
): CredentialRotationStore {
  const schema = checkSchemaName(o.schema ?? 'tanuki_sts');
  const T = qualified(schema, 'credential_rotations');
  const pool = new pg.Pool({
    ...pgClientConfig(o, 'tanuki-sts/credential'),
    max: 2,
    idleTimeoutMillis: 30_000,
  });
  // An idle connection that dies is replaced on the next query; the error must not crash the process.
  pool.on('error', () => {});
  const one = async (text: string, values: unknown[]): Promise<CredentialRotation | undefined> => {
    const r = await pool.query(text, values);
    return r.rows[0] ? toRotation(r.rows[0]) : undefined;
  };
  let closed = false;
  const open = () => {
    if (closed) throw new Error('ledger is closed');
  };
  return {
    async begin(r) {
      open();
      try {
        await pool.query(
          `INSERT INTO ${T} (id, state, started_at, owner, old_sha256, old_token_id) VALUES ($1, 'pending', $2, $3, $4, $5)`,
          [r.id, r.startedAt, r.owner, r.oldSha256, r.oldTokenId ?? null],
        );
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new CredentialRotationBusyError();
        throw err;
      }
    },
    async recordNewToken(id, v) {
      open();
      await pool.query(
        `UPDATE ${T} SET new_sha256 = $2, new_token_id = $3, new_expires_at = $4, sealed = $5
         WHERE id = $1 AND state = 'pending'`,
        [id, v.newSha256, v.newTokenId, v.newExpiresAt ?? null, v.sealed],
      );
    },
    async markWritten(id, at) {
      open();
      await pool.query(`UPDATE ${T} SET written_at = $2 WHERE id = $1 AND state = 'pending'`, [id, at]);
    },
    async finish(id, v) {
      open();
      await pool.query(
        `UPDATE ${T} SET state = $2, finished_at = $3, reason = $4, sealed = NULL WHERE id = $1 AND state = 'pending'`,
        [id, v.state, v.at, v.reason ?? null],
      );
    },
    async pending() {
      open();
      return one(`SELECT * FROM ${T} WHERE state = 'pending'`, []);
    },
    async lastDone() {
      open();
      return one(`SELECT * FROM ${T} WHERE state = 'done' ORDER BY finished_at DESC LIMIT 1`, []);
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end().catch(() => {});
    },
  };
}
